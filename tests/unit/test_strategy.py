"""normal / fake / abort from rehearsal reports, without Ansible, Docker or Django."""

import pytest
from ansible.module_utils.smart_deploy.strategy import ABORT, DEFECT_CODE, FAKE, NORMAL, REASON_CODES, decide


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


def test_each_linter_finding_names_its_migration_and_table():
    """The findings of squawk (its --reporter json: line from 0) on the SQL the driver linted (django_driver.lint_sql)."""
    entry = dict(applied("cart.0003_note"), statements=[
        {"sql": 'ALTER TABLE "cart_item" ADD COLUMN "note" varchar(200) DEFAULT \'\' NOT NULL', "relation": "cart_item",
         "existing_relation": True},
        {"sql": 'UPDATE "cart_item" SET "note" = \'\'', "relation": "cart_item", "existing_relation": True},
        {"sql": 'CREATE TABLE "cart_tag" ("id" bigint NOT NULL)', "relation": None, "existing_relation": False},
        {"sql": 'CREATE INDEX "catalog_product_name_idx"\nON "catalog_product" ("name")', "relation": "catalog_product",
         "existing_relation": True},
        {"sql": 'ALTER TABLE "catalog_product" ALTER COLUMN "price" TYPE numeric(12, 2)', "relation": "catalog_product",
         "existing_relation": True},
    ])  # fmt: skip
    lint = {"cart.0003_note": [
        {"rule_name": "prefer-text-field", "message": "Changing the size of a `varchar` field ...", "line": 0},
        {"rule_name": "require-concurrent-index-creation", "message": "During normal index creation, table updates are blocked",
         "line": 2},
        {"rule_name": "changing-column-type", "message": "Changing a column type requires an ACCESS EXCLUSIVE lock", "line": 3},
        {"rule_name": "require-lock-timeout", "message": "Missing `set lock_timeout`"},
    ]}  # fmt: skip
    warnings = decide(report(entry), lint=lint)["warnings"]
    assert [w["message"] for w in warnings] == [
        "cart.0003_note, table cart_item: Changing the size of a `varchar` field ... (squawk prefer-text-field)",
        "cart.0003_note, table catalog_product: During normal index creation, table updates are blocked "
        "(squawk require-concurrent-index-creation)",
        "cart.0003_note, table catalog_product: Changing a column type requires an ACCESS EXCLUSIVE lock (squawk changing-column-type)",
        "cart.0003_note, table cart_item, catalog_product: Missing `set lock_timeout` (squawk require-lock-timeout)",
    ]
    assert [w["table"] for w in warnings] == ["cart_item", "catalog_product", "catalog_product", None]


def test_an_emergency_without_rehearsal_is_normal_with_a_warning():
    unrehearsed = report(pending=["a.0002"], copy={"skipped": True, "why": "rehearsal not asked for"})
    assert decide(unrehearsed)["strategy"] == ABORT
    verdict = decide(unrehearsed, require_rehearsal=False)
    assert verdict["strategy"] == NORMAL and verdict["apply"] == ["a.0002"]
    assert verdict["warnings"][0]["rule"] == "not-rehearsed"
    broken = report(pending=["a.0002"], copy={"skipped": True, "why": "pre-checks failed"}, prechecks_errors=["conflicting migrations"])
    assert decide(broken, require_rehearsal=False)["strategy"] == ABORT


# --------------------------------------------------------------------------------------------------
# Reason codes and smart_deploy_accept
# --------------------------------------------------------------------------------------------------


def codes(verdict):
    return [r["code"] for r in verdict["abort_reasons"]]


def drift(key="reviews.0001_initial"):
    entry = failed(key, sqlstate="42P07", message='relation "reviews_review" already exists')
    entry["fake_proof"] = {"found": True, "compared_equal": False, "differences": ["reviews_review: column title differs"]}
    return entry


def duplicates(key="catalog.0003_unique_name"):
    entry = failed(key, sqlstate="23505", message="could not create unique index")
    entry["offending_rows"] = [{"table": "catalog_product", "column": "name", "duplicate_values": 1, "rows": 2}]
    return entry


@pytest.mark.parametrize(
    "kwargs, code",
    [
        (dict(prechecks_errors=["inconsistent migration history: a.0002 is applied before a.0001"]), "inconsistent-history"),
        (dict(prechecks_errors=["conflicting migrations (several leaf nodes) in cart: run makemigrations --merge"]), "migration-conflict"),
        (
            dict(errors=["the copy's schema or migration history differs from production's: the copy cannot be trusted"]),
            "copy-not-faithful",
        ),
        (dict(errors=["the rehearsal could not run: boom"]), "rehearsal-failed"),
        (dict(errors=["the copy's plan ['a'] differs from the analysed plan ['b']"]), "plan-mismatch"),
        (dict(pending=["a.0002"], copy={"skipped": True, "why": "rehearsal not asked for"}), "not-rehearsed"),
        (dict(pending=["a.0002"]), "migration-not-applied"),
        (dict(post_ok=False, pending=[]), None),
    ],
)
def test_every_report_error_has_its_code(kwargs, code):
    verdict = decide(report(**kwargs))
    assert codes(verdict) == ([code] if code else [])


@pytest.mark.parametrize(
    "entry, code",
    [
        (drift(), "schema-drift"),
        (failed("a.0002", sqlstate="42703", message='column "x" does not exist'), "schema-drift"),
        (duplicates(), "duplicate-rows"),
        (failed("a.0002", sqlstate="23502", offending_rows=[{"table": "t", "column": "c", "null_rows": 3}]), "null-rows"),
        (failed("a.0002", sqlstate="23502", offending_rows=[{"table": "t", "column": "c", "rows_without_value": 3}]), "rows-without-value"),
        (failed("a.0002", sqlstate="P0001", message="raised by the migration"), "migration-failed"),
        (faked("a.0002", equal=False), "fake-unproven"),
    ],
)
def test_every_rehearsal_failure_has_its_code(entry, code):
    assert codes(decide(report(entry))) == [code]


def test_every_code_is_known_to_the_input_check_and_documented():
    from ansible.module_utils.smart_deploy.inputs import ACCEPT_CODES
    from ansible.module_utils.smart_deploy.strategy import REASON_CODES

    from tests.conftest import ROOT

    assert list(ACCEPT_CODES) == list(REASON_CODES)
    readme = (ROOT / "README.md").read_text()
    for code in REASON_CODES:
        assert "| `%s` |" % code in readme, "README's reason codes table lacks %s" % code


def test_a_migration_not_reached_after_a_failure_shares_the_failures_code():
    verdict = decide(report(applied("a.0001"), duplicates(), {"migration": "cart.0003", "outcome": "not reached"}))
    assert codes(verdict) == ["duplicate-rows"]
    assert verdict["reasons"][0].endswith("; 1 more migration was not reached: cart.0003")
    through = decide(
        report(applied("a.0001"), duplicates(), {"migration": "cart.0003", "outcome": "not reached"}), accept=["duplicate-rows"]
    )
    assert through["strategy"] == NORMAL
    assert through["apply"] == ["a.0001", "catalog.0003_unique_name", "cart.0003"]


def test_an_accepted_code_goes_through_and_is_listed_with_its_reason():
    verdict = decide(report(applied("a.0001"), drift()), accept=["schema-drift"])
    assert verdict["strategy"] == NORMAL and verdict["reasons"] == [] and verdict["abort_reasons"] == []
    assert [a["code"] for a in verdict["accepted"]] == ["schema-drift"]
    assert "column title differs" in verdict["accepted"][0]["reason"]
    assert verdict["accepted_unused"] == []


def test_accepting_one_code_leaves_the_others_aborting():
    verdict = decide(report(drift(), duplicates()), accept=["schema-drift"])
    assert verdict["strategy"] == ABORT
    assert codes(verdict) == ["duplicate-rows"] and len(verdict["reasons"]) == 1
    assert [a["code"] for a in verdict["accepted"]] == ["schema-drift"]
    assert verdict["summary"].startswith("abort: catalog.0003_unique_name failed")


def test_a_proven_fake_stays_fake_when_another_reason_is_accepted():
    verdict = decide(report(faked("reviews.0001_initial"), duplicates()), accept=["duplicate-rows"])
    assert verdict["strategy"] == FAKE
    assert verdict["fake"] == ["reviews.0001_initial"] and verdict["apply"] == ["catalog.0003_unique_name"]


def test_an_accepted_code_that_did_not_occur_is_harmless():
    verdict = decide(report(applied("a.0001")), accept=["duplicate-rows", "schema-drift"])
    assert verdict["strategy"] == NORMAL and verdict["accepted"] == []
    assert verdict["accepted_unused"] == ["duplicate-rows", "schema-drift"]


def test_an_accepted_pre_check_error_still_needs_the_rehearsal():
    """Accepting a pre-check error does not skip the rehearsal's own checks: with pending migrations and
    no copy (the pre-checks stopped it), not-rehearsed aborts until it is accepted too."""
    blocked = report(
        pending=["a.0002"], prechecks_errors=["inconsistent migration history: x"], copy={"skipped": True, "why": "pre-checks failed"}
    )
    assert codes(decide(blocked, accept=["inconsistent-history"])) == ["not-rehearsed"]
    assert decide(blocked, accept=["inconsistent-history", "not-rehearsed"])["strategy"] == NORMAL


def test_a_warning_set_to_abort_has_its_code_and_never_stops_an_emergency():
    warning = {"rule": "table-rewrite", "message": "catalog_product is rewritten"}
    verdict = decide(report(applied("a.0001"), warnings=[warning]), abort_on=["table-rewrite"])
    assert codes(verdict) == ["abort-on-warning"]
    assert (
        decide(report(applied("a.0001"), warnings=[warning]), abort_on=["table-rewrite"], accept=["abort-on-warning"])["strategy"] == NORMAL
    )
    emergency = report(pending=["a.0001"], copy={"skipped": True, "why": "rehearsal not asked for"}, warnings=[warning])
    assert decide(emergency, abort_on=["table-rewrite"], require_rehearsal=False)["strategy"] == NORMAL


def test_missing_migrations_are_warnings_when_state_only_and_abort_naming_the_sql_otherwise():
    sku = 'ALTER TABLE "shop_product" ADD COLUMN "sku" varchar(20) NULL;'
    missing = [
        {
            "migration": "blog.0007_auto",
            "kind": "state-only",
            "sql": [],
            "operations": [{"describe": "Change Meta options on post", "sql": []}],
        },
        {
            "migration": "shop.0002_auto",
            "kind": "sql",
            "sql": [sku],
            "operations": [{"describe": "Add field sku to product", "sql": [sku]}],
        },
        {"app": None, "migration": None, "kind": "unchecked", "error": "ValueError: boom"},
    ]
    base = report(pending=[], copy={"skipped": True, "why": "nothing pending"})
    base["prechecks"]["missing_migrations"] = missing
    verdict = decide(base)
    assert codes(verdict) == ["missing-migration-sql"]
    assert 'ADD COLUMN "sku"' in verdict["reasons"][0] and verdict["reasons"][0].startswith("shop.0002_auto:")
    rules = [w["rule"] for w in verdict["warnings"]]
    assert rules == ["missing-migration-state-only", "missing-migrations-unchecked"]
    assert "blog.0007_auto" in verdict["warnings"][0]["message"] and "Change Meta options on post" in verdict["warnings"][0]["message"]
    assert decide(base, accept=["missing-migration-sql"])["strategy"] == NORMAL
    state_only = report(pending=[], copy={"skipped": True, "why": "nothing pending"})
    state_only["prechecks"]["missing_migrations"] = missing[:1]
    assert decide(state_only)["strategy"] == NORMAL
    # a warning stops only a deploy that lists its rule in abort_on, and never an emergency one
    assert codes(decide(state_only, abort_on=["missing-migration-state-only"])) == ["abort-on-warning"]
    assert decide(state_only, abort_on=["missing-migration-state-only"], require_rehearsal=False)["strategy"] == NORMAL


def test_a_long_sql_is_cut_in_the_reason():
    statements = ['ALTER TABLE "t" ADD COLUMN "c%d" integer NULL;' % i for i in range(100)]
    base = report(pending=[], copy={"skipped": True, "why": "nothing pending"})
    base["prechecks"]["missing_migrations"] = [{"migration": "t.0002", "kind": "sql", "sql": statements, "operations": []}]
    reason = decide(base)["reasons"][0]
    assert len(reason) < 800 and reason.endswith("(100 statements)")


# --------------------------------------------------------------------------------------------------
# Messages: the migrations not reached are counted; smart-deploy's own defect is never the app's
# --------------------------------------------------------------------------------------------------


def not_reached(key):
    return {"migration": key, "outcome": "not reached"}


def test_hundreds_of_migrations_not_reached_make_one_short_reason():
    later = ["app%03d.0001_initial" % n for n in range(229)]
    verdict = decide(report(failed("contenttypes.0001_initial", sqlstate="42P01"), *map(not_reached, later)))
    assert codes(verdict) == ["schema-drift"] and len(verdict["reasons"]) == 1
    assert verdict["reasons"][0].endswith(
        "; 229 more migrations were not reached: app000.0001_initial, app001.0001_initial, app002.0001_initial and 226 more"
    )
    assert len(verdict["abort_message"]) < 500 and "-e smart_deploy_accept=schema-drift" in verdict["abort_message"]


def test_migrations_not_reached_without_a_failure_are_counted_as_not_applied():
    verdict = decide(report(applied("a.0001"), not_reached("a.0002"), not_reached("a.0003")))
    assert codes(verdict) == ["migration-not-applied"]
    assert verdict["reasons"] == ["2 more migrations were not reached: a.0002, a.0003"]


def with_origin(entry, origin):
    entry["error"]["origin"] = origin  # the driver says whose a failure is
    return entry


def test_a_failure_of_smart_deploys_driver_is_its_own_defect_and_never_accepted():
    entry = with_origin(failed("contenttypes.0001_initial", sqlstate=None, message="InterfaceError: result not set"), "smart-deploy")
    verdict = decide(report(entry, not_reached("a.0001")), accept=["migration-failed", "rehearsal-failed", DEFECT_CODE])
    assert verdict["strategy"] == ABORT and verdict["defect"] and codes(verdict) == [DEFECT_CODE] and verdict["accepted"] == []
    assert verdict["reasons"][0] == (
        "contenttypes.0001_initial failed on the copy because smart-deploy's driver broke, not because of the migration: "
        "InterfaceError: result not set (a defect of smart-deploy: the driver's traceback is in the validation report); "
        "1 more migration was not reached: a.0001"
    )
    message = verdict["abort_message"]
    assert "smart-deploy itself failed (a defect of smart-deploy, not of your app" in message
    assert "smart_deploy_accept=" not in message and "cannot be accepted" in message


def test_the_app_failing_is_not_a_defect_and_its_message_offers_the_override():
    verdict = decide(report(with_origin(failed("a.0002", sqlstate="P0001", message="raised by the migration"), "app")))
    assert codes(verdict) == ["migration-failed"] and not verdict["defect"]
    assert verdict["abort_message"].startswith("Migration validation says abort: migration-failed: a.0002 failed on the copy")
    assert verdict["abort_message"].endswith("(to go through, after reading them: -e smart_deploy_accept=migration-failed)")


def test_the_rehearsal_modules_defect_error_keeps_its_code_beside_the_apps_reasons():
    """django_migration_dryrun reports a driver that broke as {code: smart-deploy-defect, reason}."""
    broken = {"code": DEFECT_CODE, "reason": "smart-deploy's driver broke during the rehearsal: AttributeError: x"}
    verdict = decide(report(errors=[broken, "the rehearsal could not run: boom"]), accept=["rehearsal-failed"])
    assert codes(verdict) == [DEFECT_CODE] and verdict["defect"] and [a["code"] for a in verdict["accepted"]] == ["rehearsal-failed"]
    assert "smart_deploy_accept=" not in verdict["abort_message"]
    assert decide(report(applied("a.0001")))["abort_message"] == ""


def test_the_defect_code_is_not_one_smart_deploy_accept_takes_and_is_documented():
    from ansible.module_utils.smart_deploy.inputs import ACCEPT_CODES, accept_problems

    from tests.conftest import ROOT

    assert DEFECT_CODE not in REASON_CODES and DEFECT_CODE not in ACCEPT_CODES
    assert "unknown abort reason code 'smart-deploy-defect'" in accept_problems([DEFECT_CODE])[0]
    assert "| `%s` |" % DEFECT_CODE in (ROOT / "README.md").read_text()
