"""Molecule scenario `cleanup`: three deploys (the last two change only the frontend) and a cleanup; testinfra
checks what must stay stays."""

from tests.molecule.conftest import run_scenario


def test_molecule_scenario_cleanup():
    run_scenario("cleanup")
