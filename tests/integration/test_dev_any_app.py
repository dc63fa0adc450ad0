"""./deploy dev for an app that is not shaped like the shop: examples/notes through its own inventory
(inventories/notes) - backend only, project under app/, settings that read NOTES_DB_* (never POSTGRES_* nor
DATABASE_URL). Its dev stack migrates and serves from the dev database because the dev role runs the app's
commands through smart-deploy's driver, which points Django at that database; the code is mounted and
reloads. Real Docker, real PostgreSQL, the notes image built from a private copy of examples/notes."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN, assert_ok, free_port, run

NOTES = ROOT / "examples" / "notes"
WHEELS_CACHE = Path("/tmp/sd-notes-wheels")  # filled by test_app_tests_own_settings.py; the build role downloads what is missing


class NotesDev:
    """A private copy of examples/notes in its own git repository, with names, ports and folders of its own."""

    def __init__(self, workdir: Path):
        self.name = "sdt" + secrets.token_hex(3)
        self.workdir = workdir
        self.source = workdir / "notes"
        self.port = free_port()
        self.db_password = "Canary/pw@%s" % secrets.token_hex(6)
        self.secret_key = "CanarySK-%s" % secrets.token_hex(12)
        shutil.copytree(NOTES, self.source, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
        if WHEELS_CACHE.is_dir():
            shutil.copytree(WHEELS_CACHE, self.source / "wheels")
        git = ["git", "-C", str(self.source), "-c", "user.name=pytest", "-c", "user.email=pytest@example.invalid"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "notes"]):
            done = run(git + args)
            assert done.returncode == 0, done.stderr
        self.vars_file = workdir / "vars.json"
        self.vars_file.write_text(
            json.dumps(
                {
                    "smart_deploy_app_name": self.name,
                    "smart_deploy_app_source": str(self.source),
                    "smart_deploy_state_dir": str(workdir / "state"),
                    "smart_deploy_http_port": free_port(),
                    "smart_deploy_db_password": self.db_password,
                    "smart_deploy_django_secret_key": self.secret_key,
                    "smart_deploy_actor": "pytest",
                }
            )
        )

    def dev(self, *args: str):
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
                   SMART_DEPLOY_LOG_DIR=str(self.workdir / "logs"), ANSIBLE_NOCOLOR="1")  # fmt: skip
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/notes", "playbooks/dev.yml", "-e", "@%s" % self.vars_file,
               "-e", "dev_port=%d" % self.port, *args]  # fmt: skip
        result = run(cmd, cwd=ROOT, env=env, timeout=900)
        output = result.stdout + result.stderr
        assert self.db_password not in output and self.secret_key not in output, "the playbook printed a secret"
        return result

    def http(self, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def dev_psql(self, sql: str) -> str:
        psql = ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", "dev", "-d", "dev", "-c", sql]
        done = run(["docker", "exec", "%s-dev-db" % self.name, *psql])
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def remove(self) -> None:
        ids = run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.dev=%s-dev" % self.name]).stdout.split()
        ids += run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.app=%s" % self.name]).stdout.split()
        if ids:
            run(["docker", "rm", "-f", *ids])
        run(["docker", "network", "rm", "%s-dev-net" % self.name])
        run(["docker", "volume", "rm", "-f", "%s-dev-pgdata" % self.name])
        images = run(["docker", "images", "-q", "--filter", "reference=%s-*" % self.name]).stdout.split()
        if images:
            run(["docker", "rmi", "-f", *sorted(set(images))])


@pytest.fixture
def notes(tmp_path):
    app = NotesDev(tmp_path)
    try:
        yield app
    finally:
        app.remove()


def test_dev_stack_of_an_app_with_its_own_database_names_serves_from_the_dev_database(notes):
    assert_ok(notes.dev())

    # The app's own variables point at the production database container, which does not exist here, and no
    # secret of the deployment reaches the dev container (its secret names hold placeholders): only the driver's
    # override can reach a database.
    web = "%s-dev-web" % notes.name
    env = dict(line.split("=", 1) for line in json.loads(run(["docker", "inspect", "-f", "{{json .Config.Env}}", web]).stdout))
    assert env["NOTES_DB_HOST"] == "%s-db" % notes.name
    assert run(["docker", "inspect", "%s-db" % notes.name]).returncode != 0
    assert env["SMART_DEPLOY_DB_HOST"] == "%s-dev-db" % notes.name and env["SMART_DEPLOY_DB_NAME"] == "dev"
    assert not {"POSTGRES_HOST", "DATABASE_URL"} & set(env)
    assert (env["NOTES_DB_PASSWORD"], env["NOTES_SECRET_KEY"]) == ("smart-deploy-placeholder-notes_db_password",
                                                                   "smart-deploy-placeholder-notes_secret_key")  # fmt: skip
    assert notes.db_password not in json.dumps(env) and notes.secret_key not in json.dumps(env)

    status, health = notes.http("/healthz")
    assert status == 200 and health["database"] == "reachable" and health["release"] == "dev", health
    assert health["migrations"] == {"pending": 0}  # the dev migrate ran on the dev database
    title = "written in dev %s" % secrets.token_hex(4)
    status, created = notes.http("/api/notes/", {"title": title, "body": "from the dev stack"})
    assert status == 201, created
    assert notes.dev_psql("SELECT title FROM notes_note WHERE id = %d" % created["id"]) == title
    assert notes.http("/api/notes/")[1]["results"][0]["title"] == title

    # The code is mounted: an edit reloads the server, whose new process is on the dev database too.
    views = notes.source / "app" / "notes" / "views.py"
    release = '"release": settings.NOTES_RELEASE'
    views.write_text(views.read_text().replace(release + "}", release + ', "dev": "reloaded"}'))
    deadline, health = time.monotonic() + 60, {}
    while time.monotonic() < deadline and health.get("dev") != "reloaded":
        time.sleep(1)
        try:
            health = notes.http("/healthz")[1]
        except (OSError, ValueError):
            pass
    assert health.get("dev") == "reloaded", "the server reloaded the edited code"
    assert health["database"] == "reachable" and notes.http("/api/notes/")[1]["results"][0]["title"] == title

    assert_ok(notes.dev("-e", "dev_action=down", "-e", "dev_purge=true"))
    names = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert not [n for n in names if n.startswith("%s-dev-" % notes.name)]
    assert run(["docker", "volume", "inspect", "%s-dev-pgdata" % notes.name]).returncode != 0
