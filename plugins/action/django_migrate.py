# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of the modules that run smart-deploy's driver in a container of the app's image
(django_migrate, django_migration_dryrun): hands the driver's source, read on the controller, to the
module as its ``driver_source`` option.

The module mounts that source into a one-off container. Reading it on the controller works however
modules reach the target (AnsiballZ, or an execution strategy such as Mitogen's that loads module_utils
without keeping their source text).
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase

DRIVER = Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / "django_driver.py"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        args["driver_source"] = DRIVER.read_text(encoding="utf-8")
        result.update(self._execute_module(module_name=self._task.action, module_args=args, task_vars=task_vars))
        return result
