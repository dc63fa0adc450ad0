# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which components a change touches: changed paths classified by glob rules. Pure logic, no I/O.

Globs are matched against the whole path relative to the app's source folder: `*` and `?` stay
within one folder, `**` crosses folders (`backend/**` is everything under backend/).
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> "re.Pattern[str]":
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def matches(path: str, patterns) -> bool:
    return any(glob_to_regex(pattern).match(path) for pattern in patterns)


def classify(paths, rules: dict) -> dict:
    """{category: [paths]} for every category of ``rules`` ({category: [globs]}); a path may fall in
    several categories (a migration is backend code too) or in none (documentation)."""
    found = {category: [] for category in rules}
    for path in sorted(set(paths)):
        for category, patterns in rules.items():
            if matches(path, patterns):
                found[category].append(path)
    return found


def decide(classified: dict, component_triggers: dict, database_triggers, first_deploy: bool) -> dict:
    """What a deploy must do about a change: which components to rebuild and restart, whether the
    database steps (rehearsal, backup, migrate) run, or whether there is nothing to do at all."""
    changed = sorted(category for category, paths in classified.items() if paths) if not first_deploy else sorted(classified)
    rebuild = sorted(component for component, triggers in component_triggers.items() if first_deploy or any(t in changed for t in triggers))
    database = first_deploy or any(category in changed for category in database_triggers)
    return {
        "categories_changed": changed,
        "unchanged": sorted(set(classified) - set(changed)),
        "rebuild": rebuild,
        "reuse": sorted(set(component_triggers) - set(rebuild)),
        "database": database,
        "nothing": not rebuild and not database,
        "first_deploy": first_deploy,
    }
