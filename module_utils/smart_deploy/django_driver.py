# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smart-deploy driver: runs INSIDE a container of the application's own image.

smart-deploy's modules copy this file into a one-off container of the release image and run it with
the image's Python, so the application needs no change and no extra dependency: only the standard
library and Django, which the image already has. Top-level imports are standard library only (the
file is also shipped inside Ansible modules, where Django is absent).

    python driver.py plan       pending migrations, applied set and its fingerprint
    python driver.py migrate    apply the pending migrations (manage.py migrate)

The result is one JSON line prefixed with RESULT_MARK on stdout; everything else is Django's output.
Exit status: 0 done, 2 the command failed (the JSON says why).
"""

import hashlib
import json
import os
import sys
import time
import traceback

RESULT_MARK = "SMART_DEPLOY_RESULT="


def emit(result):
    sys.stdout.flush()
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def setup_django():
    project_dir = os.environ.get("SMART_DEPLOY_PROJECT_DIR") or os.getcwd()
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    import django

    django.setup()


def sqlstate(exc):
    """SQLSTATE of a database error: Django re-raises driver errors, the code is on the cause."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        if code:
            return code
        exc = exc.__cause__ or exc.__context__
    return None


def migration_state(connection, loader):
    """Applied migrations and a fingerprint of them (what the deploy validated against)."""
    applied = sorted("%s.%s" % key for key in loader.applied_migrations)
    digest = hashlib.sha256("\n".join(applied).encode()).hexdigest()
    return {"applied_count": len(applied), "fingerprint": digest}


def command_plan():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    loader = executor.loader
    loader.check_consistent_history(connection)
    conflicts = loader.detect_conflicts()
    plan = executor.migration_plan(loader.graph.leaf_nodes())
    pending = [
        {"app": migration.app_label, "name": migration.name, "atomic": bool(migration.atomic), "backwards": backwards}
        for migration, backwards in plan
    ]
    result = {"pending": pending, "conflicts": conflicts}
    result.update(migration_state(connection, loader))
    return result


def command_migrate():
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = command_plan()
    if before["conflicts"]:
        raise RuntimeError("conflicting migrations: %s" % json.dumps(before["conflicts"]))
    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=1)
    seconds = time.monotonic() - started
    connection.close()
    after_loader = MigrationExecutor(connection).loader
    state = migration_state(connection, after_loader)
    return {
        "applied": ["%s.%s" % (m["app"], m["name"]) for m in before["pending"]],
        "seconds": round(seconds, 3),
        "before": {"applied_count": before["applied_count"], "fingerprint": before["fingerprint"]},
        "after": state,
    }


COMMANDS = {"plan": command_plan, "migrate": command_migrate}


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        emit({"ok": False, "error": "usage: driver.py {%s}" % "|".join(sorted(COMMANDS))})
        return 2
    try:
        setup_django()
        result = COMMANDS[argv[1]]()
    except Exception as exc:  # report every failure as data, the module decides
        emit(
            {
                "ok": False,
                "error": "%s: %s" % (type(exc).__name__, str(exc).strip()),
                "sqlstate": sqlstate(exc),
                "traceback": traceback.format_exc(limit=8),
            }
        )
        return 2
    result["ok"] = True
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
