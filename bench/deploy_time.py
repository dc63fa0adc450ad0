#!/usr/bin/env python3
"""Where the time of a deploy goes: seconds per role, and the parts no deploy can do without beside the rest.

    .venv/bin/python bench/deploy_time.py             # one measured deploy
    .venv/bin/python bench/deploy_time.py --runs 3    # three, one after the other, with their median

Deploys the sample shop under a name of its own, then, per run, the next release with one added migration
(a nullable column on cart_cart) with the app's tests on (as a deploy whose CI did not run them), the way
a user runs it (`playbooks/deploy.yml`). Reads that deploy's JSON run log (the callback's `steps` and
`roles`) and the rehearsal's report, and prints one table:

- the seconds of each role, in the order they first ran, of the tasks outside any role, of the gaps
  between tasks (Ansible's own work) and of ansible-playbook's start-up and exit: they add up to the
  playbook's wall time;
- the unavoidable parts, from the tasks that do them: the image build (the wheelhouse, then docker build),
  the app's tests, the rehearsal's copy (its scratch database started, production copied) and the
  migrations run on it (both from the rehearsal's report), the backup, the migrations, the health checks;
  their sum, and what remains of the wall time ("overhead");
- the slowest other tasks, where most of that overhead goes.

Loopback only: the wheelhouse is filled from the wheels already in the shop's copy (pip --no-index), the
base images are the local ones. Bounded: at most 5 runs, each playbook at most 10 minutes. Removes
everything it created.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT as _ROOT  # noqa: E402,F401  (puts module_utils on the import path)
from tests.integration import shop_releases as releases  # noqa: E402
from tests.integration.conftest import Deployment  # noqa: E402

MAX_RUNS = 5

# the unavoidable parts: (label, role, the task's name starts with); from the run log's steps
TASKS = [
    ("image build: wheelhouse", "build", "Download the Python packages"),
    ("image build: docker build", "build", "Build the images of this release"),
    ("app tests", "app_tests", "Run the app's tests"),
    ("backup", "db_backup", "Back up the database"),
    ("migrate", "migrate", "Apply the validated plan"),
    ("health checks", "health_check", "Check the critical endpoints"),
]
# from the rehearsal's report: (label, its timings)
REHEARSAL = [
    ("rehearsal: copy (scratch db + copy)", ("scratch_start", "copy")),
    ("rehearsal: migrations on the copy", ("rehearse",)),
]
UNAVOIDABLE_ORDER = [TASKS[0][0], TASKS[1][0], TASKS[2][0], REHEARSAL[0][0], REHEARSAL[1][0], TASKS[3][0], TASKS[4][0], TASKS[5][0]]
SLOWEST_OTHERS = 6


def add_column(deployment, run):
    """Release N+1: a nullable column on cart_cart, with the migration makemigrations writes for it."""
    column = "bench_note_%d" % run
    releases.edit(deployment, "cart/models.py", "class Cart(models.Model):\n",
                  "class Cart(models.Model):\n    %s = models.CharField(max_length=200, null=True, blank=True)\n" % column)  # fmt: skip
    previous = "0001_initial" if run == 1 else "%04d_cart_bench_note_%d" % (run, run - 1)
    releases.add_migration(
        deployment,
        "cart",
        "%04d_cart_%s" % (run + 1, column),
        """class Migration(migrations.Migration):
    dependencies = [("cart", "%s")]

    operations = [
        migrations.AddField(model_name="cart", name="%s", field=models.CharField(blank=True, max_length=200, null=True)),
    ]
"""
        % (previous, column),
    )


def offline_vars(deployment):
    """Extra vars that keep the deploy on this machine: the wheelhouse from the wheels already there."""
    path = deployment.workdir / "bench-vars.json"
    defaults = ["--only-binary=:all:", "--python-version=3.11", "--implementation=cp",
                "--platform=manylinux2014_x86_64", "--platform=manylinux_2_17_x86_64", "--platform=manylinux_2_28_x86_64"]  # fmt: skip
    wheels = str(deployment.source / "backend" / "wheels")
    path.write_text(json.dumps({"build_wheelhouse_pip_args": defaults + ["--no-index", "--find-links", wheels]}))
    return "@%s" % path


def deploy(deployment, *args):
    started = time.monotonic()
    result = deployment.deploy(*args)
    wall = time.monotonic() - started
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:])
        raise SystemExit("deploy failed")
    return wall


def measure(deployment, run, extra):
    add_column(deployment, run)
    deployment.commit("bench: one more migration (%d)" % run)
    wall = deploy(deployment, "-e", extra, "-e", "smart_deploy_app_tests=true")
    log = deployment.run_log()
    if not str(log["summary"].get("outcome", "")).startswith("live"):
        raise SystemExit("the release did not go live: %s" % log["summary"])
    applied = log["summary"].get("steps", {}).get("migrations", "")
    timings = deployment.validation_reports()[-1]["report"]["timings"]
    steps = log["steps"]

    figures = {}  # label -> seconds, in table order
    roles_in_order = list(dict.fromkeys(s["role"] or "(playbook)" for s in steps))
    for role in roles_in_order:
        label = "role %s" % role if role != "(playbook)" else "tasks outside roles"
        figures[label] = log["roles"][role]
    role_sum = sum(log["roles"].values())
    figures["between tasks (Ansible's own work)"] = log["seconds"] - role_sum
    figures["ansible-playbook start-up and exit"] = wall - log["seconds"]
    figures["PLAYBOOK WALL TIME"] = wall

    unavoidable, used = {}, set()
    for label, role, prefix in TASKS:
        matched = [i for i, s in enumerate(steps) if s["role"] == role and s["task"].startswith(prefix) and s["status"] != "skipped"]
        if not matched:
            raise SystemExit("no step %s / %s... in the run log: renamed? (%s)" % (role, prefix, label))
        used.update(matched)
        unavoidable[label] = sum(steps[i]["seconds"] for i in matched)
    for label, keys in REHEARSAL:
        unavoidable[label] = sum(timings.get(k) or 0.0 for k in keys)
    for label in UNAVOIDABLE_ORDER:
        figures["unavoidable: %s" % label] = unavoidable[label]
    total = sum(unavoidable.values())
    figures["UNAVOIDABLE, SUM"] = total
    figures["OVERHEAD (wall - unavoidable)"] = wall - total

    others = {}
    rehearsal = [i for i, s in enumerate(steps) if s["role"] == "migration_validation" and s["task"].startswith("Rehearse the migrations")]
    for index, step in enumerate(steps):
        if index in used:
            continue
        seconds = step["seconds"]
        if index in rehearsal:  # what the rehearsal task spent besides its copy and migrations
            seconds -= unavoidable[REHEARSAL[0][0]] + unavoidable[REHEARSAL[1][0]]
        task = step["task"] if len(step["task"]) <= 70 else step["task"][:67] + "..."
        key = "%s: %s" % (step["role"] or "(playbook)", task)
        if index in rehearsal:
            key += " (besides copy and migrations)"
        others[key] = others.get(key, 0.0) + seconds
    return figures, others, applied


def table(runs, others):
    """One table: a row per figure, a column per run (and their median), the share of the wall time."""
    runs = [dict(run) for run in runs]
    labels = list(runs[0])
    medians = {label: statistics.median(run[label] for run in runs) for label in labels}
    slowest = sorted(others[0], key=lambda k: -statistics.median(o.get(k, 0.0) for o in others))[:SLOWEST_OTHERS]
    for key in slowest:
        label = "slowest other: %s" % key
        labels.append(label)
        for run, other in zip(runs, others, strict=True):
            run[label] = other.get(key, 0.0)
        medians[label] = statistics.median(o.get(key, 0.0) for o in others)
    wall = medians["PLAYBOOK WALL TIME"]
    columns = ["run %d" % (i + 1) for i in range(len(runs))] + (["median"] if len(runs) > 1 else [])
    width = max(len(label) for label in labels)
    header = "| %s | %s | share |" % ("seconds of a deploy with one migration".ljust(width), " | ".join(c.rjust(7) for c in columns))
    border = "+" + "-" * (len(header) - 2) + "+"
    lines = [border, header, border]
    sections = {"PLAYBOOK WALL TIME", "unavoidable: %s" % UNAVOIDABLE_ORDER[0]} | {"slowest other: %s" % k for k in slowest[:1]}
    for label in labels:
        if label in sections:
            lines.append(border)
        values = [run[label] for run in runs] + ([medians[label]] if len(runs) > 1 else [])
        share = "%4.0f%%" % (100 * medians[label] / wall) if wall else "  -  "
        lines.append("| %s | %s | %s |" % (label.ljust(width), " | ".join(("%7.1f" % v) for v in values), share))
    lines.append(border)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="measured deploys, one after the other (1 to %d)" % MAX_RUNS)
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error("--runs must be between 1 and %d" % MAX_RUNS)
    runs, others = [], []
    with tempfile.TemporaryDirectory(prefix="smart-deploy-bench-") as workdir:
        deployment = Deployment(Path(workdir))
        try:
            extra = offline_vars(deployment)
            deployment.commit("bench base")
            print("first deploy of %s (not measured): %.0f s" % (deployment.name, deploy(deployment, "-e", extra)), flush=True)
            for run in range(1, args.runs + 1):
                figures, other, applied = measure(deployment, run, extra)
                runs.append(figures)
                others.append(other)
                print("run %d: %.1f s, migrations: %s" % (run, figures["PLAYBOOK WALL TIME"], applied), flush=True)
        finally:
            deployment.destroy()
    print()
    print(table(runs, others))


if __name__ == "__main__":
    main()
