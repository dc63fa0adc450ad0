"""The database the release serves from (issue 24; README "The database the release serves from"), on one deployment of
the notes sample with a trait of real projects: its settings choose the database engine from a variable of the app's
own, NOTES_DB_ENGINE, and fall back to SQLite when it is not set (what a real project did, deployed with an inventory
that set the host, name, user and password but not the engine: the rehearsal and the migrations ran on PostgreSQL -
smart-deploy's driver points Django there - while the live containers served from an empty SQLite file, health 200).

In order, four deploys and a rollback: the first deploy with the variable set (checked, and the database it reads
recorded); the variable taken out and an emergency deploy (a changed configuration: new containers of the same release,
on SQLite) - refused before the switch, naming SQLite and the PostgreSQL database smart-deploy migrated, the previous
release serving untouched; a release with a migration, still without the variable - refused the same way, the database
back as before; with the variable set, it deploys; a rollback to a release whose settings, without the variable, point
elsewhere - refused the same way. Then the module itself on containers of the release's image started by hand: the same
database reached by its address instead of its name passes, another database of the same server and a server that does
not answer are refused. The misspelt component and route keys are in the malformed-input matrix."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import ROOT
from tests.integration import notes_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, run
from tests.integration.notes import Notes

SQLITE = "/tmp/notes.sqlite3"
# the trait: the engine from a variable of the app's own, SQLite by default (appended to the notes sample's settings)
ENGINE_FROM_A_VARIABLE = (
    """

# The engine comes from NOTES_DB_ENGINE; without it the app runs on a SQLite file (a real project's default).
if os.environ.get("NOTES_DB_ENGINE", "sqlite3") == "sqlite3":
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "%s"}}
"""
    % SQLITE
)
# inventories/notes' environment, which the extra vars below replace as a whole
NOTES_ENV = {
    "NOTES_DB_HOST": "{{ smart_deploy_db_host }}",
    "NOTES_DB_PORT": "{{ smart_deploy_db_port | string }}",
    "NOTES_DB_NAME": "{{ smart_deploy_db_name }}",
    "NOTES_DB_USER": "{{ smart_deploy_db_app_user }}",
}


class EngineNotes(Notes):
    """The notes sample whose settings fall back to SQLite unless NOTES_DB_ENGINE is set."""

    PREFIX = "sds"

    def engine_variable(self, value: str | None) -> None:
        """Set NOTES_DB_ENGINE in the app's environment (the inventory's, as extra vars), or leave it out (None)."""
        values = json.loads(self.vars_file.read_text())
        values["smart_deploy_app_env"] = dict(NOTES_ENV, **({"NOTES_DB_ENGINE": value} if value else {}))
        self.vars_file.write_text(json.dumps(values))

    def web(self, release: str) -> list:
        """Names of the backend containers of ``release`` (any state)."""
        labels = ["--filter", "label=smart-deploy.app=%s" % self.name, "--filter", "label=smart-deploy.component=backend",
                  "--filter", "label=smart-deploy.release=%s" % release]  # fmt: skip
        return run(["docker", "ps", "-a", *labels, "--format", "{{.Names}}"]).stdout.split()

    def started_at(self, container: str) -> str:
        return run(["docker", "inspect", "-f", "{{.Id}} {{.State.Status}} {{.State.StartedAt}}", container]).stdout.strip()


@pytest.fixture(scope="module")
def deployment_kind():
    return EngineNotes


def timed(timings, what, call):
    started = time.monotonic()
    result = call()
    timings[what] = time.monotonic() - started
    return result


@pytest.fixture(scope="module")
def app(module_deployment, timings):
    app = module_deployment
    path = app.source / app.SRC / "notesite" / "settings.py"
    path.write_text(path.read_text() + ENGINE_FROM_A_VARIABLE)
    app.r1 = app.commit("release 1: the engine from NOTES_DB_ENGINE, SQLite by default")
    app.engine_variable("postgresql")
    result = timed(timings, "first deploy", app.deploy)
    assert_ok(result)
    app.first_output = result.stdout
    return app


def live_entry(app):
    history = app.releases()
    return next(e for e in reversed(history["releases"]) if e["id"] == history["current"] and e["status"] == "live")


def test_the_first_deploy_checks_and_records_the_database_the_release_reads(app):
    assert "Ask the new Django container which database its own settings reach" in app.first_output
    entry = live_entry(app)
    database, db = entry["database"], app.name.replace("-", "_")
    assert (database["vendor"], database["host"], database["port"], database["name"], database["user"]) == (
        "PostgreSQL", "%s-db" % app.name, "5432", db, "%s_app" % db), database  # fmt: skip
    assert database["same_as_migrated"] is True and database["server"]["database"] == db and database["others"] == {}
    assert database["checked_in"] == entry["containers"]["backend"]
    assert "PASSWORD" not in json.dumps(database).upper()
    assert app.summary()["steps"]["live database"] == database["summary"]
    assert database["summary"].startswith("PostgreSQL database %s on %s-db:5432 as %s_app - the database smart-deploy migrated" % (
        db, app.name, db))  # fmt: skip


def test_an_emergency_deploy_without_the_variable_is_refused_before_the_switch(app, timings):
    """NOTES_DB_ENGINE taken out of the inventory, ./deploy emergency (no tests, no rehearsal): a changed configuration
    starts new containers of the same release, healthy on SQLite - refused before the switch, naming SQLite and the
    PostgreSQL database smart-deploy migrated; the refused container removed, the live one untouched."""
    web = live_entry(app)["containers"]["backend"]
    running = app.started_at(web)
    app.engine_variable(None)
    result = timed(timings, "emergency on SQLite, refused", lambda: app.deploy("-e", "smart_deploy_emergency=true"))
    assert_failed(result)
    db = app.name.replace("-", "_")
    expected = ("the release's settings use SQLite (%s), not the PostgreSQL database %s on %s-db:5432 that smart-deploy migrated"
                % (SQLITE, db, app.name))  # fmt: skip
    assert expected in result.stdout, result.stdout[-5000:]
    history = app.releases()
    attempt = history["releases"][-1]
    assert (attempt["id"], attempt["kind"], attempt["status"]) == (app.r1, "emergency", "failed") and expected in attempt["reason"]
    assert history["current"] == app.r1 and attempt["rollback"]["service"] == "release %s serves again" % app.r1
    assert app.started_at(web) == running, "the live container was touched"
    assert app.web(app.r1) == [web], "the refused container must be removed"
    assert app.get_json("/healthz")[0] == 200 and not (app.state_dir / "deploy.lock").exists()


def test_a_release_whose_settings_fall_back_to_sqlite_is_refused_before_the_switch(app, timings):
    """A release with a migration, still without NOTES_DB_ENGINE: the migration rehearsed and applied on PostgreSQL, the
    new container healthy on SQLite - refused before the switch, naming both; its container removed, release 1 serving
    untouched, the database back as before the deploy, the attempt recorded failed with the reason."""
    web = live_entry(app)["containers"]["backend"]
    before, running = app.snapshot(), app.started_at(web)
    releases.add_note_pinned(app)
    app.r2 = app.commit("release 2: notes can be pinned")
    result = timed(timings, "release on SQLite, refused", app.deploy)
    assert_failed(result)
    db = app.name.replace("-", "_")
    expected = ("the release's settings use SQLite (%s), not the PostgreSQL database %s on %s-db:5432 that smart-deploy migrated"
                % (SQLITE, db, app.name))  # fmt: skip
    assert expected in result.stdout, result.stdout[-5000:]
    assert "normal: 1 migrations apply cleanly on the copy" in result.stdout  # rehearsed on PostgreSQL, as the issue saw
    assert app.started_at(web) == running, "the live container was touched"
    assert app.web(app.r2) == [], "the refused release's containers must be removed"
    history = app.releases()
    attempt = history["releases"][-1]
    assert attempt["id"] == app.r2 and attempt["status"] == "failed" and expected in attempt["reason"], attempt
    assert history["current"] == app.r1 and attempt["rollback"]["service"] == "release %s serves again" % app.r1
    assert app.snapshot() == before, "the database goes back as after any failure after the migrations"
    status, health = app.get_json("/healthz")
    assert status == 200 and health["migrations"]["pending"] == 0, health
    assert not (app.state_dir / "deploy.lock").exists()


def test_with_the_engine_variable_set_the_release_deploys(app, timings):
    app.engine_variable("postgresql")
    result = timed(timings, "release with the variable", app.deploy)
    assert_ok(result)
    entry = live_entry(app)
    assert entry["id"] == app.r2 and entry["database"]["same_as_migrated"] is True and entry["database"]["vendor"] == "PostgreSQL"
    assert app.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes_note' AND column_name = 'pinned'") == "1"
    status, created = app.http("/api/notes/", method="POST", body={"title": "on PostgreSQL"})
    assert status == 201, created
    assert "on PostgreSQL" in app.psql("SELECT string_agg(title, ',') FROM notes_note")


def test_a_rollback_to_a_release_whose_settings_point_elsewhere_is_refused(app, timings):
    """Release 1's settings without NOTES_DB_ENGINE (taken out of the inventory again) use SQLite: the rollback is refused
    before its switch, its new container removed; release 2 keeps serving and the history is unchanged."""
    app.engine_variable(None)
    web = live_entry(app)["containers"]["backend"]
    running, history = app.started_at(web), (app.state_dir / "releases.json").read_text()
    kept = app.web(app.r1)  # release 1's container, stopped and kept for rollbacks
    result = timed(timings, "rollback on SQLite, refused", lambda: app.playbook("rollback", "-e", "release=%s" % app.r1))
    assert_failed(result)
    assert "the release's settings use SQLite (%s), not the PostgreSQL database" % SQLITE in result.stdout, result.stdout[-5000:]
    assert app.started_at(web) == running and (app.state_dir / "releases.json").read_text() == history
    assert app.web(app.r1) == kept, "only the container the rollback started goes"
    assert app.get_json("/healthz")[0] == 200 and not (app.state_dir / "deploy.lock").exists()


# --- the module on containers of the release's image started by hand: what the server says decides -----------------
@pytest.fixture
def container(app):
    """Start a container of release 2's image on the app's network with the app's environment and ``env`` over it."""
    started = []

    def start(**env):
        name, db = "%s-check-%d" % (app.name, len(started)), app.name.replace("-", "_")
        values = {"NOTES_SECRET_KEY": app.secret_key, "NOTES_DB_ENGINE": "postgresql", "NOTES_DB_HOST": "%s-db" % app.name,
                  "NOTES_DB_PORT": "5432", "NOTES_DB_NAME": db, "NOTES_DB_USER": "%s_app" % db, "NOTES_DB_PASSWORD": app.app_password(),
                  **env}  # fmt: skip
        argv = ["docker", "run", "-d", "--name", name, "--network", "%s-net" % app.name, "--label", "smart-deploy.app=%s" % app.name]
        for key in values:
            argv += ["-e", key]
        result = run([*argv, "%s-backend:%s" % (app.name, app.r2)], env=dict(values, PATH="/usr/bin:/bin"))
        assert result.returncode == 0, result.stderr
        started.append(name)
        return name

    yield start
    if started:
        run(["docker", "rm", "-f", *started])


def check(app, run_module, name):
    """django_database_check, as the release role runs it, on container ``name``."""
    db = app.name.replace("-", "_")
    driver = (ROOT / "module_utils" / "smart_deploy" / "django_driver.py").read_text()
    args = {"container": name, "project_dir": "/srv/notes", "db_container": "%s-db" % app.name, "db_name": db, "db_user": db,
            "db_password": app.db_password, "driver_source": driver}  # fmt: skip
    return run_module("django_database_check", args)


def test_the_server_says_which_database_it_is_whatever_the_host_is_called(app, run_module, container):
    address = run(["docker", "inspect", "-f", '{{(index .NetworkSettings.Networks "%s-net").IPAddress}}' % app.name,
                   "%s-db" % app.name]).stdout.strip()  # fmt: skip
    result = check(app, run_module, container(NOTES_DB_HOST=address))
    assert not result.get("failed") and result["same"] and result["database"]["host"] == address, result
    other = check(app, run_module, container(NOTES_DB_NAME="postgres"))
    assert other["failed"] and "which is another database on the same server (postgres, oid" in other["msg"], other
    nowhere = check(app, run_module, container(NOTES_DB_HOST="%s-nowhere" % app.name))
    assert nowhere["failed"] and "cannot reach the database their settings name, the PostgreSQL database" in nowhere["msg"], nowhere
    assert "%s-nowhere" % app.name in nowhere["msg"] and app.app_password() not in json.dumps([result, other, nowhere])
