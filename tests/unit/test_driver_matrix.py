"""Every path of smart-deploy's driver on real Django 4.2, 5.2 and 6.0, each with psycopg2 and with psycopg 3, against a
real PostgreSQL 15 started here (initdb and pg_ctl of the host, a throwaway cluster): the offline analysis, the rehearsal
on a copy, the app's tests, the production apply and reverse, and `manage` (./deploy dev: migrate, then the server
answering from the database).

The app is made by the test the way real projects are: psycopg 3 or psycopg2, settings that read DATABASE_URL through
dj-database-url and two more URLs through django-environ (env.db_url, env.cache_url with redis://), all three kept in the
secret environment, a settings module named only by manage.py (no DJANGO_SETTINGS_MODULE anywhere), a RunPython that
reads through a server-side cursor, a RunSQL with parameters, a test case. The offline paths get the placeholders the
role's default makes (the filter smart_deploy_placeholders) from canary secrets; production's paths get the canaries,
as they do in a deploy. No canary may reach an offline path.

Also: a migration that fails with its SQLSTATE is the app's (its code, the migration after it counted as not reached),
and, with psycopg 3, the statement log of smart-deploy before issue 20 (cursor.mogrify() after execute()) breaks the
rehearsal in a way the verdict calls smart-deploy's own defect, which no smart_deploy_accept takes.

Each Django lives in a venv made here from PyPI and kept under .cache/driver-matrix/ (git-ignored), named after a hash
of its Python and requirements: a second run installs nothing. Django 6 needs Python 3.12 or later (pyenv's is used
when there is no python3.12/3.13 on PATH); a cell whose Python is missing is skipped, saying which."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver
from ansible.module_utils.smart_deploy.scratch import driver_db_env
from ansible.module_utils.smart_deploy.served_database import compare
from ansible.module_utils.smart_deploy.strategy import DEFECT_CODE, decide

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("smart_deploy_filters_matrix", ROOT / "plugins" / "filter" / "smart_deploy.py")
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)

CACHE = ROOT / ".cache" / "driver-matrix"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DJANGO = {"4.2": ("Django>=4.2,<4.3", ("3.11", "3.12")), "5.2": ("Django>=5.2,<5.3", ("3.11", "3.12", "3.13")),
          "6.0": ("Django>=6.0,<6.1", ("3.12", "3.13"))}  # fmt: skip
DRIVERS = {"psycopg2": "psycopg2-binary>=2.9,<3", "psycopg3": "psycopg[binary]>=3.1,<4"}
COMMON = ("dj-database-url>=2.1,<4", "django-environ>=0.11,<1")
CELLS = [(version, client) for version in DJANGO for client in DRIVERS]
NO_NETWORK = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution", "Network is unreachable",
              "ConnectTimeoutError", "ReadTimeoutError", "Could not fetch URL", "No route to host", "No matching distribution")  # fmt: skip

# production's secrets, as the inventory would hold them: none of them may reach an offline path
SECRETS = {
    "DATABASE_URL": "postgres://prod_app:canary-db-pw@prod-db.invalid:5432/prod",
    "REPLICA_DATABASE_URL": "postgresql://reader:canary-replica-pw@replica.invalid/prod?sslmode=require",
    "CACHE_URL": "redis://:canary-redis-pw@redis.invalid:6379/1",
    "DJANGO_SECRET_KEY": "canary-secret-key",
}
ROLE, ROLE_PASSWORD = "matrix_app", "pw/with@odd:chars"
PLAN = ["contenttypes.0001_initial", "contenttypes.0002_remove_content_type_name", "shelf.0001_initial", "shelf.0002_first_book",
        "shelf.0003_book_note", "shelf.0004_isbn", "shelf.0005_after"]  # fmt: skip

MANAGE_PY = """\
#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matrixsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
"""
SETTINGS = """\
import os

import dj_database_url
import environ

env = environ.Env()
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "shelf"]
MIDDLEWARE = []
ROOT_URLCONF = "matrixsite.urls"
DATABASES = {"default": dj_database_url.config(conn_max_age=600)}
REPLICA = env.db_url("REPLICA_DATABASE_URL")
if os.environ.get("MATRIX_REPLICA_ALIAS"):  # a second alias (test_identify_...)
    DATABASES["replica"] = REPLICA
CACHES = {"default": env.cache_url("CACHE_URL", backend="django.core.cache.backends.redis.RedisCache")}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""
URLS = """\
from django.db import connection
from django.http import JsonResponse
from django.urls import path

from shelf.models import Book


def books(request):
    return JsonResponse({"books": Book.objects.count(), "database": connection.settings_dict["NAME"]})


urlpatterns = [path("books/", books)]
"""
MODELS = """\
import os

from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=100)
    pages = models.IntegerField(default=0)
    note = models.CharField(max_length=50, null=True)
    if os.environ.get("MATRIX_MISSING"):  # a model change without its migration, with a default to quote offline
        subtitle = models.CharField(max_length=50, default="no subtitle")
"""
TESTS = """\
import os

import dj_database_url
from django.db import connection
from django.test import TestCase

from shelf.models import Book


class ShelfTests(TestCase):
    def test_the_run_python_of_the_migrations_ran(self):
        self.assertEqual(list(Book.objects.values_list("title", flat=True)), ["First"])

    def test_the_settings_urls_point_at_the_test_server_and_hold_no_secret(self):
        url = dj_database_url.parse(os.environ["DATABASE_URL"])
        ours = connection.settings_dict
        self.assertEqual((url["HOST"], str(url["PORT"]), url["USER"]), (ours["HOST"], str(ours["PORT"]), ours["USER"]))
        self.assertNotIn("canary", " ".join(os.environ.values()))
"""
MIGRATIONS = {
    "0001_initial": """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Book",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=100)),
                ("pages", models.IntegerField(default=0)),
            ],
        ),
    ]
""",
    "0002_first_book": """\
from django.db import migrations


def add(apps, schema_editor):
    Book = apps.get_model("shelf", "Book")
    Book.objects.create(title="First", pages=320)
    assert [book.pages for book in Book.objects.all().iterator(chunk_size=10)] == [320]  # a server-side cursor


def remove(apps, schema_editor):
    apps.get_model("shelf", "Book").objects.filter(title="First").delete()


class Migration(migrations.Migration):
    dependencies = [("shelf", "0001_initial")]
    operations = [
        migrations.RunPython(add, remove),
        migrations.RunSQL([("UPDATE shelf_book SET pages = pages + %s WHERE title = %s", [1, "First"])], migrations.RunSQL.noop),
    ]
""",
    "0003_book_note": """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shelf", "0002_first_book")]
    operations = [migrations.AddField("book", "note", models.CharField(max_length=50, null=True))]
""",
    # empty, unless MATRIX_FAIL: a NOT NULL column without a default on a table with a row (SQLSTATE 23502)
    "0004_isbn": """\
import os

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shelf", "0003_book_note")]
    operations = [migrations.AddField("book", "isbn", models.IntegerField())] if os.environ.get("MATRIX_FAIL") else []
""",
    "0005_after": """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shelf", "0004_isbn")]
    operations = []
""",
}
# smart-deploy's statement log before issue 20: mogrify() on the statement's own cursor, after execute()
OLD_STATEMENT_TEXT = """
def statement_text(sql, params, many, context):
    if params is None or many:
        return sql
    try:
        text = context["cursor"].cursor.mogrify(sql, params)
        return text.decode() if isinstance(text, bytes) else text
    except Exception:
        return sql


"""


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# A venv per cell, from PyPI, cached under .cache/driver-matrix/ by its Python and requirements
# --------------------------------------------------------------------------------------------------


def find_python(minors) -> Path | None:
    """A CPython of one of ``minors`` ("3.12"...) that runs: on PATH, else pyenv's; None when there is none."""
    for minor in minors:
        candidates = [shutil.which("python%s" % minor)]
        candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (minor, minor))), reverse=True)
        for candidate in filter(None, candidates):  # a pyenv shim is on PATH for versions pyenv does not select: it fails
            if run([candidate, "-c", "import venv"]).returncode == 0:
                return Path(candidate)
    return None


def cell_python(version: str, client: str) -> Path:
    """The python of the cell's venv, made once (Django ``version``, the ``client`` driver, dj-database-url and
    django-environ) and kept; skips when no Python fits or PyPI cannot be reached."""
    spec, minors = DJANGO[version]
    base = find_python(minors)
    if base is None:
        pytest.skip("Django %s needs Python %s: none found on PATH or under ~/.pyenv/versions" % (version, " or ".join(minors)))
    full_version = run([str(base), "-c", "import sys; print(sys.version.split()[0])"]).stdout.strip()
    requirements = [spec, DRIVERS[client], *COMMON]
    key = hashlib.sha256(json.dumps([full_version, requirements]).encode()).hexdigest()[:12]
    venv = CACHE / ("django%s-%s-py%s-%s" % (version, client, full_version, key))
    python = venv / "bin" / "python"
    if (venv / ".ready").exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:  # two runs at once build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".ready").exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # what a run killed while building left
        made = run([str(base), "-m", "venv", str(venv)])
        assert made.returncode == 0, made.stderr
        pip = run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--timeout", "30", *requirements],
                  timeout=900)  # fmt: skip
        if pip.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            output = pip.stdout + pip.stderr
            if any(sign in output for sign in NO_NETWORK):
                pytest.skip("pip cannot reach the package index for %s: %s" % (requirements, output.strip()[-300:]))
            pytest.fail("pip could not install %s: %s" % (requirements, output[-2000:]))
        (venv / ".ready").write_text("\n".join(requirements) + "\n")
    return python


# --------------------------------------------------------------------------------------------------
# A throwaway PostgreSQL 15 on a free loopback port
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():
    """PostgreSQL 15 from the host's binaries, in a temporary cluster (in /dev/shm when there is one) on a free loopback
    port, stopped and removed at the end. initdb refuses root: as root, the cluster belongs to the 'postgres' system user
    (else 'nobody') and its commands run as that user (runuser). Yields (port, psql), psql(sql, database) running SQL as
    the cluster's superuser."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15's binaries are not in %s" % PG_BIN)
    memory = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None  # no disk to wait for
    top = Path(tempfile.mkdtemp(prefix="sd-driver-matrix-pg-", dir=memory))
    as_user = []
    if os.geteuid() == 0:
        owner = next((name for name in ("postgres", "nobody") if _user_exists(name)), None)
        assert owner, "initdb refuses root and neither a 'postgres' nor a 'nobody' user exists"
        os.chown(top, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
        as_user = ["runuser", "-u", owner, "--"]
    port, data = free_port(), top / "data"
    superuser_pw = "matrix-superuser"
    (top / "pw").write_text(superuser_pw)
    if as_user:
        os.chown(top / "pw", pwd.getpwnam(as_user[2]).pw_uid, -1)
    try:
        made = run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(top / "pw"), "-A", "scram-sha-256",
                    "-E", "UTF8", "--no-sync"])  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        options = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" % (port, top)
        started = run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(top / "log"), "-w", "start"], timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr + (top / "log").read_text()

        def psql(sql, database="postgres"):
            result = run([str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                          "-d", database, "-c", sql], env=dict(os.environ, PGPASSWORD=superuser_pw))  # fmt: skip
            assert result.returncode == 0, result.stderr
            return result.stdout.strip()

        psql("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (ROLE, ROLE_PASSWORD))
        yield port, psql
    finally:
        run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], timeout=60)
        shutil.rmtree(top, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# --------------------------------------------------------------------------------------------------
# The app, and the driver run as smart-deploy's modules run it
# --------------------------------------------------------------------------------------------------


def write_project(root: Path) -> Path:
    files = {"manage.py": MANAGE_PY, "matrixsite/__init__.py": "", "matrixsite/settings.py": SETTINGS, "matrixsite/urls.py": URLS,
             "shelf/__init__.py": "", "shelf/models.py": MODELS, "shelf/tests.py": TESTS, "shelf/migrations/__init__.py": ""}  # fmt: skip
    files.update({"shelf/migrations/%s.py" % name: text for name, text in MIGRATIONS.items()})
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


class Cell:
    """One Django and one database client: the project, the driver as a file, and the driver's runs."""

    def __init__(self, version, client, python, tmp_path, port, psql):
        self.version, self.client, self.python, self.port, self.psql = version, client, python, port, psql
        self.tmp = tmp_path
        self.project = write_project(tmp_path / "project")
        self.driver = tmp_path / "driver.py"  # what the modules copy into the one-off container
        self.driver.write_text(Path(driver.__file__).read_text())
        self.prefix = "m%s_%s" % (version.replace(".", ""), client)
        self.placeholders = filters.smart_deploy_placeholders(SECRETS)
        self.base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
                     "SMART_DEPLOY_PROJECT_DIR": str(self.project)}  # fmt: skip

    def database(self, suffix):
        name = "%s_%s" % (self.prefix, suffix)
        self.psql("CREATE DATABASE %s OWNER %s" % (name, ROLE))
        return name

    def on(self, name):
        """SMART_DEPLOY_DB_* of a database on the test server (what Scratch.env and the owner env give)."""
        return driver_db_env("127.0.0.1", self.port, name, ROLE, ROLE_PASSWORD)

    def offline(self, name, **extra):
        """The analysis', the rehearsal's, the tests' and dev's environment: placeholders, never a secret."""
        return dict(self.base, **self.placeholders, **name, **extra)

    def production(self, name, **extra):
        """The production apply's and reverse's environment: the app's real secrets (the canaries)."""
        return dict(self.base, **SECRETS, **name, **extra)

    def run(self, command, env, data=None, source=None, timeout=300):
        """``python driver.py <command>`` in the project folder; (result, output, exit status)."""
        driver_file = self.driver
        if source is not None:
            driver_file = self.tmp / ("driver-%s.py" % command)
            driver_file.write_text(source)
        (self.tmp / "input.json").write_text(json.dumps(data or {}))
        env = dict(env, SMART_DEPLOY_INPUT=str(self.tmp / "input.json"))
        done = run([str(self.python), str(driver_file), command], cwd=self.project, env=env, timeout=timeout)
        output = done.stdout + done.stderr
        assert driver.RESULT_MARK in done.stdout, output[-4000:]
        result = json.loads(done.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
        assert ROLE_PASSWORD not in output
        return result, output, done.returncode

    def manage(self, env, *args, timeout=300):
        return run([str(self.python), str(self.driver), "manage", *args], cwd=self.project, env=env, timeout=timeout)


@pytest.fixture(params=CELLS, ids=["django%s-%s" % cell for cell in CELLS])
def cell(request, tmp_path, postgres):
    version, client = request.param
    python = cell_python(version, client)
    port, psql = postgres
    return Cell(version, client, python, tmp_path, port, psql)


def outcomes(result):
    return {m["migration"]: m["outcome"] for m in result["migrations"]}


def no_canary(text):
    assert "canary" not in text, text[-3000:]


def test_every_path_runs_on_this_django_and_database_client(cell):
    """analyze, rehearse, test, apply, reverse and manage (migrate, runserver) - the settings module found in manage.py,
    DATABASE_URL and the other URL secrets replaced by placeholders the settings accept, pointed at the database the
    driver points Django at; nothing of a secret but its scheme in an offline path."""
    assert not any("canary" in value for value in cell.placeholders.values())
    version_check = run([str(cell.python), "-c", "import django, sys; print(django.get_version()); "
                         "from django.db.backends.postgresql.psycopg_any import is_psycopg3; print(is_psycopg3)"])  # fmt: skip
    django_version, is_psycopg3 = version_check.stdout.split()
    assert django_version.startswith(cell.version + ".") and is_psycopg3 == str(cell.client == "psycopg3"), version_check

    # the offline analysis: no host, no password, a model change without a migration whose SQL needs a quoted default
    analysis, output, status = cell.run("analyze", cell.offline(driver_db_env("", "", "shop", "shop", ""), MATRIX_MISSING="1"),
                                        {"applied": []})  # fmt: skip
    no_canary(output)
    assert status == 0 and analysis["ok"], analysis
    assert [m["migration"] for m in analysis["pending"]] == PLAN and analysis["errors"] == []
    missing = analysis["missing_migrations"]
    assert [m["kind"] for m in missing] == ["sql"], missing
    assert any("DEFAULT 'no subtitle'" in sql for sql in missing[0]["sql"]), missing  # quoted offline, by psycopg's own quoting

    # the rehearsal on a copy: every migration applied, each statement logged with its parameters merged
    copy = cell.database("copy")
    rehearsal, output, status = cell.run("rehearse", cell.offline(cell.on(copy)), {"descriptions": analysis["pending"],
                                         "expected_plan": PLAN, "missing_migrations": True})  # fmt: skip
    no_canary(output)
    assert status == 0 and rehearsal["ok"] and rehearsal["errors"] == [], rehearsal
    assert set(outcomes(rehearsal).values()) == {"applied"} and rehearsal["post_check"]["ok"], rehearsal
    assert rehearsal["database"]["name"] == copy
    statements = [s["sql"] for m in rehearsal["migrations"] if m["migration"] == "shelf.0002_first_book" for s in m["statements"]]
    assert any(s.startswith('INSERT INTO "shelf_book"') and "'First'" in s and "320" in s for s in statements), statements
    assert "UPDATE shelf_book SET pages = pages + 1 WHERE title = 'First'" in statements, statements
    assert rehearsal["missing_migrations"] == [], rehearsal["missing_migrations"]  # MATRIX_MISSING is not set here
    assert decide({"pending": analysis["pending"], "copy": {"skipped": False}, **rehearsal})["strategy"] == "normal"

    # the app's tests, on a test database the runner makes next to the one chosen
    tests, output, status = cell.run("test", cell.offline(cell.on(cell.database("tests"))), {"args": ["--noinput", "shelf"]})
    no_canary(output)
    assert status == 0 and tests["passed"] and tests["counts"]["tests"] == 2 and tests["counts"]["failures"] == 0, output[-3000:]

    # production: the real secrets (the settings parse them, the driver points Django at the database chosen)
    prod = cell.database("prod")
    applied, output, status = cell.run("apply", cell.production(cell.on(prod)), {"expected_plan": PLAN, "advisory_key": 7})
    assert status == 0 and applied["ok"] and applied["applied"] == PLAN and applied["check"]["ok"], applied
    assert cell.psql("SELECT title FROM shelf_book", prod) == "First"
    last = ["shelf.0003_book_note", "shelf.0004_isbn", "shelf.0005_after"]
    reversed_, output, status = cell.run("reverse", cell.production(cell.on(prod)),
                                         {"applied": last, "applied_before": PLAN[:4], "advisory_key": 7})  # fmt: skip
    assert status == 0 and reversed_["ok"] and reversed_["safe"], reversed_
    assert sorted(reversed_["reversed"]) == sorted(last)
    columns = cell.psql("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns "
                        "WHERE table_name = 'shelf_book'", prod)  # fmt: skip
    assert columns == "id,pages,title", columns  # 0003's column went with it

    # ./deploy dev: manage migrate, then the server answering from the dev database
    dev = cell.database("dev")
    dev_env = cell.offline(cell.on(dev), PYTHONUNBUFFERED="1")
    migrated = cell.manage(dev_env, "migrate", "--noinput")
    no_canary(migrated.stdout + migrated.stderr)
    assert migrated.returncode == 0 and "Applying shelf.0002_first_book... OK" in migrated.stdout, migrated.stdout + migrated.stderr
    http = free_port()
    log = cell.tmp / "runserver.log"
    with open(log, "w") as out:
        server = subprocess.Popen([str(cell.python), str(cell.driver), "manage", "runserver", "--noreload", "127.0.0.1:%d" % http],
                                  cwd=cell.project, env=dev_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        answer, deadline = None, time.monotonic() + 60
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/books/" % http, timeout=5) as response:
                    answer = json.load(response)
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        assert answer == {"books": 1, "database": dev}, log.read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    no_canary(log.read_text())


def test_a_failing_migration_is_the_apps_with_its_sqlstate_and_the_rest_counted(cell):
    """A NOT NULL column without a default on a table with a row: SQLSTATE 23502 from either client, the app's failure,
    the rows counted, the migration after it counted as not reached; the verdict's message offers the override."""
    fails = cell.database("fails")
    rehearsal, output, status = cell.run("rehearse", cell.offline(cell.on(fails), MATRIX_FAIL="1"), {"expected_plan": PLAN})
    assert status == 0 and rehearsal["ok"], output[-3000:]
    failed = next(m for m in rehearsal["migrations"] if m["outcome"] == "failed")
    assert failed["migration"] == "shelf.0004_isbn" and outcomes(rehearsal)["shelf.0005_after"] == "not reached"
    assert failed["error"]["sqlstate"] == "23502" and failed["error"]["origin"] == "app", failed["error"]
    assert "traceback" not in failed["error"]
    assert failed["offending_rows"] == [{"table": "shelf_book", "column": "isbn", "rows_without_value": 1}]
    verdict = decide({"pending": [{"migration": key} for key in PLAN], "copy": {"skipped": False}, **rehearsal})
    assert [r["code"] for r in verdict["abort_reasons"]] == ["rows-without-value"] and not verdict["defect"]
    assert "; 1 more migration was not reached: shelf.0005_after" in verdict["reasons"][0]
    assert "-e smart_deploy_accept=rows-without-value" in verdict["abort_message"]


def identify(cell, env):
    """``python - identify`` in the project folder, the driver's text on stdin - what django_database_check runs in the
    release's container with docker exec; (result, output)."""
    done = run([str(cell.python), "-", "identify", "--project-dir", str(cell.project)], cwd=cell.project, env=env,
               input=cell.driver.read_text(), timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert driver.RESULT_MARK in done.stdout and done.returncode == 0, output[-4000:]
    return json.loads(done.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0]), output


def test_identify_says_which_database_the_apps_own_settings_reach(cell):
    """issue 24: the driver's identify, with the app's own settings (DATABASE_URL through dj-database-url, a second alias
    through django-environ) and never the SMART_DEPLOY_DB_* override: every alias without its password, and the server's
    own answer for the default one - the same as smart-deploy's own connection reads of that database, so compare() says
    it is the database migrated; SQLite and a server that does not answer are named as such."""
    prod = cell.database("served")
    oid = cell.psql("SELECT oid FROM pg_database WHERE datname = '%s'" % prod)
    # what smart-deploy's own connection (the server's superuser, psql) reads of the database it migrated
    migrated = {"name": prod, "host": "127.0.0.1", "port": cell.port, "identity": json.loads(cell.psql(driver.IDENTITY_SQL, prod))}
    migrated["identity"]["system_identifier"] = cell.psql(driver.SYSTEM_ID_SQL)
    url = "postgres://%s:%s@127.0.0.1:%d/%s" % (ROLE, urllib.parse.quote(ROLE_PASSWORD, safe=""), cell.port, prod)
    replica = "postgresql://reader:canary-replica-pw@replica.invalid:5433/reporting"
    # an override pointing elsewhere is in the environment: identify must not apply it (the app serves without it)
    env = dict(cell.base, **SECRETS, **driver_db_env("127.0.0.1", cell.port, "postgres", ROLE, "override-pw"))
    env.update(DATABASE_URL=url, REPLICA_DATABASE_URL=replica, MATRIX_REPLICA_ALIAS="1")
    result, output = identify(cell, env)
    assert ROLE_PASSWORD not in output and urllib.parse.quote(ROLE_PASSWORD, safe="") not in output and "canary-replica-pw" not in output
    default = result["databases"]["default"]
    assert (default["vendor"], default["host"], default["port"], default["name"], default["user"]) == (
        "PostgreSQL", "127.0.0.1", str(cell.port), prod, ROLE), result  # fmt: skip
    assert result["databases"]["replica"]["host"] == "replica.invalid" and result["databases"]["replica"]["name"] == "reporting"
    assert result["identity"]["database"] == prod and result["identity"]["oid"] == oid and result["identity"]["user"] == ROLE
    assert result["identity"]["system_identifier"] == migrated["identity"]["system_identifier"]
    verdict = compare(migrated, result, "matrix")
    assert verdict.same and verdict.database["others"]["replica"]["name"] == "reporting", verdict
    assert "other aliases: replica the PostgreSQL database reporting on replica.invalid:5433 as reader" in verdict.database["summary"]

    # the same settings falling back to SQLite (DATABASE_URL pointing at a file): named as such, no connection tried
    result, _output = identify(cell, dict(env, DATABASE_URL="sqlite:///%s/db.sqlite3" % cell.tmp))
    assert result["databases"]["default"]["vendor"] == "SQLite" and "identity" not in result, result
    verdict = compare(migrated, result, "matrix")
    assert not verdict.same and "the release's settings use SQLite (%s/db.sqlite3), not the PostgreSQL database %s on 127.0.0.1:%d " \
        "that smart-deploy migrated" % (cell.tmp, prod, cell.port) in verdict.message, verdict.message  # fmt: skip

    # a server that does not answer: what was tried, and why it failed
    closed = free_port()
    result, output = identify(cell, dict(env, DATABASE_URL=url.replace(":%d/" % cell.port, ":%d/" % closed)))
    assert "connection" in result["connect_error"].lower() and ROLE_PASSWORD not in output, result
    verdict = compare(migrated, result, "matrix")
    assert "cannot reach the database their settings name, the PostgreSQL database %s on 127.0.0.1:%d as %s" % (prod, closed, ROLE) \
        in verdict.message, verdict.message  # fmt: skip

    # another database of the same server: the server's own answer tells them apart
    other = cell.database("other")
    result, _output = identify(cell, dict(env, DATABASE_URL=url.replace("/" + prod, "/" + other)))
    verdict = compare(migrated, result, "matrix")
    assert not verdict.same and "which is another database on the same server (%s, oid" % other in verdict.message, verdict.message


@pytest.mark.parametrize("cell", [cell for cell in CELLS if cell[1] == "psycopg3"], indirect=True,
                         ids=["django%s-psycopg3" % version for version, _client in CELLS if _client == "psycopg3"])  # fmt: skip
def test_the_old_statement_log_breaks_psycopg3_and_the_verdict_calls_it_smart_deploys_defect(cell):
    """smart-deploy's statement log before issue 20 (cursor.mogrify() after execute()) on psycopg 3: the very first
    migration fails without a SQLSTATE. The driver says it is smart-deploy's failure, with its traceback; the verdict's
    code is smart-deploy-defect, which no smart_deploy_accept takes, and the message says so instead of offering one."""
    source = cell.driver.read_text().replace('\nif __name__ == "__main__":', OLD_STATEMENT_TEXT + 'if __name__ == "__main__":')
    rehearsal, output, _status = cell.run("rehearse", cell.offline(cell.on(cell.database("old"))), {"expected_plan": PLAN}, source=source)
    assert rehearsal["ok"], output[-3000:]
    failed = next(m for m in rehearsal["migrations"] if m["outcome"] == "failed")
    assert failed["error"]["sqlstate"] is None and failed["error"]["origin"] == "smart-deploy", failed["error"]
    assert "Traceback" in failed["error"]["traceback"], failed["error"]
    report = {"pending": [{"migration": key} for key in PLAN], "copy": {"skipped": False}, **rehearsal}
    verdict = decide(report, accept=["migration-failed", "rehearsal-failed", "migration-not-applied", DEFECT_CODE])
    assert verdict["strategy"] == "abort" and verdict["defect"], verdict
    assert [r["code"] for r in verdict["abort_reasons"]] == [DEFECT_CODE] and verdict["accepted"] == []
    assert "more migrations were not reached" in verdict["reasons"][0] and len(verdict["reasons"]) == 1
    assert "defect of smart-deploy" in verdict["abort_message"] and "smart_deploy_accept=" not in verdict["abort_message"]


if __name__ == "__main__":  # pragma: no cover - `python tests/unit/test_driver_matrix.py` builds the venvs only
    for version, client in CELLS:
        print(version, client, cell_python(version, client))
    sys.exit(0)
