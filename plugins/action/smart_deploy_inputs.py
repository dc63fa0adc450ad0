# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action smart_deploy_inputs: check smart-deploy's variables on the controller before anything changes.

Reads each variable of the asked groups, templated one by one (a variable that cannot be templated is
a problem of its own, named), and runs the rules of module_utils/smart_deploy/inputs.py. Fails with
every problem found, each naming its variable; secrets' values are never shown. Runs no module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.plugins.action import ActionBase

_spec = importlib.util.spec_from_file_location(
    "smart_deploy_inputs_rules", Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / "inputs.py"
)
rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rules)

SECRETS = (
    "smart_deploy_db_password",
    "smart_deploy_django_secret_key",
    "smart_deploy_app_secret_env",
    "smart_deploy_tls_key",
    "smart_deploy_accessories",
    "manage_env",
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        groups = self._task.args.get("groups", ["app"])
        unknown = [g for g in groups if g not in rules.GROUPS]
        if unknown:
            return dict(result, failed=True, msg="smart_deploy_inputs: unknown groups %s (known: %s)" % (unknown, sorted(rules.GROUPS)))
        values, problems = {}, []
        for group in groups:
            for name in rules.GROUPS[group]:
                if name in values or name not in task_vars:
                    continue
                try:
                    values[name] = self._templar.template(task_vars[name])
                except Exception as exc:  # an undefined variable inside it, a template error: name it
                    shown = "" if name in SECRETS else ": %s" % str(exc).splitlines()[0][:300]
                    problems.append("%s cannot be evaluated%s" % (name, shown))
        problems += rules.problems_of(values, groups)
        if "app" in groups:  # a *_tasks_file variable that is no hook would name a file that never runs
            problems += rules.hook_variable_problems(task_vars)
        result["changed"] = False
        if problems:
            result["failed"] = True
            result["msg"] = "Bad input, nothing was changed on %s:\n- %s" % (
                task_vars.get("inventory_hostname", "the host"),
                "\n- ".join(problems),
            )
        else:
            result["checked"] = sorted(values)
            result["msg"] = "%d inputs checked" % len(values)
        return result
