# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the app's components run: what each container of a release is, and what it is called. Pure logic.

A component (an entry of ``smart_deploy_components``) is one of:

- a routed component: it has a ``port`` (and a ``health_path``); smart-deploy's proxy sends it traffic.
  One container per release and host.
- a worker: it has a ``command`` (argv) and no port - a Celery worker or beat, an RQ worker, a
  management-command loop. No route, no traffic. Without a ``context`` it runs the Django component's
  image (built once); with one it builds its own. ``replicas`` containers, named ``...-1`` .. ``...-<n>``.
- anything else (no port, no command): runs its image's own command, like today.

The run settings of a component (``RUNTIME_KEYS``: command, replicas, volumes, stop signal and timeout,
health command, settle time, singleton) are part of its containers' names through a fingerprint, so a
change of them starts new containers beside the old ones (health gate, then the old ones stop), as a new
image or a new environment does, and a component whose image and settings did not change keeps running.

Standard library only: the filter plugin (plugins/filter/smart_deploy.py) loads this file by its path, and
the unit tests import it as Ansible's module_utils.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, List, Optional

# The keys each component entry may have (issue 24 refuses any other): every component, workers only, and
# the Django component's image layout. inputs.py keeps the same lists (a unit test keeps them equal).
COMPONENT_KEYS = ("context", "dockerfile", "container", "port", "health_path", "app_env", "dev_mounts", "volumes",
                  "stop_signal", "stop_timeout")  # fmt: skip
WORKER_KEYS = ("command", "replicas", "singleton", "health_command", "settle")
DJANGO_LAYOUT_KEYS = ("project_dir", "python", "settings_module", "source_dir", "requirements", "wheels", "python_version",
                      "platforms")  # fmt: skip
# What is part of a component's containers' names (a change starts new containers).
RUNTIME_KEYS = ("command", "replicas", "singleton", "volumes", "stop_signal", "stop_timeout", "health_command", "settle")

# "<name>:<absolute path in the container>[:ro|:rw]" - Docker compose's short syntax, named volumes only
VOLUME_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):(/[^:]*?)(?::(ro|rw))?$")


def is_worker(spec: Any) -> bool:
    """A worker runs a command of its own and gets no traffic."""
    return isinstance(spec, dict) and "command" in spec


def parse_volume(text: str) -> Optional[Dict[str, Any]]:
    """{name, target, read_only} of a volume entry, or None when it is not ``name:/abs/path[:ro]``."""
    match = VOLUME_RE.match(text) if isinstance(text, str) else None
    if not match:
        return None
    return {"name": match.group(1), "target": match.group(2), "read_only": match.group(3) == "ro"}


def normalise(components: Any, django: str) -> Dict[str, Dict[str, Any]]:
    """Every component but the proxy with every run setting filled in (inputs already checked):

    ``{name: {container, image_of, builds, worker, port, health_path, app_env, command, replicas, singleton,
    volumes: [{name, target, read_only}], stop_signal, stop_timeout, health_command, settle}}``.

    ``image_of`` is the component whose image it runs (itself, or the Django component for a worker without
    a context); ``stop_timeout`` and ``settle`` are None where the release role's defaults apply.

    Never raises: Ansible evaluates this while it checks the roles' argument specs, before smart-deploy's input
    checks name what is wrong - a value that is not what it should be is left at its default here."""
    services = {}
    for name, spec in (components if isinstance(components, dict) else {}).items():
        if name == "proxy" or not isinstance(spec, dict):
            continue
        worker = is_worker(spec)
        builds = spec.get("context") not in (None, "")
        volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
        services[str(name)] = {
            "container": str(spec.get("container", name)),
            "image_of": str(name) if builds else str(django),
            "builds": builds,
            "worker": worker,
            "port": _number(spec.get("port"), int),
            "health_path": str(spec.get("health_path") or ""),
            # the app's environment: the Django component and workers by default (a worker runs the app's code)
            "app_env": _truthy(spec.get("app_env", worker or name == django)),
            "command": _argv(spec["command"]) if worker else None,
            "replicas": max(_number(spec.get("replicas", 1), int) or 1, 1) if worker else 1,
            "singleton": _truthy(spec.get("singleton", False)) if worker else False,
            "volumes": [v for v in map(parse_volume, volumes) if v],
            "stop_signal": str(spec.get("stop_signal") or ""),
            "stop_timeout": _number(spec.get("stop_timeout"), int),
            "health_command": (_argv(spec.get("health_command")) or None) if worker else None,
            "settle": _number(spec.get("settle"), float) if worker else None,
        }
    return services


def _number(value: Any, kind: type) -> Any:
    """``value`` as an int or a float, None when it is not one (nothing, a boolean, a word)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _argv(value: Any) -> List[str]:
    """An argv as a list of strings ([] when it is not a list)."""
    return [str(arg) for arg in value] if isinstance(value, list) else []


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1", "y", "t")
    return bool(value)


def runtime(service: Dict[str, Any]) -> Dict[str, Any]:
    """The run settings of a service that differ from a plain component's: {} for a component with none
    (its containers keep the names they always had)."""
    found = {}
    if service.get("worker"):
        found.update(command=service["command"], replicas=service["replicas"])
        for key in ("singleton", "health_command", "settle"):
            if service.get(key):
                found[key] = service[key]
    if service.get("volumes"):
        found["volumes"] = ["%s:%s%s" % (v["name"], v["target"], ":ro" if v["read_only"] else "") for v in service["volumes"]]
    if service.get("stop_signal"):
        found["stop_signal"] = service["stop_signal"]
    if service.get("stop_timeout") is not None:
        found["stop_timeout"] = service["stop_timeout"]
    return found


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def runtime_fingerprint(services: Dict[str, Dict[str, Any]]) -> str:
    """One fingerprint of every component's run settings, recorded with the release: '' when no component
    has any (an app without workers or volumes), so releases recorded before these settings existed compare
    equal."""
    found = {name: runtime(service) for name, service in sorted(services.items()) if runtime(service)}
    return _sha256(_canonical(found)) if found else ""


def container_names(
    services: Dict[str, Dict[str, Any]], images: Dict[str, str], scope: str, config_fingerprint: str
) -> Dict[str, List[str]]:
    """{component: [container names]} of a release: ``<scope>-<container>-<tag>[-<fp8>]``, and for a worker one
    name per replica with ``-<n>`` (1..replicas). ``<tag>`` is the tag of the image it runs; ``<fp8>`` the first
    8 hex of the configuration fingerprint for those that get the app's environment, mixed with the run
    settings for those that have some. A component absent from ``images`` is left out."""
    names = {}
    for name, service in services.items():
        image = images.get(name) or images.get(service.get("image_of") or name)
        if not image:
            continue
        tag = re.sub(r"^.*:", "", str(image))
        settings = runtime(service)
        if service.get("app_env"):
            fp8 = (_sha256(config_fingerprint + _canonical(settings)) if settings else config_fingerprint)[:8]
        else:
            fp8 = _sha256(_canonical(settings))[:8] if settings else ""
        base = "%s-%s-%s%s" % (scope, service["container"], tag, ("-" + fp8) if fp8 else "")
        names[name] = ["%s-%d" % (base, n) for n in range(1, service["replicas"] + 1)] if service.get("worker") else [base]
    return names


def volumes_of(services: Dict[str, Dict[str, Any]], scope: str) -> List[Dict[str, Any]]:
    """The app's named volumes, each once: [{name, docker_name, components: [..]}] - the same name in two
    components is one volume (the web component writes MEDIA_ROOT, a worker reads it)."""
    found: Dict[str, Dict[str, Any]] = {}
    for component, service in sorted(services.items()):
        for volume in service.get("volumes") or []:
            entry = found.setdefault(volume["name"], {"name": volume["name"], "docker_name": "%s-%s" % (scope, volume["name"]),
                                                      "components": []})  # fmt: skip
            if component not in entry["components"]:
                entry["components"].append(component)
    return [found[name] for name in sorted(found)]
