"""Which tables a rehearsal copy needs with their rows, on plain data."""

from ansible.module_utils.smart_deploy.pgcatalog import copy_plan, dump_pattern, migrations_fingerprint, parents_closure

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
