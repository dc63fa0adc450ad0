"""Side files kept in an inventory folder are not parsed as inventory (README "Hooks", the corpus's N5): with
`-i inventories/production` Ansible reads every file of the folder as an inventory source, and a task file in
hooks/ or a certificate in tls/ each gave "Unable to parse ... as an inventory source". ansible.cfg's
`[inventory] ignore_patterns` skips those two folders; the README keeps hooks out of the inventory folder anyway."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT

VENV_BIN = ROOT / ".venv" / "bin"
HOOK = """- name: Collect the static files of the release
  ansible.builtin.debug:
    msg: collectstatic
"""
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"


@pytest.fixture
def inventory(tmp_path):
    """An inventory folder as the README's production one, with a hook and a certificate beside its files."""
    folder = tmp_path / "production"
    (folder / "group_vars" / "app_servers").mkdir(parents=True)
    (folder / "hooks").mkdir()
    (folder / "tls").mkdir()
    (folder / "hosts.yml").write_text("all:\n  children:\n    app_servers:\n      hosts:\n        app1:\n")
    (folder / "group_vars" / "app_servers" / "app.yml").write_text("smart_deploy_app_name: shop\n")
    (folder / "hooks" / "collectstatic.yml").write_text(HOOK)
    (folder / "tls" / "site.crt").write_text(CERTIFICATE)
    return folder


def inventory_list(folder, config):
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_INVENTORY_IGNORE_REGEX", None)
    return subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(folder), "--list"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def warnings(result) -> list:
    return [line for line in result.stderr.splitlines() if "WARNING" in line or "parse" in line.lower()]


def test_hooks_and_certificates_in_an_inventory_folder_are_not_parsed_as_inventory(inventory):
    result = inventory_list(inventory, ROOT / "ansible.cfg")
    assert result.returncode == 0, result.stderr
    assert warnings(result) == [], result.stderr
    assert "app1" in result.stdout and "shop" in result.stdout


def test_without_the_ignore_patterns_they_are_parsed_and_warned_about(inventory, tmp_path):
    """The counter-proof: the same folder with an ansible.cfg of defaults warns about both files."""
    plain = tmp_path / "plain.cfg"
    plain.write_text("[defaults]\n")
    said = "\n".join(warnings(inventory_list(inventory, plain)))
    assert "hooks/collectstatic.yml" in said and "tls/site.crt" in said, said


def test_the_readme_keeps_hooks_out_of_the_inventory_folder():
    readme = (ROOT / "README.md").read_text()
    assert "{{ inventory_dir }}/hooks/" not in readme
    assert '"{{ playbook_dir }}/../hooks/collectstatic.yml"' in readme
