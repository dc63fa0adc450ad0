# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Execution strategy of smart-deploy's playbooks: Ansible's ``linear``, run by Mitogen for Ansible when
it is installed (requirements.txt installs it), else Ansible's own ``linear``.

Mitogen keeps one Python interpreter per target and sends modules to it instead of starting a new
interpreter for every task: the same playbooks, the same results, a deploy about twice as fast.
``ANSIBLE_STRATEGY=linear ansible-playbook ...`` runs without it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: smart_deploy
short_description: linear, executed through Mitogen for Ansible when it is installed
description:
  - Tasks run in order on every host, as with C(ansible.builtin.linear).
  - When the C(mitogen) package is importable, modules run through Mitogen's persistent interpreters
    (much less per-task overhead); otherwise this is plain C(linear).
author: smart-deploy contributors
"""

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError:  # Mitogen not installed: plain linear
    from ansible.plugins.strategy.linear import StrategyModule  # noqa: F401
else:
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
        pass
