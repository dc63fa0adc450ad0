"""Traits of real Django projects, added to a private copy of a sample app the way its developers would write
them, so that one test deployment can carry several (README "Workers and volumes"; issue 20):

- uploads: ``MEDIA_ROOT`` on a named volume, written by the web component (``PUT /media/<name>``) and read back
  (``GET /media/<name>``);
- workers: a management command that loops (``loop_worker --role <role>``), writes what it does into the shared
  media volume (``workers/<role>-<host>.log``: started, ticks, ``stopped on SIGTERM``) and its container's log,
  and touches ``/tmp/ready`` for a health command; ``GET /media-workers`` shows those files.

Each ``add_*`` function takes a deployment whose Django project is under ``deployment.SRC`` (the notes sample:
examples/notes, project under app/, image user ``notes``) and edits its source; ``*_components`` give the
``smart_deploy_components`` entries that deploy them. ``WorkersNotes`` is the notes sample with both.

More traits for the same deployments (HTTPS, Redis, one-off commands): settings that redirect plain HTTP behind
smart-deploy's TLS (``add_secure_proxy_settings``), ``/api/whoami/`` and ``/api/redis/`` (``add_trait_views``), a
management command that writes something visible (``add_manage_command``); ``notes_env``, ``redis_vars`` and
``tls_vars`` give the inventory variables they need. ``src``/``app``/``project`` name another layout's folders."""

from __future__ import annotations

import json

from tests.integration.conftest import run
from tests.integration.notes import Notes

MEDIA_ROOT = "/srv/media"

UPLOAD_VIEWS = '''"""Uploads kept in MEDIA_ROOT (a named volume smart-deploy mounts into every release's containers)."""

import json
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def media(request, name):
    """PUT/POST: store the body as uploads/<name>; GET: read it back."""
    path = Path(settings.MEDIA_ROOT) / "uploads" / name
    if request.method in ("PUT", "POST"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(request.body)
        return JsonResponse({"stored": name, "bytes": len(request.body)}, status=201)
    if not path.is_file():
        return JsonResponse({"error": "no such upload"}, status=404)
    return HttpResponse(path.read_bytes(), content_type="application/octet-stream")


def workers(request):
    """What the workers wrote into the shared volume: {file name: [lines]}."""
    folder = Path(settings.MEDIA_ROOT) / "workers"
    found = {path.name: path.read_text().splitlines() for path in sorted(folder.glob("*.log"))} if folder.is_dir() else {}
    return JsonResponse(found)
'''

LOOP_WORKER = '''"""A background worker of the kind real projects run beside the web (an RQ worker, a Celery worker or beat, a
management-command loop): it works until it is told to stop, and stops cleanly."""

import os
import signal
import socket
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Loop until SIGTERM or SIGINT; say so in MEDIA_ROOT/workers/<role>-<host>.log and on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--role", default="worker")
        parser.add_argument("--every", type=float, default=0.5)

    def handle(self, role, every, **options):
        folder = Path(settings.MEDIA_ROOT) / "workers"
        folder.mkdir(parents=True, exist_ok=True)
        release = os.environ.get("APP_RELEASE", "unknown")
        log = folder / ("%s-%s.log" % (role, socket.gethostname()))

        def say(words):
            line = "%.3f %s %s %s" % (time.time(), role, release, words)
            with log.open("a") as out:
                out.write(line + "\\n")
            sys.stdout.write(line + "\\n")
            sys.stdout.flush()

        stop = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, frame: stop.append(signal.Signals(number).name))
        say("started")
        Path("/tmp/ready").touch()
        ticks = 0
        while not stop:
            ticks += 1
            if ticks % 20 == 1:
                say("tick %d" % ticks)
            time.sleep(every)
        say("stopped on %s" % stop[0])
'''


def add_uploads(deployment) -> None:
    """MEDIA_ROOT from NOTES_MEDIA_ROOT (default /srv/media), a folder the image creates for its user (Docker copies
    it, ownership included, into an empty named volume at its first mount), and the upload views."""
    src = deployment.SRC
    deployment.write("%s/traits/__init__.py" % src, "")
    deployment.write("%s/traits/views.py" % src, UPLOAD_VIEWS)
    deployment.edit("notesite/settings.py", '    "notes",\n]', '    "notes",\n    "traits",\n]')
    deployment.edit(
        "notesite/settings.py",
        'ROOT_URLCONF = "notesite.urls"',
        'ROOT_URLCONF = "notesite.urls"\nMEDIA_ROOT = os.environ.get("NOTES_MEDIA_ROOT", "%s")' % MEDIA_ROOT,
    )
    deployment.edit(
        "notesite/urls.py",
        "from notes import views\n",
        "from notes import views\nfrom traits import views as traits\n",
    )
    deployment.edit(
        "notesite/urls.py",
        '    path("api/notes/", views.note_list, name="note-list"),\n',
        '    path("api/notes/", views.note_list, name="note-list"),\n'
        '    re_path(r"^media/(?P<name>[A-Za-z0-9._-]+)$", traits.media),\n'
        '    path("media-workers", traits.workers),\n',
    )
    deployment.edit("notesite/urls.py", "from django.urls import path\n", "from django.urls import path, re_path\n")
    dockerfile = deployment.source / "Dockerfile"
    text = dockerfile.read_text()
    assert "\nUSER notes\n" in text
    dockerfile.write_text(
        text.replace("\nUSER notes\n", "\nRUN mkdir -p %s && chown notes:notes %s\nUSER notes\n" % (MEDIA_ROOT, MEDIA_ROOT), 1)
    )


def add_loop_worker(deployment) -> None:
    """The management command ``loop_worker`` (needs add_uploads: it writes into MEDIA_ROOT)."""
    src = deployment.SRC
    deployment.write("%s/traits/management/__init__.py" % src, "")
    deployment.write("%s/traits/management/commands/__init__.py" % src, "")
    deployment.write("%s/traits/management/commands/loop_worker.py" % src, LOOP_WORKER)


def worker_components(backend: dict) -> dict:
    """smart_deploy_components for the Django component ``backend`` with the media volume, and two workers that run
    its image: ``worker`` (2 replicas, SIGTERM) and ``beat`` (a singleton stopped with SIGINT, with a health command)."""
    media = "media:%s" % MEDIA_ROOT
    return {
        "backend": dict(backend, volumes=[media]),
        "worker": {
            "container": "worker",
            "command": ["python", "manage.py", "loop_worker", "--role", "worker"],
            "replicas": 2,
            "stop_timeout": 10,
            "volumes": [media],
        },
        "beat": {
            "command": ["python", "manage.py", "loop_worker", "--role", "beat"],
            "singleton": True,
            "stop_signal": "SIGINT",
            "health_command": ["python", "-c", "import os, sys; sys.exit(0 if os.path.exists('/tmp/ready') else 1)"],
            "volumes": [media],
        },
    }


# The notes sample's Django component, as inventories/notes says it
NOTES_BACKEND = {
    "context": ".",
    "dockerfile": "Dockerfile",
    "container": "web",
    "port": 8081,
    "health_path": "/healthz",
    "project_dir": "/srv/notes",
    "source_dir": "app",
    "settings_module": "notesite.settings",
    "requirements": "requirements.txt",
    "wheels": "wheels",
    "python_version": "3.11",
}


class WorkersNotes(Notes):
    """The notes sample with uploads on a named volume and two workers running its image."""

    PREFIX = "sdw"

    def __init__(self, workdir, app_tests=False):
        super().__init__(workdir, app_tests=app_tests)
        add_uploads(self)
        add_loop_worker(self)

    @staticmethod
    def components() -> dict:
        """Its smart_deploy_components (a fresh copy)."""
        return worker_components(NOTES_BACKEND)

    def app_vars(self) -> dict:
        return dict(super().app_vars(), smart_deploy_components=self.components(), release_worker_settle=3)

    # --- what a user sees ----------------------------------------------------------------------------
    def worker_lines(self) -> list:
        """Every line the workers wrote into the media volume: [(time, role, release, words)], oldest first."""
        status, body = self.http("/media-workers")
        assert status == 200, body
        lines = []
        for file_lines in json.loads(body).values():
            for line in file_lines:
                stamp, role, release, words = line.split(" ", 3)
                lines.append((float(stamp), role, release, words))
        return sorted(lines)

    def containers(self, component: str, state: str = "running") -> list:
        """Names of this deployment's containers of ``component`` in ``state`` (running, exited ...)."""
        labels = ["--filter", "label=smart-deploy.app=%s" % self.name, "--filter", "label=smart-deploy.component=%s" % component]
        result = run(["docker", "ps", "-a", *labels, "--filter", "status=%s" % state, "--format", "{{.Names}}"])
        return sorted(result.stdout.split())

    def volumes(self) -> list:
        result = run(["docker", "volume", "ls", "-q", "--filter", "label=smart-deploy.app=%s" % self.name])
        return sorted(result.stdout.split())


# --- HTTPS, Redis and one-off commands ------------------------------------------------------------

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
