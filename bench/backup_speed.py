#!/usr/bin/env python3
"""What a verified backup and a database rollback cost next to the bare PostgreSQL tools.

    .venv/bin/python bench/backup_speed.py                    # 1 GB of shop data, 3 runs of each
    .venv/bin/python bench/backup_speed.py --size-mb 200      # a quick run

Deploys the sample shop under a name of its own, fills it with generated shop data (bench/validation_cost.py's
``fill``) up to --size-mb, then measures side by side, --runs times each (medians reported):

- bare dump:       ``docker exec -i <db> pg_dump -Fc ... > file`` on the host (how pg_backup streams it);
- verified backup: the pg_backup module run ad hoc (``ansible localhost -m pg_backup``) with the arguments
                   the db_backup role gives it, timed as Ansible times the task (json callback: the module
                   shipped to the host, run, its answer back);
- bare restore:    ``docker exec -i <db> pg_restore --exit-on-error -d <fresh> < file`` of the backup just
                   taken, into a database created for it (the creation is not timed);
- bare -j 2:       ``docker cp`` of the same file into the container and ``pg_restore -j 2`` of it (both timed):
                   what parallel jobs give by hand (pg_restore -j needs a file it can seek in);
- rollback:        the pg_restore module run ad hoc with the arguments the rollback role gives it (restore
                   into a fresh database, hand the objects to the owner role, swap it in for the live one).

Bare and module runs alternate (which goes first flips every run), so a slower or faster phase of the
machine hits both. The wall time of the whole ``ansible`` commands is shown too, and that of ``ansible
localhost -m ping``: what Ansible starting up adds to any task, whatever the module does. Prints one
table; removes the deployment, its databases, the dumps and the backups. Loopback and the deployment's
own Docker network only; every command is bounded (an hour at most).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from validation_cost import fill  # noqa: E402

from tests.conftest import ROOT as _ROOT  # noqa: E402,F401  (puts module_utils on the import path)
from tests.integration.conftest import VENV_BIN, Deployment  # noqa: E402

TIMEOUT = 3600  # seconds, for any one command


def ansible(deployment: Deployment, module: str, args: dict) -> tuple:
    """Run one module ad hoc on this machine, as an operator would; return (task seconds, wall seconds, result):
    the task's own duration as Ansible's json callback reports it (the module shipped, run and answered),
    and the wall time of the whole ``ansible`` command (Ansible starting up included)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_NOCOLOR="1")  # fmt: skip
    cmd = [str(VENV_BIN / "ansible"), "localhost", "-m", module] + (["-a", json.dumps(args)] if args else [])
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - started
    if deployment.leaks(proc.stdout + proc.stderr):
        raise SystemExit("module %s printed a secret" % module)
    if proc.returncode != 0:
        raise SystemExit("module %s failed:\n%s\n%s" % (module, proc.stdout[-4000:], proc.stderr[-2000:]))
    task = json.loads(proc.stdout)["plays"][0]["tasks"][0]
    duration = task["task"]["duration"]
    seconds = (datetime.datetime.fromisoformat(duration["end"]) - datetime.datetime.fromisoformat(duration["start"])).total_seconds()
    return seconds, wall, task["hosts"]["localhost"]


def timed(cmd: list, **kwargs) -> float:
    started = time.monotonic()
    kwargs.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, timeout=TIMEOUT, **kwargs)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(cmd[:6]), proc.stderr.decode(errors="replace")[-2000:]))
    return seconds


class Bench:
    def __init__(self, deployment: Deployment, workdir: Path):
        self.d = deployment
        self.workdir = workdir
        self.container = "%s-db" % deployment.name
        self.admin = deployment.name.replace("-", "_")  # smart_deploy_db_user
        self.database = self.admin  # smart_deploy_db_name
        self.owner = self.admin + "_owner"  # smart_deploy_db_owner: the user db_backup dumps as
        self.app = self.admin + "_app"
        self.backups = workdir / "backups"
        self.runs = 0

    def admin_sql(self, sql: str, database: str = "postgres") -> str:
        proc = subprocess.run(["docker", "exec", self.container, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", self.admin, "-d", database,
                               "-c", sql], capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit("psql failed: %s" % proc.stderr)
        return proc.stdout.strip()

    def bare_dump(self, path: Path) -> float:
        with open(path, "wb") as out:
            return timed(["docker", "exec", "-i", self.container, "pg_dump", "-Fc", "-U", self.owner, "-d", self.database], stdout=out)

    def module_backup(self) -> tuple:
        from ansible.module_utils.smart_deploy.pgexec import database_state  # after tests.conftest set the path

        self.runs += 1
        state = database_state("docker", self.container, self.admin, self.database)
        args = {"container": self.container, "database": self.database, "user": self.owner, "dest": str(self.backups),
                "app": self.d.name, "release": "bench%02d" % self.runs,
                "migration_state": {k: state[k] for k in ("applied_count", "migrations_fingerprint", "schema_fingerprint")}}  # fmt: skip
        return ansible(self.d, "pg_backup", args)

    def bare_restore(self, dump: Path) -> float:
        fresh = "%s__bench_bare" % self.database
        self.admin_sql("CREATE DATABASE %s OWNER %s" % (fresh, self.owner))
        try:
            with open(dump, "rb") as archive:
                return timed(["docker", "exec", "-i", self.container, "pg_restore", "--exit-on-error", "-U", self.admin, "-d", fresh],
                             stdin=archive)  # fmt: skip
        finally:
            self.admin_sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % fresh)

    def bare_parallel_restore(self, dump: Path) -> float:
        """pg_restore -j 2 needs a file it can seek in: docker cp into the container, then restore (both timed)."""
        fresh, inside = "%s__bench_bare_j2" % self.database, "/tmp/bench-restore.dump"
        self.admin_sql("CREATE DATABASE %s OWNER %s" % (fresh, self.owner))
        try:
            return timed(["docker", "cp", str(dump), "%s:%s" % (self.container, inside)]) + timed(
                ["docker", "exec", self.container, "pg_restore", "--exit-on-error", "-j", "2", "-U", self.admin, "-d", fresh, inside]
            )
        finally:
            subprocess.run(["docker", "exec", self.container, "rm", "-f", inside], capture_output=True)
            self.admin_sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % fresh)

    def module_restore(self, dump: str) -> tuple:
        args = {"backup": dump, "container": self.container, "database": self.database, "user": self.admin,
                "roles": {"owner": self.owner, "app": self.app}, "keep_replaced": True,
                # as a rollback gives it: restore unless the live database is already in the pre-deploy state
                # (it never is here: the state given is not the live one, so the check costs what it costs)
                "unless_state": {"migrations_fingerprint": "bench", "schema_fingerprint": "bench"}}  # fmt: skip
        seconds, wall, result = ansible(self.d, "pg_restore", args)
        if result.get("replaced_database"):  # kept by a rollback; the bench has no use for it
            self.admin_sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % result["replaced_database"])
        return seconds, wall, result

    def one_run(self, number: int) -> dict:
        row = {}
        bare_file = self.workdir / "bare.dump"
        steps = [("bare_dump_s", lambda: self.bare_dump(bare_file)), ("backup_s", self.module_backup)]
        for key, step in steps if number % 2 == 0 else reversed(steps):
            value = step()
            if key == "backup_s":
                value, row["backup_wall_s"], result = value
                backup, metadata = result["path"], result["metadata"]
                row.update(module_dump_s=metadata.get("dump_seconds"), module_verify_s=metadata.get("verify_seconds"),
                           backup_mb=metadata["size"] / 2**20)  # fmt: skip
            row[key] = value
        row["bare_dump_mb"] = bare_file.stat().st_size / 2**20
        bare_file.unlink()
        steps = [("bare_restore_s", lambda: self.bare_restore(Path(backup))), ("rollback_s", lambda: self.module_restore(backup)),
                 ("bare_restore_j2_s", lambda: self.bare_parallel_restore(Path(backup)))]  # fmt: skip
        for key, step in steps if number % 2 == 0 else reversed(steps):
            value = step()
            if key == "rollback_s":
                value, row["rollback_wall_s"], result = value
                row["module_restore_s"] = result.get("seconds")
            row[key] = value
        for path in (Path(backup), Path(backup[: -len(".dump")] + ".json")):
            path.unlink()
        return row


def table(rows: list) -> list:
    """(figure, value, target) lines: medians over the runs; a ratio is the median of the runs' own ratios
    (module and bare ran back to back in each run, so a busier or quieter phase of the machine hits both)."""

    def median(key):
        values = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(values) if values else None

    def ratio(key, over):
        return statistics.median(r[key] / r[over] for r in rows)

    def fmt(value, digits=2):
        return "-" if value is None else ("%.*f" % (digits, value))

    return [
        ("database size (MB)", fmt(rows[0]["database_mb"], 0), ""),
        ("runs of each", str(len(rows)), ""),
        ("bare pg_dump -Fc (s)", fmt(median("bare_dump_s")), ""),
        ("verified backup, pg_backup task (s)", fmt(median("backup_s")), ""),
        ("  of which dump, verified as it streams (s)", fmt(median("module_dump_s")), ""),
        ("  of which verification after the dump (s)", fmt(median("module_verify_s")), ""),
        ("backup ratio", fmt(ratio("backup_s", "bare_dump_s")), "<= 1.3"),
        ("bare pg_restore (s)", fmt(median("bare_restore_s")), ""),
        ("rollback, pg_restore task (s)", fmt(median("rollback_s")), ""),
        ("  of which checksum, restore and swap (s)", fmt(median("module_restore_s")), ""),
        ("restore ratio", fmt(ratio("rollback_s", "bare_restore_s")), "<= 1.2"),
        ("bare docker cp + pg_restore -j 2 (s)", fmt(median("bare_restore_j2_s")), ""),
        ("rollback / bare -j 2", fmt(ratio("rollback_s", "bare_restore_j2_s")), ""),
        ("bare dump file (MB)", fmt(median("bare_dump_mb"), 1), ""),
        ("backup file (MB)", fmt(median("backup_mb"), 1), ""),
        ("ansible -m ping task (s): Ansible's floor per task", fmt(rows[0]["ping_task_s"]), ""),
        ("whole ansible -m pg_backup command (s)", fmt(median("backup_wall_s")), ""),
        ("whole ansible -m pg_restore command (s)", fmt(median("rollback_wall_s")), ""),
        ("whole ansible -m ping command (s)", fmt(rows[0]["ping_s"]), ""),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="database size in MB (default 1024; 200 for a quick run)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement, 1 to 10 (default 3); medians are shown")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 10 or not 10 <= args.size_mb <= 8192:
        parser.error("--runs must be 1 to 10 and --size-mb 10 to 8192")
    rows = []
    with tempfile.TemporaryDirectory(prefix="smart-deploy-bench-") as workdir:
        deployment = Deployment(Path(workdir))
        try:
            deployment.commit("bench base")
            result = deployment.deploy()
            if result.returncode != 0:
                print(result.stdout[-3000:])
                raise SystemExit("deploy failed")
            t0 = time.monotonic()
            size = fill(deployment, args.size_mb)
            print("filled to %.0f MB in %.0f s" % (size / 2**20, time.monotonic() - t0), file=sys.stderr, flush=True)
            bench = Bench(deployment, Path(workdir))
            ping_task_s, ping_s, _ = ansible(deployment, "ping", {})
            for number in range(args.runs):
                row = bench.one_run(number)
                row.update(database_mb=size / 2**20, ping_s=ping_s, ping_task_s=ping_task_s)
                rows.append(row)
                print("run %d: %s" % (number + 1, json.dumps({k: round(v, 2) for k, v in row.items() if v is not None})),
                      file=sys.stderr, flush=True)  # fmt: skip
        finally:
            deployment.destroy()
    lines = table(rows)
    widths = [max(len(line[i]) for line in lines + [("figure", "value", "target")]) for i in range(3)]
    print()
    for line in [("figure", "value", "target"), tuple("-" * w for w in widths)] + lines:
        print(" | ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line)).rstrip())


if __name__ == "__main__":
    main()
