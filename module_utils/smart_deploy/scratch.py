# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scratch PostgreSQL a rehearsal (or the app's test suite) runs against: its own container of the
production database's image, on an internal Docker network of its own (no route to production, nor
anywhere else), within memory, CPU and process limits. Everything is labelled with the app, the run and
its purpose, so what a killed run left behind is found and removed by the next one."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time

from ansible.module_utils.smart_deploy.django_driver import point_placeholders
from ansible.module_utils.smart_deploy.oneoff import Limits, limit_args, parse_size, write_env_file

SCRATCH_LABEL = "smart-deploy.scratch"
APP_LABEL = "smart-deploy.app"
# What the scratch resources are for: a rehearsal copy (django_migration_dryrun) or the app's tests (django_test).
PURPOSE_LABEL = "smart-deploy.purpose"
REHEARSAL = "rehearsal"
# PostgreSQL's shared memory in the scratch container; its memory limit must be above it.
SCRATCH_SHM_SIZE = "256m"
SCRATCH_SHM_BYTES = parse_size(SCRATCH_SHM_SIZE)
# A rehearsal copy is thrown away: durability settings off make the copy faster to load.
SCRATCH_SERVER_ARGS = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


class ScratchError(Exception):
    pass


class Interrupted(BaseException):
    """Raised by the signal handlers so that cleanup code in ``finally`` blocks runs."""


def raise_on_signals():
    """Turn SIGTERM, SIGINT and SIGHUP into an exception (cleanup runs); returns the restore function."""
    previous = {}

    def handler(signum, _frame):
        raise Interrupted("interrupted by signal %d" % signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)

    def restore():
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def run(docker, *args, check=True, **kwargs):
    result = subprocess.run([docker, *args], capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise ScratchError("docker %s failed: %s" % (" ".join(args[:2]), result.stderr.strip()))
    return result


def leftovers(docker, app, run_id=None):
    """Containers and networks of scratch runs of ``app`` (of one run when ``run_id`` is given)."""
    label = "%s=%s" % (SCRATCH_LABEL, run_id) if run_id else SCRATCH_LABEL
    filters = ["--filter", "label=%s=%s" % (APP_LABEL, app), "--filter", "label=%s" % label]
    containers = run(docker, "ps", "-aq", *filters, check=False).stdout.split()
    networks = run(docker, "network", "ls", "-q", *filters, check=False).stdout.split()
    return {"containers": containers, "networks": networks}


def remove(docker, found):
    if found["containers"]:
        run(docker, "rm", "-f", "-v", *found["containers"], check=False)
    for network in found["networks"]:
        run(docker, "network", "rm", network, check=False)


def sweep(docker, app):
    """Remove what earlier scratch runs of ``app`` left behind (a run killed with SIGKILL)."""
    found = leftovers(docker, app)
    remove(docker, found)
    return found


def driver_db_env(host, port, name, user, password):
    """The environment that points the smart-deploy driver at a database (SMART_DEPLOY_DB_*, read by
    django_driver.setup_django(), which overrides the app's settings.DATABASES with them)."""
    return {
        "SMART_DEPLOY_DB_HOST": host,
        "SMART_DEPLOY_DB_PORT": str(port),
        "SMART_DEPLOY_DB_NAME": name,
        "SMART_DEPLOY_DB_USER": user,
        "SMART_DEPLOY_DB_PASSWORD": password,
    }


def docker_root_dir(docker):
    """The folder holding Docker's data (images, containers, volumes) on this host, or None."""
    result = run(docker, "info", "--format", "{{.DockerRootDir}}", check=False)
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def free_bytes(path):
    """Bytes free for unprivileged use on the file system holding ``path``, or None when it cannot be read."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def scratch_limits(params):
    """The scratch database's limits, from the options of args.scratch_database_spec()."""
    return Limits(params.get("scratch_memory") or "", float(params.get("scratch_cpus") or 0), int(params.get("scratch_pids_limit") or 0))


class Scratch:
    """A scratch PostgreSQL of ``app`` for ``purpose``. Every resource carries the labels
    C(smart-deploy.app=<app>) (what sweeps and the cleanup role look for), C(smart-deploy.scratch=<run id>)
    (what this run removes) and C(smart-deploy.purpose=<purpose>); names start with C(<app>-scratch) for a
    rehearsal, C(<app>-<purpose>-scratch) otherwise."""

    def __init__(self, docker, app, image, run_id=None, purpose=REHEARSAL, limits=None):
        self.docker = docker
        self.app = app
        self.image = image
        self.purpose = purpose
        self.limits = limits
        self.run_id = run_id or secrets.token_hex(4)
        prefix = app if purpose == REHEARSAL else "%s-%s" % (app, purpose)
        self.network = "%s-scratch-%s" % (prefix, self.run_id)
        self.container = "%s-scratch-db-%s" % (prefix, self.run_id)
        self.user = "scratch"
        self.password = secrets.token_hex(16)
        self.database = "rehearsal"
        self.labels = {APP_LABEL: app, SCRATCH_LABEL: self.run_id, PURPOSE_LABEL: purpose}

    def label_args(self):
        args = []
        for key, value in sorted(self.labels.items()):
            args += ["--label", "%s=%s" % (key, value)]
        return args

    def run_args(self, env_file, host_cpus=None):
        """The ``docker run`` arguments of the scratch database (after ``docker``)."""
        return ["run", "-d", "--name", self.container, "--network", self.network, "--env-file", env_file,
                "--shm-size", SCRATCH_SHM_SIZE, *limit_args(self.limits, host_cpus), *self.label_args(),
                self.image, "postgres", *SCRATCH_SERVER_ARGS]  # fmt: skip

    def start(self, ready_timeout=90):
        run(self.docker, "network", "create", "--internal", *self.label_args(), self.network)
        with tempfile.TemporaryDirectory(prefix="smart-deploy-scratch-") as tmpdir:
            env_file = os.path.join(tmpdir, "env")
            write_env_file(env_file, {"POSTGRES_USER": self.user, "POSTGRES_PASSWORD": self.password, "POSTGRES_DB": self.database})
            run(self.docker, *self.run_args(env_file, os.cpu_count()))
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            probe = run(self.docker, "exec", self.container, "pg_isready", "-h", "127.0.0.1", "-U", self.user, "-d", self.database,
                        check=False)  # fmt: skip
            if probe.returncode == 0:
                return
            time.sleep(0.3)
        logs = run(self.docker, "logs", "--tail", "20", self.container, check=False)
        raise ScratchError("the scratch database did not start within %d s: %s" % (ready_timeout, logs.stderr[-1000:]))

    def env(self, base_env):
        """The app's environment, pointed at the scratch database: SMART_DEPLOY_DB_* for the driver (which
        overrides the app's DATABASES with them, whatever names its settings read), and POSTGRES_* and
        DATABASE_URL for settings that read those (the shop's); the URL placeholders of the app's secrets
        pointed at it too (the driver would do it, a test command other than Django's does not run the driver)."""
        env = dict(base_env or {})
        env.update(driver_db_env(self.container, "5432", self.database, self.user, self.password))
        env.update(
            POSTGRES_HOST=self.container,
            POSTGRES_PORT="5432",
            POSTGRES_DB=self.database,
            POSTGRES_USER=self.user,
            POSTGRES_PASSWORD=self.password,
            DATABASE_URL="postgres://%s:%s@%s:5432/%s" % (self.user, self.password, self.container, self.database),
        )
        env.update(point_placeholders(env))
        return env

    def disk_bytes(self):
        result = run(self.docker, "exec", self.container, "du", "-sb", "/var/lib/postgresql/data", check=False)
        try:
            return int(result.stdout.split()[0])
        except (IndexError, ValueError):
            return None

    def remove(self):
        remove(self.docker, leftovers(self.docker, self.app, self.run_id))
        return leftovers(self.docker, self.app, self.run_id)
