"""Which tables a rehearsal copy needs with their rows, and whether a copy is faithful, on plain data."""

import pytest
from ansible.module_utils.smart_deploy.pgcatalog import (
    canonical_line,
    copy_plan,
    describe_copy_differences,
    describe_restore_differences,
    dump_pattern,
    fingerprint,
    history_differences,
    migrations_fingerprint,
    parents_closure,
    schema_differences,
    schema_fingerprint,
)

TABLES = {
    "catalog_product": 900_000_000,
    "cart_cart": 50_000_000,
    "cart_item": 200_000_000,
    "orders_order": 300_000_000,
    "django_migrations": 16_000,
    "django_content_type": 8_000,
    "tiny_settings": 1_000,
}
FKS = [("cart_item", "cart_cart"), ("cart_item", "catalog_product"), ("orders_order", "cart_cart")]


def test_parents_closure_follows_foreign_keys_transitively():
    assert parents_closure({"cart_item"}, FKS) == {"cart_item", "cart_cart", "catalog_product"}
    assert parents_closure({"cart_cart"}, FKS) == {"cart_cart"}


def test_copy_keeps_rows_of_touched_tables_their_parents_and_small_tables():
    plan = copy_plan(TABLES, FKS, touched={"cart_cart"}, small_table_bytes=64_000)
    assert plan["mode"] == "partial"
    assert plan["tables_with_data"] == ["cart_cart", "django_content_type", "django_migrations", "tiny_settings"]
    assert "catalog_product" in plan["tables_schema_only"]
    assert plan["bytes_with_data"] < plan["bytes_total"] / 10


def test_touching_a_child_brings_the_rows_its_foreign_keys_need():
    plan = copy_plan(TABLES, FKS, touched={"cart_item"}, small_table_bytes=0)
    assert {"cart_item", "cart_cart", "catalog_product"} <= set(plan["tables_with_data"])
    assert "orders_order" in plan["tables_schema_only"]


def test_unknown_touch_copies_everything():
    plan = copy_plan(TABLES, FKS, touched=None, small_table_bytes=0)
    assert plan["mode"] == "full" and plan["tables_schema_only"] == []


def test_tables_that_do_not_exist_yet_are_ignored():
    plan = copy_plan(TABLES, FKS, touched={"reviews_review"}, small_table_bytes=0)
    assert "reviews_review" not in plan["tables_with_data"]


def test_dump_patterns_match_one_table_exactly():
    assert dump_pattern("cart_item") == "public.cart_item"
    assert dump_pattern("sales.Order") == 'sales."Order"'
    assert dump_pattern('"Weird Name"') == 'public."Weird Name"'


def test_migrations_fingerprint_ignores_order():
    assert migrations_fingerprint(["a.1", "b.1"]) == migrations_fingerprint(["b.1", "a.1"])
    assert migrations_fingerprint(["a.1"]) != migrations_fingerprint(["a.1", "a.2"])


# --- a copy's faithfulness: the schema's lines compared in a form a dump and restore leaves unchanged -------------
# Pairs of lines as PostgreSQL 15 printed them (SCHEMA_LINES_QUERY) for production and for its pg_dump -Fc restored
# into a fresh database (tests/integration/test_schema_round_trip.py makes them on a real server).
ROUND_TRIPS = [
    # Django 5.2: UniqueConstraint(fields=["page_id"], condition=Q(status__in=["in_progress", "needs_changes"]))
    (
        "index CREATE UNIQUE INDEX unique_in_progress_workflow ON public.wf_workflowstate USING btree (page_id) WHERE "
        "((status)::text = ANY ((ARRAY['in_progress'::character varying, 'needs_changes'::character varying])::text[]))",
        "index CREATE UNIQUE INDEX unique_in_progress_workflow ON public.wf_workflowstate USING btree (page_id) WHERE "
        "((status)::text = ANY (ARRAY[('in_progress'::character varying)::text, ('needs_changes'::character varying)::text]))",
    ),
    # CheckConstraint(condition=Q(status__in=[...])) and another condition
    (
        "constraint t2.t2_st_check CHECK ((((st)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying, "
        "'c'::character varying])::text[])) AND (char_length((st)::text) > 0)))",
        "constraint t2.t2_st_check CHECK ((((st)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text, "
        "('c'::character varying)::text])) AND (char_length((st)::text) > 0)))",
    ),
    # a generated column (GeneratedField), NOT IN (<> ALL), a typmod in an element, literals holding , ] ) and ''
    (
        "column t2.flag boolean notnull=f default=((st)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])) "
        "identity=",
        "column t2.flag boolean notnull=f default=((st)::text = ANY (ARRAY[('a'::character varying)::text, "
        "('b'::character varying)::text])) identity=",
    ),
    (
        "index CREATE UNIQUE INDEX t2_st_expr ON public.t2 USING btree (lower((st)::text)) WHERE ((((st)::text <> ALL ((ARRAY['a'::"
        "character varying, 'b'::character varying])::text[])) AND ((st)::text = ANY ((ARRAY['x'::character varying(5), 'y'::character "
        "varying])::text[]))) OR ((st)::text = ANY (ARRAY['q'::text, 'r'::text])))",
        "index CREATE UNIQUE INDEX t2_st_expr ON public.t2 USING btree (lower((st)::text)) WHERE ((((st)::text <> ALL (ARRAY[('a'::"
        "character varying)::text, ('b'::character varying)::text])) AND ((st)::text = ANY (ARRAY[('x'::character varying(5))::text, "
        "('y'::character varying)::text]))) OR ((st)::text = ANY (ARRAY['q'::text, 'r'::text])))",
    ),
    (
        "index CREATE UNIQUE INDEX t2_st_quote ON public.t2 USING btree (id) WHERE ((st)::text = ANY ((ARRAY['it''s'::character varying, "
        "'a,b'::character varying, 'c]d'::character varying, 'e)f'::character varying])::text[]))",
        "index CREATE UNIQUE INDEX t2_st_quote ON public.t2 USING btree (id) WHERE ((st)::text = ANY (ARRAY[('it''s'::character varying)"
        "::text, ('a,b'::character varying)::text, ('c]d'::character varying)::text, ('e)f'::character varying)::text]))",
    ),
    # a multidimensional constructor: the cast goes into the inner ones
    (
        "index CREATE INDEX md_k ON public.md2 USING btree (s) WHERE (v = (ARRAY[ARRAY['a'::character varying]])::text[])",
        "index CREATE INDEX md_k ON public.md2 USING btree (s) WHERE (v = ARRAY[ARRAY[('a'::character varying)::text]])",
    ),
]
# lines PostgreSQL prints the same after the round trip: left exactly as they are
STABLE = [
    "column wf_state.status character varying(50) notnull=t default='in_progress'::character varying identity=",
    "column wf_state.tags character varying(20)[] notnull=t default=ARRAY['a'::text, 'b'::text] identity=",
    "column t2.tags character varying(20)[] notnull=f default='{a,b}'::character varying[] identity=",
    "constraint wf_state.name_like CHECK (((name)::text ~~ 'A%'::text))",
    "constraint wf_state.starts_after CHECK ((starts >= '2020-01-01'::date))",
    "constraint other.other_ref_id_fkey FOREIGN KEY (ref_id) REFERENCES wf_state(id) DEFERRABLE INITIALLY DEFERRED",
    "index CREATE INDEX lower_name ON public.wf_state USING btree (lower((name)::text))",
    "index CREATE UNIQUE INDEX t2_big ON public.t2 USING btree (id) WHERE (big = ANY (ARRAY[(1)::bigint, (2)::bigint]))",
    "index CREATE UNIQUE INDEX t2_tags ON public.t2 USING btree (id) WHERE (tags @> ARRAY['x'::character varying(20)])",
    "constraint t.c CHECK ((note <> '(ARRAY[''a''])::text[]'::text))",  # the construct inside a literal is text
    "constraint t.d CHECK ((note <> E'\\\\(ARRAY[''a''])::text[]'::text))",
    'table public."(ARRAY["',
]


@pytest.mark.parametrize("production, restored", ROUND_TRIPS)
def test_a_line_and_its_round_trip_have_one_canonical_form(production, restored):
    assert production != restored
    assert canonical_line(production) == restored
    assert canonical_line(restored) == restored, "the restored form is already canonical (a second round trip prints it the same)"


@pytest.mark.parametrize("line", STABLE)
def test_lines_the_round_trip_leaves_alone_are_left_alone(line):
    assert canonical_line(line) == line


def test_fingerprints_of_schemas_without_the_construct_are_the_ones_recorded_before():
    """Backups' metadata hold fingerprints of the lines' text: a schema whose lines are all stable keeps its own."""
    assert schema_fingerprint(STABLE) == fingerprint("\n".join(STABLE).strip())
    assert schema_fingerprint([]) == fingerprint("")


def test_a_database_and_its_restored_dump_have_one_fingerprint_and_no_differences():
    production = STABLE + [p for p, _ in ROUND_TRIPS]
    restored = STABLE + [r for _, r in ROUND_TRIPS]
    assert schema_fingerprint(production) == schema_fingerprint(restored)
    assert schema_differences(production, restored) == []


PREDICATE = ROUND_TRIPS[0][1]


@pytest.mark.parametrize(
    "copy_line",
    [
        PREDICATE.replace("'needs_changes'", "'approved'"),  # another value in the predicate
        PREDICATE.replace("(page_id)", "(workflow_id)"),  # another column
        PREDICATE.replace("= ANY", "<> ALL"),  # another operator
        PREDICATE.replace("::text", "::character varying", 1),  # another type
        PREDICATE.replace("CREATE UNIQUE INDEX", "CREATE INDEX"),  # not unique
        PREDICATE.split(" WHERE ")[0],  # no predicate
    ],
)
def test_real_differences_are_still_seen(copy_line):
    production = [ROUND_TRIPS[0][0]]
    assert schema_fingerprint(production) != schema_fingerprint([copy_line])
    assert schema_differences(production, [copy_line]) == [
        {"object": "index unique_in_progress_workflow on public.wf_workflowstate", "production": production[0], "copy": copy_line}
    ]


def test_a_missing_index_and_an_extra_constraint_are_named_with_their_lines():
    production = STABLE + [ROUND_TRIPS[0][0]]
    copy = STABLE[1:] + ["constraint wf_state.extra CHECK ((n > 0))"]
    assert schema_differences(production, copy) == [
        {"object": "column wf_state.status", "production": STABLE[0], "copy": None},
        {"object": "constraint wf_state.extra", "production": None, "copy": "constraint wf_state.extra CHECK ((n > 0))"},
        {"object": "index unique_in_progress_workflow on public.wf_workflowstate", "production": ROUND_TRIPS[0][0], "copy": None},
    ]


def test_the_abort_names_a_few_objects_with_both_lines_and_counts_them_all():
    production = ["constraint t.c%d CHECK ((n > %d))" % (i, i) for i in range(5)]
    copy = ["constraint t.c%d CHECK ((n > %d))" % (i, i + 1) for i in range(5)]
    message = describe_copy_differences(schema_differences(production, copy), {})
    assert message.startswith("5 schema objects differ (constraint t.c0: production `constraint t.c0 CHECK ((n > 0))`, copy "
                              "`constraint t.c0 CHECK ((n > 1))`; constraint t.c1: ")  # fmt: skip
    assert "constraint t.c2:" in message and "constraint t.c3" not in message
    assert message.endswith("; and 2 more, listed in the saved report)")
    one = describe_copy_differences(schema_differences(production[:1], []), {})
    assert one == "1 schema object differs (constraint t.c0: production `constraint t.c0 CHECK ((n > 0))`, copy none)"


def test_an_invalid_index_pg_dump_leaves_out_is_explained():
    invalid = "index CREATE UNIQUE INDEX catalog_product_name_uniq ON public.catalog_product USING btree (name) INVALID"
    message = describe_copy_differences(schema_differences([invalid], []), {})
    assert "index catalog_product_name_uniq on public.catalog_product: production `%s`, copy none" % invalid in message
    assert "pg_dump leaves INVALID indexes out" in message and "drop it or REINDEX it" in message


def test_a_migration_history_that_differs_is_named():
    history = history_differences(["a.0001", "a.0002", "b.0001"], ["a.0001", "b.0001", "c.0001"])
    assert history == {"production_applied": 3, "copy_applied": 3, "only_in_production": ["a.0002"], "only_in_copy": ["c.0001"]}
    assert describe_copy_differences([], history) == (
        "the migration history differs (production 3 applied, copy 3; only in production: a.0002; only in the copy: c.0001)"
    )
    assert history_differences(["a.1", "b.1"], ["b.1", "a.1"]) == {}


def test_long_lines_are_cut_in_the_message():
    line = "constraint t.long CHECK ((note <> '%s'::text))" % ("x" * 1000)
    message = describe_copy_differences(schema_differences([line], []), {})
    assert len(message) < 400 and "…`" in message


# --- what a restore discards (rollback --restore-db) ------------------------------------------------------------
def test_a_restore_names_the_tables_it_discards_or_changes():
    differences = {
        "tables_only_live": ["public.cart_wishlist"],
        "tables_only_in_backup": [],
        "rows_differ": {"public.django_migrations": {"live": 21, "backup": 20}, "sales.order": {"live": 5, "backup": 3}},
        "rows_live": 40,
        "rows_backup": 35,
    }
    assert describe_restore_differences(differences) == (
        "1 table only in the replaced database (cart_wishlist), 2 tables with other row counts (django_migrations 21 rows before, "
        "20 after, sales.order 5 rows before, 3 after); 40 rows before, 35 after"
    )


def test_a_restore_that_changes_many_tables_names_a_few_and_counts_them():
    differences = {
        "tables_only_live": ["public.t%d" % i for i in range(7)],
        "tables_only_in_backup": ["public.old"],
        "rows_differ": {"public.r%d" % i: {"live": 2, "backup": 1} for i in range(6)},
        "rows_live": 1,
        "rows_backup": 0,
    }
    text = describe_restore_differences(differences, limit=2)
    assert text == (
        "7 tables only in the replaced database (t0, t1, and 5 more), 1 table only in the backup (old), 6 tables with other row "
        "counts (r0 2 rows before, 1 after, r1 2 rows before, 1 after, and 4 more); 1 row before, 0 after"
    )
    same = {"tables_only_live": [], "tables_only_in_backup": [], "rows_differ": {}, "rows_live": 3, "rows_backup": 3}
    assert describe_restore_differences(same) == "the same tables with the same row counts; 3 rows before, 3 after"
