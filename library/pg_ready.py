#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_ready
short_description: Wait until the app's PostgreSQL accepts connections
description:
  - Asks C(pg_isready) - in the database container (over TCP on 127.0.0.1, as the app connects; the first start's
    temporary server listens on its socket only), or for an external server (O(db_mode=external)) in a client
    container - every O(interval) seconds until the server accepts connections, for at most O(timeout) seconds.
  - One task, quiet while it waits (no failed attempt is shown, unlike C(until)/C(retries)); a server that does not
    come within the time fails with what C(pg_isready) last said and how long it waited.
options:
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 60
  interval:
    description: Seconds between two attempts.
    type: float
    default: 1
  client_image:
    description: Image whose C(pg_isready) asks an external server. Default - the client image of its major version
      (O(db_client_image)).
    type: str
  docker_cli:
    description: The docker command.
    type: str
    default: docker
extends_documentation_fragment:
  - smart_deploy.database
attributes:
  check_mode:
    support: full
    details: Only asks the server.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Wait for PostgreSQL to accept connections
  pg_ready:
    db_container: shop-db
    db_name: shop
    db_user: shop
    timeout: 90
"""

RETURN = r"""
attempts:
  description: How many times pg_isready was asked.
  returned: always
  type: int
seconds:
  description: How long the wait took.
  returned: always
  type: float
said:
  description: What pg_isready said last.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.pgclient import PgServer, database_problem, database_spec, wait_ready


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database_spec(),
            timeout=dict(type="int", default=60),
            interval=dict(type="float", default=1.0),
            client_image=dict(type="str"),
            docker_cli=dict(type="str", default="docker"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = database_problem(params)
    if problem:
        module.fail_json(msg=problem)
    if params["timeout"] < 1 or params["interval"] <= 0:
        module.fail_json(msg="timeout must be 1 or more and interval above 0")
    docker = module.get_bin_path(params["docker_cli"], required=True)
    server = PgServer.from_params(docker, params)
    waited = wait_ready(lambda: server.probe_ready(image=params["client_image"]), params["timeout"], params["interval"])
    result = dict(changed=False, attempts=waited["attempts"], seconds=waited["seconds"], said=waited["said"])
    if waited["code"] == 3:
        module.fail_json(
            msg="pg_isready could not ask PostgreSQL (%s): %s" % (server.describe(), waited["said"] or "bad parameters"), **result
        )
    if not waited["ready"]:
        module.fail_json(
            msg="PostgreSQL (%s, database %s) did not accept connections within %d s (%d attempts); pg_isready said: %s"
            % (server.describe(), params["db_name"], params["timeout"], waited["attempts"], waited["said"] or "nothing"),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
