# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by several modules, built once (documented once in plugins/doc_fragments/smart_deploy.py)."""

from __future__ import annotations

# What a one-off container of the app's image and a scratch PostgreSQL may use by default: enough for
# the sample shop's test suite and migrations, and for a rehearsal copy, on a 2-core machine shared
# with production. The scratch database's memory must stay above its shared memory (SCRATCH_SHM_SIZE).
ONEOFF_MEMORY = "1g"
ONEOFF_CPUS = 1.5
ONEOFF_PIDS_LIMIT = 512
SCRATCH_MEMORY = "1g"
SCRATCH_CPUS = 1.5
SCRATCH_PIDS_LIMIT = 512


def app_container_spec() -> dict:
    """How a one-off container of the app's image is run: environment (plain and secret), working
    directory, Python, docker client, and what it may use (memory, CPUs, processes).
    Document with C(extends_documentation_fragment: smart_deploy.app_container)."""
    return dict(
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        project_dir=dict(type="str"),
        python=dict(type="str", default="python"),
        docker_cli=dict(type="str", default="docker"),
        oneoff_memory=dict(type="str", default=ONEOFF_MEMORY),
        oneoff_cpus=dict(type="float", default=ONEOFF_CPUS),
        oneoff_pids_limit=dict(type="int", default=ONEOFF_PIDS_LIMIT),
    )


def scratch_database_spec() -> dict:
    """What the scratch PostgreSQL a module starts may use (memory, CPUs, processes).
    Document with C(extends_documentation_fragment: smart_deploy.scratch_database)."""
    return dict(
        scratch_memory=dict(type="str", default=SCRATCH_MEMORY),
        scratch_cpus=dict(type="float", default=SCRATCH_CPUS),
        scratch_pids_limit=dict(type="int", default=SCRATCH_PIDS_LIMIT),
    )


def database_container_spec() -> dict:
    """Where the production database runs: its container, or an external server, the database and the
    login (see module_utils/smart_deploy/pgclient.py). Check with pgclient.database_problem(params).
    Document with C(extends_documentation_fragment: smart_deploy.database)."""
    from ansible.module_utils.smart_deploy.pgclient import database_spec

    return database_spec()


def full_env(params: dict) -> dict:
    """The container's whole environment: the plain part and the secret part."""
    return dict(params.get("env") or {}, **(params.get("secret_env") or {}))


def lock_heartbeat_spec() -> dict:
    """The deploy lock a long-running module keeps from expiring while it works (optional): the
    C(smart_deploy_lock_hold) fact preflight sets. Use with
    C(with Heartbeat.from_params(module.params.get("lock")):) from module_utils/smart_deploy/lock.py.
    Document with C(extends_documentation_fragment: smart_deploy.lock_heartbeat)."""
    return dict(
        lock=dict(
            type="dict",
            options=dict(
                path=dict(type="path", required=True),
                lock_id=dict(type="str", required=True),
                ttl=dict(type="int", required=True),
            ),
        ),
    )
