"""Issue 20's traits of real Django projects, together in one app deployed through the verbs a user runs: gazette
(tests/apps/gazette) - Django 6 on Python 3.13, psycopg 3 with the database from DATABASE_URL through dj-database-url
(kept in the secret environment), the settings module named only by manage.py, a partial unique index with an `__in`
condition upgraded across a migration, a Celery worker on Redis (smart-deploy's accessory), uploads in a named volume,
SECURE_SSL_REDIRECT behind the proxy's HTTPS, persistent database connections (CONN_MAX_AGE) across a restore, a
management command run in the live release, maintenance mode kept through a deploy that rotates the certificate.

One deployment, two deploys and a rollback (the rules of each part are proven on their own elsewhere: the driver's
matrix, the schema round trip, the proxy and accessories roles alone, workers and volumes on the notes sample)."""

from __future__ import annotations

import datetime
import json
import time

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import Deployment, assert_failed, assert_ok, free_port, run
from tests.integration.tls import LocalCA, request, served_serial

MIGRATION_0002 = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("newsroom", "0001_initial")]

    operations = [
        migrations.AddField(model_name="story", name="summary", field=models.CharField(blank=True, default="", max_length=300)),
    ]
"""


class Gazette(Deployment):
    """A private copy of tests/apps/gazette in its own git repository, deployed with the inventory a user of it writes:
    its components (web, a Celery worker), Redis, HTTPS, and its environment in the names its settings read."""

    EXAMPLE = "gazette"
    EXAMPLES = ROOT / "tests" / "apps"
    SRC = "src"
    PREFIX = "sdg"
    COPY_IGNORE = ("__pycache__", "wheels")

    def __init__(self, workdir, app_tests=True):  # its own test suite runs in its image (psycopg 3, DATABASE_URL)
        self.ca = LocalCA()
        self.pair = self.ca.issue()
        self.https_port = free_port()
        super().__init__(workdir, app_tests=app_tests)
        # the inventory its team writes (hosts, then group_vars/all/app.yml), not the shop's embedded default
        self.inventory = workdir / "inventory"
        (self.inventory / "group_vars" / "all").mkdir(parents=True)
        (self.inventory / "hosts.yml").write_text((ROOT / "inventories" / "notes" / "hosts.yml").read_text())
        (self.inventory / "group_vars" / "all" / "app.yml").write_text(json.dumps(self.inventory_vars(), indent=2))

    def playbook(self, name, *args, timeout=900):
        return super().playbook(name, "-i", str(self.inventory), *args, timeout=timeout)

    def app_vars(self) -> dict:
        """The extra vars beside the private names: the certificate, which a test rotates."""
        return self.tls_vars()

    def inventory_vars(self) -> dict:
        return {
            "smart_deploy_components": {
                "backend": {
                    "context": ".",
                    "container": "web",
                    "port": 8000,
                    "health_path": "/healthz",
                    "project_dir": "/srv/gazette",
                    "source_dir": "src",
                    "python_version": "3.13",
                    "volumes": ["media:/srv/media"],
                },
                "worker": {
                    "command": ["celery", "-A", "gazette", "worker", "--loglevel", "INFO", "--concurrency", "1"],
                    "stop_timeout": 15,
                },
            },
            "smart_deploy_accessories": {"redis": {}},
            "smart_deploy_app_env": {"GAZETTE_ALLOWED_HOSTS": "*"},
            "smart_deploy_app_secret_env": {
                "DATABASE_URL": "postgres://{{ smart_deploy_db_app_user | smart_deploy_urlquote }}:{{ smart_deploy_db_app_password"
                " | smart_deploy_urlquote }}@{{ smart_deploy_db_host }}:{{ smart_deploy_db_port }}/{{ smart_deploy_db_name }}",
                "REDIS_URL": "{{ smart_deploy_redis_url }}",
                "DJANGO_SECRET_KEY": "{{ smart_deploy_django_secret_key }}",
            },
            "health_check_endpoints": [{"name": "health", "path": "/healthz"}, {"name": "stories", "path": "/stories/"}],
        }

    def tls_vars(self) -> dict:
        return {
            "smart_deploy_tls_certificate": self.pair.certificate,
            "smart_deploy_tls_key": self.pair.key,
            "smart_deploy_https_port": self.https_port,
            "smart_deploy_https_redirect": True,
            "smart_deploy_hsts_max_age": 600,
        }

    def rotate_certificate(self) -> None:
        self.pair = self.ca.issue()
        values = json.loads(self.vars_file.read_text())
        values.update(self.tls_vars())
        self.vars_file.write_text(json.dumps(values))

    # --- what a user sees ----------------------------------------------------------------------------
    def https(self, path, method="GET", body=None, headers=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        return request(self.https_port, path, https=True, ca=self.ca, method=method, headers=headers, body=data)

    def get_json(self, path):
        answer = self.https(path)
        assert answer.status == 200, (path, answer.status, answer.body[:500])
        return json.loads(answer.body)

    def pings_done_by(self, release, timeout=60):
        """Queue a Celery task through the web, wait until the worker wrote its row; the releases that wrote rows."""
        before = self.get_json("/pings/")["done"]
        assert self.https("/pings/", method="POST").status == 202
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.get_json("/pings/")
            if seen["done"] > before:
                assert release in seen["releases"], seen
                return seen
            time.sleep(0.5)
        raise AssertionError("the Celery worker wrote no row within %d s: %s" % (timeout, self.worker_logs()))

    def worker_logs(self) -> str:
        names = run(["docker", "ps", "-a", "--filter", "label=smart-deploy.app=%s" % self.name, "--filter",
                     "label=smart-deploy.component=worker", "--format", "{{.Names}}"]).stdout.split()  # fmt: skip
        logs = [run(["docker", "logs", "--tail", "30", name]) for name in names]
        return "\n".join(log.stdout + log.stderr for log in logs)

    def web(self) -> str:
        release = self.releases()["current"]
        labels = [
            "label=smart-deploy.app=%s" % self.name,
            "label=smart-deploy.component=backend",
            "label=smart-deploy.release=%s" % release,
        ]
        names = run(["docker", "ps", *[arg for label in labels for arg in ("--filter", label)], "--format", "{{.Names}}"]).stdout.split()
        assert len(names) == 1, names
        return names[0]

    def manage(self, *args, **extra):
        result_file = self.workdir / "manage.rc"
        result_file.unlink(missing_ok=True)
        result = self.playbook("manage", "-e", json.dumps({"manage_args": list(args), "manage_result_file": str(result_file), **extra}))
        return result, (int(result_file.read_text()) if result_file.exists() else None)

    def events(self, kind):
        return [event for event in self.releases().get("events", []) if event["kind"] == kind]


@pytest.fixture(scope="module")
def deployment_kind():
    return Gazette


@pytest.fixture(scope="module")
def gazette(module_deployment):
    app = module_deployment
    app.r1 = app.commit("release 1")
    started = time.monotonic()
    result = app.deploy()
    assert_ok(result)
    app.first_output = " ".join(result.stdout.split())
    print("gazette's first deploy: %.1f s" % (time.monotonic() - started))
    return app


def test_django_6_on_python_3_13_with_psycopg_3_and_no_settings_module_in_the_image(gazette):
    web = gazette.web()
    probe = "import sys, django, psycopg, importlib.util; print(sys.version_info[:2], django.VERSION[:2], psycopg.__version__[0], "
    versions = run(["docker", "exec", web, "python", "-c", probe + "importlib.util.find_spec('psycopg2'))"])
    assert versions.stdout.strip() == "(3, 13) (6, 0) 3 None", versions.stdout + versions.stderr
    env = json.loads(run(["docker", "inspect", "-f", "{{json .Config.Env}}", web]).stdout)
    assert not [item for item in env if item.startswith("DJANGO_SETTINGS_MODULE=")], "the settings module is named only by manage.py"
    # the offline analysis, the rehearsal and the migrations found the settings the way manage.py does, with DATABASE_URL
    # a placeholder of the secret's scheme; the first deploy is quiet while PostgreSQL starts
    verdict = gazette.validation_reports()[-1]["verdict"]
    assert verdict["strategy"] == "normal", verdict
    assert "FAILED - RETRYING" not in gazette.first_output


def test_behind_https_the_app_sees_https_and_plain_http_is_redirected(gazette):
    seen = gazette.get_json("/whoami/")
    assert seen["secure"] is True and seen["forwarded_proto"] == "https" and seen["release"] == gazette.r1
    plain = request(gazette.port, "/stories/?x=1")
    assert plain.status == 301 and plain.headers["location"] == "https://127.0.0.1:%d/stories/?x=1" % gazette.https_port
    assert gazette.https("/healthz").headers["strict-transport-security"] == "max-age=600"
    # the health gate speaks plain HTTP to the container and says https, as the proxy does: 200, not a redirect
    assert "health: 200" in gazette.first_output


def test_a_celery_worker_takes_tasks_from_redis_and_writes_to_the_database(gazette):
    gazette.pings_done_by(gazette.r1)
    assert "| accessories | redis started (%s-redis, redis:7-bookworm, data in %s-redis-data)" % (gazette.name, gazette.name) in (
        gazette.first_output
    )


def test_an_upload_lands_in_the_media_volume(gazette):
    answer = gazette.https("/upload/?name=front-page.txt", method="POST", body=b"kept across releases")
    assert answer.status == 201, answer.body
    assert gazette.https("/media/front-page.txt").body == "kept across releases"


def test_a_management_command_runs_in_the_live_release_and_its_exit_code_is_passed_on(gazette):
    result, code = gazette.manage("add_story", "Budget", "--status", "in_review")
    assert_ok(result)
    assert code == 0 and "added story" in result.stdout
    result, code = gazette.manage("add_story", gazette.secret_key, "--exit", "3")
    assert_failed(result)
    assert code == 3 and "exited with 3" in result.stdout
    assert [event["args"] for event in gazette.events("manage")] == [["add_story", "Budget", "--status", "in_review"],
                                                                    ["add_story", "********", "--exit", "3"]]  # fmt: skip
    # production now holds rows the partial unique index covers
    assert gazette.https("/stories/", method="POST", body={"title": "Budget", "status": "published"}).status == 201
    duplicate = run(["docker", "exec", gazette.web(), "python", "manage.py", "add_story", "Budget", "--status", "needs_changes"])
    assert duplicate.returncode != 0 and "one_open_story_per_title" in duplicate.stderr


def test_a_management_command_waits_for_no_deploy_but_is_refused_while_one_holds_the_lock(gazette):
    lock = gazette.state_dir / "deploy.lock"
    holder = {"lock_id": "x", "owner": "someone", "host": "elsewhere", "pid": 1, "machine_id": "m", "boot_id": "b", "pid_ns": "p",
              "started": "2026-01-01T00:00:00Z", "release": "r", "expires": "2999-01-01T00:00:00Z", "operation": "deploy"}  # fmt: skip
    lock.write_text(json.dumps(holder))
    try:
        result, code = gazette.manage("add_story", "never written")
        assert_failed(result)
        assert code is None and "someone" in result.stdout
        read_only, code = gazette.manage("showmigrations", "newsroom", manage_lock=False)
        assert_ok(read_only)
        assert code == 0 and "0001_initial" in read_only.stdout
    finally:
        lock.unlink()
    assert "never written" not in [story["title"] for story in gazette.get_json("/stories/")["stories"]]


def test_an_upgrade_across_the_partial_index_deploys_during_maintenance_with_a_new_certificate(gazette):
    assert_ok(gazette.playbook("maintenance", "-e", json.dumps({"maintenance": "on", "message": "Printing the late edition"})))
    gazette.write("src/newsroom/migrations/0002_story_summary.py", MIGRATION_0002)
    created = "    created = models.DateTimeField(auto_now_add=True)\n"
    gazette.edit("newsroom/models.py", created, created + '    summary = models.CharField(max_length=300, blank=True, default="")\n')
    gazette.r2 = gazette.commit("release 2: a summary")
    old = gazette.pair
    gazette.rotate_certificate()
    result = gazette.deploy()
    assert_ok(result)
    said = " ".join(result.stdout.split())
    # the copy of production (with its partial index, printed otherwise after pg_dump | pg_restore) is faithful
    verdict = gazette.validation_reports()[-1]["verdict"]
    assert verdict["strategy"] == "normal" and "copy-not-faithful" not in json.dumps(verdict), verdict
    assert "| maintenance | on - users get the maintenance page (the checks went past it)" in said
    answer = gazette.https("/stories/")
    assert answer.status == 503 and "Printing the late edition" in answer.body
    assert answer.peer_serial == gazette.pair.serial != old.serial
    assert_ok(gazette.playbook("maintenance", "-e", json.dumps({"maintenance": "off"})))
    assert served_serial(gazette.https_port, gazette.ca) == gazette.pair.serial
    stories = [(story["title"], story["status"]) for story in gazette.get_json("/stories/")["stories"]]
    assert ("Budget", "in_review") in stories and ("Budget", "published") in stories, stories
    assert gazette.psql("SELECT count(*) FROM newsroom_story WHERE summary = ''") == str(len(stories))
    gazette.pings_done_by(gazette.r2)  # the new release's worker
    assert gazette.https("/media/front-page.txt").body == "kept across releases"


def test_a_rollback_with_the_database_serves_every_request_on_fresh_connections(gazette):
    worker_before = live_entry(gazette)["containers"]["worker"]
    result = gazette.playbook("rollback", "-e", "restore_db=true")
    assert_ok(result)
    # the upgrade's worker stopped before the restore (it would run release 2's tasks on release 1's tables, and
    # Docker would restart it on that database): it stopped once, before release 1's fresh worker started
    worker_after = live_entry(gazette)["containers"]["worker"]
    stopped, restarts = inspect(worker_before, "{{.State.FinishedAt}} {{.RestartCount}}").split()
    started = inspect(worker_after, "{{.State.StartedAt}}")
    assert restarts == "0" and docker_time(stopped) < docker_time(started), (worker_before, stopped, worker_after, started)
    assert gazette.get_json("/whoami/")["release"] == gazette.r1
    columns = "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'newsroom_story'"
    assert gazette.psql(columns) == "created,id,status,title"
    # CONN_MAX_AGE=600 without health checks of its connections (as bakerydemo): no worker of the web answers from a
    # connection to the database the restore replaced
    statuses = [gazette.https("/stories/").status for _ in range(12)]
    assert statuses == [200] * 12, statuses
    gazette.pings_done_by(gazette.r1)  # the previous release's worker, on the restored database
    assert gazette.https("/media/front-page.txt").body == "kept across releases"


def test_status_shows_the_worker_the_volume_redis_https_and_the_commands(gazette):
    result = gazette.playbook("status", "-e", "status_events=10")  # the maintenance of the rollback's restore came after it
    assert_ok(result)
    said = " ".join(result.stdout.split())
    assert "worker: 1/1 running" in said
    assert "%s-media" % gazette.name in said and "mounted by backend" in said
    assert "redis %s-redis Up" % gazette.name in said
    assert "https: on 127.0.0.1:%d" % gazette.https_port in said and "maintenance: off" in said
    assert "manage.py add_story ******** --exit 3 exit 3 by pytest" in said


def test_cleanup_keeps_redis_and_the_uploads(gazette):
    assert_ok(gazette.playbook("cleanup"))
    assert gazette.container_state("%s-redis" % gazette.name) == "running"
    for volume in ("%s-redis-data" % gazette.name, "%s-media" % gazette.name):
        assert run(["docker", "volume", "inspect", volume]).returncode == 0, volume
    assert gazette.https("/media/front-page.txt").body == "kept across releases"


def live_entry(deployment) -> dict:
    history = deployment.releases()
    return [entry for entry in history["releases"] if entry["id"] == history["current"]][-1]


def docker_time(text: str) -> datetime.datetime:
    """Docker's RFC 3339 time with up to nanoseconds (trailing zeros dropped), to the microsecond."""
    seconds, _, fraction = text.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(seconds) + datetime.timedelta(microseconds=int((fraction + "000000")[:6]))


def inspect(container: str, template: str) -> str:
    result = run(["docker", "inspect", "-f", template, container])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
