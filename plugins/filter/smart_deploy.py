# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters of smart-deploy: URL parts quoted whole, secrets and row values kept out of what gets recorded, and how
the app's components run (workers, replicas, volumes, container names)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import quote

# PostgreSQL's row values out of messages (pure logic, unit-tested on its own): loaded by its path, like the
# rules of the action plugins
_spec = importlib.util.spec_from_file_location(
    "smart_deploy_redact", Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / "redact.py"
)
_redact = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_redact)
# the placeholders of the app's secrets are made and read by the driver's own code (standard library only)
_spec = importlib.util.spec_from_file_location(
    "smart_deploy_driver", Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / "django_driver.py"
)
_driver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_driver)
# how the app's components run (workers, replicas, volumes) and what their containers are called
_services_spec = importlib.util.spec_from_file_location(
    "smart_deploy_services", Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / "services.py"
)
_services = importlib.util.module_from_spec(_services_spec)
_services_spec.loader.exec_module(_services)

MASK = "********"


def smart_deploy_urlquote(value) -> str:
    """Quote a user name, password or database name for a URL: every reserved character, '/' included.

    Jinja's own ``urlencode`` leaves '/' alone, which breaks ``postgres://user:pass/word@host/db``.
    """
    return quote(str(value), safe="")


def _secret_strings(secrets) -> list:
    """The strings to hide: each secret as given and as it appears inside a URL; longest first."""
    found = set()
    stack = [secrets]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
        elif item is not None and not isinstance(item, bool):
            text = str(item)
            if len(text) >= 4:  # a 1-3 character "secret" would mask half of every message
                found.update((text, quote(text, safe=""), quote(text)))
    return sorted(found, key=len, reverse=True)


def _mask(value, strings):
    if isinstance(value, str):
        for secret in strings:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_mask(k, strings): _mask(v, strings) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, strings) for v in value]
    return value


def smart_deploy_mask(value, secrets):
    """``value`` (text, or a structure of them) with every secret in ``secrets`` replaced by ********.

    ``secrets`` may be a string, a list or a dict (its values are the secrets), nested freely.
    """
    return _mask(value, _secret_strings(secrets))


def smart_deploy_redact(value):
    """``value`` (text, or a structure of them) with the values of production rows that PostgreSQL's messages
    carry replaced by … (``Key (name)=(…) is duplicated``, ``Failing row contains (…)``); counts, table,
    column and constraint names and SQLSTATEs stay."""
    return _redact.redact(value)


def smart_deploy_placeholders(secret_env):
    """``{name: throwaway value}`` for every name of the app's secret environment, for the containers that never
    touch production: ``smart-deploy-placeholder-<name>``, or for a secret shaped like a URL
    (``scheme://...``) a URL of the same scheme, ``<scheme>://smart-deploy-placeholder-<name>@localhost/0``, which
    smart-deploy's driver points at the database it points Django at. Nothing of a secret but its URL scheme
    is kept. A value that cannot be rendered here (a variable that is not defined, a vault that is not open) gets the
    plain placeholder: only the names are needed then, as before."""
    values = {}
    for name in secret_env or {}:
        try:
            values[name] = secret_env[name]
        except Exception:  # Ansible renders each value when it is read; an undefined one is no reason to stop
            values[name] = None
    return _driver.placeholders(values)


def smart_deploy_services(components, django_component):
    """Every component but the proxy with its run settings filled in (module_utils/smart_deploy/services.py)."""
    return _services.normalise(components, django_component)


def smart_deploy_container_names(services, images, scope, config_fingerprint):
    """{component: [container names]} of a release: one per component, one per replica for a worker."""
    return _services.container_names(services, images, scope, config_fingerprint)


def smart_deploy_runtime_fingerprint(services):
    """Fingerprint of every component's run settings ('' when none has any), recorded with the release."""
    return _services.runtime_fingerprint(services)


def smart_deploy_volumes(services, scope):
    """The app's named volumes, each once: [{name, docker_name, components}]."""
    return _services.volumes_of(services, scope)


class FilterModule:
    def filters(self):
        return {
            "smart_deploy_urlquote": smart_deploy_urlquote,
            "smart_deploy_mask": smart_deploy_mask,
            "smart_deploy_redact": smart_deploy_redact,
            "smart_deploy_placeholders": smart_deploy_placeholders,
            "smart_deploy_services": smart_deploy_services,
            "smart_deploy_container_names": smart_deploy_container_names,
            "smart_deploy_runtime_fingerprint": smart_deploy_runtime_fingerprint,
            "smart_deploy_volumes": smart_deploy_volumes,
        }
