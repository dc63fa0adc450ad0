#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_app_roles
short_description: Least-privilege PostgreSQL roles for an app - an owner for migrations, an app role for the running app
description:
  - In the app's database container, over its local socket, as the server's superuser (O(db_user), the role the
    container was created with), brings the app's database to least privilege.
  - The owner role (O(owner)) owns the database, the schema C(public) and every object in it; migrations,
    backups and restores run as it. The app role (O(app_user)) may read and write rows - C(SELECT), C(INSERT),
    C(UPDATE), C(DELETE) on tables, C(USAGE), C(SELECT), C(UPDATE) on sequences, now and for what the owner
    creates later - and nothing more (no DDL, no superuser, no C(CREATEDB), no C(CREATEROLE)).
  - Upgrades in place a database made before these roles existed (everything owned by the superuser).
  - Passwords are compared with the SCRAM verifiers PostgreSQL keeps, and set (as verifiers, never in clear)
    only when they changed - the superuser's too, so a password changed in the vault is applied with
    C(ALTER ROLE), not by recreating the database container (PostgreSQL keeps the password it was created with).
  - All changes go in one transaction.
  - With O(db_mode=external), the same on an existing server, over the network, as O(db_user) with O(db_password) -
    that login must be a superuser of the server (it reads the roles' password verifiers in C(pg_authid)), and
    its password is never changed. The database O(db_name) is created when the server does not have it (then given
    to the owner role). The server's major version is returned, and the client image of that version
    (O(db_client_image)) must be on this host (the backups' C(pg_dump) comes from it).
  - O(db_user) is the server's superuser (in a container, its C(POSTGRES_USER)); in container mode O(db_password) is
    its password, set when it differs from the server's (leave out to keep it).
options:
  owner:
    description: Name of the owner role.
    type: str
    required: true
  owner_password:
    description: Password of the owner role.
    type: str
    required: true
  app_user:
    description: Name of the app role.
    type: str
    required: true
  app_password:
    description: Password of the app role.
    type: str
    required: true
  docker_cli:
    description: Docker command line client.
    type: str
    default: docker
extends_documentation_fragment:
  - smart_deploy.database
attributes:
  check_mode:
    support: full
    details: Reads the roles and privileges and says what would change.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run with the same passwords changes nothing.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Owner and app roles of the shop's database
  pg_app_roles:
    db_container: shop-db
    db_name: shop
    db_user: shop
    db_password: "{{ vault_db_password }}"
    owner: shop_owner
    owner_password: "{{ vault_owner_password }}"
    app_user: shop_app
    app_password: "{{ vault_app_password }}"
  no_log: true
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed, in words; no secrets.
  returned: always
  type: list
  elements: str
server_major:
  description: The server's major version (SHOW server_version_num).
  returned: success
  type: int
  sample: 15
client_image:
  description: With O(db_mode=external), the image the client tools (psql, pg_dump, pg_restore) run from.
  returned: success
  type: str
  sample: postgres:15-bookworm
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.pgclient import PgServer, PsqlError, database_problem, database_spec
from ansible.module_utils.smart_deploy.pgexec import container_running
from ansible.module_utils.smart_deploy.pgroles import parse_state, plan, script, state_script


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database_spec(),
            owner=dict(type="str", required=True),
            owner_password=dict(type="str", required=True, no_log=True),
            app_user=dict(type="str", required=True),
            app_password=dict(type="str", required=True, no_log=True),
            docker_cli=dict(type="str", default="docker"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    names = {"admin": p["db_user"], "owner": p["owner"], "app": p["app_user"], "database": p["db_name"]}
    if len({names["admin"], names["owner"], names["app"]}) < 3:
        module.fail_json(msg="the superuser (%s), the owner role (%s) and the app role (%s) must be three different roles"
                         % (names["admin"], names["owner"], names["app"]))  # fmt: skip
    problem = database_problem(p)
    if problem:
        module.fail_json(msg=problem)
    docker = module.get_bin_path(p["docker_cli"], required=True)
    if p["db_mode"] == "container" and not container_running(docker, p["db_container"]):
        module.fail_json(msg="the database container %s is not running" % p["db_container"])
    server = PgServer.from_params(docker, p)
    # an external server's admin login is the DBA's: its password is theirs to change
    passwords = {"admin": p["db_password"] if p["db_mode"] == "container" else None, "owner": p["owner_password"], "app": p["app_password"]}
    try:
        extra = {"server_major": server.major()}
        if server.external:
            extra["client_image"] = server.image()
            literal = "'%s'" % p["db_name"].replace("'", "''")
            if server.psql("SELECT count(*) FROM pg_database WHERE datname = %s" % literal, database="postgres") == "0":
                if module.check_mode:
                    module.exit_json(changed=True, changes=["create the database %s" % p["db_name"]], **extra)
                server.psql('CREATE DATABASE "%s";' % p["db_name"].replace('"', '""'), database="postgres")
                created = ["create the database %s" % p["db_name"]]
            else:
                created = []
        else:
            created = []
        state = parse_state(server.psql(state_script(names)))
        changes = plan(state, names, passwords)
        if changes and not module.check_mode:
            server.psql(script(changes, names))
            left = plan(parse_state(server.psql(state_script(names))), names, passwords)
            if left:
                module.fail_json(msg="the database roles are still not as they should be: %s" % "; ".join(c["why"] for c in left),
                                 changes=[c["why"] for c in changes])  # fmt: skip
    except PsqlError as exc:
        module.fail_json(msg="could not set up the database roles: %s" % exc)
    except ValueError as exc:
        module.fail_json(msg="could not read the database roles: %s" % exc)
    module.exit_json(changed=bool(changes or created), changes=created + [c["why"] for c in changes], **extra)


if __name__ == "__main__":
    main()
