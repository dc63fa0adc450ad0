"""Integration fixtures: a private copy of the sample shop in its own git repository, deployed with
the real playbooks to the real Docker engine under names, ports and folders of its own, removed
afterwards."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from ansible.module_utils.smart_deploy.pgcatalog import SCHEMA_LINES_SQL

from tests.conftest import ROOT

VENV_BIN = Path(os.environ.get("SMART_DEPLOY_VENV", ROOT / ".venv")) / "bin"


def release_id(sha_or_id: str) -> str:
    """The release id smart-deploy gives a commit (git_release: 12 characters of its sha, more when those would read
    as a number in YAML); an id is returned as it is."""
    from library.git_release import sha_release_id

    return sha_release_id(sha_or_id, 12) if re.fullmatch(r"[0-9a-f]{40}", sha_or_id) else sha_or_id


# The shop's own environment names (examples/shop's settings read them), expressed with smart-deploy's
# variables as in inventories/local: smart-deploy injects no names of its own into the app.
SHOP_ENV = {
    "DJANGO_ALLOWED_HOSTS": "*",
    "POSTGRES_HOST": "{{ smart_deploy_db_host }}",
    "POSTGRES_PORT": "{{ smart_deploy_db_port | string }}",
    "POSTGRES_DB": "{{ smart_deploy_db_name }}",
    "POSTGRES_USER": "{{ smart_deploy_db_app_user }}",
}
SHOP_SECRET_ENV = {
    "POSTGRES_PASSWORD": "{{ smart_deploy_db_app_password }}",
    "DATABASE_URL": "postgres://{{ smart_deploy_db_app_user | smart_deploy_urlquote }}:{{ smart_deploy_db_app_password"
    " | smart_deploy_urlquote }}@{{ smart_deploy_db_host }}:{{ smart_deploy_db_port }}/{{ smart_deploy_db_name | smart_deploy_urlquote }}",
    "DJANGO_SECRET_KEY": "{{ smart_deploy_django_secret_key }}",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


class Deployment:
    """One isolated copy of the shop, deployable with the real playbooks. A subclass deploys another sample
    (``EXAMPLE``, its Django source under ``SRC``) through its own inventory (tests/integration/notes.py)."""

    EXAMPLE = "shop"
    # the folder the sample is copied from: examples/<EXAMPLE> (a trait app of the tests: tests/apps/<EXAMPLE>)
    EXAMPLES = ROOT / "examples"
    SRC = "backend/src"
    PREFIX = "sdt"
    COPY_IGNORE = ("__pycache__",)

    def __init__(self, workdir: Path, app_tests: bool = False):
        self.name = self.PREFIX + secrets.token_hex(3)
        self.workdir = workdir
        self.source = workdir / self.EXAMPLE
        self.state_dir = workdir / "state"
        self.port = free_port()
        # Canary secrets: every run's output and every file smart-deploy writes are searched for them
        # (no_secret_leaks). The password holds the characters a URL must quote.
        token = secrets.token_hex(6)
        self.db_password = "Canary/pw@%s:%s" % (token, secrets.token_hex(4))
        self.secret_key = "CanarySK-%s-%s" % (token, secrets.token_hex(16))
        self.app_secret = "CanaryAS-%s" % token
        shutil.copytree(self.EXAMPLES / self.EXAMPLE, self.source, ignore=shutil.ignore_patterns(*self.COPY_IGNORE))
        self.git("init", "-q")
        self.external_db = None
        self.vars_file = workdir / "vars.json"
        own = {
            "smart_deploy_app_name": self.name,
            "smart_deploy_app_source": str(self.source),
            "smart_deploy_state_dir": str(self.state_dir),
            "smart_deploy_http_port": self.port,
            "smart_deploy_db_password": self.db_password,
            "smart_deploy_django_secret_key": self.secret_key,
            "smart_deploy_actor": "pytest",
        }
        # the app's own test suite runs where a test is about it (test_daily_verbs, test_notes), not on every deploy
        self.vars_file.write_text(json.dumps(own | self.app_vars() | ({} if app_tests else {"smart_deploy_app_tests": False})))

    def app_vars(self) -> dict:
        """What the sample's inventory would say and the embedded default does not: the shop's environment."""
        return {
            "smart_deploy_app_env": SHOP_ENV,
            "smart_deploy_app_secret_env": dict(SHOP_SECRET_ENV, SHOP_PAYMENT_KEY=self.app_secret),
        }

    # --- source ---------------------------------------------------------------------------------
    def git(self, *args) -> str:
        result = run(["git", "-C", str(self.source), "-c", "user.name=pytest", "-c", "user.email=pytest@example.invalid", *args])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def commit(self, message: str) -> str:
        """Commit everything; return the release id smart-deploy will give it."""
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return release_id(self.git("rev-parse", "HEAD"))

    def write(self, relative: str, text: str) -> None:
        path = self.source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def edit(self, relative: str, old: str, new: str) -> None:
        """Replace ``old`` by ``new`` once in a file of the Django source (under ``SRC``)."""
        path = self.source / self.SRC / relative
        text = path.read_text()
        assert old in text, "%s has no %r" % (relative, old)
        path.write_text(text.replace(old, new, 1))

    def add_migration(self, app: str, name: str, body: str) -> None:
        self.write("%s/%s/migrations/%s.py" % (self.SRC, app, name), "from django.db import migrations, models\n\n\n" + body)

    # --- secrets ---------------------------------------------------------------------------------
    def canaries(self) -> list:
        """Every secret of this deployment as it could show up: as given, quoted for a URL, and the owner's
        and the app role's passwords derived from the database password."""
        name = self.name.replace("-", "_")
        derived = [hashlib.sha256(("%s:%s:%s_%s" % (self.db_password, kind, name, kind)).encode()).hexdigest() for kind in ("owner", "app")]
        assert derived[0] == self.owner_password()
        found = [self.db_password, self.secret_key, self.app_secret, *derived, self.redis_password()]
        return found + [urllib.parse.quote(s, safe="") for s in found] + [self.db_password.split("@")[1]]

    def leaks(self, text: str) -> list:
        return [canary for canary in self.canaries() if canary in text]

    def files_written(self) -> list:
        """What smart-deploy writes where people and tools read it: the release history, validation reports,
        backup metadata, JSON run logs, the GitHub step summary."""
        found = [self.state_dir / "releases.json", self.workdir / "step-summary.md"]
        for folder, pattern in (
            (self.state_dir / "validations", "*.json"),
            (self.state_dir / "backups", "*.json"),
            (self.workdir / "logs", "*.json"),
        ):
            found += sorted(folder.glob(pattern)) if folder.is_dir() else []
        return [path for path in found if path.is_file()]

    def assert_no_secret_leaks(self, extra_text: str = "") -> None:
        leaks = {"output": self.leaks(extra_text)} if self.leaks(extra_text) else {}
        for path in self.files_written():
            found = self.leaks(path.read_text(errors="replace"))
            if found:
                leaks[str(path)] = found
        assert not leaks, "secrets leaked: %s" % leaks

    # --- playbooks ------------------------------------------------------------------------------
    def playbook(self, name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """Run a playbook as a user would; whatever it printed must hold none of the deployment's secrets."""
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            PATH="%s:%s" % (VENV_BIN, env.get("PATH", "")),
            SMART_DEPLOY_LOG_DIR=str(self.workdir / "logs"),
            GITHUB_STEP_SUMMARY=str(self.workdir / "step-summary.md"),
            ANSIBLE_NOCOLOR="1",
        )
        cmd = [str(VENV_BIN / "ansible-playbook"), "playbooks/%s.yml" % name, "-e", "@%s" % self.vars_file, *args]
        result = run(cmd, cwd=ROOT, env=env, timeout=timeout)
        leaked = self.leaks(result.stdout + result.stderr)
        assert not leaked, "playbook %s %s printed secrets %s:\n%s" % (
            name,
            " ".join(args),
            leaked,
            (result.stdout + result.stderr)[-6000:],
        )
        return result

    def deploy(self, *args: str) -> subprocess.CompletedProcess:
        return self.playbook("deploy", *args)

    # --- what a user sees -----------------------------------------------------------------------
    def http(self, path: str, method: str = "GET", body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def get_json(self, path: str):
        status, body = self.http(path)
        return status, json.loads(body)

    def psql(self, sql: str) -> str:
        user = self.name.replace("-", "_")
        if self.external_db is not None:  # smart_deploy_db_mode external: the server's own psql, as its superuser
            return self.external_db.psql(sql, database=user)
        result = run(["docker", "exec", "%s-db" % self.name, "psql", "-XAtq", "-U", user, "-d", user, "-c", sql])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def use_external_db(self, server: ExternalPostgres) -> None:
        """Deploy against ``server`` (smart_deploy_db_mode external) instead of a database container: the
        deployment's database superuser and its password are the server's superuser login."""
        self.external_db = server
        values = json.loads(self.vars_file.read_text())
        values.update(server.inventory_vars())
        self.vars_file.write_text(json.dumps(values))

    def snapshot(self) -> dict:
        """Production's schema (every table, column, constraint, index), its rows (a checksum per
        table), its migration history and its databases: equal snapshots mean nothing changed."""
        tables = self.psql(
            "SELECT string_agg(quote_ident(tablename), ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
        ).split()
        rows = {
            table: self.psql("SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t" % table)
            for table in tables
        }
        return {
            "schema": self.psql(SCHEMA_LINES_SQL),
            "rows": rows,
            "databases": self.psql("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database"),
        }

    def scratch_leftovers(self) -> list:
        """Scratch containers, networks and volumes of this app that are still around."""
        label = ["--filter", "label=smart-deploy.app=%s" % self.name, "--filter", "label=smart-deploy.scratch"]
        found = run(["docker", "ps", "-aq", *label]).stdout.split()
        found += run(["docker", "network", "ls", "-q", *label]).stdout.split()
        found += [n for n in run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split() if "scratch" in n and self.name in n]
        return found

    def reset_to(self, commit: str) -> None:
        """Throw away the releases after ``commit`` (a developer reverting a bad change)."""
        self.git("reset", "-q", "--hard", commit)
        self.git("clean", "-qfd", "--exclude=backend/wheels")

    def run_log(self) -> dict:
        """The newest run's JSON run log: summary, recap, every step with its times, seconds per role."""
        logs = sorted((self.workdir / "logs").glob("*.json"), key=lambda p: p.stat().st_mtime)
        return json.loads(logs[-1].read_text())

    def summary(self) -> dict:
        """The summary of the newest run (its JSON run log): what the table at the end of the run shows."""
        return self.run_log()["summary"]

    def validation_reports(self) -> list:
        folder = self.state_dir / "validations"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)]

    def app_password(self) -> str:
        """The app role's password, as smart-deploy derives it from the database password."""
        app = "%s_app" % self.name.replace("-", "_")
        return hashlib.sha256(("%s:app:%s" % (self.db_password, app)).encode()).hexdigest()

    def redis_password(self) -> str:
        """Redis's password (smart_deploy_accessories.redis), as smart-deploy derives it from the database password."""
        return hashlib.sha256(("%s:redis:%s" % (self.db_password, self.name)).encode()).hexdigest()

    def owner_password(self) -> str:
        """The database owner role's password, as smart-deploy derives it from the database password."""
        owner = "%s_owner" % self.name.replace("-", "_")
        return hashlib.sha256(("%s:owner:%s" % (self.db_password, owner)).encode()).hexdigest()

    def run_in(self, container: str, *command: str, as_owner: bool = False) -> str:
        """Run a command in one of the app's containers (what an operator does by hand); ``as_owner``: with
        the database owner role's credentials instead of the app role's (DDL by hand needs them)."""
        owner = ["-e", "POSTGRES_USER=%s_owner" % self.name.replace("-", "_"), "-e", "POSTGRES_PASSWORD=%s" % self.owner_password()]
        result = run(["docker", "exec", *(owner if as_owner else []), container, *command])
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def releases(self) -> dict:
        return json.loads((self.state_dir / "releases.json").read_text())

    def container_state(self, name: str) -> str:
        result = run(["docker", "inspect", "-f", "{{.State.Status}}", name])
        return result.stdout.strip() if result.returncode == 0 else "absent"

    # --- teardown -------------------------------------------------------------------------------
    def destroy(self) -> None:
        try:
            self._remove()
        finally:
            # after whatever the tests did (failures, -v, rollbacks), the files hold no secret either
            self.assert_no_secret_leaks()

    def _remove(self) -> None:
        label = "label=smart-deploy.app=%s" % self.name
        ids = run(["docker", "ps", "-aq", "--filter", label]).stdout.split()
        ids += run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.dev=%s-dev" % self.name]).stdout.split()
        if ids:
            run(["docker", "rm", "-f", *ids])
        for network in ("%s-net" % self.name, "%s-dev-net" % self.name):
            run(["docker", "network", "rm", network])
        # the database's and the dev database's volumes, and the app's named volumes (uploads: <name>-<volume>), which
        # smart-deploy itself never removes
        volumes = {"%s-pgdata" % self.name, "%s-dev-pgdata" % self.name, "%s-redis-data" % self.name}
        volumes.update(v for v in run(["docker", "volume", "ls", "-q"]).stdout.split() if v.startswith(self.name + "-"))
        run(["docker", "volume", "rm", "-f", *sorted(volumes)])
        images = run(["docker", "images", "-q", "--filter", "reference=%s-*" % self.name]).stdout.split()
        if images:
            run(["docker", "rmi", "-f", *sorted(set(images))])


class ExternalPostgres:
    """A PostgreSQL server smart-deploy does not start or own (smart_deploy_db_mode external): a plain
    postgres container started here on the host's network, on a free port of its own, listening on the
    loopback (this test's psql) and on the Docker bridge's address, which containers reach as
    host.docker.internal (Docker's host-gateway). Its superuser is ``user`` with ``password``."""

    IMAGE = "postgres:15-bookworm"

    def __init__(self, name: str, user: str, password: str):
        self.name = name
        self.user = user
        self.password = password
        self.port = free_port()
        gateway = run(["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"]).stdout.strip()
        self.listen = "127.0.0.1," + (gateway or "172.17.0.1")

    def start(self, timeout: int = 60) -> None:
        env = dict(os.environ, POSTGRES_USER=self.user, POSTGRES_PASSWORD=self.password, POSTGRES_DB="postgres")
        started = run(["docker", "run", "-d", "--name", self.name, "--network", "host", "-e", "POSTGRES_USER", "-e", "POSTGRES_PASSWORD",
                       "-e", "POSTGRES_DB", self.IMAGE, "postgres", "-c", "listen_addresses=%s" % self.listen, "-c", "port=%d" % self.port],
                      env=env)  # fmt: skip
        assert started.returncode == 0, started.stderr
        for _ in range(timeout * 4):
            if self.query("SELECT 1", check=False).returncode == 0:
                return
            run(["sleep", "0.25"])
        raise AssertionError("the external PostgreSQL did not start: %s" % run(["docker", "logs", "--tail", "20", self.name]).stderr)

    def query(self, sql: str, database: str = "postgres", check: bool = True) -> subprocess.CompletedProcess:
        # the server's own psql (this machine may have none), over TCP on the loopback as a client would
        env = dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="5")
        result = run(["docker", "exec", "-e", "PGPASSWORD", "-e", "PGCONNECT_TIMEOUT", self.name, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
                      "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql], env=env)  # fmt: skip
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self.query(sql, database).stdout.strip()

    def inventory_vars(self) -> dict:
        return {
            "smart_deploy_db_mode": "external",
            "smart_deploy_db_host": "host.docker.internal",
            "smart_deploy_db_port": self.port,
            "smart_deploy_db_user": self.user,
            "smart_deploy_db_password": self.password,
        }

    def remove(self) -> None:
        run(["docker", "rm", "-f", "-v", self.name])


@contextlib.contextmanager
def external_postgres_for(deployment: Deployment):
    """An external PostgreSQL server for ``deployment``, which is set to use it (before any deploy)."""
    server = ExternalPostgres("%s-extpg" % deployment.name, deployment.name.replace("-", "_"), deployment.db_password)
    try:
        server.start()
        deployment.use_external_db(server)
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def external_postgres(module_deployment):
    """An external PostgreSQL server for the module's deployment, which is set to use it (before any deploy)."""
    with external_postgres_for(module_deployment) as server:
        yield server


def assert_ok(result):
    assert result.returncode == 0, "playbook failed:\n%s\n%s" % (result.stdout[-8000:], result.stderr[-2000:])


def assert_failed(result):
    assert result.returncode != 0, "playbook should have failed:\n%s" % result.stdout[-8000:]


@pytest.fixture(scope="module")
def timings(request):
    """What each step of a module's deployment took (step -> seconds), printed when the module ends."""
    found = {}
    yield found
    if found:
        print("\n%s timings (s): %s" % (request.module.__name__.rsplit(".", 1)[-1], ", ".join("%s %.1f" % item for item in found.items())))


@pytest.fixture(scope="module")
def deployment_kind():
    """What a module's deployment is a copy of: the shop; a module overrides this fixture for another sample
    (test_notes.py: tests/integration/notes.py's Notes)."""
    return Deployment


@pytest.fixture(scope="module")
def module_deployment(deployment_kind, tmp_path_factory):
    """One deployment shared by the tests of a module, in order (each leaves it as the next expects)."""
    deployment = deployment_kind(tmp_path_factory.mktemp("deployment"))
    try:
        yield deployment
    finally:
        deployment.destroy()


@pytest.fixture(scope="module")
def shop(module_deployment):
    """The shop committed as release 1 and deployed: the starting point of most test modules."""
    module_deployment.base = module_deployment.commit("release 1")
    module_deployment.live = release_id(module_deployment.base)
    module_deployment.first_deploy = module_deployment.deploy()  # what the first deploy printed, for tests that read it
    assert_ok(module_deployment.first_deploy)
    return module_deployment


@pytest.fixture
def deployment(tmp_path):
    deployment = Deployment(tmp_path)
    try:
        yield deployment
    finally:
        deployment.destroy()
