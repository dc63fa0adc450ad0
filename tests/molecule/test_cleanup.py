"""Molecule scenario `cleanup`: three deploys and a cleanup; testinfra checks what must stay stays."""

from tests.molecule.conftest import run_scenario


def test_molecule_scenario_cleanup():
    run_scenario("cleanup")
