#!/usr/bin/env python3
"""Failed requests while a release switches under steady load, smart-deploy's way and the naive way.

    .venv/bin/python bench/zero_downtime.py                  # 5 runs, 150 req/s, all scenarios
    .venv/bin/python bench/zero_downtime.py --runs 1 --rate 60 --scenarios migration,naive

Deploys the sample shop under a name of its own (loopback port, own network), then, for each run and
each scenario, sends steady load (tests/integration/load.py: keep-alive and new-connection GETs, cart
POSTs, a slow request that outlasts the switch; nothing retried) from just before the playbook starts
until it ends, and counts the requests that failed:

- migration: a deploy of a release that adds a nullable column (rehearsal, backup, migrate, switch);
- rollback:  a code-only rollback (rollback.yml) to the release before a code-only deploy;
- proxy:     a deploy where only a proxy setting changed (a hitless reload of HAProxy);
- naive:     the backend container stopped and started again in place (what `docker compose up` of a
             new image, or a stop-then-start script, does), beside the others in the same run.

Prints one table: scenario, runs, requests, failed requests, playbook seconds (median), and when the
failures happened. Bounded: every playbook has a timeout, the load stops with it; everything created
is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT as _ROOT  # noqa: E402,F401  (puts module_utils on the import path)
from tests.integration import shop_releases as releases  # noqa: E402
from tests.integration.conftest import Deployment, assert_ok, release_id  # noqa: E402
from tests.integration.load import Load  # noqa: E402

SCENARIOS = ("migration", "rollback", "proxy", "naive")


class Bench:
    def __init__(self, deployment: Deployment, rate: float, workers: int):
        self.deployment = deployment
        self.rate = rate
        self.workers = workers
        self.cart_migration = "0001_initial"
        self.step = 0
        self.rows: dict[str, list] = {name: [] for name in SCENARIOS}

    def under_load(self, scenario: str, action) -> None:
        load = Load("http://127.0.0.1:%d" % self.deployment.port, rate=self.rate, workers=self.workers).start()
        time.sleep(1)
        started = time.monotonic()
        try:
            action()
        finally:
            seconds = time.monotonic() - started
            time.sleep(1)
            result = load.stop()
        self.rows[scenario].append((result, seconds))
        print("  %-9s %s" % (scenario, result.describe().replace("\n", "\n            ")), flush=True)

    # --- what changes -----------------------------------------------------------------------------
    def migration_release(self) -> str:
        self.step += 1
        field = "bench_%d" % self.step
        releases.edit(
            self.deployment,
            "cart/models.py",
            "class CartItem(models.Model):\n",
            "class CartItem(models.Model):\n    %s = models.IntegerField(null=True, blank=True)\n" % field,
        )
        name = "%04d_cartitem_%s" % (int(self.cart_migration[:4]) + 1, field)
        releases.add_migration(
            self.deployment,
            "cart",
            name,
            "class Migration(migrations.Migration):\n"
            '    dependencies = [("cart", "%s")]\n\n'
            "    operations = [\n"
            '        migrations.AddField(model_name="cartitem", name="%s", field=models.IntegerField(blank=True, null=True)),\n'
            "    ]\n" % (self.cart_migration, field),
        )
        self.cart_migration = name
        return self.deployment.commit("bench: add %s" % field)

    def code_release(self) -> str:
        self.step += 1
        path = self.deployment.source / releases.SRC / "shop" / "views.py"
        path.write_text(path.read_text() + "\n# bench code-only change %d\n" % self.step)
        return self.deployment.commit("bench: code-only change %d" % self.step)

    def proxy_change(self) -> None:
        """A proxy setting changes (its server timeout): the next deploy reloads the proxy, nothing else."""
        self.step += 1
        settings = json.loads(self.deployment.vars_file.read_text())
        self.deployment.vars_file.write_text(json.dumps(dict(settings, proxy_timeout_server=60 + self.step)))

    # --- scenarios --------------------------------------------------------------------------------
    def run_once(self, scenarios) -> None:
        if "migration" in scenarios:
            self.migration_release()
            self.under_load("migration", lambda: assert_ok(self.deployment.deploy()))
        if "rollback" in scenarios:
            target = release_id(self.deployment.git("rev-parse", "HEAD"))
            self.code_release()
            assert_ok(self.deployment.deploy())
            self.under_load("rollback", lambda: assert_ok(self.deployment.playbook("rollback", "-e", "release=%s" % target)))
            # the source follows the live release again, so the next deploy is a plain one
            self.deployment.reset_to(target)
        if "proxy" in scenarios:
            self.proxy_change()
            self.under_load("proxy", lambda: assert_ok(self.deployment.deploy()))
        if "naive" in scenarios:
            backend = self.backend_container()
            self.under_load("naive", lambda: self.restart(backend))

    def backend_container(self) -> str:
        labels = ["label=smart-deploy.app=%s" % self.deployment.name, "label=smart-deploy.component=backend"]
        cmd = ["docker", "ps", "--filter", labels[0], "--filter", labels[1], "--format", "{{.Names}}"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        assert len(out) == 1, out
        return out[0]

    @staticmethod
    def restart(container: str) -> None:
        subprocess.run(["docker", "restart", container], check=True, capture_output=True, timeout=120)
        # serving again when its health answers (what a stop-then-start script waits for)
        for _ in range(120):
            state = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container], capture_output=True, text=True)
            if state.stdout.strip() == "healthy":
                return
            time.sleep(0.5)

    def table(self) -> str:
        lines = [
            "%-10s %5s %9s %7s %9s  %s" % ("scenario", "runs", "requests", "failed", "seconds", "failures at (s into the load)"),
        ]
        for name in SCENARIOS:
            rows = self.rows[name]
            if not rows:
                continue
            requests = sum(r.total for r, _ in rows)
            failed = sum(r.failed for r, _ in rows)
            median = statistics.median(s for _, s in rows)
            at = ", ".join("%.1f" % f.at for r, _ in rows for f in r.failures[:5])
            lines.append("%-10s %5d %9d %7d %9.1f  %s" % (name, len(rows), requests, failed, median, at or "-"))
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each scenario (1-10)")
    parser.add_argument("--rate", type=float, default=150, help="requests per second (10-400)")
    parser.add_argument("--workers", type=int, default=8, help="client threads (2-32)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or not 1 <= args.runs <= 10 or not 10 <= args.rate <= 400 or not 2 <= args.workers <= 32:
        parser.error("runs 1-10, rate 10-400, workers 2-32, scenarios among %s" % ", ".join(SCENARIOS))

    with tempfile.TemporaryDirectory(prefix="sd-bench-") as tmp:
        deployment = Deployment(Path(tmp))
        try:
            deployment.commit("release 1")
            assert_ok(deployment.deploy())
            bench = Bench(deployment, args.rate, args.workers)
            for run in range(1, args.runs + 1):
                print("run %d of %d" % (run, args.runs), flush=True)
                bench.run_once(scenarios)
            print()
            heading = "zero downtime: %d runs, %.0f req/s, %d client threads, shop on 127.0.0.1:%d"
            print(heading % (args.runs, args.rate, args.workers, deployment.port))
            print(bench.table())
        finally:
            deployment.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
