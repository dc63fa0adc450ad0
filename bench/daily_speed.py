#!/usr/bin/env python3
"""How long the everyday runs take: a deploy with nothing changed, a code-only rollback, a failing container.

    .venv/bin/python bench/daily_speed.py             # 5 runs of each
    .venv/bin/python bench/daily_speed.py --runs 3

Deploys the sample shop under a name of its own, then measures, each as the wall time of the whole
`ansible-playbook` process (start-up and parsing included, as a user waits for it):

- no-op:    `deploy.yml` with nothing changed (change detection says so, health is checked, the run ends);
- rollback: `rollback.yml` to the release before a code-only deploy (the kept containers start, pass
            their health gate while the live ones serve, the proxy switches, the old ones drain), with
            the time to serving the run reports (from the start of the switch to the proxy serving it);
- failure:  a deploy whose new backend container exits at once (a release whose start command gunicorn
            refuses, shop_releases.break_backend_start_command): the seconds the health gate waited
            before failing, as the run reports them.

Prints one table of medians (and min/max). Loopback only; removes everything it created.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT as _ROOT  # noqa: E402,F401  (puts module_utils on the import path)
from tests.integration.conftest import Deployment, assert_failed, assert_ok, release_id  # noqa: E402
from tests.integration.shop_releases import break_backend_start_command  # noqa: E402


def timed(action):
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def code_change(deployment: Deployment, step: int) -> str:
    path = deployment.source / "backend" / "src" / "shop" / "views.py"
    path.write_text(path.read_text() + "\n# bench code-only change %d\n" % step)
    return deployment.commit("bench: code-only change %d" % step)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (1-10)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 10:
        parser.error("runs must be 1-10")

    rows: dict[str, list[float]] = {
        "no-op deploy (s)": [],
        "rollback.yml (s)": [],
        "rollback: serving after (s)": [],
        "failing container: gate failed after (s)": [],
    }
    with tempfile.TemporaryDirectory(prefix="sd-bench-") as tmp:
        deployment = Deployment(Path(tmp))
        try:
            deployment.commit("release 1")
            assert_ok(deployment.deploy())
            for run in range(1, args.runs + 1):
                seconds, result = timed(deployment.deploy)
                assert_ok(result)
                rows["no-op deploy (s)"].append(seconds)

                target = release_id(deployment.git("rev-parse", "HEAD"))
                code_change(deployment, run)
                assert_ok(deployment.deploy())
                seconds, result = timed(lambda target=target: deployment.playbook("rollback", "-e", "release=%s" % target))
                assert_ok(result)
                rows["rollback.yml (s)"].append(seconds)
                serving = re.search(r"serving ([0-9.]+) s after the switch began", deployment.summary()["steps"].get("serving", ""))
                if serving:
                    rows["rollback: serving after (s)"].append(float(serving.group(1)))
                deployment.reset_to(target)

                break_backend_start_command(deployment)  # a release whose backend exits at start
                code_change(deployment, 100 + run)
                result = deployment.deploy()
                assert_failed(result)
                waited = re.search(r"([0-9.]+) s into the health gate", result.stdout)
                if waited:
                    rows["failing container: gate failed after (s)"].append(float(waited.group(1)))
                deployment.reset_to(target)
                print("run %d of %d done" % (run, args.runs), flush=True)
        finally:
            deployment.destroy()

    print()
    print("everyday runs of the shop, %d runs each (medians; whole ansible-playbook processes)" % args.runs)
    print("%-42s %8s %8s %8s" % ("", "median", "min", "max"))
    for name, values in rows.items():
        if values:
            print("%-42s %8.1f %8.1f %8.1f" % (name, statistics.median(values), min(values), max(values)))
        else:
            print("%-42s %8s" % (name, "n/a"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
