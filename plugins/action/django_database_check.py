# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The driver-source action of django_migrate (see plugins/action/django_migrate.py), for django_database_check.

Loaded from its file rather than through Ansible's plugin loader, which may hand back a class already
adorned by an execution strategy (Mitogen's) that would then be adorned twice.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("smart_deploy_action_django_migrate", Path(__file__).with_name("django_migrate.py"))
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


class ActionModule(_module.ActionModule):
    pass
