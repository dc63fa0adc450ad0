"""Migrations the old release cannot live with (module_utils/smart_deploy/compat.py): each rule shown both ways,
on the facts the driver reads from Django's operations and on raw SQL; the rolling gate; the verdict's
breaking list and backward_compatible. Then the driver's facts from real Django 4.2 and 5.2 operations (the
offline analysis, no database; the venvs of tests/unit/test_driver_database_override.py)."""

import json

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver
from ansible.module_utils.smart_deploy.compat import breaking_operations, existing_tables, fact_findings, gate, split_sql, sql_findings
from ansible.module_utils.smart_deploy.strategy import NORMAL, decide

from tests.unit.test_driver_database_override import DRIVER, django_python, run

KEY = "cart.0003_change"


def rules(found):
    return [(item["rule"], item["table"], item["column"]) for item in found]


# --- Django's operations (the facts django_driver.schema_facts reads) ------------------------------------------


def added(**fact):
    return dict({"type": "AddField", "table": "cart_item", "column": "gift", "null": False, "db_default": False, "generated": False,
                 "m2m": False}, **fact)  # fmt: skip


def altered(old_null, new_null, new_column="note", kind="AlterField"):
    return {"type": kind, "table": "cart_item", "old_column": "note", "new_column": new_column, "old_null": old_null, "new_null": new_null}


REMOVED = {"type": "RemoveField", "describe": "Remove field note from cartitem", "table": "cart_item", "column": "note"}


@pytest.mark.parametrize(
    "fact, expected",
    [
        # a dropped column / table breaks the old code; a state-only removal (no fact) or an unmanaged model does not
        (REMOVED, [("drop-column", "cart_item", "note")]),
        (dict(REMOVED, managed=False), []),
        (dict(REMOVED, table="cart_cart", column=None, m2m_table="cart_cart_tags"), [("drop-table", "cart_cart_tags", None)]),
        ({"type": "DeleteModel", "table": "cart_wishlist", "managed": True}, [("drop-table", "cart_wishlist", None)]),
        ({"type": "DeleteModel", "table": "cart_wishlist", "managed": False}, []),
        # renames break when the name in the database changes, not when db_table / db_column keeps it
        ({"type": "RenameModel", "old_table": "cart_wishlist", "new_table": "cart_favourites"},
         [("rename-table", "cart_wishlist", None)]),
        ({"type": "RenameModel", "old_table": "wishes", "new_table": "wishes"}, []),
        ({"type": "AlterModelTable", "old_table": "cart_item", "new_table": "cart_line"}, [("rename-table", "cart_item", None)]),
        ({"type": "AlterModelTable", "old_table": "cart_item", "new_table": "cart_item"}, []),
        (altered(True, True, "comment", kind="RenameField"), [("rename-column", "cart_item", "note")]),
        (altered(True, True, kind="RenameField"), []),
        (altered(False, False, "memo"), [("rename-column", "cart_item", "note")]),
        # NOT NULL: breaks when the column was nullable, not when it stays nullable or becomes nullable
        (altered(True, False), [("set-not-null", "cart_item", "note")]),
        (altered(False, True), []),
        (altered(False, False), []),
        # a new NOT NULL column breaks the old INSERTs unless the database keeps a default or computes it
        (added(), [("add-not-null-column", "cart_item", "gift")]),
        (added(null=True), []),
        (added(db_default=True), []),
        (added(generated=True), []),
        (added(column=None, m2m=True), []),
        # CreateModel, AddIndex... have no facts: nothing of the old code's changes
        ({"type": "AddIndex"}, []),
    ],
)  # fmt: skip
def test_django_operations_are_breaking_exactly_when_the_old_code_fails_against_them(fact, expected):
    assert rules(fact_findings(KEY, fact)) == expected


def test_a_finding_names_the_migration_the_operation_the_table_the_column_and_why():
    (item,) = fact_findings(KEY, REMOVED)
    assert item == {
        "migration": KEY,
        "operation": "Remove field note from cartitem",
        "rule": "drop-column",
        "table": "cart_item",
        "column": "note",
        "why": "drops column cart_item.note, which the old release still selects and writes",
    }


def test_breaking_operations_walk_the_pending_migrations_in_order_and_say_what_could_not_be_read():
    pending = [
        {"migration": "cart.0002_add", "operations": [{"describe": "Add field x", "schema": [
            {"type": "AddField", "table": "cart_item", "column": "x", "null": True}]}]},
        {"migration": "cart.0003_drop", "operations": [
            {"describe": "Remove field note", "schema": [{"type": "RemoveField", "table": "cart_item", "column": "note"}]},
            {"describe": "Raw SQL operation", "schema": [{"type": "RunSQL", "sql": ['DROP TABLE "old"']}]},
            {"describe": "Odd operation", "schema_error": "KeyError: 'x'"}]},
    ]  # fmt: skip
    breaking, unchecked = breaking_operations(pending)
    assert [(b["migration"], b["rule"], b["table"]) for b in breaking] == [
        ("cart.0003_drop", "drop-column", "cart_item"),
        ("cart.0003_drop", "drop-table", "old"),
    ]
    assert unchecked == [{"migration": "cart.0003_drop", "operation": "Odd operation", "error": "KeyError: 'x'"}]
    assert breaking_operations([{"migration": "a.1", "operations": [{"describe": "Create model X", "schema": []}]}]) == ([], [])


def test_only_the_tables_production_has_before_the_deploy_count():
    pending = [
        {"migration": "contenttypes.0002_remove_content_type_name", "operations": [{"describe": "Remove field name", "schema": [
            {"type": "RemoveField", "table": "django_content_type", "column": "name"}]}]},
        {"migration": "cart.0003_drop", "operations": [
            {"describe": "Remove field note", "schema": [{"type": "RemoveField", "table": "cart_item", "column": "note"}]}]},
    ]  # fmt: skip
    # a first deploy: no production, no old code - nothing is breaking (Django's own contenttypes.0002 drops a column)
    assert breaking_operations(pending, existing_tables({"exists": False, "tables": []})) == ([], [])
    # production has cart_item (its name as PostgreSQL prints it) but not django_content_type: only cart_item counts
    existing = existing_tables({"exists": True, "tables": ["public.cart_item", "shop_product"]})
    assert existing == {"cart_item", "shop_product"}
    assert [b["table"] for b in breaking_operations(pending, existing)[0]] == ["cart_item"]
    # a report that does not say which tables exist: everything counts
    assert existing_tables({"exists": True}) is None
    assert len(breaking_operations(pending, existing_tables({"exists": True}))[0]) == 2


# --- raw SQL (RunSQL) -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, expected",
    [
        ('DROP TABLE "cart_old"', [("drop-table", "cart_old", None)]),
        ("DROP TABLE IF EXISTS public.a, b CASCADE", [("drop-table", "a", None), ("drop-table", "b", None)]),
        ("DROP VIEW report_v", [("drop-table", "report_v", None)]),
        ("DROP INDEX cart_item_note_idx", []),
        ("DROP TABLESPACE x", []),
        ('ALTER TABLE "cart_item" DROP COLUMN "note" CASCADE', [("drop-column", "cart_item", "note")]),
        ("ALTER TABLE ONLY cart_item DROP IF EXISTS Note", [("drop-column", "cart_item", "note")]),
        ("ALTER TABLE cart_item DROP CONSTRAINT cart_item_note_check", []),
        ("ALTER TABLE cart_item RENAME COLUMN note TO comment", [("rename-column", "cart_item", "note")]),
        ("ALTER TABLE cart_item RENAME note TO comment", [("rename-column", "cart_item", "note")]),
        ("ALTER TABLE cart_item RENAME CONSTRAINT a TO b", []),
        ("ALTER TABLE cart_item RENAME TO cart_line", [("rename-table", "cart_item", None)]),
        ("ALTER TABLE cart_item SET SCHEMA archive", [("rename-table", "cart_item", None)]),
        ('ALTER TABLE "cart_item" ALTER COLUMN "note" SET NOT NULL', [("set-not-null", "cart_item", "note")]),
        ('ALTER TABLE "cart_item" ALTER COLUMN "note" DROP NOT NULL', []),
        ('ALTER TABLE "cart_item" ALTER COLUMN "note" TYPE varchar(300)', []),
        ('ALTER TABLE "cart_item" ADD COLUMN "gift" boolean NOT NULL', [("add-not-null-column", "cart_item", "gift")]),
        ('ALTER TABLE "cart_item" ADD COLUMN "gift" boolean DEFAULT false NOT NULL', []),
        ('ALTER TABLE "cart_item" ADD COLUMN "gift" boolean NULL', []),
        ('ALTER TABLE "cart_item" ADD COLUMN "n" bigint NOT NULL GENERATED ALWAYS AS IDENTITY', []),
        ('ALTER TABLE "cart_item" ADD CONSTRAINT "c" CHECK ("quantity" > 0) NOT VALID', []),
        # what Django's AddField runs: the column with a default, then the default dropped
        ('ALTER TABLE "cart_item" ADD COLUMN "gift" boolean DEFAULT false NOT NULL;\n'
         'ALTER TABLE "cart_item" ALTER COLUMN "gift" DROP DEFAULT', [("add-not-null-column", "cart_item", "gift")]),
        ('ALTER TABLE "cart_item" ALTER COLUMN "note" DROP DEFAULT', []),
        # several actions in one ALTER TABLE, commas inside types and defaults are not separators
        ("ALTER TABLE t ADD COLUMN p numeric(10, 2) DEFAULT round(1.5, 1) NOT NULL, DROP COLUMN q, RENAME r TO s",
         [("drop-column", "t", "q"), ("rename-column", "t", "r")]),
        ("UPDATE cart_item SET note = 'DROP TABLE x; ALTER TABLE y DROP COLUMN z'", []),
        ("-- DROP TABLE commented\nCREATE INDEX i ON t (c)", []),
        ("DO $$ BEGIN RAISE NOTICE 'DROP TABLE x;'; END $$", []),
    ],
)  # fmt: skip
def test_raw_sql_is_breaking_exactly_when_the_old_code_fails_against_it(sql, expected):
    assert rules(sql_findings(KEY, sql)) == expected


def test_raw_sql_in_a_list_and_in_the_facts_of_a_run_sql():
    assert rules(sql_findings(KEY, ["DROP TABLE a", "SELECT 1"])) == [("drop-table", "a", None)]
    (item,) = fact_findings(KEY, {"type": "RunSQL", "describe": "Raw SQL operation", "sql": ["ALTER TABLE a DROP COLUMN b"]})
    assert item["operation"] == "Raw SQL operation" and item["why"].startswith("drops column a.b")


def test_statements_split_outside_quotes_comments_and_parentheses():
    assert split_sql("SELECT ';'; /* ; */ SELECT $x$;$x$; SELECT (1;2)") == ["SELECT ';'", "SELECT $x$;$x$", "SELECT (1;2)"]
    assert split_sql('a "b,c", d(1, 2)', ",") == ['a "b,c"', "d(1, 2)"]


# --- the gate ---------------------------------------------------------------------------------------------------

DROP = fact_findings(KEY, REMOVED)


def test_a_rolling_deploy_refuses_breaking_migrations_naming_each_and_the_two_ways_out():
    result = gate(DROP, rolling=True, allow_breaking=False)
    assert result["decision"] == "refused" and result["refused"] is True
    message = result["message"]
    assert "cart.0003_change: drops column cart_item.note" in message and "(Remove field note from cartitem)" in message
    assert "-e smart_deploy_allow_breaking=true" in message and "two releases" in message and "db_default" in message


def test_allowed_or_on_one_host_it_goes_on_and_says_so():
    allowed = gate(DROP, rolling=True, allow_breaking=True, actor="alice")
    assert allowed["decision"] == "allowed" and not allowed["refused"] and "(alice)" in allowed["message"]
    reported = gate(DROP, rolling=False, allow_breaking=False)
    assert reported["decision"] == "reported" and not reported["refused"] and "cart_item.note" in reported["message"]


def test_nothing_breaking_passes_whatever_the_settings():
    assert gate([], rolling=True, allow_breaking=False) == {"decision": "none", "refused": False, "message": ""}


# --- the verdict ------------------------------------------------------------------------------------------------


def rehearsed(*pending):
    return {
        "pending": list(pending),
        "migrations": [{"migration": m["migration"], "outcome": "applied"} for m in pending],
        "errors": [],
        "prechecks": {"errors": []},
        "post_check": {"ok": True},
        "copy": {"skipped": False},
        "warnings": [],
    }


def test_the_verdict_lists_breaking_operations_without_aborting_and_says_whether_the_old_code_lives_with_it():
    drop = {"migration": KEY, "operations": [{"describe": "x", "schema": [REMOVED]}]}
    add = {"migration": "cart.0002_add", "operations": [{"describe": "y", "schema": [{"type": "AddField", "table": "t", "column": "c",
                                                                                    "null": True}]}]}  # fmt: skip
    verdict = decide(rehearsed(add, drop))
    assert verdict["strategy"] == NORMAL and verdict["abort_reasons"] == []
    assert [b["rule"] for b in verdict["breaking"]] == ["drop-column"] and verdict["backward_compatible"] is False
    additive = decide(rehearsed(add))
    assert additive["breaking"] == [] and additive["backward_compatible"] is True
    unread = decide(rehearsed({"migration": "a.1", "operations": [{"describe": "z", "schema_error": "boom"}]}))
    assert unread["breaking"] == [] and unread["backward_compatible"] is False


# --- the driver's facts, from real Django operations ----------------------------------------------------------

SETTINGS = """\
SECRET_KEY = "not-a-secret"
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "db.invalid"}}
"""
INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(name="Tag", fields=[("id", models.BigAutoField(primary_key=True, serialize=False))]),
        migrations.CreateModel(name="Legacy", fields=[("id", models.BigAutoField(primary_key=True, serialize=False))],
                               options={"managed": False}),
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("note", models.CharField(max_length=10, null=True)),
                ("legacy", models.CharField(max_length=10)),
                ("legacy2", models.CharField(max_length=10)),
                ("sku", models.CharField(max_length=10)),
                ("old_flag", models.BooleanField(default=False)),
                ("tags", models.ManyToManyField(to="shop.tag")),
            ],
        ),
    ]
"""
# every kind of operation, in an order Django accepts; the comment says what the old release makes of it
CHANGES = """\
import django
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RemoveField("product", "legacy"),  # drop-column
        migrations.RenameField("product", "sku", "code"),  # rename-column
        migrations.AlterField("product", "note", models.CharField(max_length=10, default="")),  # set-not-null
        migrations.AlterField("product", "name", models.CharField(max_length=100, db_column="title")),  # rename-column
        migrations.AddField("product", "stock", models.IntegerField(default=0)),  # add-not-null-column
        migrations.AddField("product", "comment", models.CharField(max_length=10, null=True)),  # fine: nullable
        migrations.RemoveField("product", "tags"),  # drop-table (the many-to-many's own)
        # fine: the column stays in the database (state only), the usual first half of a removal
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("product", "old_flag")]),
        migrations.RenameModel("Tag", "Label"),  # rename-table
        migrations.DeleteModel("Legacy"),  # fine: unmanaged, Django drops nothing
        migrations.RunSQL("ALTER TABLE shop_product DROP COLUMN legacy2", migrations.RunSQL.noop),  # drop-column
        migrations.RunPython(migrations.RunPython.noop),  # fine: rows, not the schema
        migrations.CreateModel(name="Extra", fields=[("id", models.BigAutoField(primary_key=True, serialize=False))]),  # fine
        migrations.AlterModelTable("label", "shop_labels"),  # rename-table
        # drop-column: the second half, the database operation of a SeparateDatabaseAndState
        migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL('ALTER TABLE "shop_product" DROP COLUMN "old_flag"')]),
    ]
    if django.VERSION >= (5, 0):  # fine: the database keeps the default (Django 5.0 and later)
        operations.append(migrations.AddField("product", "rating", models.IntegerField(db_default=0)))
"""
EXPECTED = [
    ("drop-column", "shop_product", "legacy"),
    ("rename-column", "shop_product", "sku"),
    ("set-not-null", "shop_product", "note"),
    ("rename-column", "shop_product", "name"),
    ("add-not-null-column", "shop_product", "stock"),
    ("drop-table", "shop_product_tags", None),
    ("rename-table", "shop_tag", None),
    ("drop-column", "shop_product", "legacy2"),
    ("rename-table", "shop_label", None),
    ("drop-column", "shop_product", "old_flag"),
]


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_the_driver_reads_what_the_old_code_cannot_live_with_from_djangos_operations(version, tmp_path):
    python = django_python(version, tmp_path)
    root = tmp_path / "project"
    files = {"site_cfg/__init__.py": "", "site_cfg/settings.py": SETTINGS, "shop/__init__.py": "", "shop/models.py": "",
             "shop/migrations/__init__.py": "", "shop/migrations/0001_initial.py": INITIAL,
             "shop/migrations/0002_changes.py": CHANGES}  # fmt: skip
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (tmp_path / "input.json").write_text(json.dumps({"applied": ["shop.0001_initial"]}))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "site_cfg.settings",
           "SMART_DEPLOY_PROJECT_DIR": str(root), "SMART_DEPLOY_INPUT": str(tmp_path / "input.json"),
           "SMART_DEPLOY_DB_NAME": "shop"}  # fmt: skip
    done = run([str(python), str(DRIVER), "analyze"], cwd=root, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
    assert [m["migration"] for m in result["pending"]] == ["shop.0002_changes"]
    breaking, unchecked = breaking_operations(result["pending"])
    assert unchecked == []
    assert rules(breaking) == EXPECTED
    renames = {(b["table"], b["column"]): b["why"] for b in breaking if b["rule"].startswith("rename")}
    assert "to code:" in renames[("shop_product", "sku")] and "to title:" in renames[("shop_product", "name")]
    assert "to shop_label:" in renames[("shop_tag", None)] and "to shop_labels:" in renames[("shop_label", None)]
    assert {b["operation"] for b in breaking} >= {"Remove field legacy from product", "Raw SQL operation"}
