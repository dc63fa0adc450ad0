#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_strategy
short_description: Decide normal, fake or abort from a migration rehearsal report
description:
  - Pure decision from the report of M(django_migration_dryrun) (and optional SQL linter findings).
  - V(abort) when a pre-check failed, the copy was not faithful, a migration failed on the copy (unless
    it was a proven fake), migrations were still pending on the copy afterwards, or a warning listed in
    O(abort_on) showed up. V(fake) when every migration applied, some only after a proven fake, listed
    in order in C(fake). V(normal) otherwise, including when nothing is pending.
  - Lists the operations the old release cannot live with while old and new code serve side by side
    (C(breaking), see C(module_utils/smart_deploy/compat.py)) and decides what a rolling deploy does with them
    (C(breaking_gate)); it never fails on them, the role stops the deploy when C(breaking_gate.refused).
  - Never changes anything; it runs on the controller.
options:
  report:
    description: The C(report) returned by M(django_migration_dryrun).
    type: dict
    required: true
  lint:
    description:
      - SQL linter findings per migration (migration -> list of findings with C(rule_name), C(message) and C(line), as
        C(squawk --reporter json) gives them), shown as warnings naming the migration and the table of the statement at
        that line of the SQL linted.
    type: dict
    default: {}
  require_rehearsal:
    description:
      - When V(false) (emergency deploys), pending migrations that were not rehearsed are V(normal) with a
        C(not-rehearsed) warning instead of V(abort), and no warning aborts (O(abort_on) does not apply). Pre-check errors
        and missing migrations that change the schema still abort.
    type: bool
    default: true
  accept:
    description:
      - Abort reason codes to go through (see C(REASON_CODES) in C(module_utils/smart_deploy/strategy.py) and the README,
        "Migration checks"). A reason with one of these codes does not abort; it is returned in C(accepted). The verdict is then
        V(fake) when every fake is proven, else V(normal). A code that did not occur is harmless (C(accepted_unused)).
      - A list, or one string of codes separated by commas. An unknown code fails the module.
      - smart-deploy's own failure (C(smart-deploy-defect)) is not among these codes - it is never accepted.
    type: list
    elements: str
    default: []
  abort_on:
    description: Warning rules that turn the verdict into V(abort) (for example C(table-rewrite), C(squawk:ban-drop-column)).
    type: list
    elements: str
    default: []
  rolling:
    description:
      - The deploy rolls over several app hosts after migrating once, so old and new code serve side by side until the last
        host is switched. With breaking operations and O(allow_breaking=false), C(breaking_gate.refused) is V(true).
      - V(false) (one host) only reports breaking operations.
    type: bool
    default: false
  allow_breaking:
    description: Let a rolling deploy go on with breaking operations (C(breaking_gate.decision=allowed)).
    type: bool
    default: false
  actor:
    description: Who deploys, named in C(breaking_gate.message) when breaking operations are allowed.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Decide the migration strategy
  migration_strategy:
    report: "{{ dryrun.report }}"
    abort_on: [table-rewrite]
    accept: "{{ smart_deploy_accept }}"
    rolling: "{{ smart_deploy_rolling }}"
    allow_breaking: "{{ smart_deploy_allow_breaking }}"
  register: strategy

- name: Stop a rolling deploy whose migrations the old release cannot live with
  ansible.builtin.fail:
    msg: "{{ strategy.breaking_gate.message }}"
  when: strategy.breaking_gate.refused

- name: Stop on abort
  ansible.builtin.fail:
    msg: "{{ strategy.reasons | join('; ') }}"
  when: strategy.strategy == 'abort'
"""

RETURN = r"""
strategy:
  description: V(normal), V(fake) or V(abort).
  returned: always
  type: str
pending:
  description: The pending migrations, in plan order.
  returned: always
  type: list
  elements: str
fake:
  description: Migrations to fake in production, in order (only with V(fake)).
  returned: always
  type: list
  elements: str
apply:
  description: Migrations to apply in production, in order (empty with V(abort)).
  returned: always
  type: list
  elements: str
reasons:
  description: Why the verdict is V(abort) (the texts of C(abort_reasons)).
  returned: always
  type: list
  elements: str
abort_reasons:
  description: The reasons that make the verdict V(abort), each with its C(code) and C(reason) text.
  returned: always
  type: list
  elements: dict
defect:
  description:
    - V(true) when a reason is smart-deploy's own failure (code C(smart-deploy-defect) - its driver broke, or its result
      could not be read), which no O(accept) takes.
  returned: always
  type: bool
abort_message:
  description:
    - What to stop with on V(abort) (empty otherwise) - every reason and the override for their codes, or, with
      smart-deploy's own defect among them, that it is smart-deploy's defect (no override suggested).
  returned: always
  type: str
accepted:
  description: Reasons that would have aborted but whose code was in O(accept), each with its C(code) and C(reason) text.
  returned: always
  type: list
  elements: dict
accepted_unused:
  description: Codes in O(accept) that no reason had.
  returned: always
  type: list
  elements: str
migration_warnings:
  description: Dangerous operations found, with the figures measured on the copy.
  returned: always
  type: list
  elements: dict
summary:
  description: One line saying what will happen.
  returned: always
  type: str
breaking:
  description:
    - The pending migrations' operations the old release cannot live with, in plan order, each with C(migration),
      C(operation), C(rule) (C(drop-table), C(drop-column), C(rename-table), C(rename-column), C(set-not-null),
      C(add-not-null-column)), C(table), C(column) (null for a table) and C(why).
  returned: always
  type: list
  elements: dict
breaking_unchecked:
  description: Operations whose effect on the schema could not be read (C(migration), C(operation), C(error)).
  returned: always
  type: list
  elements: dict
backward_compatible:
  description:
    - V(true) when no pending migration has a breaking or unreadable operation - the old release can run on the migrated
      database, so a failed roll may keep it.
  returned: always
  type: bool
breaking_gate:
  description:
    - What the deploy does with C(breaking) - C(decision) (V(none), V(refused), V(allowed), V(reported)), C(refused) (bool)
      and C(message) naming each operation (and, when refused, the two ways out).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.compat import gate
from ansible.module_utils.smart_deploy.strategy import REASON_CODES, decide


def main():
    module = AnsibleModule(
        argument_spec=dict(
            report=dict(type="dict", required=True),
            lint=dict(type="dict", default={}),
            abort_on=dict(type="list", elements="str", default=[]),
            accept=dict(type="list", elements="str", default=[]),
            require_rehearsal=dict(type="bool", default=True),
            rolling=dict(type="bool", default=False),
            allow_breaking=dict(type="bool", default=False),
            actor=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    report = module.params["report"]
    if "pending" not in report and not report.get("errors") and not (report.get("prechecks") or {}).get("errors"):
        module.fail_json(msg="this is not a rehearsal report (no 'pending' list): pass the report of django_migration_dryrun")
    accept = [code.strip() for code in module.params["accept"] if code.strip()]
    unknown = [code for code in accept if code not in REASON_CODES]
    if unknown:
        module.fail_json(msg="accept: unknown abort reason codes %s (known: %s)" % (", ".join(unknown), ", ".join(REASON_CODES)))
    verdict = decide(report, module.params["lint"], module.params["abort_on"], module.params["require_rehearsal"], accept)
    # "warnings" is Ansible's own key for module warnings
    verdict["migration_warnings"] = verdict.pop("warnings")
    verdict["breaking_gate"] = gate(verdict["breaking"], module.params["rolling"], module.params["allow_breaking"], module.params["actor"])
    module.exit_json(changed=False, **verdict)


if __name__ == "__main__":
    main()
