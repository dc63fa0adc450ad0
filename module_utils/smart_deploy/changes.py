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


def context_glob(context: str, pattern: str = "**") -> str:
    """A glob of ``pattern`` under a build context relative to the app source ('.' is the source itself)."""
    context = (context or ".").strip().strip("/")
    while context.startswith("./"):
        context = context[2:]
    return pattern if context in ("", ".") else "%s/%s" % (context, pattern)


def derive_rules(components: dict, django: str = "backend", migration_paths=None) -> dict:
    """Change-detection rules from what the app has: every file under a component's build context is that
    component's (a context inside another's counts for both: the outer image may copy it; a worker without a
    context runs the Django component's image and restarts with it), and the
    migrations (``**/migrations/*.py`` under the Django component's context, or ``migration_paths``)
    are a category of their own, which the Django component and the database steps follow.

    Returns {"rules": {category: [globs]}, "component_triggers": {component: [categories]},
    "database_triggers": [categories]}; a category is named after its component."""
    rules, triggers, image_of_django = {}, {}, []
    for name, spec in components.items():
        if isinstance(spec, dict) and "command" in spec and "context" not in spec and name != django:
            image_of_django.append(name)  # a worker that runs the Django component's image: it follows that image
            continue
        context = (spec or {}).get("context", ".") if isinstance(spec, dict) else "."
        rules[name] = [context_glob(context)]
        triggers[name] = [name]
    database = []
    if django in components:
        spec = components[django] if isinstance(components[django], dict) else {}
        paths = list(migration_paths) if migration_paths else [context_glob(spec.get("context", "."), "**/migrations/*.py")]
        rules["migrations"] = paths
        triggers[django] = [django, "migrations"]
        database = [django, "migrations"]
    for name in image_of_django:
        triggers[name] = list(triggers.get(django, []))
    return {"rules": rules, "component_triggers": triggers, "database_triggers": database}


def resolve_rules(
    components=None, django: str = "backend", migration_paths=None, rules=None, component_triggers=None, database_triggers=None
):
    """The rules a deploy uses: each of ``rules``, ``component_triggers``, ``database_triggers`` given
    (overrides, a whole at a time) or else derived from ``components`` (derive_rules). Component triggers
    are kept only for components the app has, so a deploy never names one it does not have.

    Returns (resolved, problems): resolved as derive_rules returns it, problems a list of messages."""
    derived = (
        derive_rules(components or {}, django, migration_paths)
        if components
        else {"rules": {}, "component_triggers": {}, "database_triggers": []}
    )
    resolved = {
        "rules": dict(rules) if rules else derived["rules"],
        "component_triggers": dict(component_triggers) if component_triggers else derived["component_triggers"],
        "database_triggers": list(database_triggers) if database_triggers is not None else derived["database_triggers"],
    }
    problems = []
    if not resolved["rules"]:
        problems.append("no rules: give rules, or components to derive them from")
    for category, patterns in resolved["rules"].items():
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            problems.append("rules.%s must be a list of glob patterns, got %r" % (category, patterns))
    if components:
        resolved["component_triggers"] = {c: t for c, t in resolved["component_triggers"].items() if c in components}
    for component, categories in resolved["component_triggers"].items():
        if not isinstance(categories, list):
            problems.append("component_triggers.%s must be a list of categories, got %r" % (component, categories))
            continue
        unknown = [c for c in categories if c not in resolved["rules"]]
        if unknown:
            problems.append("component_triggers.%s names categories with no rule: %s (rules: %s)"
                            % (component, ", ".join(map(str, unknown)), ", ".join(sorted(resolved["rules"]))))  # fmt: skip
    unknown = [c for c in resolved["database_triggers"] if c not in resolved["rules"]]
    if unknown:
        problems.append(
            "database_triggers names categories with no rule: %s (rules: %s)"
            % (", ".join(map(str, unknown)), ", ".join(sorted(resolved["rules"])))
        )
    return resolved, problems
