#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: smart_deploy_inputs
short_description: Check smart-deploy's variables before anything changes
description:
  - Runs on the controller (an action plugin; nothing is sent to the target). Reads the variables of the
    groups asked for, each templated on its own, and checks them against the rules of
    C(module_utils/smart_deploy/inputs.py) - names Docker and PostgreSQL accept, ports and addresses,
    a state folder of the app's own (never C(/), C(/tmp), C(/srv) or a system folder), components with
    a build context that exists, environment values that are strings, numbers in range, booleans that
    are booleans, secrets set.
  - Fails with every problem found, each naming its variable and what is expected. Secret values are never shown.
options:
  groups:
    description:
      - Which checks to run. V(app) the application settings and the roles' numbers and switches;
        V(secrets) the database password and the Django secret key; V(rollback) C(release) and C(restore_db);
        V(status) C(history); V(logs) C(lines), C(component) and C(since) - each also under its role variable
        (C(rollback_release), C(rollback_restore_db), C(status_history), C(logs_lines), C(logs_component),
        C(logs_since)), which AWX surveys and C(-e) set directly.
    type: list
    elements: str
    choices: [app, secrets, rollback, status, logs]
    default: [app]
attributes:
  check_mode:
    support: full
    details: Only reads variables.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Check the inputs before anything changes
  smart_deploy_inputs:
    groups: [app, secrets]
"""

RETURN = r"""
checked:
  description: Names of the variables that were checked.
  returned: success
  type: list
  elements: str
msg:
  description: How many inputs were checked, or every problem found, one line each, naming its variable.
  returned: always
  type: str
"""

if __name__ == "__main__":
    raise SystemExit("smart_deploy_inputs runs on the controller as an action plugin; it is not executed as a module")
