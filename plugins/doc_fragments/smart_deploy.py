# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the options several smart-deploy modules share (built in module_utils/smart_deploy/args.py)."""

from __future__ import annotations


class ModuleDocFragment:
    # One-off containers of the app's image.
    APP_CONTAINER = r"""
options:
  env:
    description: Environment of the app's container that may be shown (settings, database host, name, user).
    type: dict
    default: {}
  secret_env:
    description: Environment of the app's container that is never shown (passwords, secret key). Reaches the
      container through an environment file readable by its owner only, never a command line.
    type: dict
    default: {}
  project_dir:
    description: Folder of C(manage.py) inside the image; defaults to the image's working directory.
    type: str
  python:
    description: Python executable inside the image.
    type: str
    default: python
  docker_cli:
    description: Docker command line client to use.
    type: str
    default: docker
  oneoff_memory:
    description:
      - Memory limit of the one-off containers of the app's image (C(docker run --memory)), a size such as
        C(1g) or C(768m). V(0) sets no limit.
      - A container that needs more is killed by the kernel (exit 137) and the step fails.
    type: str
    default: 1g
  oneoff_cpus:
    description: CPUs the one-off containers may use (C(docker run --cpus)), at most the host's. V(0) sets no limit.
    type: float
    default: 1.5
  oneoff_pids_limit:
    description: Processes the one-off containers may run (C(docker run --pids-limit)). V(0) sets no limit.
    type: int
    default: 512
"""

    # The scratch PostgreSQL started for a rehearsal copy or the app's tests (module_utils/smart_deploy/scratch.py).
    SCRATCH_DATABASE = r"""
options:
  scratch_memory:
    description:
      - Memory limit of the scratch PostgreSQL container (C(docker run --memory)), a size such as C(1g). It
        must be above the container's shared memory (256m). V(0) sets no limit.
      - The restore of a rehearsal copy runs inside that container and counts against it.
    type: str
    default: 1g
  scratch_cpus:
    description: CPUs the scratch PostgreSQL may use (C(docker run --cpus)), at most the host's. V(0) sets no limit.
    type: float
    default: 1.5
  scratch_pids_limit:
    description: Processes the scratch PostgreSQL container may run (C(docker run --pids-limit)). V(0) sets no limit.
    type: int
    default: 512
"""

    # The production database: in its container, or an external server (module_utils/smart_deploy/pgclient.py).
    DATABASE = r"""
options:
  db_mode:
    description:
      - V(container) - PostgreSQL runs in O(db_container) on this host; C(psql), C(pg_dump) and C(pg_restore) run
        in it (C(docker exec)), over its local socket.
      - V(external) - an existing server at O(db_host):O(db_port) that smart-deploy does not own; the tools run in a
        throwaway container of the server's major version (O(db_client_image)) on O(db_network), connecting over
        the network with O(db_user), O(db_password) (passed as C(PGPASSWORD) in the environment, never on a
        command line) and O(db_sslmode). C(host.docker.internal) resolves to this host.
    type: str
    choices: [container, external]
    default: container
  db_container:
    description: Database container (V(container) mode).
    type: str
  db_host:
    description: Server host name or address (V(external) mode), as the client containers reach it.
    type: str
  db_port:
    description: Server port (V(external) mode).
    type: int
    default: 5432
  db_sslmode:
    description: libpq C(sslmode) of the client tools (V(external) mode).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  db_password:
    description: Password of O(db_user) (V(external) mode; a container's tools use its local socket).
    type: str
  db_name:
    description: Database name.
    type: str
    required: true
  db_user:
    description: Database role the tools log in as.
    type: str
    required: true
  db_client_image:
    description:
      - Image of the client containers (V(external) mode); C({major}) is replaced by the server's major
        version, so C(pg_dump) always matches the server. It must be on this host (no pull).
    type: str
    default: postgres:{major}-bookworm
  db_network:
    description: Docker network the client containers join (V(external) mode); Docker's default bridge when unset.
    type: str
"""

    # The deploy lock a long-running module keeps fresh (module_utils/smart_deploy/lock.py Heartbeat).
    LOCK_HEARTBEAT = r"""
options:
  lock:
    description:
      - The deploy lock this run holds, kept from expiring while the module works - its expiry is moved
        to O(lock.ttl) seconds from now at once and then every O(lock.ttl)/4 seconds (at least 1 s), as
        long as the lock still has O(lock.lock_id).
      - Pass the C(smart_deploy_lock_hold) fact the preflight role sets. Without it nothing is refreshed.
    type: dict
    suboptions:
      path:
        description: Lock file path on the target.
        type: path
        required: true
      lock_id:
        description: Identifier of this run's lock.
        type: str
        required: true
      ttl:
        description: Seconds the lock stays valid after each refresh.
        type: int
        required: true
"""
