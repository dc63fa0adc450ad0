"""Every role documents and validates what it takes: argument specs match the defaults, every
default is prefixed with the role name, and the README tables are generated from the specs."""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLES)
def test_role_has_specs_defaults_and_readme(role):
    for part in ("meta/argument_specs.yml", "meta/main.yml", "tasks/main.yml", "README.md"):
        assert (ROOT / "roles" / role / part).exists(), part


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_prefixed_and_specified(role):
    defaults_file = ROOT / "roles" / role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    specified = set(specs["main"].get("options") or {})
    for name in defaults:
        assert name.startswith(role + "_"), "%s: default %s is not prefixed with %s_" % (role, name, role)
        assert name in specified, "%s: default %s is missing from meta/argument_specs.yml" % (role, name)


def test_role_readmes_are_generated_from_the_specs():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "role_docs.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
