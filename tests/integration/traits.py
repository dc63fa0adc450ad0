"""Traits of real Django projects (issue 20), added to a test deployment's private copy of a sample, so that one
deployment shows several: settings that redirect plain HTTP behind smart-deploy's TLS (SECURE_SSL_REDIRECT with
SECURE_PROXY_SSL_HEADER), Redis reached from the app with the URL its environment gives, a management command that
writes something visible. Each function edits the copy (a test then commits and deploys it) and says which extra
variables the inventory needs; they combine (the integrator's shared trait app adds workers and volumes).

Written for the notes sample's layout (examples/notes: project notesite, app notes, under app/); ``src`` and ``app``
name another layout's folders."""

from __future__ import annotations

TRAITS_VIEWS = '''"""Views of the traits the tests add (tests/integration/traits.py)."""

import os
import socket
from urllib.parse import unquote, urlsplit

from django.http import JsonResponse


def whoami(request):
    """What the app sees of the request: is it secure (SECURE_PROXY_SSL_HEADER), and the header that says so."""
    return JsonResponse({"is_secure": request.is_secure(), "x_forwarded_proto": request.META.get("HTTP_X_FORWARDED_PROTO"),
                         "host": request.get_host()})


def redis_ping(request):
    """PING Redis at the URL the app's environment gives (redis://:password@host:port/db), in Redis's own protocol."""
    url = urlsplit(os.environ["{redis_url_name}"])
    password = unquote(url.password or "")
    with socket.create_connection((url.hostname, url.port or 6379), timeout=5) as sock:
        command = b"*2\\r\\n$4\\r\\nAUTH\\r\\n$%d\\r\\n%s\\r\\n*1\\r\\n$4\\r\\nPING\\r\\n" % (len(password.encode()), password.encode())
        sock.sendall(command)
        answer = b""
        while answer.count(b"\\r\\n") < 2:
            chunk = sock.recv(1024)
            if not chunk:
                break
            answer += chunk
    lines = answer.decode().split("\\r\\n")
    return JsonResponse({"auth": lines[0], "redis": lines[1] if len(lines) > 1 else ""})
'''

ADD_NOTE_COMMAND = '''"""manage.py add_note TITLE [--exit N]: one note, said on stdout; exits with N (the tests' exit code pass-through)."""

import sys

from django.core.management.base import BaseCommand

from notes.models import Note


class Command(BaseCommand):
    help = "Add a note (tests/integration/traits.py)"

    def add_arguments(self, parser):
        parser.add_argument("title")
        parser.add_argument("--exit", type=int, default=0)

    def handle(self, *args, **options):
        note = Note.objects.create(title=options["title"])
        self.stdout.write("added note %d: %s" % (note.id, note.title))
        if options["exit"]:
            sys.stdout.flush()
            sys.exit(options["exit"])
'''


def add_secure_proxy_settings(deployment, src: str = "app", project: str = "notesite", flag: str = "NOTES_SSL_REDIRECT") -> dict:
    """The app trusts X-Forwarded-Proto from its proxy and, with ``flag`` set, redirects plain HTTP (SECURE_SSL_REDIRECT)
    - no health path exempted: the health gate says https itself. Its Docker HEALTHCHECK says so too."""
    settings = deployment.source / src / project / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\n# trait (tests/integration/traits.py): behind a proxy that terminates TLS\n"
        + 'SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")\n'
        + 'SECURE_SSL_REDIRECT = os.environ.get("%s") == "1"\n' % flag
    )
    dockerfile = deployment.source / "Dockerfile"
    text = dockerfile.read_text()
    old = "urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=8)"
    if old in text:
        request = "urllib.request.Request('http://127.0.0.1:8081/healthz', headers={'X-Forwarded-Proto': 'https'})"
        new = "urllib.request.urlopen(%s, timeout=8)" % request
        dockerfile.write_text(text.replace(old, new))
    return {flag: "1"}


def add_trait_views(
    deployment, src: str = "app", app: str = "notes", project: str = "notesite", redis_url_name: str = "NOTES_REDIS_URL"
) -> None:
    """/api/whoami/ (is_secure, X-Forwarded-Proto) and /api/redis/ (PING Redis at the URL in ``redis_url_name``)."""
    (deployment.source / src / app / "traits.py").write_text(TRAITS_VIEWS.replace("{redis_url_name}", redis_url_name))
    urls = deployment.source / src / project / "urls.py"
    text = urls.read_text()
    text = text.replace("from %s import views" % app, "from %s import traits, views" % app)
    text = text.replace(
        "urlpatterns = [", 'urlpatterns = [\n    path("api/whoami/", traits.whoami),\n    path("api/redis/", traits.redis_ping),'
    )
    urls.write_text(text)


def add_manage_command(deployment, src: str = "app", app: str = "notes") -> None:
    """manage.py add_note TITLE [--exit N]."""
    commands = deployment.source / src / app / "management" / "commands"
    commands.mkdir(parents=True, exist_ok=True)
    (commands.parent / "__init__.py").write_text("")
    (commands / "__init__.py").write_text("")
    (commands / "add_note.py").write_text(ADD_NOTE_COMMAND)


def notes_env(extra_env: dict | None = None, extra_secret_env: dict | None = None) -> dict:
    """The notes inventory's environment (inventories/notes) with more names: extra vars replace a mapping whole."""
    env = {
        "NOTES_DB_HOST": "{{ smart_deploy_db_host }}",
        "NOTES_DB_PORT": "{{ smart_deploy_db_port | string }}",
        "NOTES_DB_NAME": "{{ smart_deploy_db_name }}",
        "NOTES_DB_USER": "{{ smart_deploy_db_app_user }}",
    }
    secret = {"NOTES_DB_PASSWORD": "{{ smart_deploy_db_app_password }}", "NOTES_SECRET_KEY": "{{ smart_deploy_django_secret_key }}"}
    return {"smart_deploy_app_env": dict(env, **(extra_env or {})), "smart_deploy_app_secret_env": dict(secret, **(extra_secret_env or {}))}


def redis_vars(url_name: str = "NOTES_REDIS_URL", **settings) -> tuple:
    """(smart_deploy_accessories with Redis, the secret environment entry that hands its URL to the app)."""
    return {"smart_deploy_accessories": {"redis": settings}}, {url_name: "{{ smart_deploy_redis_url }}"}


def tls_vars(pair, https_port: int, redirect: bool = True, hsts: int = 600) -> dict:
    return {
        "smart_deploy_tls_certificate": pair.certificate,
        "smart_deploy_tls_key": pair.key,
        "smart_deploy_https_port": https_port,
        "smart_deploy_https_redirect": redirect,
        "smart_deploy_hsts_max_age": hsts,
    }
