# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What smart-deploy's inputs must look like, checked before anything changes. Pure logic.

Each check returns the problems it found, as sentences that name the variable (never a secret's
value) and say what is expected. The action plugin ``smart_deploy_inputs`` runs them on the
controller at the start of every playbook; ``state_folder`` (on the target) reuses the state folder
rules. Self-contained on purpose: the action plugin loads this file by its path.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import os
import re
import shlex
from typing import Any, Callable, Iterable, List, Optional

APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DOCKER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
PG_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,48}$")
# A host name or address a container connects to (letters, digits, '.', '-', '_', ':' for IPv6).
DB_HOST_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
DB_MODES = ("container", "external")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ROUTE_PATH_RE = re.compile(r"^/[A-Za-z0-9/_.~-]*$")
# docker logs --since: a Go duration (10m, 1h30m, 45s), a unix time, or an RFC 3339 date/time
SINCE_RE = re.compile(
    r"^(?:(?:\d+(?:\.\d+)?(?:h|m|s|ms))+|\d{9,11}(?:\.\d+)?|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)$"
)
TRUE_WORDS = ("true", "yes", "on", "1", "y", "t")
FALSE_WORDS = ("false", "no", "off", "0", "n", "f")
# Abort reason codes smart_deploy_accept may list: the keys of strategy.REASON_CODES (a unit test keeps them equal;
# this file stays self-contained, the action plugin loads it by its path)
ACCEPT_CODES = (
    "inconsistent-history", "migration-conflict", "missing-migration-sql", "missing-migration-unknown", "copy-not-faithful",
    "rehearsal-failed", "plan-mismatch", "not-rehearsed", "schema-drift", "duplicate-rows", "null-rows", "rows-without-value",
    "migration-failed", "fake-unproven", "migration-not-applied", "pending-after-rehearsal", "abort-on-warning",
)  # fmt: skip

# Folders a state folder may never be, nor be inside of (those in SYSTEM_TREES). A state folder gets
# mode 0750, its own files and subfolders: pointing it at a shared or system folder would change that
# folder's mode or mix two owners' files.
SYSTEM_FOLDERS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run /sbin /srv /sys /tmp /usr "
    "/var /var/backups /var/cache /var/lib /var/lib/docker /var/local /var/lock /var/log /var/mail /var/opt /var/run "
    "/var/spool /var/tmp /usr/local /usr/share /usr/lib /usr/bin /usr/sbin /snap".split()
)
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr",
                "/var/lib/docker", "/var/lib/postgresql")  # fmt: skip

# Numbers of the roles: variable -> smallest value allowed.
NUMBERS = {
    "db_backup_keep": 1,
    "cleanup_keep_backups": 1,
    "cleanup_keep_releases": 0,
    "preflight_lock_ttl": 1,
    "preflight_min_free_mb": 0,
    "preflight_cleanup_below_mb": 0,
    "preflight_db_timeout": 1,
    "release_health_timeout": 1,
    "release_health_log_lines": 0,
    "proxy_drain_timeout": 0,
    "proxy_timeout_client": 1,
    "proxy_timeout_server": 1,
    "proxy_keepalive_timeout": 1,
    "proxy_max_body_bytes": 1,
    "proxy_hard_stop_after": 1,
    "release_stop_timeout": 0,
    "release_worker_settle": 0,
    "health_check_retries": 1,
    "health_check_delay": 0,
    "health_check_timeout": 1,
    "migrate_timeout": 1,
    "migration_validation_timeout": 1,
    "app_tests_timeout": 1,
}
# Seconds that may have a fraction (0.5): variable -> largest allowed; each must be above 0.
FRACTIONS = {"release_health_interval": 60}
# Variables an older smart-deploy read, with what replaced them: set, they would be ignored without a word.
RENAMED = {
    "release_health_retries": "release_health_timeout (seconds the health gate waits at most, default 60)",
    "release_health_delay": "release_health_interval (seconds between two looks, default 0.5)",
    "release_drain_seconds": "proxy_drain_timeout (the old containers stop as soon as the proxy says their requests finished)",
}
BOOLEANS = (
    "smart_deploy_emergency", "smart_deploy_app_tests", "db_backup_always", "build_force", "change_detection_enabled",
    "smart_deploy_allow_breaking", "smart_deploy_rolling", "release_database_check", "rollback_restore_maintenance",
)  # fmt: skip

# The short names ./deploy passes (-e release=ID) and the role variables they default to, which AWX surveys
# and -e set directly (rollback_release, ...): both are checked, each under its own name.
ROLE_NAMES = {
    "rollback": {"release": "rollback_release", "restore_db": "rollback_restore_db"},
    "status": {"history": "status_history"},
    "logs": {"lines": "logs_lines", "component": "logs_component", "since": "logs_since"},
    "maintenance": {"maintenance": "proxy_maintenance_state", "message": "proxy_maintenance_message"},
}
# The variables of HTTPS at the proxy (groups tls and tls_rollback).
TLS_VARIABLES = (
    "smart_deploy_tls_certificate",
    "smart_deploy_tls_key",
    "smart_deploy_http_bind",
    "smart_deploy_http_port",
    "smart_deploy_https_bind",
    "smart_deploy_https_port",
    "smart_deploy_https_redirect",
    "smart_deploy_hsts_max_age",
    "smart_deploy_trusted_proxies",
)

# The variables each group of checks reads.
GROUPS = {
    "app": (
        "smart_deploy_app_name", "smart_deploy_scope", "smart_deploy_app_source", "smart_deploy_state_dir", "smart_deploy_components",
        "smart_deploy_django_component",
        "smart_deploy_release", "smart_deploy_db_container", "smart_deploy_db_volume", "smart_deploy_network",
        "smart_deploy_db_name", "smart_deploy_db_user", "smart_deploy_http_bind", "smart_deploy_http_port",
        "smart_deploy_db_mode", "smart_deploy_db_host", "smart_deploy_db_port", "smart_deploy_db_sslmode", "smart_deploy_db_client_image",
        "smart_deploy_app_env", "smart_deploy_app_secret_env", "health_check_endpoints", "smart_deploy_routes",
        "smart_deploy_accept", "smart_deploy_accessories", "groups",
        "release_health_forwarded_proto", "smart_deploy_server_name",
    ) + tuple(NUMBERS) + tuple(FRACTIONS) + tuple(RENAMED) + BOOLEANS,
    "secrets": ("smart_deploy_db_password", "smart_deploy_django_secret_key"),
    "tls": TLS_VARIABLES,
    "tls_rollback": TLS_VARIABLES,
    "manage": ("manage_args", "manage_env", "manage_lock"),
    "maintenance": ("maintenance", "message", "proxy_maintenance_state", "proxy_maintenance_message", "proxy_maintenance_page",
                    "proxy_maintenance_retry_after"),
    "rollback": ("release", "restore_db") + tuple(ROLE_NAMES["rollback"].values()),
    "status": ("history", "status_html", "status_last") + tuple(ROLE_NAMES["status"].values()),
    "logs": ("lines", "component", "since", "smart_deploy_components", "smart_deploy_accessories") + tuple(ROLE_NAMES["logs"].values()),
}  # fmt: skip


def state_dir_problem(path: Any, name: str = "smart_deploy_state_dir") -> Optional[str]:
    """Why ``path`` cannot be a state folder (None when it can): it must be an absolute, normalised
    path of its own - not the root, a system folder, a folder inside a system tree, or one level deep."""
    if not isinstance(path, str) or not path:
        return "%s must be an absolute path such as /srv/<app>, got %r" % (name, path)
    if not path.startswith("/"):
        return "%s must be an absolute path such as /srv/<app>, got '%s'" % (name, path)
    normal = os.path.normpath(path)
    if normal != (path.rstrip("/") or "/") or "//" in path:
        return "%s must be a plain absolute path (no '..', '.', '//'), got '%s' (did you mean '%s'?)" % (name, path, normal)
    if normal in SYSTEM_FOLDERS:
        return ("%s is '%s', a system or shared folder: smart-deploy would change its mode and mix its files with others'. "
                "Use a folder of the app's own, such as /srv/<app>" % (name, path))  # fmt: skip
    for tree in SYSTEM_TREES:
        if normal.startswith(tree + "/"):
            return "%s is '%s', inside the system folder %s: use a folder of the app's own, such as /srv/<app>" % (name, path, tree)
    if normal.count("/") < 2:
        return "%s is '%s', a top-level folder: use a folder of the app's own one level down, such as /srv/<app>" % (name, path)
    return None


def as_int(value: Any) -> Optional[int]:
    """``value`` as an integer when it is one (an int, or a string of digits), else None. Booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^-?\d+$", value.strip()):
        return int(value.strip())
    return None


def as_float(value: Any) -> Optional[float]:
    """``value`` as a number when it is one (an int, a float, or a string of one), else None. Booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.match(r"^-?(\d+(\.\d*)?|\.\d+)$", value.strip()):
        return float(value.strip())
    return None


def as_bool(value: Any) -> Optional[bool]:
    """``value`` as a boolean when it clearly is one (true/false, yes/no, 1/0 ...), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def kind_of(value: Any) -> str:
    """'a boolean', 'a number', 'a list'... of a value (Ansible's tagged types included), without the value."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "nothing (null)"
    for kind, words in ((str, "a string"), (int, "a number"), (float, "a number"), (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return words
    return "a " + type(value).__name__


def describe(value: Any) -> str:
    """A value as a message shows it, with its kind: 'true (a boolean)', "'8080x' (a string)"."""
    if isinstance(value, bool):
        return "%s (a boolean)" % str(value).lower()
    if value is None:
        return "nothing (null)"
    for kind, words in ((str, "a string"), (int, "a number"), (float, "a number"), (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            shown = repr(kind(value)) if kind in (str, int, float) else repr(value)
            return "%s (%s)" % (shown[:200], words)
    return "%r (%s)" % (value, type(value).__name__)


def env_problems(name: str, env: Any, secret: bool) -> List[str]:
    if env is None:
        return []
    if not isinstance(env, dict):
        return ["%s must be a mapping of environment variable names to strings, got %s" % (name, kind_of(env))]
    problems = []
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_NAME_RE.match(key):
            problems.append("%s has the key %r, which is not an environment variable name (letters, digits, '_')" % (name, key))
        elif not isinstance(value, str):
            shown = kind_of(value) if secret else describe(value)
            problems.append(
                '%s.%s is %s: environment values must be strings, quote it in YAML (%s: "%s")'
                % (
                    name,
                    key,
                    shown,
                    key,
                    "..." if secret else ("" if value is None else str(value).lower() if isinstance(value, bool) else value),
                )
            )
        elif "\n" in value:
            problems.append("%s.%s holds a newline, which an environment variable cannot carry to a container" % (name, key))
    return problems


# Keys of the Django component's entry that say where the app lives in its image.
SETTINGS_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}$")


def relative_path_problem(where: str, value: Any, may_be_empty: bool = False) -> Optional[str]:
    """Why ``value`` is not a path inside a component's context (None when it is)."""
    if may_be_empty and value == "":
        return None
    if not isinstance(value, str) or not value.strip() or value.startswith("/") or ".." in value.split("/"):
        return "%s must be a path inside the component's context (relative, no '..'), got %r" % (where, value)
    return None


def django_layout_problems(where: str, spec: dict) -> List[str]:
    """The image-layout keys of the Django component (project_dir, python, settings_module, source_dir,
    requirements, wheels, python_version, platforms): each optional, each checked when given."""
    problems = []
    project_dir = spec.get("project_dir", "")
    if project_dir not in ("", None) and (not isinstance(project_dir, str) or not project_dir.startswith("/")):
        problems.append(
            "%s.project_dir must be the absolute folder of manage.py in the image (such as /app), got %r" % (where, project_dir)
        )
    python = spec.get("python", "python")
    if not isinstance(python, str) or not python.strip() or " " in python:
        problems.append("%s.python must be the Python command of the image (python, /opt/venv/bin/python), got %r" % (where, python))
    settings = spec.get("settings_module", "")
    if settings not in ("", None) and (not isinstance(settings, str) or not SETTINGS_MODULE_RE.match(settings)):
        problems.append("%s.settings_module must be a dotted Python module (mysite.settings), got %r" % (where, settings))
    for key, empty_ok in (("source_dir", False), ("requirements", True), ("wheels", False)):
        if key in spec:
            problem = relative_path_problem("%s.%s" % (where, key), spec[key], may_be_empty=empty_ok)
            if problem:
                problems.append(problem)
    version = spec.get("python_version", "3.11")
    if not isinstance(version, str) or not PYTHON_VERSION_RE.match(version):
        problems.append("%s.python_version must be the image's Python as a quoted string such as '3.11', got %r" % (where, version))
    platforms = spec.get("platforms", ["manylinux2014_x86_64"])
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, str) and p.strip() for p in platforms):
        problems.append("%s.platforms must be a list of wheel platforms (manylinux2014_x86_64), got %s" % (where, describe(platforms)))
    return problems


# --- workers and volumes (README, "Workers and volumes") ----------------------------------------------------
# The keys each mapping of smart_deploy_components may have: every component, workers only (a component with a
# `command`), the Django component's image layout. module_utils/smart_deploy/services.py keeps the same lists.
COMPONENT_KEYS = ("context", "dockerfile", "container", "port", "health_path", "app_env", "dev_mounts", "volumes",
                  "stop_signal", "stop_timeout")  # fmt: skip
WORKER_KEYS = ("command", "replicas", "singleton", "health_command", "settle")
DJANGO_LAYOUT_KEYS = ("project_dir", "python", "settings_module", "source_dir", "requirements", "wheels", "python_version",
                      "platforms")  # fmt: skip
ROUTE_KEYS = ("path", "component")


def known_component_keys(is_django: bool) -> tuple:
    """The keys a component's entry may have (the Django component's also says where the app lives in its image)."""
    return COMPONENT_KEYS + WORKER_KEYS + (DJANGO_LAYOUT_KEYS if is_django else ())


# --- unknown keys (issue 24) ----------------------------------------------------------------------------------
# Every key of every mapping the inventory gives smart-deploy is one smart-deploy reads: a key it does not know was
# accepted without a word (`volume:` for `volumes:` - no volume, no error); it is refused before anything changes, named
# with the nearest known key. One helper, unknown_key_problems() (the same function smart_deploy_accessories' checks use);
# a mapping variable whose keys are known is one line of KEYED_MAPPINGS. Mappings of free keys (environments, labels,
# database_settings: PostgreSQL's settings, change_detection_rules: categories of the user's own) have no list to check.
# --- mappings with known keys ---------------------------------------------------------------------------------
def unknown_key_problems(where: str, mapping: dict, known: Iterable[str], what: str = "key") -> List[str]:
    """One problem per key of ``mapping`` that is not in ``known``, naming it and the nearest known key:
    "unknown key `max_memory` in smart_deploy_accessories.redis; did you mean `maxmemory`? (known: ...)"."""
    known = sorted(known)
    problems = []
    for key in mapping:
        if key in known:
            continue
        near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        problems.append(
            "unknown %s `%s` in %s%s (known: %s)"
            % (what, key, where, "; did you mean `%s`?" % near[0] if near else "", ", ".join(known) or "none")
        )
    return problems


# Keys of an entry of health_check_endpoints (roles/health_check/meta/argument_specs.yml, kept equal by a unit test) and of
# build_wheelhouses (roles/build: `dockerfile` names the image a wheel is built in when a requirement has only a source
# distribution).
ENDPOINT_KEYS = ("name", "path", "status", "contains")
WHEELHOUSE_KEYS = ("requirements", "dest", "component", "dockerfile")
# The mapping variables whose keys are known: variable -> (shape, known keys). "entries": a list of mappings, each
# entry named variable[i]; "keys": the variable's own keys. One line per variable (smart_deploy_accessories, whose keys
# depend on each accessory's kind, calls unknown_key_problems() itself).
KEYED_MAPPINGS = {
    "smart_deploy_routes": ("entries", ROUTE_KEYS),
    "health_check_endpoints": ("entries", ENDPOINT_KEYS),
    "build_wheelhouses": ("entries", WHEELHOUSE_KEYS),
}


def keyed_mapping_problems(v: dict) -> List[str]:
    """Unknown keys of the variables of KEYED_MAPPINGS (a value of the wrong shape is another check's problem)."""
    problems = []
    for name, (shape, known) in KEYED_MAPPINGS.items():
        value = v.get(name)
        if shape == "entries" and isinstance(value, list):
            for index, entry in enumerate(value):
                if isinstance(entry, dict):
                    problems += unknown_key_problems("%s[%d]" % (name, index), entry, known)
        elif shape == "keys" and isinstance(value, dict):
            problems += unknown_key_problems(name, value, known)
    return problems


def component_key_problems(where: str, component: Any, spec: dict, django: Any) -> List[str]:
    """Unknown keys of one entry of smart_deploy_components: every component's keys, the workers' (worker_problems says
    when they need a `command`), and for the Django component where the app lives in its image - said so when another
    component has one of those."""
    if component == django or django is None:  # None: no such Django component (said once, by component_problems)
        return unknown_key_problems(where, spec, known_component_keys(True))
    layout = [key for key in spec if key in DJANGO_LAYOUT_KEYS]
    problems = ["%s.%s: only the Django component's entry (smart_deploy_django_component: %s) says where the app lives in its "
                "image; remove it here" % (where, key, django) for key in layout]  # fmt: skip
    return problems + unknown_key_problems(where, {k: v for k, v in spec.items() if k not in layout}, known_component_keys(False))


def trigger_problems(v: dict) -> List[str]:
    """change_detection_component_triggers maps components to categories: each key must be a component."""
    triggers, components = v.get("change_detection_component_triggers"), v.get("smart_deploy_components")
    if not isinstance(triggers, dict) or not triggers or not isinstance(components, dict):
        return []
    return unknown_key_problems("change_detection_component_triggers", triggers, [str(c) for c in components], what="component")


# The hooks (README "Hooks"): task files smart-deploy runs at fixed points, each set as a variable of its role ending in
# _tasks_file (a unit test keeps this list equal to the roles' meta/argument_specs.yml). A variable that looks like one
# but is not (`release_before_swtich_tasks_file`) names a file that would never run: refused, with the nearest hook.
HOOK_VARIABLES = (
    "build_before_tasks_file", "build_after_tasks_file", "migrate_before_tasks_file", "migrate_after_tasks_file",
    "release_before_switch_tasks_file", "release_after_switch_tasks_file", "health_check_after_tasks_file",
    "report_on_failure_tasks_file",
)  # fmt: skip
# smart-deploy's roles: a *_tasks_file variable named after one of them is meant as a hook
ROLE_PREFIXES = ("smart_deploy_", "preflight_", "change_detection_", "build_", "app_tests_", "migration_validation_", "database_",
                 "db_backup_", "migrate_", "release_", "proxy_", "health_check_", "report_", "rollback_", "cleanup_", "status_",
                 "logs_", "dev_", "load_balancer_", "accessories_", "manage_")  # fmt: skip


def hook_variable_problems(names: Iterable[Any]) -> List[str]:
    """The variables (``names``: every variable of the play) that end in _tasks_file and are named after a role of
    smart-deploy or close to one of its hooks, but are not a hook."""
    problems = []
    for name in sorted({str(name) for name in names}):
        if not name.endswith("_tasks_file") or name in HOOK_VARIABLES:
            continue
        near = difflib.get_close_matches(name, HOOK_VARIABLES, n=1, cutoff=0.75)
        if near or name.startswith(ROLE_PREFIXES):
            hint = "; did you mean `%s`?" % near[0] if near else ""
            problems.append("unknown hook variable `%s` (smart-deploy runs no such hook: the file would never run)%s (hooks: %s; "
                            "README 'Hooks')" % (name, hint, ", ".join(HOOK_VARIABLES)))  # fmt: skip
    return problems


GROUPS["app"] = GROUPS["app"] + tuple(
    name for name in (*KEYED_MAPPINGS, "change_detection_component_triggers") if name not in GROUPS["app"]
)  # the mappings above: read by the app group's checks


# "<name>:<absolute path in the container>[:ro|:rw]": Docker compose's short syntax, named volumes only
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VOLUME_TARGET_RE = re.compile(r"^/[A-Za-z0-9_./@+-]*$")
# signals a container's stop may send first (docker's --stop-signal), with or without SIG
SIGNALS = ("HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "USR2", "ALRM", "TERM", "CONT", "STOP", "TSTP", "WINCH", "PWR")
# what smart-deploy adds to the environment of every container of a release (README, "Deploying your own app")
SMART_DEPLOY_ENV = ("APP_RELEASE",)


def argv_problem(where: str, value: Any, example: str) -> Optional[str]:
    """Why ``value`` is not an argv (a non-empty list of non-empty strings), with a hint for a string."""
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError:  # an unclosed quote
            words = value.split()
        return ("%s must be a list of strings (argv, no shell), not a string: write %s; to run a shell line, say so: [sh, -c, '...']"
                % (where, "[" + ", ".join(words) + "]" if words else example))  # fmt: skip
    if not isinstance(value, list) or not value or not all(isinstance(arg, str) and arg != "" for arg in value):
        return "%s must be a non-empty list of strings (argv) such as %s, got %s" % (where, example, describe(value))
    return None


def worker_problems(where: str, component: str, spec: dict, django: Any) -> List[str]:
    """A worker (a component with a `command`) runs a command, gets no traffic (no port, no health path), and has
    a whole number of replicas; the worker-only keys need a command."""
    problems = []
    worker = "command" in spec
    if not worker:
        given = [key for key in ("replicas", "singleton", "health_command", "settle") if key in spec]
        if given:
            problems.append("%s.%s %s for workers only (a component with a 'command'); %s has no command" % (
                where, "/".join(given), "is" if len(given) == 1 else "are", where))  # fmt: skip
        return problems
    problem = argv_problem(where + ".command", spec["command"], "[python, manage.py, rqworker]")
    if problem:
        problems.append(problem)
    if component == django:
        problems.append("%s.command: the Django component serves HTTP with its image's own command; run a command in a component "
                        "of its own (a worker: command, no port, no context - it runs this component's image)" % where)  # fmt: skip
    for key in ("port", "health_path"):
        if key in spec and component != django:
            problems.append("%s.%s: %s is a worker (it has a 'command'), which gets no traffic: remove its %s (a health_command "
                            "says when it is ready, README 'Workers and volumes')" % (where, key, where, key))  # fmt: skip
    replicas = spec.get("replicas", 1)
    number = as_int(replicas)
    if number is None or number < 1 or isinstance(replicas, float):
        problems.append("%s.replicas must be a whole number >= 1 (containers of this worker), got %s" % (where, describe(replicas)))
    singleton = spec.get("singleton", False)
    if as_bool(singleton) is None:
        problems.append("%s.singleton must be true or false, got %s" % (where, describe(singleton)))
    elif as_bool(singleton) and number is not None and number > 1:
        problems.append("%s.singleton: a singleton runs one container at a time (replicas: 1), got replicas %d" % (where, number))
    if "health_command" in spec:
        problem = argv_problem(where + ".health_command", spec["health_command"], "[celery, -A, proj, inspect, ping]")
        if problem:
            problems.append(problem)
    if "settle" in spec:
        settle = as_float(spec["settle"])
        if settle is None or not 0 <= settle <= 600:
            problems.append("%s.settle must be seconds from 0 to 600 (how long it must keep running to pass the gate), got %s"
                            % (where, describe(spec["settle"])))  # fmt: skip
    return problems


def runtime_problems(where: str, spec: dict) -> List[str]:
    """How any component's containers stop (stop_signal, stop_timeout) and its volumes: `name:/absolute/path`
    strings, optional `:ro` - named volumes only."""
    problems = []
    for key in ("stop_timeout",):
        if key in spec and (as_int(spec[key]) is None or as_int(spec[key]) < 0):
            problems.append("%s.%s must be a whole number of seconds >= 0, got %s" % (where, key, describe(spec[key])))
    if "stop_signal" in spec:
        signal = spec["stop_signal"]
        name = signal.upper()[3:] if isinstance(signal, str) and signal.upper().startswith("SIG") else signal
        if not (isinstance(name, str) and (name.upper() in SIGNALS or (name.isdigit() and 1 <= int(name) <= 64))):
            problems.append("%s.stop_signal must be a signal such as SIGTERM, SIGINT or SIGQUIT, got %s" % (where, describe(signal)))
    if "volumes" not in spec:
        return problems
    volumes = spec["volumes"]
    if not isinstance(volumes, list):
        return problems + ["%s.volumes must be a list of '<name>:<absolute path in the container>' (media:/srv/media), got %s"
                           % (where, describe(volumes))]  # fmt: skip
    targets = set()
    for index, entry in enumerate(volumes):
        at = "%s.volumes[%d]" % (where, index)
        if not isinstance(entry, str):
            problems.append("%s must be a string '<name>:<absolute path in the container>[:ro]', got %s" % (at, describe(entry)))
            continue
        parts = entry.split(":")
        mode = parts[2] if len(parts) == 3 else ""
        if len(parts) not in (2, 3) or (len(parts) == 3 and mode not in ("ro", "rw")):
            problems.append("%s must be '<name>:<absolute path in the container>' with an optional ':ro', got %r" % (at, entry))
            continue
        name, target = parts[0], parts[1]
        if name.startswith(("/", ".", "~")):
            problems.append("%s %r mounts a folder of the host: only named volumes (media:/srv/media), which smart-deploy creates "
                            "and keeps, are supported" % (at, entry))  # fmt: skip
            continue
        if not VOLUME_NAME_RE.match(name):
            problems.append("%s: the volume name %r must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
                            % (at, name))  # fmt: skip
        normal = os.path.normpath(target) if target.startswith("/") else ""
        if not target.startswith("/"):
            problems.append("%s: %r must be an absolute path in the container, such as /srv/media" % (at, target))
        elif normal != target.rstrip("/") or "//" in target or not VOLUME_TARGET_RE.match(target) or normal == "/":
            problems.append("%s: %r must be a plain absolute folder in the container (no '..', '.', '//', not '/'), such as /srv/media"
                            % (at, target))  # fmt: skip
        elif normal in targets:
            problems.append("%s: %s is mounted twice in this component" % (at, normal))
        else:
            targets.add(normal)
    return problems


def volume_name_problems(components: Any, scope: Any, db_volume: Any) -> List[str]:
    """A volume of the app must not be the database's (<scope>-pgdata) nor the dev stack's."""
    if not isinstance(components, dict) or not isinstance(scope, str):
        return []
    taken = {db_volume if isinstance(db_volume, str) else "%s-pgdata" % scope: "the database's volume (smart_deploy_db_volume)",
             "%s-dev-pgdata" % scope: "the dev database's volume (./deploy dev)"}  # fmt: skip
    problems = []
    for component, spec in components.items():
        volumes = spec.get("volumes") if isinstance(spec, dict) else None
        for index, entry in enumerate(volumes if isinstance(volumes, list) else []):
            name = entry.split(":")[0] if isinstance(entry, str) else None
            if name and "%s-%s" % (scope, name) in taken:
                problems.append("smart_deploy_components.%s.volumes[%d]: the volume '%s' would be %s-%s, %s: choose another name"
                                % (component, index, name, scope, name, taken["%s-%s" % (scope, name)]))  # fmt: skip
    return problems


def forwarded_proto_problems(v: dict) -> List[str]:
    """What the health gate says the request came over (X-Forwarded-Proto): http, https, or nothing."""
    value = v.get("release_health_forwarded_proto", "http")
    if value not in ("", None, "http", "https"):
        return ["release_health_forwarded_proto (the X-Forwarded-Proto the health gate sends) must be http, https or empty, got %s"
                % describe(value)]  # fmt: skip
    return []


# A host name as a Host header carries it (app.example.com, localhost, 192.0.2.7): labels of letters, digits and '-'
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SERVER_NAME_RE = re.compile(r"^(?=.{1,253}$)%s(?:\.%s)*$" % (_LABEL, _LABEL))


def server_name_problems(v: dict) -> List[str]:
    """The host name the app serves (smart_deploy_server_name), sent as the Host header of smart-deploy's own requests."""
    value = v.get("smart_deploy_server_name", "")
    if value in ("", None) or (isinstance(value, str) and SERVER_NAME_RE.match(value)):
        return []
    return ["smart_deploy_server_name (the Host header of the health gate and the endpoint checks) must be a host name in the "
            "app's ALLOWED_HOSTS, such as app.example.com - no scheme, no port, no path, no wildcard - or empty, got %s"
            % describe(value)]  # fmt: skip


def reserved_env_problems(v: dict) -> List[str]:
    """Names smart-deploy sets itself in every container of a release (APP_RELEASE: the release of its image)."""
    problems = []
    for name in ("smart_deploy_app_env", "smart_deploy_app_secret_env"):
        env = v.get(name)
        for key in SMART_DEPLOY_ENV:
            if isinstance(env, dict) and key in env:
                problems.append("%s.%s: smart-deploy sets %s itself in every container of a release (the release of its image); "
                                "remove it" % (name, key, key))  # fmt: skip
    return problems


def component_problems(components: Any, source: Optional[str], source_is_dir, django: Any = "backend") -> List[str]:
    name = "smart_deploy_components"
    if not isinstance(components, dict) or not components:
        return ["%s must be a mapping of component name -> {context, container, port, ...}, got %s" % (name, describe(components))]
    problems = []
    if not isinstance(django, str) or not django:
        problems.append("smart_deploy_django_component must name the component that holds Django, got %r" % (django,))
    elif django not in components:
        problems.append(
            "%s has no '%s' component (the Django app, smart_deploy_django_component): a backend-only app needs only "
            "{%s: {context: ., port: 8000, health_path: /}}; frontend and others are optional (components: %s)"
            % (name, django, django, ", ".join(sorted(map(str, components))))
        )
    if "proxy" in components:
        problems.append(
            "%s has a 'proxy' component: smart-deploy runs its own proxy (HAProxy) in front of the app; "
            "remove it and say which paths go where in smart_deploy_routes "
            "(README, 'An app that brings its own proxy')" % name
        )
    for component, spec in components.items():
        if component == "proxy":
            continue  # said above: it goes
        where = "%s.%s" % (name, component)
        if not isinstance(spec, dict):
            problems.append("%s must be a mapping with at least 'context', got %s" % (where, describe(spec)))
            continue
        context = spec.get("context")
        if "context" not in spec and "command" in spec and component != django:
            pass  # a worker without a build of its own runs the Django component's image (worker_problems)
        elif not isinstance(context, str) or not context.strip():
            problems.append(
                "%s has no 'context' (the folder of its Docker build, relative to the app source)%s"
                % (where, "" if component == django else "; a worker that runs the Django component's image has a 'command' instead")
            )
        elif context.startswith("/") or ".." in context.split("/"):
            problems.append("%s.context must be a folder inside the app source, got '%s'" % (where, context))
        elif source and source_is_dir(source):
            folder = os.path.join(source, context)
            dockerfile = spec.get("dockerfile", "Dockerfile")
            if not source_is_dir(folder):
                problems.append("%s.context '%s' is not a folder of the app source %s" % (where, context, source))
            elif isinstance(dockerfile, str) and not os.path.isfile(os.path.join(folder, dockerfile)):
                problems.append("%s: %s/%s has no %s" % (where, source, context, dockerfile))
        container = spec.get("container", component)
        if not isinstance(container, str) or not DOCKER_NAME_RE.match(container):
            problems.append("%s.container must be a container name (letters, digits, '_', '.', '-', no space), got %r" % (where, container))
        elif container == "proxy":
            problems.append(
                "%s.container is 'proxy', the name of smart-deploy's own proxy container (<app>-proxy): "
                "give the component another container name (README, 'An app that brings its own proxy')" % where
            )
        if "port" in spec and not (as_int(spec["port"]) is not None and 1 <= as_int(spec["port"]) <= 65535):
            problems.append("%s.port must be a port number 1-65535, got %s" % (where, describe(spec["port"])))
        health = spec.get("health_path")
        if health is not None and health != "" and (not isinstance(health, str) or not health.startswith("/")):
            problems.append("%s.health_path must start with '/', got %r" % (where, health))
        mounts = spec.get("dev_mounts", {})
        if not isinstance(mounts, dict) or not all(
            relative_path_problem("", key) is None and isinstance(value, str) and value.startswith("/") for key, value in mounts.items()
        ):
            problems.append(
                "%s.dev_mounts must map folders of the context to absolute folders in the container, got %s" % (where, describe(mounts))
            )
        if component == django:
            problems += django_layout_problems(where, spec)
        problems += worker_problems(where, component, spec, django)
        problems += runtime_problems(where, spec)
        problems += component_key_problems(where, component, spec, django if isinstance(django, str) and django in components else None)
    return problems


def route_problems(routes: Any, components: Any) -> List[str]:
    name = "smart_deploy_routes"
    if not isinstance(routes, list) or not routes:
        return ["%s must be a list of {path, component}, such as [{path: /, component: backend}], got %s" % (name, describe(routes))]
    problems = []
    served = (
        sorted(c for c, spec in components.items() if isinstance(spec, dict) and "port" in spec) if isinstance(components, dict) else None
    )
    seen = set()
    for index, route in enumerate(routes):
        where = "%s[%d]" % (name, index)
        if not isinstance(route, dict):
            problems.append("%s must be a mapping {path, component}, got %s" % (where, describe(route)))
            continue
        path, component = route.get("path"), route.get("component")
        if not isinstance(path, str) or not ROUTE_PATH_RE.match(path):
            problems.append("%s.path must be a URL path starting with '/' (letters, digits, '/', '-', '_', '.'), got %r" % (where, path))
        elif path in seen:
            problems.append("%s.path '%s' is routed twice" % (where, path))
        else:
            seen.add(path)
        target = components.get(component) if isinstance(components, dict) and isinstance(component, str) else None
        if isinstance(target, dict) and "command" in target and "port" not in target:
            problems.append("%s.component %r is a worker (it runs a command, with no port): workers get no traffic, route to a "
                            "component with a port (%s)" % (where, component, ", ".join(served or [])))  # fmt: skip
        elif served is not None and component not in served:
            problems.append("%s.component must be a component with a port (%s), got %r" % (where, ", ".join(served), component))
    return problems


def accept_codes(value: Any) -> Optional[List[str]]:
    """smart_deploy_accept as a list of codes: a list, or one string of codes separated by commas
    (what ``-e smart_deploy_accept=a,b`` gives); None when it is neither."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(code, str) for code in value):
        return None
    return [code.strip() for code in value if code.strip()]


def accept_problems(value: Any) -> List[str]:
    codes = accept_codes(value)
    if codes is None:
        return ["smart_deploy_accept must be a list of abort reason codes or one string of codes separated by commas, got %s"
                % describe(value)]  # fmt: skip
    unknown = [code for code in codes if code not in ACCEPT_CODES]
    if unknown:
        return ["smart_deploy_accept: unknown abort reason code%s %s (known: %s)" % ("s" if len(unknown) > 1 else "",
                ", ".join(repr(c) for c in unknown), ", ".join(ACCEPT_CODES))]  # fmt: skip
    return []


def app_problems(v: dict, source_is_dir=os.path.isdir) -> List[str]:
    problems = []
    name = v.get("smart_deploy_app_name")
    if not isinstance(name, str) or not APP_NAME_RE.match(name):
        problems.append(
            "smart_deploy_app_name must be 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit, got %r" % name
        )
    scope = v.get("smart_deploy_scope", name)
    if scope != name and (not isinstance(scope, str) or not APP_NAME_RE.match(scope)):
        problems.append(
            "smart_deploy_scope must be 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit, got %r" % scope
        )
    source = v.get("smart_deploy_app_source")
    if not isinstance(source, str) or not source:
        problems.append("smart_deploy_app_source must be the folder of the app on the controller, got %r" % source)
        source = None
    elif not source_is_dir(source):
        problems.append("smart_deploy_app_source '%s' is not a folder on the controller" % source)
    problem = state_dir_problem(v.get("smart_deploy_state_dir"))
    if problem:
        problems.append(problem)
    if "smart_deploy_components" in v:
        problems += component_problems(
            v["smart_deploy_components"], source, source_is_dir, v.get("smart_deploy_django_component", "backend")
        )
    if "smart_deploy_routes" in v:
        problems += route_problems(v["smart_deploy_routes"], v.get("smart_deploy_components"))
    problems += volume_name_problems(v.get("smart_deploy_components"), scope if scope else name, v.get("smart_deploy_db_volume"))
    release = v.get("smart_deploy_release", "")
    if release not in ("", None) and (not isinstance(release, str) or not RELEASE_RE.match(release)):
        problems.append(
            "smart_deploy_release must be letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit), got %r" % release
        )
    for key in ("smart_deploy_db_container", "smart_deploy_db_volume", "smart_deploy_network"):
        if key in v and (not isinstance(v[key], str) or not DOCKER_NAME_RE.match(v[key])):
            problems.append("%s must be a Docker name (letters, digits, '_', '.', '-', no space), got %r" % (key, v[key]))
    for key in ("smart_deploy_db_name", "smart_deploy_db_user"):
        if key in v and (not isinstance(v[key], str) or not PG_NAME_RE.match(v[key])):
            problems.append("%s must be 1-48 letters, digits or '_', got %r" % (key, v[key]))
    problems += database_problems(v)
    if "smart_deploy_http_bind" in v:
        try:
            ipaddress.ip_address(str(v["smart_deploy_http_bind"]))
        except ValueError:
            problems.append(
                "smart_deploy_http_bind must be an IP address of the target (127.0.0.1, 0.0.0.0, ::1), got %r" % v["smart_deploy_http_bind"]
            )
    if "smart_deploy_http_port" in v:
        port = as_int(v["smart_deploy_http_port"])
        if port is None or not 1 <= port <= 65535:
            problems.append("smart_deploy_http_port must be a port number 1-65535, got %s" % describe(v["smart_deploy_http_port"]))
    problems += env_problems("smart_deploy_app_env", v.get("smart_deploy_app_env"), secret=False)
    problems += env_problems("smart_deploy_app_secret_env", v.get("smart_deploy_app_secret_env"), secret=True)
    problems += reserved_env_problems(v)
    problems += forwarded_proto_problems(v)
    problems += server_name_problems(v)
    if "smart_deploy_accept" in v:
        problems += accept_problems(v["smart_deploy_accept"])
    endpoints = v.get("health_check_endpoints")
    if endpoints is not None:
        if not isinstance(endpoints, list):
            problems.append("health_check_endpoints must be a list of {name, path}, got %s" % describe(endpoints))
        else:
            for index, endpoint in enumerate(endpoints):
                path = endpoint.get("path") if isinstance(endpoint, dict) else None
                if not isinstance(path, str) or not path.startswith("/"):
                    problems.append("health_check_endpoints[%d].path must start with '/', got %r" % (index, path))
    for key, smallest in NUMBERS.items():
        if key in v:
            number = as_int(v[key])
            if number is None or number < smallest:
                problems.append("%s must be a whole number >= %d, got %s" % (key, smallest, describe(v[key])))
    for key, largest in FRACTIONS.items():
        if key in v:
            number = as_float(v[key])
            if number is None or not 0 < number <= largest:
                problems.append("%s must be a number of seconds above 0 and at most %d, got %s" % (key, largest, describe(v[key])))
    for key, replacement in RENAMED.items():
        if key in v:
            problems.append("%s is no longer read: set %s instead" % (key, replacement))
    for key in BOOLEANS:
        if key in v and as_bool(v[key]) is None:
            problems.append("%s must be true or false, got %s" % (key, describe(v[key])))
    if "smart_deploy_accessories" in v:
        problems += accessory_problems(v["smart_deploy_accessories"], v.get("groups"))
    problems += keyed_mapping_problems(v) + trigger_problems(v)
    return problems


def database_problems(v: dict) -> List[str]:
    """Where the database is: smart_deploy_db_mode and, for an external server, its host, port and sslmode."""
    problems = []
    mode = v.get("smart_deploy_db_mode", "container")
    if mode not in DB_MODES:
        return ["smart_deploy_db_mode must be container (smart-deploy runs PostgreSQL) or external (your own server), got %s"
                % describe(mode)]  # fmt: skip
    port = as_int(v["smart_deploy_db_port"]) if "smart_deploy_db_port" in v else 5432
    if port is None or not 1 <= port <= 65535:
        problems.append("smart_deploy_db_port must be a port number 1-65535, got %s" % describe(v.get("smart_deploy_db_port")))
    elif mode == "container" and port != 5432:
        problems.append("smart_deploy_db_port is %d, but the database container listens on 5432: set it only with "
                        "smart_deploy_db_mode: external" % port)  # fmt: skip
    if "smart_deploy_db_sslmode" in v and v["smart_deploy_db_sslmode"] not in SSLMODES:
        problems.append("smart_deploy_db_sslmode must be one of %s, got %s" % (", ".join(SSLMODES), describe(v["smart_deploy_db_sslmode"])))
    if mode == "external":
        host = v.get("smart_deploy_db_host")
        if not host:
            problems.append("smart_deploy_db_host is required with smart_deploy_db_mode: external - the server's host name or address "
                            "as the app's containers reach it (host.docker.internal for a server on the target itself)")  # fmt: skip
        elif not isinstance(host, str) or not DB_HOST_RE.match(host):
            problems.append("smart_deploy_db_host must be a host name or an IP address, got %s" % describe(host))
        image = v.get("smart_deploy_db_client_image", "postgres:{major}-bookworm")
        if not isinstance(image, str) or not image or " " in image:
            problems.append("smart_deploy_db_client_image must be an image name (with {major} for the server's major version), got %s"
                            % describe(image))  # fmt: skip
    return problems


def secret_problems(v: dict) -> List[str]:
    problems = []
    for key in ("smart_deploy_db_password", "smart_deploy_django_secret_key"):
        value = v.get(key)
        if value is None:
            problems.append(
                "%s is not set: put it in a vaulted group_vars file (see inventories/production/group_vars/app_servers/vault.yml.example)"
                % key
            )
        elif not isinstance(value, str):
            problems.append("%s must be a string (quote it in YAML), got %s" % (key, kind_of(value)))
        elif not value.strip():
            problems.append("%s is empty: set it in a vaulted group_vars file" % key)
        elif "\n" in value:
            problems.append("%s holds a newline" % key)
    return problems


def _given(v: dict, group: str, short: str) -> List[tuple]:
    """(name, value) of the short name and of its role variable, as far as they are set; the role variable is
    left out when it holds the same value (its default is the short name's value: one problem, said once)."""
    found = [(short, v[short])] if short in v else []
    long_name = ROLE_NAMES[group][short]
    if long_name in v and not (short in v and v[long_name] == v[short]):
        found.append((long_name, v[long_name]))
    return found


def rollback_problems(v: dict) -> List[str]:
    problems = []
    for name, release in _given(v, "rollback", "release"):
        if release not in ("", None) and (not isinstance(release, str) or not RELEASE_RE.match(release)):
            number = isinstance(release, (int, float)) and not isinstance(release, bool)
            problems.append(
                "%s (the rollback target) must be a release id (letters, digits, '.', '_', '-'), got %r%s"
                % (name, release, " - a number: YAML read the answer unquoted; quote it ('0123')" if number else "")
            )
    for name, restore in _given(v, "rollback", "restore_db"):
        if as_bool(restore) is None:
            problems.append("%s must be true or false, got %s: nothing is restored on a guess" % (name, describe(restore)))
    return problems


def status_problems(v: dict) -> List[str]:
    problems = []
    for name, history in _given(v, "status", "history"):
        number = as_int(history)
        if number is None or number < 1:
            problems.append("%s (how many releases to show) must be a whole number >= 1, got %s" % (name, describe(history)))
    html = v.get("status_html")
    if html not in (None, "") and (not isinstance(html, str) or not html.startswith("/") or html.endswith("/") or "\x00" in html):
        problems.append("status_html (the HTML file of the last deploys, on the controller) must be an absolute file path, got %r" % html)
    if "status_last" in v:
        number = as_int(v["status_last"])
        if number is None or number < 1:
            problems.append("status_last (how many deploys to draw) must be a whole number >= 1, got %s" % describe(v["status_last"]))
    return problems


def logs_problems(v: dict) -> List[str]:
    problems = []
    for name, lines in _given(v, "logs", "lines"):
        number = as_int(lines)
        if number is None or number < 1:
            problems.append("%s must be a whole number >= 1, got %s" % (name, describe(lines)))
    components = v.get("smart_deploy_components")
    known = (
        sorted(list(components) + ["database", "proxy"]) if isinstance(components, dict) else ["backend", "database", "frontend", "proxy"]
    )
    accessories = v.get("smart_deploy_accessories")
    known = sorted(set(known) | (set(accessories) & set(ACCESSORY_KEYS) if isinstance(accessories, dict) else set()))
    for name, component in _given(v, "logs", "component"):
        if component not in (None, "") and component not in known:
            problems.append("%s must be one of %s, got %r" % (name, ", ".join(known), component))
    for name, since in _given(v, "logs", "since"):
        if since not in (None, "") and (not isinstance(since, str) or not SINCE_RE.match(since)):
            problems.append("%s must be a duration (10m, 2h, 1h30m), a unix time or a date (2026-11-30T10:00:00Z), got %r" % (name, since))
    return problems


# --- accessories (smart_deploy_accessories) ---------------------------------------------------------------------
# Known kinds of accessory and the keys of each (roles/accessories; defaults in roles/smart_deploy: smart_deploy_redis).
ACCESSORY_KEYS = {"redis": ("image", "password", "maxmemory", "maxmemory_policy", "appendonly")}
REDIS_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)  # fmt: skip
# Redis's memory units (1k, 1kb, 1m, 1mb, 1g, 1gb, any case) or bytes
REDIS_MEMORY_RE = re.compile(r"^[0-9]+(?:[kmg]b?)?$", re.IGNORECASE)
# printable ASCII without space, quotes or backslash: it goes into redis.conf between double quotes, and URL-quoted into the URL
REDIS_PASSWORD_RE = re.compile(r"^[A-Za-z0-9!#$%&()*+,./:;<=>?@\[\]^_{|}~-]{16,512}$")
IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")


def accessory_problems(accessories: Any, groups: Any = None) -> List[str]:
    """smart_deploy_accessories: known kinds, each with known keys and values of the right form."""
    name = "smart_deploy_accessories"
    if accessories in (None, "", {}):
        return []
    if not isinstance(accessories, dict):
        return ["%s must be a mapping of accessory -> settings, such as {redis: {}}, got %s" % (name, describe(accessories))]
    problems = unknown_key_problems(name, accessories, ACCESSORY_KEYS, what="accessory")
    if isinstance(groups, dict):
        app_hosts = groups.get("app_servers") or []
        if len(app_hosts) > 1 or groups.get("lb"):
            problems.append(
                "%s: a fleet's app hosts cannot share an accessory run on one of them yet - run Redis where every app host reaches "
                "it and give the app its URL in smart_deploy_app_secret_env (README, 'Redis beside the app')" % name
            )
    for kind, settings in accessories.items():
        if kind not in ACCESSORY_KEYS:
            continue
        where = "%s.%s" % (name, kind)
        if settings is None:
            continue
        if not isinstance(settings, dict):
            problems.append("%s must be a mapping of settings ({} for the defaults), got %s" % (where, describe(settings)))
            continue
        problems += unknown_key_problems(where, settings, ACCESSORY_KEYS[kind])
        if kind == "redis":
            problems += redis_problems(where, settings)
    return problems


def redis_problems(where: str, settings: dict) -> List[str]:
    problems = []
    image = settings.get("image", "redis:7-bookworm")
    if not isinstance(image, str) or not IMAGE_RE.match(image):
        problems.append("%s.image must be an image name such as redis:7-bookworm, got %s" % (where, describe(image)))
    if "password" in settings:
        password = settings["password"]
        if not isinstance(password, str):
            problems.append("%s.password must be a string (quote it in YAML), got %s" % (where, kind_of(password)))
        elif not REDIS_PASSWORD_RE.match(password):
            problems.append(
                "%s.password must be 16-512 printable characters without spaces, quotes or backslashes (the value is not shown)" % where
            )
    memory = settings.get("maxmemory", "")
    if memory not in ("", None) and (isinstance(memory, bool) or not REDIS_MEMORY_RE.match(str(memory))):
        problems.append("%s.maxmemory must be a size such as 256mb or 1gb (or bytes), got %s" % (where, describe(memory)))
    policy = settings.get("maxmemory_policy", "noeviction")
    if policy not in REDIS_POLICIES:
        problems.append("%s.maxmemory_policy must be one of %s, got %s" % (where, ", ".join(REDIS_POLICIES), describe(policy)))
    if "appendonly" in settings and as_bool(settings["appendonly"]) is None:
        problems.append("%s.appendonly must be true or false, got %s" % (where, describe(settings["appendonly"])))
    return problems


# --- HTTPS at the proxy (groups tls and tls_rollback) -------------------------------------------------------------
def community_crypto() -> tuple:
    """community.crypto's filters that read a certificate, a private key and a PEM bundle, on the controller
    (the collection comes with the `ansible` package); ImportError when it is missing."""
    from ansible_collections.community.crypto.plugins.filter.openssl_privatekey_info import openssl_privatekey_info_filter
    from ansible_collections.community.crypto.plugins.filter.split_pem import split_pem_filter
    from ansible_collections.community.crypto.plugins.filter.x509_certificate_info import x509_certificate_info_filter

    return x509_certificate_info_filter, openssl_privatekey_info_filter, split_pem_filter


def asn1_time(text: str) -> datetime.datetime:
    """community.crypto's ASN.1 time (20261208222106Z) as an aware UTC datetime."""
    return datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def subject_of(info: dict) -> str:
    subject = info.get("subject") or {}
    name = subject.get("commonName") or ", ".join("%s=%s" % item for item in sorted(subject.items())) or "no subject"
    alt = [n.split(":", 1)[-1] for n in info.get("subject_alt_name") or []]
    return "CN=%s%s" % (name, " (%s)" % ", ".join(alt[:4]) if alt else "")


def _overlap(bind_a: Any, bind_b: Any) -> bool:
    """Whether two listen addresses can clash on one port: the same address, or either one every address."""
    a, b = str(bind_a), str(bind_b)
    return a == b or a in ("0.0.0.0", "::") or b in ("0.0.0.0", "::")


def tls_problems(v: dict, dates: bool = True, now: Optional[datetime.datetime] = None, crypto: Optional[Callable] = None) -> List[str]:
    """HTTPS at the proxy: the certificate and its key (PEM, a pair, within their validity dates when ``dates``),
    its address and port, the redirect, HSTS and the trusted load balancers' networks. The key is never shown."""
    problems = []
    cert, key = v.get("smart_deploy_tls_certificate", ""), v.get("smart_deploy_tls_key", "")
    trusted = v.get("smart_deploy_trusted_proxies", [])
    if trusted not in (None, "") and not isinstance(trusted, list):
        problems.append("smart_deploy_trusted_proxies must be a list of networks (10.0.0.0/8), got %s" % describe(trusted))
    else:
        for index, network in enumerate(trusted or []):
            try:
                ipaddress.ip_network(str(network), strict=False)
            except ValueError:
                problems.append(
                    "smart_deploy_trusted_proxies[%d] must be a network such as 10.0.0.0/8 or 192.0.2.7, got %r" % (index, network)
                )
    redirect = v.get("smart_deploy_https_redirect", False)
    if as_bool(redirect) is None:
        problems.append("smart_deploy_https_redirect must be true or false, got %s" % describe(redirect))
    hsts = v.get("smart_deploy_hsts_max_age", 0)
    if as_int(hsts) is None or as_int(hsts) < 0:
        problems.append("smart_deploy_hsts_max_age must be a whole number of seconds >= 0 (0: no HSTS), got %s" % describe(hsts))
    if not isinstance(cert, str):
        return problems + ["smart_deploy_tls_certificate must be the certificate's PEM text, got %s" % kind_of(cert)]
    if not isinstance(key, str):
        return problems + ["smart_deploy_tls_key must be the private key's PEM text, got %s (the value is not shown)" % kind_of(key)]
    if not cert.strip():
        if key.strip():
            problems.append("smart_deploy_tls_key is set but smart_deploy_tls_certificate is empty: give both for HTTPS, or neither")
        if as_bool(redirect):
            problems.append("smart_deploy_https_redirect needs HTTPS: set smart_deploy_tls_certificate and smart_deploy_tls_key")
        if (as_int(hsts) or 0) > 0:
            problems.append("smart_deploy_hsts_max_age needs HTTPS: set smart_deploy_tls_certificate and smart_deploy_tls_key")
        return problems
    port, http_port = as_int(v.get("smart_deploy_https_port", 8443)), as_int(v.get("smart_deploy_http_port", 8080))
    bind, http_bind = (
        v.get("smart_deploy_https_bind", v.get("smart_deploy_http_bind", "127.0.0.1")),
        v.get("smart_deploy_http_bind", "127.0.0.1"),
    )
    if port is None or not 1 <= port <= 65535:
        problems.append("smart_deploy_https_port must be a port number 1-65535, got %s" % describe(v.get("smart_deploy_https_port")))
    elif port == http_port and _overlap(bind, http_bind):
        problems.append(
            "smart_deploy_https_port is %d, the same port as smart_deploy_http_port on the same address: HTTPS needs a port of its own "
            "(8443, or 443 with HTTP on 80)" % port
        )
    try:
        ipaddress.ip_address(str(bind))
    except ValueError:
        problems.append("smart_deploy_https_bind must be an IP address of the target (127.0.0.1, 0.0.0.0, ::1), got %r" % (bind,))
    if not key.strip():
        problems.append(
            "smart_deploy_tls_key is empty: the certificate's private key (PEM text, vaulted) goes with smart_deploy_tls_certificate"
        )
    try:
        read_certificate, read_key, split_pem = (crypto or community_crypto)()
    except ImportError as exc:
        return problems + [
            "smart_deploy_tls_certificate cannot be checked: community.crypto (bundled with the ansible package) is missing (%s)" % exc
        ]
    key_info = None
    if key.strip():
        if "-----BEGIN" not in key:
            problems.append("smart_deploy_tls_key is not PEM text (-----BEGIN PRIVATE KEY----- ...); the value is not shown")
        elif "ENCRYPTED" in key.split("\n", 1)[0] or "Proc-Type: 4,ENCRYPTED" in key:
            problems.append(
                "smart_deploy_tls_key is encrypted: decrypt it (openssl pkey -in key.pem -out plain.pem) and vault the plain key"
            )
        else:
            try:
                key_info = read_key(key)
            except Exception:  # never say more: the message could quote the key
                problems.append("smart_deploy_tls_key is not a PEM private key that can be read (the value is not shown)")
    if "-----BEGIN" not in cert:
        shown = (
            " - a file name? Give its text: \"{{ lookup('file', '%s') }}\"" % cert.strip()
            if cert.strip().startswith(("/", "~", "."))
            else ""
        )
        return problems + ["smart_deploy_tls_certificate is not PEM text (-----BEGIN CERTIFICATE----- ...)%s" % shown]
    blocks = split_pem(cert)
    infos = []
    for index, block in enumerate(blocks or [cert]):
        label = "smart_deploy_tls_certificate" + (" (certificate %d of its chain)" % (index + 1) if len(blocks) > 1 else "")
        if "PRIVATE KEY" in block.split("\n", 1)[0]:
            problems.append("%s holds a private key: the key goes into smart_deploy_tls_key (vaulted), not with the certificate" % label)
            continue
        try:
            infos.append(read_certificate(block))
        except Exception as exc:  # community.crypto says why (AnsibleFilterError): a broken certificate is not a secret
            problems.append("%s is not a valid PEM certificate: %s" % (label, str(exc).splitlines()[0][:200]))
    if not infos:
        return problems
    leaf = infos[0]
    if key_info is not None and key_info.get("public_key") != leaf.get("public_key"):
        other = next((n for n, info in enumerate(infos[1:], 2) if info.get("public_key") == key_info.get("public_key")), None)
        problems.append(
            "smart_deploy_tls_key does not match smart_deploy_tls_certificate (%s): %s"
            % (subject_of(leaf), "it is the key of certificate %d of the chain - put the server's own certificate first" % other
               if other else "the certificate was made for another key")
        )  # fmt: skip
    if dates:
        moment = now or datetime.datetime.now(datetime.timezone.utc)
        for index, info in enumerate(infos):
            which = "smart_deploy_tls_certificate" + (" (certificate %d of its chain, %s)" % (index + 1, subject_of(info)) if index else "")
            try:
                not_before, not_after = asn1_time(info["not_before"]), asn1_time(info["not_after"])
            except (KeyError, TypeError, ValueError):
                continue
            if not_after <= moment:
                problems.append(
                    "%s expired on %s (%s): renew it"
                    % (which, not_after.strftime("%Y-%m-%d %H:%M UTC"), subject_of(info) if not index else "")
                )
            elif not_before > moment:
                problems.append(
                    "%s is not valid before %s (%s): it would be refused by every client until then"
                    % (which, not_before.strftime("%Y-%m-%d %H:%M UTC"), subject_of(info) if not index else "")
                )
    return problems


def tls_rollback_problems(v: dict) -> List[str]:
    """A rollback's checks of HTTPS: all but the validity dates (a rollback must go through with an expiring certificate)."""
    return tls_problems(v, dates=False)


# --- one-off commands and maintenance ---------------------------------------------------------------------------
def manage_problems(v: dict) -> List[str]:
    problems = []
    args = v.get("manage_args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        problems.append(
            "manage_args must be the arguments of manage.py as a list of strings, such as [migrate, --check] "
            "(./deploy manage -- migrate --check), got %s" % describe(args)
        )
    elif any("\x00" in a for a in args):
        problems.append("manage_args holds a NUL character, which no command line can carry")
    elif not args[0].strip():
        problems.append("manage_args must start with the name of a management command, got an empty one")
    problems += env_problems("manage_env", v.get("manage_env"), secret=True)
    if "manage_lock" in v and as_bool(v["manage_lock"]) is None:
        problems.append("manage_lock must be true or false, got %s" % describe(v["manage_lock"]))
    return problems


MAINTENANCE_STATES = ("on", "off")
# HAProxy keeps the page in one buffer (tune.bufsize, 16 kB by default) with its headers
MAINTENANCE_PAGE_MAX_BYTES = 15000


def maintenance_problems(v: dict, is_file=os.path.isfile, size_of=os.path.getsize) -> List[str]:
    problems = []
    states = _given(v, "maintenance", "maintenance")
    if not states:
        problems.append("maintenance must be on or off (./deploy maintenance on|off), got nothing")
    for name, state in states:
        word = {True: "on", False: "off"}.get(as_bool(state), state)
        if word not in MAINTENANCE_STATES:
            problems.append("%s must be on or off, got %s" % (name, describe(state)))
    for name, message in _given(v, "maintenance", "message"):
        if message is not None and (not isinstance(message, str) or len(message) > 1000):
            problems.append("%s (the text of the maintenance page) must be a text of at most 1000 characters, got %s"
                            % (name, describe(message)[:60]))  # fmt: skip
    page = v.get("proxy_maintenance_page", "")
    if page not in ("", None):
        if not isinstance(page, str) or not page.startswith("/"):
            problems.append("proxy_maintenance_page must be the absolute path of an HTML file on the controller, got %r" % (page,))
        elif not is_file(page):
            problems.append("proxy_maintenance_page '%s' is not a file on the controller" % page)
        elif size_of(page) > MAINTENANCE_PAGE_MAX_BYTES:
            problems.append(
                "proxy_maintenance_page '%s' is %d bytes: the proxy serves at most %d (inline the CSS, link the images)"
                % (page, size_of(page), MAINTENANCE_PAGE_MAX_BYTES)
            )
    if "proxy_maintenance_retry_after" in v:
        number = as_int(v["proxy_maintenance_retry_after"])
        if number is None or number < 0:
            problems.append("proxy_maintenance_retry_after (seconds, the Retry-After header) must be a whole number >= 0, got %s"
                            % describe(v["proxy_maintenance_retry_after"]))  # fmt: skip
    return problems


CHECKS = {
    "app": app_problems, "secrets": secret_problems, "rollback": rollback_problems, "status": status_problems, "logs": logs_problems,
    "tls": tls_problems, "tls_rollback": tls_rollback_problems, "manage": manage_problems, "maintenance": maintenance_problems,
}  # fmt: skip


def problems_of(values: dict, groups: Iterable[str], source_is_dir=os.path.isdir) -> List[str]:
    """Every problem of the variables in ``values`` for the groups of checks asked for, in order."""
    found = []
    for group in groups:
        check = CHECKS[group]
        found += check(values, source_is_dir) if group == "app" else check(values)
    return found
