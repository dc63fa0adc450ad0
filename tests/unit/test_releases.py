"""releases.json transitions, on data, and release_state run as Ansible runs it."""

import datetime
import json

import pytest
from ansible.module_utils.smart_deploy import releases

T0 = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def deployed(*ids):
    doc = releases.empty_state("shop")
    for index, release_id in enumerate(ids):
        doc = releases.start(doc, release_id, at(index * 10), {"sha": release_id * 3})
        doc = releases.finish(doc, release_id, at(index * 10 + 1), {})
    return doc


def test_first_release_goes_live():
    doc = deployed("r1")
    assert doc["current"] == "r1"
    assert [e["status"] for e in doc["releases"]] == ["live"]
    assert releases.previous_good(doc) is None


def test_new_release_supersedes_the_live_one():
    doc = deployed("r1", "r2")
    assert doc["current"] == "r2"
    assert [(e["id"], e["status"]) for e in doc["releases"]] == [("r1", "superseded"), ("r2", "live")]
    assert releases.previous_good(doc)["id"] == "r1"
    assert doc["releases"][1]["previous"] == "r1"


def test_failed_attempt_keeps_the_live_release_current():
    doc = deployed("r1")
    doc = releases.start(doc, "r2", at(20), {})
    doc = releases.fail(doc, "r2", at(21), "health check failed", {})
    assert doc["current"] == "r1"
    assert doc["releases"][-1]["status"] == "failed"
    assert doc["releases"][-1]["reason"] == "health check failed"
    assert releases.current_entry(doc)["id"] == "r1"


def test_an_interrupted_attempt_is_marked_failed_by_the_next_start():
    doc = deployed("r1")
    doc = releases.start(doc, "r2", at(20), {})
    doc = releases.start(doc, "r2", at(30), {})
    statuses = [(e["id"], e["status"], e["attempt"]) for e in doc["releases"]]
    assert statuses == [("r1", "live", 1), ("r2", "failed", 1), ("r2", "deploying", 2)]
    assert "interrupted" in doc["releases"][1]["reason"]


def test_finishing_a_live_release_again_changes_nothing():
    doc = deployed("r1")
    assert releases.finish(doc, "r1", at(50), {}) == doc


def test_finish_without_an_attempt_is_refused():
    with pytest.raises(releases.ReleaseStateError):
        releases.finish(deployed("r1"), "r9", at(50), {})


def test_a_file_of_another_app_is_refused():
    with pytest.raises(releases.ReleaseStateError):
        releases.normalise(deployed("r1"), "blog")


def test_trim_keeps_the_live_entry():
    doc = deployed("r1")
    for index in range(5):
        doc = releases.start(doc, "bad%d" % index, at(100 + index), {})
        doc = releases.fail(doc, "bad%d" % index, at(100 + index), "no", {})
    trimmed = releases.trim(doc, 3)
    assert len(trimmed["releases"]) == 3
    assert trimmed["releases"][0]["id"] == "r1"


def test_module_writes_atomically_readable_by_owner_and_group(tmp_path, run_module):
    path = tmp_path / "releases.json"
    base = {"path": str(path), "app": "shop"}
    assert run_module("release_state", base)["changed"] is False
    assert not path.exists()
    started = run_module("release_state", dict(base, action="start", release="r1", fields={"sha": "abc"}))
    assert started["changed"] is True and started["entry"]["status"] == "deploying"
    finished = run_module("release_state", dict(base, action="finish", release="r1"))
    assert finished["current"]["id"] == "r1"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert json.loads(path.read_text())["current"] == "r1"
    assert run_module("release_state", dict(base, action="finish", release="r1"))["changed"] is False
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_module_refuses_a_broken_file_with_a_clear_message(tmp_path, run_module):
    path = tmp_path / "releases.json"
    path.write_text("{not json")
    result = run_module("release_state", {"path": str(path), "app": "shop"})
    assert result["failed"] is True and "cannot read release history" in result["msg"]


def test_rollback_makes_the_target_live_and_marks_the_current_rolled_back():
    doc = deployed("r1", "r2")
    doc = releases.rollback(doc, "r1", at(60), {"deployed_by": "ops"})
    assert doc["current"] == "r1"
    assert [(e["id"], e["status"], e.get("kind")) for e in doc["releases"]] == [
        ("r1", "superseded", None),
        ("r2", "rolled-back", None),
        ("r1", "live", "rollback"),
    ]
    assert doc["releases"][-1]["previous"] == "r2" and doc["releases"][-1]["deployed_by"] == "ops"


def test_rolled_back_and_failed_releases_are_never_the_default_target():
    doc = releases.rollback(deployed("r1", "r2", "r3"), "r2", at(90), {})
    assert releases.previous_good(doc)["id"] == "r1"


def test_a_rollback_entry_keeps_the_database_its_target_read_unless_it_was_asked_again():
    """issue 24: which database a release reads is recorded with it; a rollback entry says it too (the check's answer when
    its Django container started, else what the target recorded when it went live)."""
    doc = releases.empty_state("shop")
    for minutes, release_id in ((0, "r1"), (10, "r2")):
        doc = releases.start(doc, release_id, at(minutes), {})
        doc = releases.finish(doc, release_id, at(minutes + 1), {"database": {"name": "shop", "server": {"oid": "1"}}})
    assert releases.rollback(doc, "r1", at(30), {})["releases"][-1]["database"] == {"name": "shop", "server": {"oid": "1"}}
    asked = {"name": "shop", "server": {"oid": "2"}}
    assert releases.rollback(doc, "r1", at(30), {"database": asked})["releases"][-1]["database"] == asked


def test_rollback_to_an_unknown_or_live_release_is_refused():
    with pytest.raises(releases.ReleaseStateError):
        releases.rollback(deployed("r1"), "nope", at(5), {})
    with pytest.raises(releases.ReleaseStateError):
        releases.rollback(deployed("r1", "r2"), "r2", at(5), {})


def test_fresh_containers_of_the_live_release_replace_what_it_recorded():
    """After a restore the live release serves from fresh containers (another name): its entry says which, and nothing
    else of the history changes - the attempt under way stays as it was, for the rescue to record it failed."""
    doc = deployed("r1")
    doc["releases"][0]["containers"] = {"web": "app-web-r1-aaaa"}
    doc = releases.start(doc, "r2", at(20), {})
    fresh = {"containers": {"web": "app-web-r1-bbbb"}, "replicas": {"web": ["app-web-r1-bbbb"]}}
    after = releases.serving(doc, "r1", at(25), fresh)
    assert releases.current_entry(after)["containers"] == {"web": "app-web-r1-bbbb"}
    assert releases.current_entry(after)["replicas"] == {"web": ["app-web-r1-bbbb"]}
    assert releases.current_entry(after)["containers_since"] == "2026-11-29T12:25:00Z"
    assert [(e["id"], e["status"]) for e in after["releases"]] == [(e["id"], e["status"]) for e in doc["releases"]]
    with pytest.raises(releases.ReleaseStateError, match="not the live release"):
        releases.serving(doc, "r2", at(25), fresh)


def test_the_backup_of_a_release_is_the_one_taken_when_it_was_replaced():
    doc = deployed("r1")
    doc = releases.start(doc, "r2", at(20), {})
    doc = releases.update(doc, "r2", {"backup": "/b/shop-r2.dump"})
    doc = releases.finish(doc, "r2", at(21), {})
    assert releases.backup_after(doc, "r1") == "/b/shop-r2.dump"
    assert releases.backup_after(doc, "r2") is None


def test_rollback_entries_do_not_hide_the_backup_of_a_release():
    doc = deployed("r1")
    doc = releases.start(doc, "r2", at(20), {})
    doc = releases.update(doc, "r2", {"backup": "/b/shop-r2.dump"})
    doc = releases.finish(doc, "r2", at(21), {})
    doc = releases.rollback(doc, "r1", at(30), {})
    doc = releases.rollback(doc, "r2", at(40), {})
    assert releases.backup_after(doc, "r1") == "/b/shop-r2.dump"


def test_restoring_the_live_release_database_after_a_failed_rollback():
    """A deploy of r3 failed and its automatic rollback too: r2 serves, its database as r3 left it.
    Rolling back to r2 itself is allowed only with the restore, from the backup taken before r3."""
    doc = deployed("r1", "r2")
    doc = releases.start(doc, "r3", at(30), {})
    doc = releases.update(doc, "r3", {"backup": "/b/shop-r3.dump"})
    doc = releases.fail(doc, "r3", at(31), "health check", {"rollback": {"done": False}})
    assert releases.backup_after(doc, "r2") == "/b/shop-r3.dump"
    with pytest.raises(releases.ReleaseStateError, match="already live"):
        releases.rollback(doc, "r2", at(40), {})
    doc = releases.rollback(doc, "r2", at(40), {"restored_backup": "/b/shop-r3.dump"})
    assert doc["current"] == "r2"
    assert [(e["id"], e["status"], e.get("kind")) for e in doc["releases"]] == [
        ("r1", "superseded", None),
        ("r2", "superseded", None),
        ("r3", "failed", None),
        ("r2", "live", "rollback"),
    ]
    assert releases.previous_good(doc)["id"] == "r1"


def test_the_backup_of_a_release_is_the_newest_taken_before_it_was_replaced():
    """Failed attempts in between took backups of the same database: the newest one keeps the most."""
    doc = deployed("r1")
    doc = releases.start(doc, "r2", at(20), {"backup": "/b/shop-r2-try1.dump"})
    doc = releases.fail(doc, "r2", at(21), "migration error", {})
    doc = releases.start(doc, "r2", at(30), {"backup": "/b/shop-r2-try2.dump"})
    doc = releases.finish(doc, "r2", at(31), {})
    doc = releases.start(doc, "r3", at(40), {"backup": "/b/shop-r3.dump"})
    doc = releases.finish(doc, "r3", at(41), {})
    assert releases.backup_after(doc, "r1") == "/b/shop-r2-try2.dump"
    assert releases.backup_after(doc, "r2") == "/b/shop-r3.dump"


def test_an_event_is_recorded_beside_the_releases_with_the_live_release():
    doc = deployed("r1", "r2")
    after = releases.record_event(doc, {"kind": "manage", "by": "ops", "args": ["migrate", "--check"], "exit_code": 0}, at(60))
    assert after["releases"] == doc["releases"] and after["current"] == "r2"
    assert after["events"] == [
        {"kind": "manage", "by": "ops", "args": ["migrate", "--check"], "exit_code": 0, "at": "2026-11-29T13:00:00Z", "release": "r2"}
    ]
    assert "events" not in doc  # nothing changed in place


def test_only_the_newest_events_are_kept():
    doc = deployed("r1")
    for minute in range(releases.EVENTS_KEPT + 5):
        doc = releases.record_event(doc, {"kind": "maintenance", "state": "on" if minute % 2 else "off"}, at(minute))
    assert len(doc["events"]) == releases.EVENTS_KEPT
    assert doc["events"][0]["at"] == releases.to_iso(at(5)) and doc["events"][-1]["at"] == releases.to_iso(at(releases.EVENTS_KEPT + 4))


def test_release_state_records_an_event_without_a_release(tmp_path, run_module):
    path = tmp_path / "releases.json"
    args = {"path": str(path), "app": "shop", "action": "event", "fields": {"kind": "maintenance", "state": "on"}}
    result = run_module("release_state", args)
    assert result["changed"] and result["entry"]["kind"] == "maintenance" and result["entry"]["release"] is None
    assert json.loads(path.read_text())["events"][0]["state"] == "on"
