"""A fleet of real SSH targets for one test module: app hosts, a database host and a load balancer host, each a
container of the one image bootstrap/images/ssh-host, reached by ``ansible_connection: ssh`` as ``deploy`` with a
key pair made for the run, host keys checked against a known_hosts file written here.

Topology (README "Testing against a fleet over SSH"): every container runs with ``--network host``; each sshd
listens on its own loopback address, port 2222. With net N (0-255, one per fleet running at the same time):

    app1 127.0.N.11   app2 127.0.N.12   app3 127.0.N.13   db1 127.0.N.21   lb1 127.0.N.31

App hosts drive the machine's Docker engine through a mounted /var/run/docker.sock under host-scoped names
(``smart_deploy_scope: shop-app1``); each one's state folder is a machine folder mounted at the same path inside it,
so bind mounts the engine is given name real paths. The database host runs PostgreSQL 15 natively, listening on its
own address and on the Docker bridge's gateway (containers reach it as host.docker.internal). The load balancer host
has HAProxy (the lb role starts it).

A net is held by an exclusive lock on /tmp/sdfleet-net-<N>.lock for the fleet's lifetime: parallel pytest workers
(and other sessions on the machine) never share addresses; containers left labelled with a net whose lock is free
are leftovers of a run that died, removed before the net is used again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

VENV_BIN = Path(os.environ.get("SMART_DEPLOY_VENV", ROOT / ".venv")) / "bin"
IMAGE = "smart-deploy/ssh-host:bookworm"
IMAGE_DIR = ROOT / "bootstrap" / "images" / "ssh-host"
LABEL = "smart-deploy.fleet"  # value: the run id; every container of a fleet carries it
NET_LABEL = "smart-deploy.fleet.net"
SSH_PORT = 2222
HTTP_PORT = 8080
PG_PORT = 5433
LAST_OCTET = {"app1": 11, "app2": 12, "app3": 13, "db1": 21, "lb1": 31}
LOCK_DIR = Path(os.environ.get("SMART_DEPLOY_FLEET_LOCK_DIR", "/tmp"))


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def docker(*args: str, check: bool = True) -> str:
    result = run(["docker", *args])
    if check and result.returncode != 0:
        raise RuntimeError("docker %s failed: %s" % (" ".join(args[:3]), result.stderr.strip()[-2000:]))
    return result.stdout.strip()


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool = True):
    """An exclusive fcntl lock on ``path``: released when the holder closes it or dies. Yields False when
    ``blocking`` is off and another process holds it."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_image() -> float:
    """Build the SSH host image (Docker's build cache makes a second build a no-op); one build at a time on
    the machine. Returns the seconds it took."""
    started = time.monotonic()
    with file_lock(LOCK_DIR / "sdfleet-image.lock"):
        result = run(["docker", "build", "-q", "-t", IMAGE, str(IMAGE_DIR)])
    if result.returncode != 0:
        raise RuntimeError("building %s failed:\n%s" % (IMAGE, (result.stdout + result.stderr)[-4000:]))
    return time.monotonic() - started


def worker_index() -> int:
    """0 for a run without xdist, N for xdist's worker gwN."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def bridge_gateway() -> str:
    """The default bridge's gateway: what Docker's host-gateway (host.docker.internal) resolves to."""
    return docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}", check=False) or "172.17.0.1"


class Fleet:
    """SSH targets for one test module. ``net`` picks the addresses (127.0.<net>.x) and the database port on the
    Docker bridge (5433 + net: the gateway address is shared by every fleet); ``app_hosts`` is 2 or 3."""

    def __init__(self, workdir: Path, net: int = 0, app_hosts: int = 2, app: str = "shop"):
        if not 0 <= net <= 255:
            raise ValueError("net must be 0-255, got %r" % net)
        if app_hosts not in (1, 2, 3):
            raise ValueError("app_hosts must be 1, 2 or 3, got %r" % app_hosts)
        self.net = net
        self.app = app
        self.run_id = "%d%s" % (net, secrets.token_hex(3))
        self.prefix = "sdfleet-%s" % self.run_id
        self.workdir = Path(workdir)
        self.state_root = Path("/srv") / self.prefix
        self.hosts = {name: "127.0.%d.%d" % (net, LAST_OCTET[name]) for name in ["app1", "app2", "app3"][:app_hosts] + ["db1", "lb1"]}
        self.app_hosts = [h for h in self.hosts if h.startswith("app")]
        self.pg_port = PG_PORT + net
        self.pg_user = "fleet_admin"
        self.pg_password = "Fleet/pw@%s" % secrets.token_hex(8)
        self.key = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.inventory = self.workdir / "inventory"
        # SSH control sockets: a short path of their own (a unix socket's path is at most 107 bytes)
        self.control_root = Path("/tmp") / (self.prefix + "-cp")
        self.timings: dict = {}

    # --- names ----------------------------------------------------------------------------------
    def container(self, host: str) -> str:
        return "%s-%s" % (self.prefix, host)

    def scope(self, host: str) -> str:
        """The prefix of every container, network, volume and image the app host makes on the engine."""
        return "%s-%s-%s" % (self.app, self.run_id, host)

    def state_dir(self, host: str) -> Path:
        return self.state_root / host

    @property
    def lb_address(self) -> str:
        return self.hosts["lb1"]

    # --- life -----------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        started = time.monotonic()
        self.timings["image_build_s"] = build_image()
        self.remove_leftovers()
        self.check_free()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key.unlink(missing_ok=True)
        made = run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "smart-deploy-fleet-%s" % self.run_id, "-f", str(self.key)])
        assert made.returncode == 0, made.stderr
        public_key = self.key.with_suffix(".pub").read_text().strip()
        gateway = bridge_gateway()
        for host in self.hosts:
            if host in self.app_hosts:
                # the state folder belongs to deploy (uid 1000 in the image): no become needed for it
                self.state_dir(host).mkdir(parents=True, exist_ok=True)
                os.chown(self.state_dir(host), 1000, 1000)
            options, env = self.container_options(host, public_key, gateway)
            result = run(["docker", "run", "-d", *options, IMAGE], env=dict(os.environ, **env))
            if result.returncode != 0:
                raise RuntimeError("starting %s failed: %s" % (host, result.stderr.strip()))
        for host in self.hosts:
            self.wait_for_ssh(host, timeout)
        self.write_known_hosts()
        self.write_inventory()
        self.timings["fleet_start_s"] = time.monotonic() - started

    def container_options(self, host: str, public_key: str, gateway: str) -> tuple:
        """``docker run`` options of one host's container, and the environment they pass on by name (values
        never on a command line: the database password among them)."""
        env = {
            "SMART_DEPLOY_SSH_LISTEN": self.hosts[host],
            "SMART_DEPLOY_SSH_PORT": str(SSH_PORT),
            "SMART_DEPLOY_AUTHORIZED_KEY": public_key,
            "SMART_DEPLOY_HOST_ROLE": host.rstrip("0123456789"),  # app, db, lb
        }
        volumes = []
        if host in self.app_hosts:
            # the machine's engine, and the state folder at the same path as on the machine
            volumes = ["/var/run/docker.sock:/var/run/docker.sock", "%s:%s" % (self.state_dir(host), self.state_dir(host))]
        elif host == "db1":
            env |= {
                "SMART_DEPLOY_PG_USER": self.pg_user,
                "SMART_DEPLOY_PG_PASSWORD": self.pg_password,
                "SMART_DEPLOY_PG_PORT": str(self.pg_port),
                "SMART_DEPLOY_PG_LISTEN": "%s,%s" % (self.hosts[host], gateway),
            }
        labels = ["%s=%s" % (LABEL, self.run_id), "%s=%d" % (NET_LABEL, self.net)]
        options = ["--name", self.container(host), "--hostname", host, "--network", "host"]
        options += [o for label in labels for o in ("--label", label)]
        options += [o for volume in volumes for o in ("-v", volume)]
        options += [o for name in env for o in ("-e", name)]
        return options, env

    def check_free(self) -> None:
        """Nothing else listens where this fleet will (a clear error instead of a fleet that reaches the wrong hosts)."""
        wanted = [(a, SSH_PORT) for a in self.hosts.values()] + [(self.hosts[h], HTTP_PORT) for h in self.app_hosts + ["lb1"]]
        wanted += [(self.hosts["db1"], self.pg_port), (bridge_gateway(), self.pg_port)]
        busy = [f"{a}:{p}" for a, p in wanted if listening(a, p)]
        if busy:
            raise RuntimeError(
                "fleet net %d: something already listens on %s (another fleet? pick another net)" % (self.net, ", ".join(busy))
            )

    def wait_for_ssh(self, host: str, timeout: float = 60) -> None:
        """Until the host's sshd sends its banner (and, for the database host, PostgreSQL answers: the entrypoint
        starts it before sshd)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.hosts[host], SSH_PORT), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
            state = docker("inspect", "-f", "{{.State.Status}}", self.container(host), check=False)
            if state not in ("running", "created"):
                raise RuntimeError("%s stopped (%s): %s" % (host, state, self.logs(host)))
            time.sleep(0.2)
        raise RuntimeError("%s: sshd did not answer on %s:%d within %ds: %s" % (host, self.hosts[host], SSH_PORT, timeout, self.logs(host)))

    def logs(self, host: str) -> str:
        result = run(["docker", "logs", "--tail", "30", self.container(host)])
        return (result.stdout + result.stderr).strip()

    def host_public_key(self, host: str) -> str:
        """The host's public host key (``ssh-ed25519 AAAA...``), read over the trusted channel (docker exec), never over SSH."""
        return " ".join(docker("exec", self.container(host), "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2])

    def write_known_hosts(self) -> None:
        lines = ["[%s]:%d %s" % (self.hosts[h], SSH_PORT, self.host_public_key(h)) for h in self.hosts]
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def ssh_common_args(self, known_hosts: Path | None = None) -> str:
        return "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes" % (
            known_hosts or self.known_hosts
        )

    def inventory_data(self, known_hosts: Path | None = None, control_path_dir: Path | None = None) -> dict:
        """The inventory: groups app_servers, db_servers and lb; SSH as deploy with the run's key, host keys checked
        against ``known_hosts`` (the fleet's own by default). The SSH connection's control sockets (plain ssh
        keeps a master connection 60 s, ansible.cfg's ssh_args) live in a folder of their own per inventory: a run
        with another known_hosts never rides an earlier run's checked connection."""

        def host_vars(host: str) -> dict:
            values = {"ansible_host": self.hosts[host]}
            if host.startswith("app"):
                values |= {
                    "smart_deploy_scope": self.scope(host),
                    "smart_deploy_state_dir": str(self.state_dir(host)),
                    "smart_deploy_http_bind": self.hosts[host],
                    "smart_deploy_http_port": HTTP_PORT,
                }
            return values

        return {
            "all": {
                "vars": {
                    "ansible_connection": "ssh",
                    "ansible_port": SSH_PORT,
                    "ansible_user": "deploy",
                    # Debian's python3: the one python3-requests is installed for (community.docker needs it)
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": self.ssh_common_args(known_hosts),
                    "ansible_control_path_dir": str(control_path_dir or self.control_root / "0"),
                },
                "children": {
                    "app_servers": {"hosts": {h: host_vars(h) for h in self.app_hosts}},
                    "db_servers": {"hosts": {"db1": host_vars("db1")}},
                    "lb": {"hosts": {"lb1": host_vars("lb1")}},
                },
            }
        }

    def db_vars(self) -> dict:
        """How the app's containers reach the database host's server (smart_deploy_db_mode external)."""
        return {
            "smart_deploy_db_mode": "external",
            "smart_deploy_db_host": "host.docker.internal",
            "smart_deploy_db_port": self.pg_port,
            "smart_deploy_db_user": self.pg_user,
            "smart_deploy_db_password": self.pg_password,
        }

    def write_inventory(self, folder: Path | None = None, known_hosts: Path | None = None) -> Path:
        """<folder>/hosts.yml (hosts, groups, connection) and <folder>/group_vars/all.yml (the database server);
        JSON is YAML. The group_vars file holds the database password: 0600. ``folder`` defaults to the fleet's
        inventory; another folder (with another ``known_hosts``) gets control sockets of its own."""
        folder = folder or self.inventory
        (folder / "group_vars").mkdir(parents=True, exist_ok=True)
        control_dir = None
        if folder != self.inventory:
            self.control_root.mkdir(exist_ok=True)
            control_dir = self.control_root / str(len(list(self.control_root.iterdir())) + 1)
        data = self.inventory_data(known_hosts, control_dir)
        (folder / "hosts.yml").write_text(json.dumps(data, indent=2) + "\n")
        group_vars = folder / "group_vars" / "all.yml"
        group_vars.touch(mode=0o600)
        group_vars.chmod(0o600)
        group_vars.write_text(json.dumps(self.db_vars(), indent=2) + "\n")
        return folder

    # --- use ------------------------------------------------------------------------------------
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, env.get("PATH", "")), ANSIBLE_NOCOLOR="1")
        return env

    def ansible(
        self,
        pattern: str,
        module: str,
        args: str = "",
        *extra: str,
        inventory: Path | None = None,
        strategy: str | None = None,
        timeout: int = 300,
    ) -> subprocess.CompletedProcess:
        """An ad-hoc ansible run from the repository root (its ansible.cfg: the smart_deploy strategy, Mitogen;
        ``strategy="linear"``: Ansible's own ssh connection)."""
        cmd = [
            str(VENV_BIN / "ansible"),
            pattern,
            "-i",
            str(inventory or self.inventory),
            "-m",
            module,
            *(["-a", args] if args else []),
            *extra,
        ]
        env = self.env() | ({"ANSIBLE_STRATEGY": strategy} if strategy else {})
        return run(cmd, cwd=ROOT, env=env, timeout=timeout)

    def playbook(self, playbook: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), playbook, *args]
        return run(cmd, cwd=ROOT, env=self.env(), timeout=timeout)

    def db_query(
        self, sql: str, database: str = "postgres", as_app: bool = False, password: str | None = None
    ) -> subprocess.CompletedProcess:
        """psql (the ssh-host image's) against the database host's server as its superuser: from a throwaway container
        as host.docker.internal (Docker's host-gateway: how the app's containers reach it) when ``as_app``, else
        from the machine on the database host's own address."""
        where = ["--add-host", "host.docker.internal:host-gateway"] if as_app else ["--network", "host"]
        server = "host.docker.internal" if as_app else self.hosts["db1"]
        env = dict(os.environ, PGPASSWORD=self.pg_password if password is None else password, PGCONNECT_TIMEOUT="10")
        cmd = ["docker", "run", "--rm", *where, "-e", "PGPASSWORD", "-e", "PGCONNECT_TIMEOUT", "--entrypoint", "psql", IMAGE]
        cmd += ["-XAtq", "-v", "ON_ERROR_STOP=1", "-h", server, "-p", str(self.pg_port), "-U", self.pg_user, "-d", database, "-c", sql]
        return run(cmd, env=env, timeout=120)

    def ssh_command(self, host: str, *options: str) -> list:
        return [
            "ssh",
            "-p",
            str(SSH_PORT),
            "-i",
            str(self.key),
            "-o",
            "ConnectTimeout=10",
            *shlex.split(self.ssh_common_args()),
            *options,
            "deploy@%s" % self.hosts[host],
        ]

    def ssh(self, host: str, command: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        """Run a shell command on ``host`` over SSH as deploy (host key checked)."""
        result = run([*self.ssh_command(host), command], timeout=timeout)
        if check:
            assert result.returncode == 0, "ssh %s %r failed (%d): %s" % (host, command, result.returncode, result.stderr[-2000:])
        return result

    def stop_host(self, host: str) -> None:
        """SSH dropped: the host's container stops (sshd and everything it runs; what it started on the machine's
        engine keeps running, as an app server's containers would outlive a lost SSH session)."""
        docker("stop", "-t", "2", self.container(host))

    def start_host(self, host: str, timeout: float = 60) -> None:
        """A stopped host back (same host key, same state)."""
        docker("start", self.container(host))
        self.wait_for_ssh(host, timeout)

    # --- cleanup --------------------------------------------------------------------------------
    @staticmethod
    def engine_objects(scope: str) -> dict:
        """What an app host made on the machine's engine under its scope: containers, networks, volumes, images."""

        def named(kind: str, fmt: str = "{{.Name}}") -> list:
            return [n for n in docker(kind, "ls", "--format", fmt, check=False).split() if n.startswith(scope)]

        found = {
            "containers": [n for n in docker("ps", "-a", "--format", "{{.Names}}", check=False).split() if n.startswith(scope)],
            "networks": named("network"),
            "volumes": named("volume"),
            "images": named("image", "{{.Repository}}:{{.Tag}}"),
        }
        return {kind: names for kind, names in found.items() if names}

    def remove(self) -> None:
        for container in docker("ps", "-aq", "--filter", "label=%s=%s" % (LABEL, self.run_id), check=False).split():
            docker("rm", "-f", "-v", container, check=False)
        for host in self.app_hosts:
            self.remove_engine_objects(self.scope(host))
        # root-owned files the app's containers wrote there too: the tests run as root
        shutil.rmtree(self.state_root, ignore_errors=True)
        shutil.rmtree(self.control_root, ignore_errors=True)

    @classmethod
    def remove_engine_objects(cls, scope: str) -> None:
        found = cls.engine_objects(scope)
        # containers first: they hold the networks and volumes
        for kind, command in (
            ("containers", ("rm", "-f", "-v")),
            ("networks", ("network", "rm")),
            ("volumes", ("volume", "rm", "-f")),
            ("images", ("image", "rm", "-f")),
        ):
            if found.get(kind):
                docker(*command, *found[kind], check=False)

    def remove_leftovers(self) -> None:
        """Containers of an earlier fleet on this net (its run died before its teardown: we hold the net's lock),
        with their state folders and engine objects."""
        for line in docker(
            "ps", "-a", "--filter", "label=%s=%d" % (NET_LABEL, self.net), "--format", '{{.Names}} {{.Label "%s"}}' % LABEL, check=False
        ).splitlines():
            name, _, run_id = line.partition(" ")
            if not run_id:
                continue
            docker("rm", "-f", "-v", name, check=False)
            self.remove_engine_objects("%s-%s-" % (self.app, run_id))
            shutil.rmtree(Path("/srv") / ("sdfleet-%s" % run_id), ignore_errors=True)
            shutil.rmtree(Path("/tmp") / ("sdfleet-%s-cp" % run_id), ignore_errors=True)


def listening(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


@contextlib.contextmanager
def hold_net(preferred: int | None = None):
    """A net (0-255) no other fleet on the machine uses, held until the block ends: the preferred one (the xdist
    worker's index by default) when free, else the next free one."""
    first = worker_index() if preferred is None else preferred
    for offset in range(256):
        net = (first + offset) % 256
        with file_lock(LOCK_DIR / ("sdfleet-net-%d.lock" % net), blocking=False) as held:
            if held:
                yield net
                return
    raise RuntimeError("no free fleet net (all 256 locks in %s are held)" % LOCK_DIR)


@contextlib.contextmanager
def fleet_for(workdir: Path, net: int | None = None, app_hosts: int = 2, app: str = "shop"):
    """A started Fleet, removed afterwards (even when starting it failed half-way)."""
    with hold_net(net) as held:
        fleet = Fleet(workdir, net=held, app_hosts=app_hosts, app=app)
        try:
            fleet.start()
            yield fleet
        finally:
            fleet.remove()


def fleet_fixture(app_hosts: int = 2, net: int | None = None, app: str = "shop"):
    """A module-scoped fixture of one Fleet: ``fleet = fleet_fixture(app_hosts=3)`` in a test module."""

    @pytest.fixture(scope="module")
    def fleet(tmp_path_factory):
        with fleet_for(tmp_path_factory.mktemp("fleet"), net=net, app_hosts=app_hosts, app=app) as started:
            yield started

    return fleet
