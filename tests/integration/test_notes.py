"""Any Django app: the notes sample (examples/notes - Django 4.2, backend only, project under app/, its
own settings module, its own database variable names and health endpoint) deployed through its own
inventory (inventories/notes), with no change to the app: first deploy, a release with a migration, the
table created long ago by `migrate --run-syncdb` (an exact one is faked, one that differs aborts), and a
unique constraint over duplicate rows (abort). One deployment, the tests in order; each abort leaves
production as it was."""

import functools
import json

import pytest

from tests.integration import notes_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, release_id
from tests.integration.notes import Notes
from tests.integration.row_values import assert_the_value_only_in_the_validation_report


@pytest.fixture(scope="module")
def deployment_kind():
    return functools.partial(Notes, app_tests=True)


@pytest.fixture(scope="module")
def notes(module_deployment):
    """Release 1 of notes with a tags app that has no migrations yet, deployed by its inventory; then, by
    hand, `migrate --run-syncdb` created the tags table (the way such tables came to be) and a note was written."""
    deployment = module_deployment
    releases.add_tags_app_without_migrations(deployment)
    deployment.base = deployment.commit("notes with tags, before tags had migrations")
    result = deployment.deploy()
    assert_ok(result)
    deployment.first_deploy = result
    web = deployment.releases()["releases"][-1]["containers"]["backend"]
    synced = deployment.run_in(web, "python", "manage.py", "migrate", "--run-syncdb", "--noinput", as_owner=True)
    assert "Creating table tags_tag" in synced, synced
    deployment.psql("INSERT INTO tags_tag (name, color) VALUES ('work', '#ff0000')")
    return deployment


def last_report(deployment):
    return deployment.validation_reports()[-1]


def validate_and_expect_abort(deployment, message):
    before = deployment.snapshot()
    result = deployment.playbook("validate")
    assert_failed(result)
    assert "Migration validation says abort" in result.stdout
    assert message in result.stdout, result.stdout[-6000:]
    assert deployment.snapshot() == before, "an abort changes nothing in production"
    assert deployment.scratch_leftovers() == []
    return last_report(deployment)


def test_the_first_deploy_serves_the_app_through_its_own_settings_and_health_endpoint(notes):
    """The backend-only app: its database reached under its own names, its tests run in its image against
    smart-deploy's throwaway database, the switch health-gated on /healthz behind smart-deploy's proxy."""
    status, health = notes.get_json("/healthz")
    assert status == 200 and health["database"] == "reachable"
    # the tags app has no migrations yet: Django counts only the notes migration, applied
    assert health["migrations"]["pending"] == 0
    status, created = notes.http("/api/notes/", method="POST", body={"title": "first", "body": "kept"})
    assert status == 201, created
    summary = notes.summary()
    assert "rebuild backend" in summary["steps"]["changes"] and "frontend" not in json.dumps(summary)
    live = notes.releases()["releases"][-1]
    assert live["id"] == release_id(notes.base) and set(live["containers"]) == {"backend"}
    assert notes.container_state(live["containers"]["backend"]) == "running"
    assert live["tests"]["tests"] == 10 and live["tests"]["passed"] is True, live["tests"]


def test_a_release_with_a_migration_is_rehearsed_and_applied(notes):
    releases.add_note_pinned(notes)
    notes.commit("notes can be pinned")
    result = notes.deploy()
    assert_ok(result)
    assert "normal: 1 migrations apply cleanly on the copy" in result.stdout
    assert notes.psql("SELECT title || ':' || pinned FROM notes_note") == "first:false"
    status, health = notes.get_json("/healthz")
    assert status == 200 and health["migrations"]["pending"] == 0
    notes.base = notes.git("rev-parse", "HEAD")


def test_a_syncdb_table_that_differs_from_the_migration_aborts_naming_the_difference(notes):
    releases.give_tags_their_migration(notes, name_length=80)
    notes.commit("tags get their migration (longer names)")
    report = validate_and_expect_abort(notes, "column name differs")
    assert report["verdict"]["strategy"] == "abort"
    differences = " ".join(report["report"]["migrations"][0]["fake_proof"]["differences"])
    assert "character varying(40)" in differences and "character varying(80)" in differences
    notes.reset_to(notes.base)


def test_a_syncdb_table_equal_to_the_migration_is_faked_and_its_rows_kept(notes):
    releases.give_tags_their_migration(notes)
    notes.commit("tags get their migration")
    result = notes.deploy()
    assert_ok(result)
    assert "faked tags.0001_initial" in result.stdout
    assert notes.psql("SELECT string_agg(name, ',') FROM django_migrations WHERE app = 'tags'") == "0001_initial"
    assert notes.psql("SELECT name FROM tags_tag") == "work"
    notes.base = notes.git("rev-parse", "HEAD")


def test_a_unique_constraint_over_duplicate_rows_aborts_with_the_evidence(notes):
    notes.psql("INSERT INTO notes_note (title, body, created_at, pinned) VALUES ('first', 'again', now(), false)")
    releases.make_note_title_unique(notes)
    notes.commit("titles are unique")
    report = validate_and_expect_abort(notes, "SQLSTATE 23505")
    assert "notes_note.title has 1 duplicated values over 2 rows" in report["verdict"]["reasons"][0]
    assert_the_value_only_in_the_validation_report(notes, "title", "first")
    notes.reset_to(notes.base)
