"""Molecule scenario `default`: converge playbooks/deploy.yml on this machine, idempotence, testinfra."""

from tests.molecule.conftest import run_scenario


def test_molecule_scenario_default():
    output = run_scenario("default")
    assert "idempotence" in output
