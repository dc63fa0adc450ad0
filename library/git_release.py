#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: git_release
short_description: Name a release after the git commit of the application source
description:
  - Reads the application's git checkout and returns the release id smart-deploy tags images and
    records releases with - the first O(length) characters of the commit sha, or more when those would read
    as a number in YAML (all digits, like C(851263105671)). The id then grows one character at a time until it
    reads as text, so that an answer in an AWX survey, an extra var or an inventory gives the rollback the id
    itself, never a number (or an octal one's value).
  - When the application folder has uncommitted changes, the id gets a C(-dirty.<hash>) suffix, the
    hash being that of the working tree content, so two different uncommitted states never share an id
    and the same state always gets the same one. The checkout and its index are not modified.
  - An explicit O(release) is validated (image-tag safe) and used as it is.
  - Usually run on the controller (with C(delegate_to=localhost)), where the source is.
options:
  path:
    description: Application source folder (inside a git checkout).
    type: path
    required: true
  release:
    description: Use this release id instead of the one derived from git.
    type: str
  length:
    description: Characters of the sha to use (more when that many would read as a number in YAML).
    type: int
    default: 12
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
- name: Which release is this?
  git_release:
    path: "{{ playbook_dir }}/../examples/shop"
  delegate_to: localhost
  run_once: true
  register: release
"""

RETURN = r"""
release_id:
  description: The release id.
  returned: always
  type: str
  sample: 3f2a1b9c0d1e
sha:
  description: Full commit sha of HEAD (null when not a git checkout and O(release) was given).
  returned: always
  type: str
tree:
  description: Git tree id of the application folder at HEAD.
  returned: when in a git checkout
  type: str
content:
  description:
    - Git tree id of what is deployed - the application folder as it is on disk, uncommitted changes
      included (equal to RV(tree) when nothing is uncommitted). Recorded with the release, so that a release
      id reused for other code is refused.
  returned: when in a git checkout
  type: str
dirty:
  description: Whether the application folder has uncommitted changes.
  returned: always
  type: bool
subject:
  description: Subject line of the commit.
  returned: when in a git checkout
  type: str
"""

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What YAML 1.1 (PyYAML, as Ansible and AWX read it) reads as a number among strings of hex digits: an integer
# (decimal, or octal with a leading 0) and a binary one (0b101). Without a dot no hex string is a float there.
NUMBER_LIKE = re.compile(r"^(?:[0-9]+|0b[01]+)$")


def sha_release_id(sha, length):
    """The first `length` characters of `sha`, or more until YAML would read them as text: a release id of digits
    only goes through a survey answer or an unquoted extra var as a number, and the rollback refuses a number."""
    n = length
    while n < len(sha) and NUMBER_LIKE.match(sha[:n]):
        n += 1
    return sha[:n]


def git(module, path, *args, env=None, check=True):
    rc, out, err = module.run_command(["git", "-C", path] + list(args), environ_update=env or {})
    if check and rc != 0:
        raise RuntimeError("git %s failed in %s: %s" % (" ".join(args), path, (err or out).strip()))
    return rc, out.strip()


def working_tree_id(module, path, prefix=""):
    """Tree id of the working tree's app folder (tracked and untracked, .gitignore respected), via a scratch index."""
    _rc, index = git(module, path, "rev-parse", "--path-format=absolute", "--git-path", "index")
    tmpdir = tempfile.mkdtemp(prefix="smart-deploy-index-")
    try:
        scratch = os.path.join(tmpdir, "index")
        if os.path.exists(index):
            shutil.copyfile(index, scratch)
        env = {"GIT_INDEX_FILE": scratch}
        git(module, path, "add", "-A", "--", ".", env=env)
        _rc, tree = git(module, path, "write-tree", *(["--prefix=" + prefix] if prefix else []), env=env)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return tree


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            release=dict(type="str"),
            length=dict(type="int", default=12),
        ),
        supports_check_mode=True,
    )
    path, wanted, length = module.params["path"], module.params["release"], module.params["length"]
    if not 7 <= length <= 40:
        module.fail_json(msg="length must be between 7 and 40, got %d" % length)
    if wanted is not None and not RELEASE_RE.match(wanted):
        module.fail_json(
            msg="release %r is not a valid release id: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)" % wanted
        )
    if not os.path.isdir(path):
        module.fail_json(msg="application source %s does not exist" % path)
    if module.get_bin_path("git") is None:
        module.fail_json(msg="git is not installed on %s" % "this host")

    rc, _top = git(module, path, "rev-parse", "--show-toplevel", check=False)
    if rc != 0:
        if wanted:
            module.exit_json(changed=False, release_id=wanted, sha=None, dirty=False)
        module.fail_json(
            msg="%s is not in a git checkout: smart-deploy names releases after the git sha. "
            "Commit the app to git, or pass a release id (-e smart_deploy_release=ID)." % path
        )
    try:
        rc, sha = git(module, path, "rev-parse", "--verify", "HEAD", check=False)
        if rc != 0:
            module.fail_json(msg="%s has no commit yet: commit the application first" % path)
        _rc, tree = git(module, path, "rev-parse", "HEAD:./")
        _rc, subject = git(module, path, "log", "-1", "--format=%s", "HEAD")
        _rc, status = git(module, path, "status", "--porcelain", "--untracked-files=normal", "--", ".")
        dirty = bool(status)
        _rc, prefix = git(module, path, "rev-parse", "--show-prefix")
        content = working_tree_id(module, path, prefix) if dirty else tree
        release_id = wanted or sha_release_id(sha, length)
        if dirty and not wanted:
            release_id = "%s-dirty.%s" % (sha[:length], content[:8])
    except RuntimeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, release_id=release_id, sha=sha, tree=tree, content=content, dirty=dirty, subject=subject)


if __name__ == "__main__":
    main()
