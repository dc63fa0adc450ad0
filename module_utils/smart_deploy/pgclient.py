# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the app's PostgreSQL server is and how a PostgreSQL client (psql, pg_dump, pg_restore) is run
against it: the one place smart-deploy's modules build those command lines.

Two kinds of server:

- ``container`` (smart-deploy runs PostgreSQL in a container on the target, roles/database): the tools run
  in that container (``docker exec``), over its local socket, so they always match the server.
- ``external`` (an existing server smart-deploy does not own): the tools run in a throwaway container of
  the server's MAJOR version (``postgres:<major>-bookworm`` by default, found on the target like the other
  base images), joined to a Docker network of the app's, connecting over the network with host, port,
  user and sslmode. The password reaches the client as ``PGPASSWORD`` in the docker client's environment
  (``docker run -e PGPASSWORD`` with no value): never on a command line, never in a log. The name
  ``host.docker.internal`` resolves to the target itself (Docker's ``host-gateway``), for a server on the
  target that listens on the Docker bridge's address.

A ``PgServer`` holds one login (user, and its password for an external server): the modules that need
two logins make two.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

DB_MODES = ("container", "external")
DEFAULT_CLIENT_IMAGE = "postgres:{major}-bookworm"
HOST_GATEWAY = "host.docker.internal:host-gateway"
CLIENT_LABEL = "smart-deploy.pgclient"


class PsqlError(Exception):
    pass


def database_spec(required: bool = True) -> dict:
    """Where the app's database server is and the login to use: ``db_mode`` (container | external),
    ``db_container`` (container mode), ``db_host``/``db_port``/``db_sslmode``/``db_password`` (external),
    ``db_name``/``db_user``, ``db_client_image`` and ``db_network`` (external clients).
    Document with C(extends_documentation_fragment: smart_deploy.database)."""
    return dict(
        db_mode=dict(type="str", choices=list(DB_MODES), default="container"),
        db_container=dict(type="str"),
        db_host=dict(type="str"),
        db_port=dict(type="int", default=5432),
        db_sslmode=dict(type="str", default="prefer", choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        db_password=dict(type="str", no_log=True),
        db_name=dict(type="str", required=required),
        db_user=dict(type="str", required=required),
        db_client_image=dict(type="str", default=DEFAULT_CLIENT_IMAGE),
        db_network=dict(type="str"),
    )


def database_problem(params: dict):
    """What is missing for the chosen mode (None when nothing is)."""
    if params.get("db_mode", "container") == "container":
        if not params.get("db_container"):
            return "db_container is required with db_mode=container"
        return None
    missing = [key for key in ("db_host", "db_password") if not params.get(key)]
    if missing:
        return "%s required with db_mode=external (the server's address and the login's password)" % " and ".join(missing)
    if not 0 < int(params.get("db_port") or 0) < 65536:
        return "db_port must be between 1 and 65535, got %r" % params.get("db_port")
    return None


def client_image_pattern(template: str):
    """A regular expression matching the images ``template`` names for any major version (None without {major})."""
    if "{major}" not in template:
        return None
    head, tail = template.split("{major}", 1)
    return re.compile("^%s([0-9]+)%s$" % (re.escape(head), re.escape(tail)))


class PgServer:
    """The app's PostgreSQL server and one login on it."""

    def __init__(self, docker, mode="container", container=None, host=None, port=5432, sslmode="prefer", user=None, password=None,
                 database=None, client_image=DEFAULT_CLIENT_IMAGE, network=None, labels=None):  # fmt: skip
        if mode not in DB_MODES:
            raise PsqlError("unknown database mode %r (container or external)" % mode)
        self.docker = docker
        self.mode = mode
        self.container = container
        self.host = host
        self.port = int(port or 5432)
        self.sslmode = sslmode or "prefer"
        self.user = user
        self.password = password
        self.database = database
        self.client_image = client_image or DEFAULT_CLIENT_IMAGE
        self.network = network
        self.labels = dict(labels or {})
        self._image = None
        self._major = None

    @classmethod
    def from_params(cls, docker, params, user=None, password=None, labels=None):
        """From the options of database_spec() (``user``/``password`` replace db_user/db_password)."""
        return cls(docker, mode=params.get("db_mode") or "container", container=params.get("db_container"), host=params.get("db_host"),
                   port=params.get("db_port"), sslmode=params.get("db_sslmode"), user=user or params.get("db_user"),
                   password=password if password is not None else params.get("db_password"), database=params.get("db_name"),
                   client_image=params.get("db_client_image"), network=params.get("db_network"), labels=labels)  # fmt: skip

    def with_login(self, user, password=None):
        """The same server, another login."""
        other = PgServer(self.docker, self.mode, self.container, self.host, self.port, self.sslmode, user, password, self.database,
                         self.client_image, self.network, self.labels)  # fmt: skip
        other._image, other._major = self._image, self._major
        return other

    @property
    def external(self) -> bool:
        return self.mode == "external"

    def describe(self) -> str:
        if self.external:
            return "server %s:%d" % (self.host, self.port)
        return "container %s" % self.container

    # ---- command lines -------------------------------------------------------------------------
    def environ(self) -> dict:
        """The environment of the docker client process: PGPASSWORD for an external server's client
        container (passed on with ``-e PGPASSWORD``, so never on a command line)."""
        env = dict(os.environ)
        if self.external and self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def client_run_args(self, image, mounts=None) -> list:
        """``docker run`` of a throwaway client container of ``image`` (external mode), before the tool's argv."""
        cmd = [self.docker, "run", "--rm", "-i", "--add-host", HOST_GATEWAY, "--label", "%s=1" % CLIENT_LABEL]
        for key, value in sorted(self.labels.items()):
            cmd += ["--label", "%s=%s" % (key, value)]
        if self.network:
            cmd += ["--network", self.network]
        cmd += ["-e", "PGHOST=%s" % self.host, "-e", "PGPORT=%d" % self.port, "-e", "PGSSLMODE=%s" % self.sslmode,
                "-e", "PGCONNECT_TIMEOUT=10", "-e", "PGPASSWORD"]  # fmt: skip
        for source, target in sorted((mounts or {}).items()):
            cmd += ["-v", "%s:%s:ro" % (source, target)]
        return cmd + ["--entrypoint", "", image]

    def command(self, argv, mounts=None, image=None) -> list:
        """The full command line running ``argv`` (a PostgreSQL client tool and its arguments) against the
        server: ``docker exec -i <container>`` or a throwaway client container. ``mounts`` (host path ->
        path inside) are bind-mounted read-only into an external client; a container server's tools see
        only its own files."""
        if not self.external:
            return [self.docker, "exec", "-i", self.container, *argv]
        return self.client_run_args(image or self.image(), mounts) + list(argv)

    def login_args(self, database=None) -> list:
        args = []
        if self.user:
            args += ["-U", self.user]
        if database or self.database:
            args += ["-d", database or self.database]
        return args

    def run(self, argv, input=None, text=True, mounts=None, image=None):
        """Run ``argv`` against the server; return the CompletedProcess (no exception on failure)."""
        return subprocess.run(self.command(argv, mounts, image), input=input, capture_output=True, text=text, check=False,
                              env=self.environ())  # fmt: skip

    def popen(self, argv, mounts=None, **kwargs):
        return subprocess.Popen(self.command(argv, mounts), env=self.environ(), **kwargs)

    def psql(self, sql: str, database: str = None, image: str = None) -> str:
        """Run ``sql`` (read from stdin, so psql variables work) with ON_ERROR_STOP; return the output."""
        argv = ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", *self.login_args(database)]
        result = self.run(argv, input=sql, image=image)
        if result.returncode != 0:
            raise PsqlError("psql on %s failed: %s" % (self.describe(), result.stderr.strip()))
        return result.stdout.strip()

    # ---- the server's version and the client image --------------------------------------------
    def local_images(self) -> list:
        result = subprocess.run([self.docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True,
                                check=False)  # fmt: skip
        return result.stdout.split() if result.returncode == 0 else []

    def major(self) -> int:
        """The server's major version (SHOW server_version_num // 10000)."""
        if self._major is None:
            if self.external:
                self._major = self._probe_external_major()
            else:
                self._major = int(self.psql("SHOW server_version_num", database=self.database or "postgres")) // 10000
        return self._major

    def _probe_external_major(self) -> int:
        """Ask the server its version with any local client image (psql of any version can), preferring the named one."""
        template = self.client_image
        pattern = client_image_pattern(template)
        images = self.local_images()
        candidates = [template] if pattern is None else sorted((i for i in images if pattern.match(i)), reverse=True)
        if not candidates:
            raise PsqlError("no PostgreSQL client image on this host: no image named like %s (docker image ls); build or pull "
                            "the one of your server's major version (scripts/setup.sh builds postgres:15-bookworm), or set "
                            "smart_deploy_db_client_image" % template)  # fmt: skip
        # the maintenance database: the app's may not exist yet (a first deploy)
        text = self.psql("SHOW server_version_num", database="postgres", image=candidates[0])
        try:
            return int(text) // 10000
        except ValueError:
            raise PsqlError("could not read the version of %s: %r" % (self.describe(), text[:200])) from None

    def image(self) -> str:
        """The client image of the server's major version (external mode); checked to be on this host."""
        if self._image is None:
            template = self.client_image
            image = template.format(major=self.major()) if "{major}" in template else template
            if image not in self.local_images():
                raise PsqlError("%s is PostgreSQL %d: its client tools (pg_dump of the same major version) come from image %s, "
                                "which is not on this host: build or pull it, or set smart_deploy_db_client_image"
                                % (self.describe(), self.major(), image))  # fmt: skip
            self._image = image
        return self._image

    def ready(self) -> bool:
        """The server answers (pg_isready)."""
        return self.probe_ready()[0] == 0

    def probe_ready(self, image: str = None) -> tuple:
        """(exit code, what it said) of pg_isready against the server: 0 accepting connections, 1 rejecting them
        (starting up), 2 no answer, 3 no attempt (bad parameters); a container's over TCP, as the app connects (its
        entrypoint's temporary server of the first start listens on the socket only)."""
        argv = ["pg_isready"] + (["-h", "127.0.0.1"] if not self.external else []) + self.login_args()
        try:
            done = self.run(argv, image=image)
        except PsqlError as exc:
            return 2, str(exc)
        return done.returncode, " ".join((done.stdout + " " + done.stderr).split())

    def driver_env(self, name: str = None) -> dict:
        """SMART_DEPLOY_DB_* for the driver in the app's one-off containers (this login), see scratch.driver_db_env()."""
        env = {
            "SMART_DEPLOY_DB_HOST": self.host if self.external else self.container,
            "SMART_DEPLOY_DB_PORT": str(self.port if self.external else 5432),
            "SMART_DEPLOY_DB_NAME": name or self.database,
            "SMART_DEPLOY_DB_USER": self.user,
            "SMART_DEPLOY_DB_PASSWORD": self.password or "",
        }
        if self.external:
            env["SMART_DEPLOY_DB_SSLMODE"] = self.sslmode
        return env


def wait_ready(probe, timeout: float, interval: float = 1.0, now=time.monotonic, sleep=time.sleep) -> dict:
    """Call ``probe()`` ((exit code, text), as PgServer.probe_ready) until it gives 0 or ``timeout`` seconds passed,
    ``interval`` seconds apart; stop at once on 3 (pg_isready made no attempt: bad parameters). Returns {ready,
    attempts, seconds, code, said} (the last answer)."""
    started = now()
    attempts = 0
    while True:
        attempts += 1
        code, said = probe()
        elapsed = now() - started
        if code == 0 or code == 3 or elapsed + interval > timeout:
            return {"ready": code == 0, "attempts": attempts, "seconds": round(elapsed, 3), "code": code, "said": said}
        sleep(interval)
