"""The driver's pure helpers (the parts that need no Django): SQL classification, warnings,
schema differences, lock durations, SQLSTATE extraction."""

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver


@pytest.mark.parametrize(
    "sql, mode, relation",
    [
        ('CREATE INDEX "idx" ON "catalog_product" ("name")', "SHARE", "catalog_product"),
        ('CREATE UNIQUE INDEX CONCURRENTLY "idx" ON "catalog_product" ("sku")', "SHARE UPDATE EXCLUSIVE", "catalog_product"),
        ('ALTER TABLE "cart_item" ADD COLUMN "note" varchar(10) NULL', "ACCESS EXCLUSIVE", "cart_item"),
        ('ALTER TABLE "cart_item" VALIDATE CONSTRAINT "c"', "SHARE UPDATE EXCLUSIVE", "cart_item"),
        ('DROP TABLE "old_stuff" CASCADE', "ACCESS EXCLUSIVE", "old_stuff"),
        ('UPDATE "catalog_product" SET "price" = 1', "ROW EXCLUSIVE", "catalog_product"),
        ('CREATE TABLE "new_one" ("id" bigint)', None, None),
        ("SELECT 1", None, None),
    ],
)
def test_statements_are_classified_by_the_lock_they_take(sql, mode, relation):
    got_mode, got_relation, _kind = driver.classify_statement(sql)
    assert (got_mode, got_relation) == (mode, relation)


@pytest.mark.parametrize(
    "sql, kinds",
    [
        ('CREATE INDEX "i" ON "t" ("c")', ["non-concurrent-index"]),
        ('CREATE INDEX CONCURRENTLY "i" ON "t" ("c")', []),
        ('ALTER TABLE "t" ALTER COLUMN "c" TYPE bigint USING "c"::bigint', ["column-type-change"]),
        ('ALTER TABLE "t" ALTER COLUMN "c" SET NOT NULL', ["set-not-null"]),
        ('ALTER TABLE "t" ADD COLUMN "c" integer NOT NULL', ["add-not-null-column"]),
        ('ALTER TABLE "t" ADD COLUMN "c" integer DEFAULT 0 NOT NULL', []),
        ('ALTER TABLE "t" DROP COLUMN "c" CASCADE', ["drop-column"]),
        ('ALTER TABLE "t" RENAME COLUMN "a" TO "b"', ["rename"]),
        ('ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE ("c")', ["validating-constraint"]),
        ('DROP TABLE "t" CASCADE', ["drop-table"]),
    ],
)
def test_dangerous_statements_are_recognised(sql, kinds):
    assert driver.statement_warnings(sql) == kinds


def test_schema_differences_are_said_in_words():
    copy = {"column": {"title": "character varying(60) NOT NULL"}, "constraint": {}, "index": {"x_pkey": "CREATE UNIQUE INDEX ..."}}
    reference = {
        "column": {"title": "character varying(100) NOT NULL", "rating": "integer NOT NULL"},
        "constraint": {"reviews_review_slug_key": "UNIQUE (slug)"},
        "index": {"x_pkey": "CREATE UNIQUE INDEX ..."},
    }
    differences = driver.describe_differences(copy, reference)
    assert differences == [
        "column rating missing on the database (the migration has: integer NOT NULL)",
        "column title differs: database has character varying(60) NOT NULL, the migration makes character varying(100) NOT NULL",
        "constraint reviews_review_slug_key missing on the database (the migration has: UNIQUE (slug))",
    ]


def test_equal_tables_have_no_difference():
    table = {"column": {"id": "bigint NOT NULL IDENTITY"}, "constraint": {"p": "PRIMARY KEY (id)"}, "index": {}}
    assert driver.describe_differences(table, dict(table)) == []


def test_locks_in_a_transaction_are_held_until_commit():
    statements = [
        {"sql": 'ALTER TABLE "t" ADD COLUMN "c" int NULL', "at": 0.1, "seconds": 0.2},
        {"sql": 'CREATE INDEX "i" ON "u" ("c")', "at": 0.5, "seconds": 1.0},
    ]
    locks = driver.lock_summary(statements, atomic=True, migration_seconds=2.0)
    assert {"relation": "t", "mode": "ACCESS EXCLUSIVE", "held_seconds": 1.9} in locks
    assert {"relation": "u", "mode": "SHARE", "held_seconds": 1.5} in locks
    outside = driver.lock_summary(statements, atomic=False, migration_seconds=2.0)
    assert {"relation": "u", "mode": "SHARE", "held_seconds": 1.0} in outside


def test_warnings_leave_out_new_tables_and_empty_ones():
    entry = {
        "migration": "a.0002",
        "rows": {"big": 1000, "empty": 0},
        "seconds": 0.5,
        "statements": [
            {"sql": 'CREATE INDEX "i1" ON "big" ("c")', "seconds": 0.4, "relation": "big", "existing_relation": True},
            {"sql": 'CREATE INDEX "i2" ON "empty" ("c")', "seconds": 0.0, "relation": "empty", "existing_relation": True},
            {"sql": 'CREATE INDEX "i3" ON "fresh" ("c")', "seconds": 0.0, "relation": "fresh", "existing_relation": False},
        ],
    }
    description = {"irreversible": [], "atomic": True}
    warnings = driver.migration_warnings(entry, description, slow_seconds=5)
    assert [w["rule"] for w in warnings] == ["non-concurrent-index"]
    assert "big (1000 rows)" in warnings[0]["message"]


def test_a_rewrite_warns_for_a_table_with_rows_only():
    """A column type change rewrites the table; one with 0 rows on the copy is rewritten in no time."""
    entry = {"migration": "a.0003", "rows": {"big": 1000, "empty": 0}, "seconds": 0.5, "statements": [], "rewritten": ["big", "empty"]}
    warnings = driver.migration_warnings(entry, {"irreversible": [], "atomic": True}, slow_seconds=5)
    assert [(w["rule"], w["message"]) for w in warnings] == [
        ("table-rewrite", "table big (1000 rows) was rewritten: ACCESS EXCLUSIVE for the whole rewrite")
    ]


def test_an_irreversible_or_non_atomic_migration_is_named_in_its_warning():
    """Corpus N9: `no reverse for: Raw Python operation` named no migration among healthchecks' 193."""
    entry = {"migration": "api.0050_backfill", "rows": {}, "seconds": 0.1, "statements": []}
    warnings = driver.migration_warnings(entry, {"irreversible": ["Raw Python operation"], "atomic": False}, slow_seconds=5)
    assert [w["message"] for w in warnings] == [
        "api.0050_backfill has no reverse for: Raw Python operation",
        "api.0050_backfill is non-atomic: a failure can leave it half applied; applied on its own, outside the batch",
    ]


class PgError(Exception):
    pgcode = "23505"


def test_sqlstate_is_found_on_the_chained_cause():
    try:
        try:
            raise PgError("duplicate key")
        except PgError as inner:
            raise RuntimeError("IntegrityError") from inner
    except RuntimeError as outer:
        assert driver.sqlstate(outer) == "23505"
    assert driver.sqlstate(ValueError("no code")) is None


def test_squawks_findings_on_the_linted_sql_name_their_table():
    """The real squawk (the controller's, as roles/migration_validation/tasks/lint.yml runs it) on the SQL the driver
    gives it: each finding's line leads to its statement's table (strategy.lint_warnings)."""
    import json
    import subprocess
    from pathlib import Path

    from ansible.module_utils.smart_deploy.strategy import lint_warnings

    statements = driver.annotate_statements([
        {"sql": 'ALTER TABLE "cart_item" ADD COLUMN "note" varchar(200) DEFAULT \'\' NOT NULL', "seconds": 0.1, "at": 0},
        {"sql": 'UPDATE "cart_item" SET "note" = \'x\'', "seconds": 0.1, "at": 0},
        {"sql": 'CREATE TABLE "cart_tag" ("id" bigint NOT NULL PRIMARY KEY)', "seconds": 0.1, "at": 0},
        {"sql": 'CREATE INDEX "catalog_product_name_idx" ON "catalog_product" ("name")', "seconds": 0.1, "at": 0},
    ], {"cart_item", "catalog_product"})  # fmt: skip
    sql = driver.lint_sql(statements)
    squawk = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "squawk"
    found = subprocess.run([str(squawk), "--reporter", "json"], input=sql, capture_output=True, text=True, check=False)
    findings = json.loads(found.stdout)
    warnings = lint_warnings({"cart.0003_note": findings}, [{"migration": "cart.0003_note", "statements": statements}])
    tables = {w["rule"]: w["table"] for w in warnings}
    assert tables["squawk:prefer-text-field"] == "cart_item"
    assert tables["squawk:require-concurrent-index-creation"] == "catalog_product"
    assert all(w["message"].startswith("cart.0003_note, table ") for w in warnings)
