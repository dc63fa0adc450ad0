"""No production row values in what gets recorded: PostgreSQL's messages as psycopg2 / Django give them, redacted
(redact.py), and the migration checks' reasons built from them (strategy.py). Pure logic."""

import pytest
from ansible.module_utils.smart_deploy.redact import HIDDEN, redact, redact_text
from ansible.module_utils.smart_deploy.strategy import ABORT, decide

# (message as error_message() writes it, what must stay, the values that must go)
MESSAGES = [
    (  # unique index over duplicates (23505, ALTER TABLE / CREATE UNIQUE INDEX)
        'IntegrityError: could not create unique index "catalog_product_name_key"\nDETAIL:  Key (name)=(Green tea, 100 g) is duplicated.',
        'IntegrityError: could not create unique index "catalog_product_name_key"\nDETAIL:  Key (name)=(…) is duplicated.',
        ["Green tea", "100 g"],
    ),
    (  # unique violation on insert, an expression index, a value with parentheses
        'IntegrityError: duplicate key value violates unique constraint "u"\nDETAIL:  Key (lower(name::text))=(tea (big)) already exists.',
        'IntegrityError: duplicate key value violates unique constraint "u"\nDETAIL:  Key (lower(name::text))=(…) already exists.',
        ["tea (big)"],
    ),
    (  # foreign key (23503), both ways
        'IntegrityError: insert or update on table "cart_item" violates foreign key constraint "fk_p"\n'
        'DETAIL:  Key (product_id)=(4711) is not present in table "catalog_product".',
        'IntegrityError: insert or update on table "cart_item" violates foreign key constraint "fk_p"\n'
        'DETAIL:  Key (product_id)=(…) is not present in table "catalog_product".',
        ["4711"],
    ),
    (
        'IntegrityError: update or delete on table "catalog_product" violates foreign key constraint "fk_p" on table "cart_item"\n'
        'DETAIL:  Key (id, sku)=(12, MUG-001) is still referenced from table "cart_item".',
        'IntegrityError: update or delete on table "catalog_product" violates foreign key constraint "fk_p" on table "cart_item"\n'
        'DETAIL:  Key (id, sku)=(…) is still referenced from table "cart_item".',
        ["MUG-001", "12,"],
    ),
    (  # NOT NULL (23502) with the failing row; a value that holds a newline
        'IntegrityError: null value in column "title" of relation "notes_note" violates not-null constraint\n'
        "DETAIL:  Failing row contains (3, null, Dear Bob,\nsee you, t).",
        'IntegrityError: null value in column "title" of relation "notes_note" violates not-null constraint\n'
        "DETAIL:  Failing row contains (…).",
        ["Dear Bob", "see you"],
    ),
    (  # check constraint (23514) on a row, then the HINT/CONTEXT lines stay
        'IntegrityError: new row for relation "catalog_product" violates check constraint "price_positive"\n'
        "DETAIL:  Failing row contains (7, TEA-9, Secret blend, -1.00).\nCONTEXT:  SQL statement in a migration",
        'IntegrityError: new row for relation "catalog_product" violates check constraint "price_positive"\n'
        "DETAIL:  Failing row contains (…).\nCONTEXT:  SQL statement in a migration",
        ["Secret blend", "TEA-9"],
    ),
    (  # exclusion constraint (23P01): two keys with values
        'IntegrityError: conflicting key value violates exclusion constraint "no_overlap"\n'
        "DETAIL:  Key (room, during)=(4, [2026-01-01,2026-01-03)) conflicts with existing key (room, during)=(4, [2026-01-02,2026-01-05)).",
        'IntegrityError: conflicting key value violates exclusion constraint "no_overlap"\nDETAIL:  Key (room, during)=(…)',
        ["2026-01-0"],
    ),
    (  # a cast over rows (22P02, ALTER COLUMN ... TYPE ... USING)
        'DataError: invalid input syntax for type integer: "12 kg"',
        'DataError: invalid input syntax for type integer: "…"',
        ["12 kg"],
    ),
    (
        'DataError: invalid input value for enum size: "XXL"\nCONTEXT:  x',
        'DataError: invalid input value for enum size: "…"\nCONTEXT:  x',
        ["XXL"],
    ),
    (
        'NumericValueOutOfRange: value "123456789012" is out of range for type integer',
        'NumericValueOutOfRange: value "…" is out of range for type integer',
        ["123456789012"],
    ),
    (
        'DataError: date/time field value out of range: "2026-13-45"',
        'DataError: date/time field value out of range: "…"',
        ["2026-13-45"],
    ),
]


@pytest.mark.parametrize(("message", "expected", "values"), MESSAGES, ids=[m[0].split(":")[0] + str(i) for i, m in enumerate(MESSAGES)])
def test_postgresql_messages_lose_their_values_and_keep_the_rest(message, expected, values):
    assert redact_text(message) == expected
    for value in values:
        assert value not in redact_text(message)
    assert redact_text(expected) == expected, "redacting twice changes nothing"


def test_texts_without_values_are_left_alone():
    for text in (
        "",
        'column "price" of relation "catalog_product" contains null values',
        'check constraint "price_positive" of relation "catalog_product" is violated by some row',
        "catalog_product.name has 1 duplicated values over 2 rows",
        'relation "cart_wishlist" already exists',
        "value too long for type character varying(10)",
        "the key (to the house) is under the mat",
    ):
        assert redact_text(text) == text
    assert redact_text(None) is None and redact(3) == 3


def test_a_message_cut_short_still_hides_what_is_left_of_its_value():
    """reason.yml truncates a failed task's stderr: a DETAIL cut in the middle of its value."""
    assert redact_text("(DETAIL:  Key (name)=(Green te...") == "(DETAIL:  Key (name)=(…)"
    assert redact_text("DETAIL:  Failing row contains (3, Bob...") == "DETAIL:  Failing row contains (…)."


def test_structures_are_redacted_through_their_values():
    summary = {
        "failure": "Apply: IntegrityError ... DETAIL:  Key (sku)=(TEA-001) already exists.",
        "validation": {"abort_reasons": [{"code": "duplicate-rows", "reason": "x Key (sku)=(TEA-001) is duplicated."}]},
        "steps": {"build": "built backend"},
        "seconds": 12.5,
    }
    redacted = redact(summary)
    assert "TEA-001" not in repr(redacted)
    assert redacted["validation"]["abort_reasons"][0] == {"code": "duplicate-rows", "reason": "x Key (sku)=(%s) is duplicated." % HIDDEN}
    assert redacted["steps"] == {"build": "built backend"} and redacted["seconds"] == 12.5


def test_an_abort_over_duplicates_names_counts_and_sqlstate_never_the_value():
    message = (
        'IntegrityError: could not create unique index "catalog_product_name_key"\nDETAIL:  Key (name)=(Green tea, 100 g) is duplicated.'
    )
    report = {
        "pending": [{"migration": "catalog.0003_unique_name"}],
        "migrations": [
            {
                "migration": "catalog.0003_unique_name",
                "outcome": "failed",
                "error": {"sqlstate": "23505", "message": message},
                "offending_rows": [{"table": "catalog_product", "column": "name", "duplicate_values": 1, "rows": 2}],
            }
        ],
        "errors": [],
        "warnings": [{"rule": "slow", "message": "DETAIL:  Key (name)=(Green tea, 100 g) already exists."}],
        "post_check": {"ok": True},
        "copy": {"skipped": False},
    }
    result = decide(report, abort_on=["slow"])
    assert result["strategy"] == ABORT
    texts = repr((result["reasons"], result["abort_reasons"], result["warnings"], result["summary"]))
    assert "Green tea" not in texts and "100 g" not in texts
    duplicate = [r["reason"] for r in result["abort_reasons"] if r["code"] == "duplicate-rows"][0]
    assert "SQLSTATE 23505" in duplicate and "Key (name)=(…) is duplicated" in duplicate
    assert duplicate.endswith("catalog_product.name has 1 duplicated values over 2 rows"), "what follows the message stays"
    assert report["migrations"][0]["error"]["message"] == message, "the report itself (saved on the target) keeps the evidence"
    # an error of the rehearsal itself (it stops before the migrations are looked at)
    report["errors"] = ["rehearsal said: IntegrityError\nDETAIL:  Failing row contains (9, Green tea, 100 g, null)."]
    result = decide(report)
    assert result["abort_reasons"] == [
        {"code": "rehearsal-failed", "reason": "rehearsal said: IntegrityError\nDETAIL:  Failing row contains (…)."}
    ]
