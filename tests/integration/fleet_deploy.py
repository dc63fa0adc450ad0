"""The shop deployed to a fleet over SSH (tests/integration/fleet.py): a private copy of examples/shop, like every
other integration test's (conftest.py Deployment), whose playbooks run against the fleet's inventory - app hosts
app1..appN, the database host db1 (PostgreSQL, smart_deploy_db_mode external), the load balancer host lb1.

What is the same on every host goes in the deployment's extra vars (the shop's settings of inventories/local, the
database server, the load balancer, the fleet's one lock on app1); what is a host's own (its address, state folder,
scope of its names on the shared engine) is in the fleet's inventory."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.integration.conftest import Deployment, run
from tests.integration.fleet import HTTP_PORT, Fleet, hold_net

PER_HOST = ("smart_deploy_state_dir", "smart_deploy_http_port", "smart_deploy_http_bind", "smart_deploy_app_source")


class FleetDeployment(Deployment):
    """The shop on ``fleet`` (started by :meth:`attach`)."""

    PREFIX = "sdf"

    def attach(self, fleet: Fleet) -> None:
        self.fleet = fleet
        values = json.loads(self.vars_file.read_text())
        for name in PER_HOST:
            values.pop(name, None)
        shop = yaml.safe_load((ROOT / "inventories" / "local" / "group_vars" / "all" / "app.yml").read_text())
        values = {k: v for k, v in shop.items() if k not in PER_HOST} | values
        values |= fleet.db_vars() | {
            "smart_deploy_app_source": str(self.source),
            "smart_deploy_lock_path": str(fleet.state_dir("app1") / "deploy.lock"),
            "load_balancer_bind": fleet.lb_address,
            "load_balancer_port": HTTP_PORT,
            "load_balancer_dir": "/home/deploy/%s-lb" % self.name,
            # the health gates of a 2-core machine under load: a second between checks, as in production
            "load_balancer_check_interval_ms": 500,
        }
        self.vars_file.write_text(json.dumps(values))

    # --- where things are --------------------------------------------------------------------------
    @property
    def hosts(self) -> list:
        return self.fleet.app_hosts

    def host_state_dir(self, host: str) -> Path:
        return self.fleet.state_dir(host)

    def host_releases(self, host: str) -> dict:
        path = self.host_state_dir(host) / "releases.json"
        return json.loads(path.read_text()) if path.is_file() else {"releases": []}

    def files_written(self) -> list:
        """Every host's release history, validation reports and backup metadata, and the runs' logs."""
        found = super().files_written()
        for host in self.hosts:
            folder = self.host_state_dir(host)
            found += [folder / "releases.json"] if (folder / "releases.json").is_file() else []
            for sub in ("validations", "backups"):
                found += sorted((folder / sub).glob("*.json")) if (folder / sub).is_dir() else []
        return found

    def live(self, host: str) -> str:
        """The release id live on ``host`` by its own history ('' when none)."""
        live = [r for r in self.host_releases(host)["releases"] if r.get("status") == "live"]
        return live[-1]["id"] if live else ""

    # --- playbooks ---------------------------------------------------------------------------------
    def playbook(self, name: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        result = super().playbook(name, "-i", str(self.fleet.inventory), *args, timeout=timeout)
        # the whole output of every run, for whoever reads a failure (assert_ok shows its end only)
        self.runs = getattr(self, "runs", 0) + 1
        log = Path(os.environ.get("SMART_DEPLOY_FLEET_LOG_DIR", self.workdir)) / ("run-%02d-%s.log" % (self.runs, name))
        log.write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
        return result

    # --- what a user sees --------------------------------------------------------------------------
    def http(self, path: str, method: str = "GET", body: dict | None = None, host: str | None = None):
        """A request through the load balancer (``host``: straight to that app host's own proxy)."""
        address = self.fleet.hosts[host] if host else self.fleet.lb_address
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request("http://%s:%d%s" % (address, HTTP_PORT, path), data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def psql(self, sql: str) -> str:
        """A query on the database host's server, as its superuser, in the app's database."""
        result = self.fleet.db_query(sql, database=self.name.replace("-", "_"))
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def lb_state(self) -> dict:
        """How the load balancer sees each app host: {host: {status, sessions, queued}}."""
        folder = "/home/deploy/%s-lb" % self.name
        result = self.fleet.ssh("lb1", "python3 %s/smart-deploy-lb %s/admin.sock state" % (folder, folder))
        return json.loads(result.stdout)


def fleet_deployment(workdir: Path, app_hosts: int = 3):
    """A context manager: a FleetDeployment attached to a started fleet of ``app_hosts`` app hosts, both removed
    afterwards."""
    import contextlib

    @contextlib.contextmanager
    def started():
        (workdir / "app").mkdir(parents=True, exist_ok=True)
        deployment = FleetDeployment(workdir / "app")
        with hold_net() as net:
            fleet = Fleet(workdir / "fleet", net=net, app_hosts=app_hosts, app=deployment.name)
            # the server's superuser is the deployment's database login (its canaries name the derived passwords)
            fleet.pg_user, fleet.pg_password = deployment.name.replace("-", "_"), deployment.db_password
            try:
                fleet.start()
                deployment.attach(fleet)
                yield deployment
            finally:
                try:
                    deployment.destroy()
                finally:
                    fleet.remove()

    return started()


__all__ = ["FleetDeployment", "fleet_deployment", "run"]
