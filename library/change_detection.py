#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: change_detection
short_description: Classify what changed between two releases of an app into components
description:
  - Lists the paths that differ between the live release's commit (O(base)) and the commit being
    deployed (O(head)), inside the app's source folder, and classifies them with glob O(rules) into
    categories (frontend, backend, infra, migrations... as the rules name them).
  - Renames count for both their old and new paths; deletions count; a merge is compared as the trees of
    the two commits. With O(include_worktree), uncommitted and untracked files (git-ignored ones left out)
    count too.
  - With no O(base) (first deploy, or a live release with no known commit) every category counts as changed.
  - From O(component_triggers) and O(database_triggers) it says which components to rebuild and whether the
    database steps must run; nothing at all means the deploy can be a no-op.
  - Runs git on the machine where the source is (usually the controller, with C(delegate_to=localhost)).
options:
  path:
    description: The app's source folder, inside a git checkout.
    type: path
    required: true
  base:
    description: Commit of the live release. Omit for a first deploy.
    type: str
  head:
    description: Commit being deployed.
    type: str
    default: HEAD
  include_worktree:
    description: Also count uncommitted and untracked changes in the folder (a dirty release).
    type: bool
    default: false
  components:
    description:
      - The app's components (name -> at least C(context), the build context relative to O(path)), as in
        C(smart_deploy_components). O(rules), O(component_triggers) and O(database_triggers) not given are
        derived from them - every file under a component's context is that component's; the migrations
        (O(migration_paths)) are a category of their own that rebuilds the Django component and runs the
        database steps, as a change of the Django component does.
      - Component triggers are kept only for the components given, so the result never names a component
        the app does not have.
    type: dict
    default: {}
  django_component:
    description: The component that holds Django (its changes and the migrations run the database steps).
    type: str
    default: backend
  migration_paths:
    description: Globs of the migrations; default C(**/migrations/*.py) under the Django component's context.
    type: list
    elements: str
    default: []
  rules:
    description:
      - Category -> glob patterns, relative to O(path). C(*) stays within a folder, C(**) crosses folders.
      - Given, they replace the rules derived from O(components) as a whole.
    type: dict
    default: {}
  component_triggers:
    description: Component -> the categories whose change rebuilds and restarts it; given, replaces the derived ones.
    type: dict
    default: {}
  database_triggers:
    description:
      - Categories whose change makes the database steps (rehearsal, backup, migrate) run; given (even empty),
        replaces the derived ones.
    type: list
    elements: str
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
- name: What changed since the live release?
  change_detection:
    path: "{{ smart_deploy_app_source }}"
    base: "{{ smart_deploy_live.sha | default(omit) }}"
    # rules derived from the build contexts: backend/** -> backend, frontend/** -> frontend,
    # backend/**/migrations/*.py -> migrations (which rebuild the backend and run the database steps)
    components: "{{ smart_deploy_components }}"
    django_component: backend
  delegate_to: localhost
  register: changes

- name: The same with rules of your own (replacing the derived ones as a whole)
  change_detection:
    path: "{{ smart_deploy_app_source }}"
    base: "{{ smart_deploy_live.sha | default(omit) }}"
    components: "{{ smart_deploy_components }}"
    rules:
      migrations: ["backend/src/*/migrations/**"]
      backend: ["backend/**", "shared/**"]
      frontend: ["frontend/**", "shared/**"]
    component_triggers:
      backend: [backend, migrations]
      frontend: [frontend]
    database_triggers: [backend, migrations]
  delegate_to: localhost
  register: changes
"""

RETURN = r"""
rules:
  description: The rules used (given or derived) - C(rules), C(component_triggers), C(database_triggers).
  returned: always
  type: dict
  sample:
    rules: {backend: ["backend/**"], migrations: ["backend/**/migrations/*.py"]}
    component_triggers: {backend: [backend, migrations]}
    database_triggers: [backend, migrations]
categories:
  description: Category -> the changed files in it.
  returned: always
  type: dict
  sample: {backend: [backend/src/cart/models.py], frontend: [], infra: [], migrations: []}
files:
  description: Every changed path (relative to O(path)).
  returned: always
  type: list
  elements: str
categories_changed:
  description: Categories with at least one change.
  returned: always
  type: list
  elements: str
rebuild:
  description: Components to build and restart.
  returned: always
  type: list
  elements: str
reuse:
  description: Components whose live image and containers stay.
  returned: always
  type: list
  elements: str
database:
  description: Whether the database steps must run.
  returned: always
  type: bool
nothing:
  description: True when no component and no database step is concerned.
  returned: always
  type: bool
first_deploy:
  description: True when there was no base to compare with.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.smart_deploy.changes import classify, decide, resolve_rules


def git(module, path, *args):
    rc, out, err = module.run_command(["git", "-C", path, *args])
    if rc != 0:
        module.fail_json(msg="git %s failed in %s: %s" % (" ".join(args), path, (err or out).strip()))
    return out


def commit_exists(module, path, ref):
    rc, _out, _err = module.run_command(["git", "-C", path, "cat-file", "-e", "%s^{commit}" % ref])
    return rc == 0


def changed_paths(module, path, base, head, include_worktree):
    """Paths that differ, relative to ``path``; both sides of a rename."""
    args = ["diff", "--name-status", "-M", "--relative", "-z", base]
    if not include_worktree:
        args.append(head)
    fields = git(module, path, *args).split("\0")
    paths, i = [], 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status[0] in "RC":  # rename or copy: old and new path follow
            paths += fields[i + 1 : i + 3]
            i += 3
        else:
            paths.append(fields[i + 1])
            i += 2
    if include_worktree:
        paths += [p for p in git(module, path, "ls-files", "--others", "--exclude-standard", "-z", "--", ".").split("\0") if p]
    return sorted(set(paths))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            base=dict(type="str"),
            head=dict(type="str", default="HEAD"),
            include_worktree=dict(type="bool", default=False),
            components=dict(type="dict", default={}),
            django_component=dict(type="str", default="backend"),
            migration_paths=dict(type="list", elements="str", default=[]),
            rules=dict(type="dict", default={}),
            component_triggers=dict(type="dict", default={}),
            database_triggers=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path, base, head = params["path"], params["base"], params["head"]
    resolved, problems = resolve_rules(params["components"], params["django_component"], params["migration_paths"],
                                       params["rules"], params["component_triggers"], params["database_triggers"])  # fmt: skip
    if problems:
        module.fail_json(msg="change detection rules: %s" % "; ".join(problems), rules=resolved)
    if not commit_exists(module, path, head):
        module.fail_json(msg="commit %s does not exist in %s" % (head, path))
    first_deploy = not base
    if base and not commit_exists(module, path, base):
        module.fail_json(
            msg="the live release's commit %s does not exist in %s: fetch the full history (a shallow clone?) "
            "or deploy with change detection off (-e change_detection_enabled=false)" % (base, path)
        )
    if first_deploy:
        files = [p for p in git(module, path, "ls-files", "-z", "--", ".").split("\0") if p]
    else:
        files = changed_paths(module, path, base, head, params["include_worktree"])
    categories = classify(files, resolved["rules"])
    result = decide(categories, resolved["component_triggers"], resolved["database_triggers"], first_deploy)
    module.exit_json(
        changed=False, categories=categories, files=files if not first_deploy else [], base=base, head=head, rules=resolved, **result
    )


if __name__ == "__main__":
    main()
