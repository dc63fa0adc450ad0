"""A restored database and an app with persistent connections (issue 20, the corpus's N3 and N4), through real deploys of
one app: the notes sample as real projects configure it - CONN_MAX_AGE=600 (dj_database_url.config(conn_max_age=500) is
common), gunicorn with 2 workers, ALLOWED_HOSTS holding only its own name (Django's deployment checklist) and
smart_deploy_server_name set to it.

After `rollback --restore-db` and after an automatic rollback that restores the pre-deploy backup, no container that was
connected to the replaced database serves: the database is restored behind the maintenance page, then the release serves
from fresh containers, which connect to the restored one. Every gunicorn worker then answers a page that reads the
database with 200 (before, each worker's first request failed with "terminating connection due to administrator
command", hidden from the deploy's verdict by the health check's retries), and meanwhile users got 200, or the
maintenance page while the database was restored: not one request failed. The health gate and the endpoint checks send
the app's name as Host (the app answers 400 to any other). One deployment, four runs: a first deploy, a release with a
migration, the rollback with its database, the same release again failing after its switch."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import assert_failed, assert_ok, release_id, run
from tests.integration.notes import Notes

SERVER_NAME = "notes.example.test"
# the rollback role's built-in maintenance page during a restore (rollback_restore_message)
RESTORING = "The site is being restored to an earlier version. It will be back in a moment."
HOOKS = ROOT / "tests" / "integration" / "playbooks" / "hooks"

PID_VIEW = '''"""Which gunicorn worker answered, from a read of the database (a stale persistent connection fails it)."""

import os

from django.http import JsonResponse

from .models import Note


def pid(request):
    return JsonResponse({"pid": os.getpid(), "notes": Note.objects.count()})
'''

PINNED_MIGRATION = """from django.db import migrations, models


def pin_the_first(apps, schema_editor):
    Note = apps.get_model("notes", "Note")
    Note.objects.filter(pk__in=Note.objects.order_by("id").values("pk")[:1]).update(pinned=True)


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]

    # a data migration: undoing it cannot be proven lossless, so an automatic rollback restores the backup
    operations = [
        migrations.AddField("note", "pinned", models.BooleanField(null=True)),
        migrations.RunPython(pin_the_first, migrations.RunPython.noop),
    ]
"""


@pytest.fixture(scope="module")
def deployment_kind():
    return Notes


def add_persistent_connections_and_own_host(notes) -> None:
    """CONN_MAX_AGE=600, ALLOWED_HOSTS = [SERVER_NAME] (its Docker HEALTHCHECK sends that Host too), GET /api/pid/."""
    settings = notes.source / "app" / "notesite" / "settings.py"
    text = (
        settings.read_text()
        .replace('"CONN_MAX_AGE": 0,', '"CONN_MAX_AGE": 600,')
        .replace('ALLOWED_HOSTS = ["*"]', "ALLOWED_HOSTS = [%r]" % SERVER_NAME)
    )
    assert "600" in text and SERVER_NAME in text
    settings.write_text(text)
    dockerfile = notes.source / "Dockerfile"
    old = "urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=8)"
    new = "urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8081/healthz', headers={'Host': '%s'}), timeout=8)" % SERVER_NAME
    assert old in dockerfile.read_text()
    dockerfile.write_text(dockerfile.read_text().replace(old, new))
    (notes.source / "app" / "notes" / "pid.py").write_text(PID_VIEW)
    urls = notes.source / "app" / "notesite" / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace("from notes import views", "from notes import pid, views")
        .replace("urlpatterns = [", 'urlpatterns = [\n    path("api/pid/", pid.pid),')
    )


def get(notes, path: str, host: str = SERVER_NAME, method: str = "GET", body: dict | None = None):
    """One request through the proxy on a connection of its own (a fresh TCP connection reaches any gunicorn worker)."""
    connection = http.client.HTTPConnection("127.0.0.1", notes.port, timeout=10)
    headers = {"Host": host, "Connection": "close"} | ({"Content-Type": "application/json"} if body is not None else {})
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def assert_every_worker_answers(notes, at_least: int = 10, at_most: int = 40) -> dict:
    """Sequential GETs of a page that reads the database until both gunicorn workers answered (at least ``at_least``):
    every one 200. Returns {pid: answers}."""
    seen: dict = {}
    for count in range(1, at_most + 1):
        status, body = get(notes, "/api/pid/")
        assert status == 200, "request %d after the restore answered %d: %s\n%s" % (count, status, body[:300], web_logs(notes))
        pid = json.loads(body)["pid"]
        seen[pid] = seen.get(pid, 0) + 1
        if count >= at_least and len(seen) >= 2:
            return seen
    raise AssertionError("only the gunicorn workers %s answered %d requests: the test cannot tell" % (sorted(seen), at_most))


class Traffic:
    """What users get while a playbook runs: a GET of /api/pid/ (a read of the database) every 0.1 s, each on a
    connection of its own, so every gunicorn worker serves some and holds a persistent connection when the database is
    swapped. Every answer must be a 200, or the maintenance page (503) while the database is restored; a 500 from a
    stale connection, a 502/503 of the proxy's own or a refused connection fails the test."""

    def __init__(self, notes):
        self.notes = notes
        self.answers: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            try:
                status, body = get(self.notes, "/api/pid/")
            except OSError as exc:
                status, body = 0, "%s: %s" % (type(exc).__name__, exc)
            # (when, status, the maintenance page of a restore?, the start of the body)
            self.answers.append((round(time.monotonic(), 2), status, status == 503 and RESTORING in body, body[:300]))
            self.stop.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=20)

    def failed(self) -> list:
        return [a for a in self.answers if a[1] != 200 and not a[2]]

    def maintenance_pages(self) -> int:
        return sum(1 for a in self.answers if a[2])

    def assert_no_request_failed(self):
        """No request failed; users got the maintenance page (503) while the database was restored, 200 otherwise."""
        assert self.answers and not self.failed(), "%d of %d requests failed: %s" % (
            len(self.failed()),
            len(self.answers),
            self.failed()[:5],
        )
        assert self.maintenance_pages() > 0, "no request got the maintenance page during the restore (%d answers)" % len(self.answers)
        print("requests during the run: %d, %d of them the maintenance page, none failed" % (len(self.answers), self.maintenance_pages()))


def print_the_restore_window(notes, label: str) -> None:
    """The run's steps from the maintenance page up to down, the slowest first (README figures: pytest -s)."""
    steps = notes.run_log()["steps"]
    up = [i for i, step in enumerate(steps) if step["task"].startswith("Put up the maintenance page")]
    down = [i for i, step in enumerate(steps) if step["task"].startswith("Take the maintenance page down") and step["status"] != "skipped"]
    if up and down:
        window = steps[up[0] : down[-1] + 1]
        slow = sorted(window, key=lambda step: -step["seconds"])[:8]
        print(
            "%s - the restore window, %d tasks: %s"
            % (label, len(window), "; ".join("%s %.1f s" % (s["task"][:70], s["seconds"]) for s in slow))
        )


def web_logs(notes) -> str:
    """The app's containers and the last log lines of each Django one: what a failure shows."""
    listed = run(["docker", "ps", "-a", "--filter", "label=smart-deploy.app=%s" % notes.name, "--format", "{{.Names}} {{.Status}}"])
    said = [listed.stdout]
    for line in listed.stdout.splitlines():
        name = line.split(" ")[0]
        if "-web-" in name and " Up " in " %s " % line:
            said.append("--- %s\n%s" % (name, "".join(run(["docker", "logs", "--tail", "25", name]).stdout[-3000:])))
            said.append(run(["docker", "logs", "--tail", "25", name]).stderr[-3000:])
    return "\n".join(said)


def running_web(notes) -> list:
    found = run(["docker", "ps", "--filter", "label=smart-deploy.app=%s" % notes.name, "--filter", "label=smart-deploy.component=backend",
                 "--format", "{{.Names}}"])  # fmt: skip
    return sorted(found.stdout.split())


def maintenance_events(notes) -> list:
    return [(e["state"], e["message"]) for e in notes.releases().get("events", []) if e["kind"] == "maintenance"]


class Steps:
    def __init__(self, notes):
        self.notes = notes
        self.vars_file = notes.workdir / "restore-vars.json"
        self.vars_file.write_text(json.dumps({"smart_deploy_server_name": SERVER_NAME}))
        self.seconds: dict = {}

    def playbook(self, step: str, name: str, *args: str):
        started = time.monotonic()
        result = self.notes.playbook(name, "-e", "@%s" % self.vars_file, *args)
        self.seconds[step] = round(time.monotonic() - started, 1)
        print("%s: %.1f s" % (step, self.seconds[step]))
        return result


@pytest.fixture(scope="module")
def steps(module_deployment):
    notes = module_deployment
    steps = Steps(notes)
    add_persistent_connections_and_own_host(notes)
    notes.base = notes.commit("release 1: persistent connections, its own host name only")
    result = steps.playbook("first deploy", "deploy")
    assert_ok(result)
    yield steps
    print("seconds: %s (total %.1f)" % (steps.seconds, sum(steps.seconds.values())))


def test_the_app_refuses_other_hosts_and_the_gate_and_checks_send_its_name(steps):
    """The deploy passed its health gate and its endpoint checks although the app answers 400 to the container's and the
    proxy's addresses: both sent smart_deploy_server_name as Host."""
    notes = steps.notes
    assert get(notes, "/healthz", host="127.0.0.1:%d" % notes.port)[0] == 400, "the app refuses a Host not in ALLOWED_HOSTS"
    status, body = get(notes, "/healthz")
    assert status == 200 and json.loads(body)["database"] == "reachable"
    assert_every_worker_answers(notes)


def test_rollback_with_its_database_leaves_no_worker_on_a_dead_connection(steps):
    notes = steps.notes
    notes.add_migration("notes", "0002_note_pinned", PINNED_MIGRATION.split("\n\n\n", 1)[1])
    notes.edit("notes/models.py", '    body = models.TextField(blank=True, default="")\n',
               '    body = models.TextField(blank=True, default="")\n    pinned = models.BooleanField(null=True)\n')  # fmt: skip
    release_2 = notes.commit("release 2: pinned notes (a data migration)")
    assert_ok(steps.playbook("release with a migration", "deploy"))
    # every worker of release 2 holds a connection to the database that the restore replaces, and a note is written since
    assert_every_worker_answers(notes)
    status, body = get(notes, "/api/notes/", method="POST", body={"title": "written after release 2"})
    assert status == 201, body
    before = running_web(notes)

    with Traffic(notes) as traffic:
        result = steps.playbook("rollback --restore-db", "rollback", "-e", "restore_db=true")
    assert_ok(result)
    traffic.assert_no_request_failed()
    assert "restored from" in result.stdout, result.stdout[-4000:]
    assert notes.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes_note' AND column_name = 'pinned'") == "0"
    seen = assert_every_worker_answers(notes)
    print("after rollback --restore-db, answers per gunicorn worker: %s" % seen)
    assert json.loads(get(notes, "/api/pid/")[1])["notes"] == 0, "the note written since the backup went with the replaced database"

    # release 1 serves from containers started after the restore (not its own of the first deploy, stopped since), recorded
    # as the live release's
    after = running_web(notes)
    history = notes.releases()
    first = history["releases"][0]["containers"]["backend"]
    assert len(after) == 1 and after != before and after[0] != first, (before, first, after)
    live = [e for e in history["releases"] if e["status"] == "live"][-1]
    assert live["id"] == release_id(notes.base) and live["containers"]["backend"] == after[0], live
    assert live["restored_backup"]
    # the database was restored behind the maintenance page, taken down once the fresh containers served
    assert maintenance_events(notes)[-2:] == [("on", "The site is being restored to an earlier version. It will be back in a moment."),
                                              ("off", "")], maintenance_events(notes)  # fmt: skip
    said = notes.summary()["steps"]["maintenance"]
    assert "users got the maintenance page while the database was restored" in said, notes.summary()
    print("rollback --restore-db, maintenance: %s" % said)
    print_the_restore_window(notes, "rollback --restore-db")
    steps.release_2 = release_2


def test_an_automatic_rollback_that_restores_leaves_no_worker_on_a_dead_connection(steps):
    """Release 2 again, whose after-switch hook fails: the rescue serves release 1 again, cannot undo the data migration
    without a doubt, restores the pre-deploy backup - then release 1 serves from fresh containers."""
    notes = steps.notes
    before = running_web(notes)
    with Traffic(notes) as traffic:
        result = steps.playbook(
            "automatic rollback that restores", "deploy", "-e", "release_after_switch_tasks_file=%s" % (HOOKS / "fail.yml")
        )
    assert_failed(result)
    traffic.assert_no_request_failed()
    assert "Rolled back" in result.stdout, result.stdout[-4000:]
    history = notes.releases()
    failed = history["releases"][-1]
    assert failed["status"] == "failed" and "the user's hook failed" in failed["reason"], failed
    assert failed["rollback"]["database"].startswith("restored from"), failed["rollback"]
    assert "users got the maintenance page" in failed["rollback"]["maintenance"], failed["rollback"]
    print("automatic rollback, maintenance: %s" % failed["rollback"]["maintenance"])
    print_the_restore_window(notes, "automatic rollback")
    assert notes.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes_note' AND column_name = 'pinned'") == "0"
    seen = assert_every_worker_answers(notes)
    print("after the automatic rollback, answers per gunicorn worker: %s" % seen)

    # release 1 serves from containers started after the restore - not those the rescue started before it (release 1's
    # own names), nor those of the rollback before - and its live entry names them (status and manage read it)
    after = running_web(notes)
    first = history["releases"][0]["containers"]["backend"]
    assert len(after) == 1 and after != before and after[0] != first, (before, first, after)
    live = [e for e in history["releases"] if e["status"] == "live"][-1]
    assert history["current"] == release_id(notes.base) and live["containers"]["backend"] == after[0], (live, after)
    assert maintenance_events(notes)[-1][0] == "off"
    notes.assert_no_secret_leaks(result.stdout)
