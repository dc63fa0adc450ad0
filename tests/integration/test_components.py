"""What the app has, on a real app that is not the shop: examples/notes (backend only, build context '.',
project under app/ put in /srv/notes by its image, settings module notesite.settings, port 8081, health
/healthz), deployed through its own inventory (inventories/notes; the full deploys and migration cases of
that app are in test_notes.py). The steps that depend on the
components - input checks, change detection, the build with its wheelhouse, smart-deploy's proxy in
front - run on their own (tests/integration/playbooks/components.yml) against the real Docker engine."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import assert_failed, assert_ok, release_id
from tests.integration.notes import Notes


@pytest.fixture(scope="module")
def deployment_kind():
    return Notes


@pytest.fixture(scope="module")
def notes(module_deployment):
    notes = module_deployment
    notes.base = notes.commit("release 1")
    result = notes.components()
    assert_ok(result)
    notes.first = json.loads(notes.report.read_text())
    notes.first_output = result.stdout
    notes.first_warnings = [line for line in (result.stdout + result.stderr).splitlines()
                            if "WARNING]" in line and "deprecation" not in line.lower()]  # fmt: skip
    return notes


def test_a_backend_only_app_builds_and_detects_only_what_it_has(notes):
    changes = notes.first["changes"]
    assert changes["first_deploy"] is True and changes["database"] is True
    assert changes["rebuild"] == ["backend"] and changes["reuse"] == []
    assert notes.first["built"] == ["backend"]
    assert notes.first["images"] == {"backend": "%s-backend:%s" % (notes.name, release_id(notes.base))}
    assert notes.first["routes"] == [{"path": "/", "component": "backend"}]
    # the summary names what the app has: no frontend, no proxy among what is rebuilt
    changes_row = next(line for line in notes.first_output.splitlines() if line.startswith("| changes"))
    assert "rebuild backend " in changes_row + " " and "frontend" not in changes_row and "proxy" not in changes_row, changes_row


def test_the_wheelhouse_is_filled_from_the_components_entry_for_the_images_python(notes):
    assert notes.first["wheelhouses"] == [
        {"component": "backend", "requirements": "./requirements.txt", "dest": "./wheels", "dockerfile": "./Dockerfile"}
    ]
    assert "--python-version=3.11" in notes.first["pip_args"] and "--platform=manylinux2014_x86_64" in notes.first["pip_args"]
    wheels = sorted(path.name.split("-")[0].lower() for path in (notes.source / "wheels").glob("*.whl"))
    assert {"django", "gunicorn", "psycopg2_binary"} <= set(wheels), wheels
    # a first build warned "Unable to find '<source>/./wheels' in expected paths" (a glob of the wheelhouse not made
    # yet); it warns of nothing now (ansible-core's deprecation notices aside)
    assert notes.first_warnings == [], notes.first_warnings


def test_the_image_layout_comes_from_the_inventory(notes):
    assert notes.first["workdir"] == notes.first["django"]["project_dir"] == "/srv/notes"
    assert notes.first["container_env"]["DJANGO_SETTINGS_MODULE"] == "notesite.settings"
    assert "POSTGRES_PASSWORD" not in notes.first["container_env"]


def test_smart_deploys_proxy_routes_to_the_backends_port(notes):
    through = notes.first["through_proxy"]
    # no database here: the notes app itself answers, on its own path and port, that it cannot reach one
    assert through["status"] == 503 and through["json"]["database"] == "unreachable", through
    config = (notes.state_dir / "proxy" / "conf" / "haproxy.cfg").read_text()
    assert ":8081" in config and "backend backend" in config and "frontend" not in config.replace("frontend http", "")


def test_a_migration_under_the_backends_context_runs_the_database_steps(notes):
    notes.write("app/notes/migrations/0002_note_pinned.py", "from django.db import migrations\n")
    notes.commit("a migration")
    live = notes.base  # what change detection compares with: a recorded live release
    result = notes.playbook(
        "../tests/integration/playbooks/components", "-e", json.dumps({"smart_deploy_live": {"id": release_id(live), "sha": live}})
    )
    assert_ok(result)
    changes = json.loads(notes.report.read_text())["changes"]
    # (the live release given here records no configuration or proxy fingerprint: those count as changed too)
    assert changes["first_deploy"] is False and changes["why"] == "compared with the live release %s" % release_id(live)
    assert [c for c in changes["categories_changed"] if c not in ("config", "proxy")] == ["backend", "migrations"]
    assert changes["rebuild"] == ["backend"] and changes["database"] is True
    assert changes["categories"]["migrations"] == ["app/notes/migrations/0002_note_pinned.py"]


def test_an_inventory_without_the_django_component_is_refused_before_anything_changes(notes):
    result = notes.components("-e", json.dumps({"smart_deploy_components": {"api": {"context": ".", "port": 8081}}}))
    assert_failed(result)
    assert "smart_deploy_components has no 'backend' component (the Django app, smart_deploy_django_component)" in result.stdout
