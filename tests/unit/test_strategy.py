"""normal / fake / abort from rehearsal reports, without Ansible, Docker or Django."""

import pytest
from ansible.module_utils.smart_deploy.strategy import ABORT, FAKE, NORMAL, decide


def report(*migrations, pending=None, errors=(), prechecks_errors=(), post_ok=True, copy=None, warnings=()):
    pending = pending if pending is not None else [m["migration"] for m in migrations]
    return {
        "pending": [{"migration": key} for key in pending],
        "migrations": list(migrations),
        "errors": list(errors),
        "prechecks": {"errors": list(prechecks_errors)},
        "post_check": {"ok": post_ok, "pending_after": [] if post_ok else ["x.0009"]},
        "copy": copy or {"skipped": False},
        "warnings": list(warnings),
    }


def applied(key):
    return {"migration": key, "outcome": "applied"}


def faked(key, equal=True):
    return {"migration": key, "outcome": "faked", "fake_proof": {"found": True, "compared_equal": equal, "differences": []}}


def failed(key, sqlstate="42P01", message="relation does not exist", **extra):
    return dict({"migration": key, "outcome": "failed", "error": {"sqlstate": sqlstate, "message": message}}, **extra)


def test_nothing_pending_is_normal():
    verdict = decide(report(pending=[], copy={"skipped": True, "why": "nothing pending"}))
    assert verdict["strategy"] == NORMAL
    assert verdict["summary"] == "normal: nothing to migrate"


def test_all_applied_is_normal_with_the_apply_list():
    verdict = decide(report(applied("a.0002"), applied("b.0003")))
    assert verdict["strategy"] == NORMAL
    assert verdict["apply"] == ["a.0002", "b.0003"] and verdict["fake"] == []


def test_proven_fake_lists_exactly_the_faked_migrations_in_order():
    verdict = decide(report(faked("reviews.0001_initial"), applied("reviews.0002_rating"), applied("cart.0003")))
    assert verdict["strategy"] == FAKE
    assert verdict["fake"] == ["reviews.0001_initial"]
    assert verdict["apply"] == ["reviews.0002_rating", "cart.0003"]


def test_fake_without_proof_aborts():
    verdict = decide(report(faked("reviews.0001_initial", equal=False)))
    assert verdict["strategy"] == ABORT


def test_failure_aborts_with_sqlstate_and_message():
    verdict = decide(report(applied("a.0001"), failed("cart.0002_note"), {"migration": "cart.0003", "outcome": "not reached"}))
    assert verdict["strategy"] == ABORT
    assert verdict["apply"] == [] and verdict["fake"] == []
    assert "cart.0002_note failed on the copy with SQLSTATE 42P01: relation does not exist" in verdict["reasons"][0]


def test_refused_fake_names_the_differences():
    entry = failed("reviews.0001_initial", sqlstate="42P07", message="relation exists")
    entry["fake_proof"] = {"found": True, "compared_equal": False, "differences": ["reviews_review: column title differs"]}
    verdict = decide(report(entry))
    assert verdict["strategy"] == ABORT
    assert "column title differs" in verdict["reasons"][0]


def test_data_failure_reports_offending_rows():
    entry = failed("catalog.0003_unique_name", sqlstate="23505", message="could not create unique index")
    entry["offending_rows"] = [{"table": "catalog_product", "column": "name", "duplicate_values": 1, "rows": 2}]
    verdict = decide(report(entry))
    assert "catalog_product.name has 1 duplicated values over 2 rows" in verdict["reasons"][0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prechecks_errors": ["conflicting migrations"]},
        {"errors": ["the copy's schema differs from production's"]},
        {"post_ok": False},
        {"copy": {"skipped": True, "why": "rehearsal not asked for"}},
    ],
)
def test_anything_unproven_aborts(kwargs):
    assert decide(report(applied("a.0002"), **kwargs))["strategy"] == ABORT


def test_a_missing_outcome_aborts():
    assert decide(report(pending=["a.0002"]))["strategy"] == ABORT


def test_warnings_only_abort_when_asked():
    warning = {"migration": "a.0002", "rule": "table-rewrite", "message": "table x rewritten"}
    assert decide(report(applied("a.0002"), warnings=[warning]))["strategy"] == NORMAL
    verdict = decide(report(applied("a.0002"), warnings=[warning]), abort_on=["table-rewrite"])
    assert verdict["strategy"] == ABORT and "table-rewrite" in verdict["reasons"][0]


def test_linter_findings_become_warnings():
    lint = {"a.0002": [{"rule_name": "ban-drop-column", "message": "Dropping a column may break existing clients."}]}
    verdict = decide(report(applied("a.0002")), lint=lint, abort_on=["squawk:ban-drop-column"])
    assert verdict["warnings"][0]["rule"] == "squawk:ban-drop-column"
    assert verdict["strategy"] == ABORT


def test_an_emergency_without_rehearsal_is_normal_with_a_warning():
    unrehearsed = report(pending=["a.0002"], copy={"skipped": True, "why": "rehearsal not asked for"})
    assert decide(unrehearsed)["strategy"] == ABORT
    verdict = decide(unrehearsed, require_rehearsal=False)
    assert verdict["strategy"] == NORMAL and verdict["apply"] == ["a.0002"]
    assert verdict["warnings"][0]["rule"] == "not-rehearsed"
    broken = report(pending=["a.0002"], copy={"skipped": True, "why": "pre-checks failed"}, prechecks_errors=["conflicting migrations"])
    assert decide(broken, require_rehearsal=False)["strategy"] == ABORT
