"""Migration validation on real PostgreSQL with the shop: one deployment of the shop (first checked as a
user sees it: it serves, takes a cart), then each situation produced the way it arises in real life (a newer
release - deployed under steady load from a copy of the source on the target, its app tests run, with everything
a deploy leaves checked -, drift in production), validated. The tests run in order on the same deployment; every abort must leave production
exactly as it was and leave no scratch database, container or network behind."""

import hashlib
import json
from datetime import datetime

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, release_id, run
from tests.integration.load import Load
from tests.integration.row_values import assert_the_value_only_in_the_validation_report


def last_report(shop):
    return shop.validation_reports()[-1]


def outcomes(report):
    return {m["migration"]: m["outcome"] for m in report["report"]["migrations"]}


def validate_and_expect_abort(shop, message, *args):
    """validate.yml fails; production is identical before and after; nothing scratch is left."""
    before = shop.snapshot()
    result = shop.playbook("validate", "-v", *args)  # a failed rehearsal in verbose mode prints no secret either
    assert_failed(result)
    assert "Migration validation says abort" in result.stdout
    assert message in result.stdout, result.stdout[-6000:]
    assert shop.snapshot() == before
    assert shop.scratch_leftovers() == []
    verdict = last_report(shop)["verdict"]
    assert verdict["strategy"] == "abort"
    return verdict


def test_the_first_deploy_serves_the_shop(shop):
    # a healthy first deploy shows no failed attempt: the database's first start (initdb) is waited for quietly
    output = shop.first_deploy.stdout
    assert "FAILED - RETRYING" not in output, [line for line in output.splitlines() if "RETRYING" in line]
    assert "TASK [database : Wait for PostgreSQL to accept connections]" in output
    status, health = shop.get_json("/api/health/")
    assert status == 200
    assert health["database"] == "reachable" and health["migrations"]["pending"] == 0
    assert health["release"] == shop.live
    status, products = shop.get_json("/api/products/")
    assert status == 200 and products["count"] == 3
    status, cart = json.loads("[%d, %s]" % shop.http("/api/cart/", method="POST", body={}))
    assert status == 201
    status, body = shop.http("/api/cart/%d/items/" % cart["id"], method="POST", body={"sku": "TEA-001", "quantity": 2})
    assert status == 201, body
    shop.cart_id = cart["id"]  # test_clean_new_migration_is_normal_and_deploy_applies_it: it survives the next release


def test_nothing_pending_is_normal_without_a_copy(shop):
    result = shop.playbook("validate")
    assert_ok(result)
    report = last_report(shop)
    assert report["verdict"]["strategy"] == "normal"
    assert report["report"]["copy"] == {"skipped": True, "why": "nothing pending"}
    assert "scratch_start" not in report["report"]["timings"]
    assert "normal: nothing to migrate" in result.stdout


def test_validation_holds_the_deploy_lock(shop):
    lock = shop.state_dir / "deploy.lock"
    lock.write_text(json.dumps({
        "lock_id": "x", "owner": "alice", "host": "other-runner", "pid": 1, "release": "abc",
        "operation": "deploy", "started": "2026-01-01T00:00:00Z", "expires": "2099-01-01T00:00:00Z",
    }))  # fmt: skip
    try:
        result = shop.playbook("validate")
        assert_failed(result)
        assert "held by alice" in result.stdout and "other-runner" in result.stdout
    finally:
        lock.unlink()


def test_clean_new_migration_is_normal_and_deploy_applies_it(shop):
    first = shop.live
    # with a partial unique index on "status IN (...)": every rehearsal below copies it (a copy printed differently)
    releases.add_wishlist(shop, with_states=True)
    second = shop.commit("release 2: wishlists")
    # built from a copy of the source on the target, as for a remote server, with the app's tests run in the
    # new image; the shop's users go on shopping while it deploys: not one of their requests fails
    with Load("http://127.0.0.1:%d" % shop.port, rate=60) as load:
        result = shop.deploy("-e", "build_sync_source=true", "-e", "smart_deploy_app_tests=true")
    assert_ok(result)
    assert load.result.failed == 0 and load.result.total >= 1000, load.result.describe()
    assert "normal: 1 migrations apply cleanly on the copy" in result.stdout
    assert "1 applied: cart.0002_wishlist" in result.stdout
    assert "tests passed" in shop.summary()["steps"]["tests"], "the app's tests ran in the new image"
    assert_what_the_deploy_of_a_release_with_a_migration_leaves(shop, first, second)
    report = last_report(shop)
    assert outcomes(report) == {"cart.0002_wishlist": "applied"}
    entry = report["report"]["migrations"][0]
    assert entry["seconds"] >= 0 and any("CREATE TABLE" in s["sql"] for s in entry["statements"])
    assert report["report"]["copy"]["fidelity"] is True
    assert shop.psql("SELECT to_regclass('cart_wishlist')") == "cart_wishlist"
    shop.base = shop.git("rev-parse", "HEAD")


PARTIAL_INDEX = "SELECT pg_get_indexdef('cart_wishlist_open_name_uniq'::regclass)"


def test_a_copy_of_a_partial_index_on_status_in_is_faithful(shop):
    """Django's UniqueConstraint(condition=Q(status__in=[...])) on a varchar column: PostgreSQL prints the copy's
    predicate otherwise after pg_dump | pg_restore; the copy is faithful all the same and the migrations rehearse."""
    assert "= ANY ((ARRAY['draft'::character varying, 'shared'::character varying])::text[])" in shop.psql(PARTIAL_INDEX)
    releases.add_cart_item_note(shop, after="0002_wishlist", name="0003_cartitem_note")
    shop.commit("notes on cart items")
    result = shop.playbook("validate")
    assert_ok(result)
    report = last_report(shop)
    assert report["verdict"]["strategy"] == "normal", report["verdict"]["reasons"]
    assert report["report"]["copy"]["fidelity"] is True and "differences" not in report["report"]["copy"]
    assert outcomes(report) == {"cart.0003_cartitem_note": "applied"}
    shop.reset_to(shop.base)


def test_a_copy_that_is_not_faithful_aborts_naming_what_differs(shop):
    """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index in production, which pg_dump leaves out: the copy
    lacks it. The abort names it with production's line and the copy's, and the report is saved like any verdict."""
    shop.psql("INSERT INTO catalog_product (sku, name, price, created_at) VALUES ('TEA-003', 'Green tea, 100 g', 4.90, now())")
    database = shop.name.replace("-", "_")
    result = run(["docker", "exec", "%s-db" % shop.name, "psql", "-XAtq", "-U", database, "-d", database, "-c",
                  "CREATE UNIQUE INDEX CONCURRENTLY catalog_product_name_left ON catalog_product (name)"])  # fmt: skip
    assert result.returncode != 0 and "could not create unique index" in result.stderr
    reports = len(shop.validation_reports())
    try:
        releases.add_concurrent_index(shop)
        shop.commit("index on product names, built concurrently")
        verdict = validate_and_expect_abort(shop, "copy-not-faithful")
        assert len(shop.validation_reports()) == reports + 1, "the abort's report is saved in validations/"
        reason = verdict["reasons"][0]
        assert reason.startswith("the copy's schema or migration history differs from production's: the copy cannot be trusted: "
                                 "1 schema object differs (index catalog_product_name_left on public.catalog_product: production "
                                 "`index CREATE UNIQUE INDEX catalog_product_name_left ON public.catalog_product USING btree (name) "
                                 "INVALID`, copy none"), reason  # fmt: skip
        assert "pg_dump leaves INVALID indexes out" in reason
        assert [r["code"] for r in verdict["abort_reasons"]] == ["copy-not-faithful"]
        copy = last_report(shop)["report"]["copy"]
        assert copy["fidelity"] is False
        assert copy["differences"]["schema"] == [{
            "object": "index catalog_product_name_left on public.catalog_product",
            "production": "index CREATE UNIQUE INDEX catalog_product_name_left ON public.catalog_product USING btree (name) INVALID",
            "copy": None,
        }]  # fmt: skip
        assert copy["differences"]["history"] == {}
    finally:
        shop.psql("DROP INDEX IF EXISTS catalog_product_name_left")
        shop.psql("DELETE FROM catalog_product WHERE sku = 'TEA-003'")
        shop.reset_to(shop.base)


def assert_what_the_deploy_of_a_release_with_a_migration_leaves(shop, first, second):
    # the run log times every step by role and task, in the order they ran (bench/deploy_time.py reads it)
    run_log = shop.run_log()
    steps = run_log["steps"]
    roles = {"preflight", "change_detection", "build", "migration_validation", "db_backup", "migrate", "release", "health_check", "report"}
    assert roles <= {step["role"] for step in steps} and roles <= set(run_log["roles"])
    for step in steps:
        assert datetime.fromisoformat(step["start"]) <= datetime.fromisoformat(step["end"]) and step["seconds"] >= 0, step
    starts = [datetime.fromisoformat(step["start"]) for step in steps]
    assert starts == sorted(starts)
    assert ("migrate", "changed") in {(step["role"], step["status"]) for step in steps}

    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == second and health["migrations"]["pending"] == 0
    status, kept = shop.get_json("/api/cart/%d/" % shop.cart_id)
    assert kept["items"] == [{"product": "TEA-001", "quantity": 2}], "data written under release 1 survives"

    # the previous release's containers are stopped, not serving; containers are named after the release
    history = shop.releases()
    webs = {entry["id"]: entry["containers"]["backend"] for entry in history["releases"]}
    assert webs[first].startswith("%s-web-%s-" % (shop.name, release_id(first)))
    assert shop.container_state(webs[first]) == "exited"
    assert shop.container_state(webs[second]) == "running"

    # two verified backups, one per release, readable by their owner only, checksums right
    dumps = sorted((shop.state_dir / "backups").glob("*.dump"), key=lambda d: d.name.rsplit("-", 1)[1])
    assert [d.name.split("-")[1] for d in dumps] == [first, second]
    for dump in dumps:
        metadata = json.loads(dump.with_suffix(".json").read_text())
        assert metadata["verified"] is True
        assert metadata["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
        assert dump.stat().st_mode & 0o777 == 0o600
        assert dump.with_suffix(".json").stat().st_mode & 0o777 == 0o600
    assert (shop.state_dir / "backups").stat().st_mode & 0o777 == 0o700

    # the history holds both releases, in order (validating recorded none)
    assert history["current"] == second
    assert [(r["id"], r["status"]) for r in history["releases"]] == [(first, "superseded"), (second, "live")]
    assert history["releases"][1]["migrations"]["applied"] == ["cart.0002_wishlist"]
    assert history["releases"][1]["backup"] == str(dumps[1])
    assert history["releases"][1]["deployed_by"] == "pytest"
    assert (shop.state_dir / "build" / second / "backend" / "Dockerfile").exists()
    assert not (shop.state_dir / "deploy.lock").exists()


def test_unique_constraint_over_duplicate_rows_aborts_with_the_evidence(shop):
    # real life: two products end up with the same name
    shop.psql("INSERT INTO catalog_product (sku, name, price, created_at) VALUES ('TEA-002', 'Green tea, 100 g', 4.90, now())")
    releases.make_product_name_unique(shop)
    shop.commit("product names are unique")
    # small tables are copied whole by default; with that off, only what the migration touches has rows
    verdict = validate_and_expect_abort(shop, "SQLSTATE 23505", "-e", "migration_validation_small_table_bytes=0")
    assert "catalog_product.name has 1 duplicated values over 2 rows" in verdict["reasons"][0]
    # the duplicated name: in the validation report on the target only, not in the summary, run log or history
    assert_the_value_only_in_the_validation_report(shop, "name", "Green tea, 100 g")
    report = last_report(shop)["report"]
    assert report["copy"]["mode"] == "partial"
    assert "catalog_product" in report["copy"]["tables_with_data"]
    assert "cart_item" in report["copy"]["tables_schema_only"]
    shop.reset_to(shop.base)


def test_unique_index_built_concurrently_over_duplicates_leaves_nothing_half_applied(shop):
    releases.add_unique_index_concurrently(shop)
    shop.commit("unique names, raw SQL, concurrently")
    verdict = validate_and_expect_abort(shop, "SQLSTATE 23505")
    entry = last_report(shop)["report"]["migrations"][0]
    assert entry["atomic"] is False
    assert entry["cleanup"]["invalid_indexes_left"] == ["catalog_product_name_uniq"]
    assert entry["cleanup"]["clean"] is True
    assert "left invalid indexes catalog_product_name_uniq on the copy (dropped)" in verdict["reasons"][0]
    shop.psql("DELETE FROM catalog_product WHERE sku = 'TEA-002'")
    shop.reset_to(shop.base)


def test_data_migration_that_raises_aborts(shop):
    shop.psql("UPDATE catalog_product SET price = 0 WHERE sku = 'MUG-001'")
    releases.add_failing_data_migration(shop)
    shop.commit("refuse products without a price")
    verdict = validate_and_expect_abort(shop, "1 products have no price")
    report = last_report(shop)["report"]
    assert report["copy"]["mode"] == "full", "RunPython may read anything: the whole database is copied"
    assert outcomes(last_report(shop)) == {"catalog.0003_check_prices": "failed"}
    assert "ValueError" in verdict["reasons"][0]
    shop.psql("UPDATE catalog_product SET price = 12 WHERE sku = 'MUG-001'")
    shop.reset_to(shop.base)


def test_non_atomic_concurrent_index_is_rehearsed_and_applied(shop):
    releases.add_concurrent_index(shop)
    shop.commit("index on product names, built concurrently")
    result = shop.deploy()
    assert_ok(result)
    report = last_report(shop)
    assert outcomes(report) == {"catalog.0003_product_name_idx": "applied"}
    assert report["report"]["migrations"][0]["atomic"] is False
    assert "non-atomic" in [w["rule"] for w in report["verdict"]["warnings"]]
    assert any("CONCURRENTLY" in s["sql"] for s in report["report"]["migrations"][0]["statements"])
    assert shop.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'catalog_product_name_idx'::regclass") == "t"
    shop.base = shop.git("rev-parse", "HEAD")


def test_production_changed_after_validation_is_validated_again(shop):
    hook = shop.workdir / "drift.yml"
    hook.write_text(
        "- name: Someone changes production between the rehearsal and the apply\n"
        "  community.docker.docker_container_exec:\n"
        '    container: "{{ smart_deploy_db_container }}"\n'
        '    argv: [psql, -U, "{{ smart_deploy_db_user }}", -d, "{{ smart_deploy_db_name }}", -c, \'CREATE TABLE drift (id int)\']\n'
    )
    releases.add_cart_item_note(shop, after="0002_wishlist", name="0003_cartitem_note")
    shop.commit("notes on cart items")
    result = shop.deploy("-e", "migrate_before_tasks_file=%s" % hook)
    assert_ok(result)
    assert "Rehearse again against production as it is now" in result.stdout
    assert shop.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'cart_item' AND column_name = 'note'") == "1"
    shop.psql("DROP TABLE drift")
    shop.base = shop.git("rev-parse", "HEAD")


def test_migration_recorded_but_table_missing_aborts_with_42P01(shop):
    # the cart_item story: the table is gone while its migration stays recorded as applied
    shop.psql("DROP TABLE cart_item")
    quantity_note = '    note = models.CharField(max_length=200, blank=True, default="")\n'
    releases.edit(shop, "cart/models.py", quantity_note, quantity_note + "    gift = models.BooleanField(default=False)\n")
    releases.add_migration(
        shop,
        "cart",
        "0004_cartitem_gift",
        """class Migration(migrations.Migration):
    dependencies = [("cart", "0003_cartitem_note")]

    operations = [migrations.AddField(model_name="cartitem", name="gift", field=models.BooleanField(default=False))]
""",
    )
    shop.commit("gift wrapping")
    verdict = validate_and_expect_abort(shop, "SQLSTATE 42P01")
    assert outcomes(last_report(shop)) == {"cart.0004_cartitem_gift": "failed"}
    assert last_report(shop)["report"]["migrations"][0]["error"]["sqlstate"] == "42P01"
    assert "cart_item" in verdict["reasons"][0]
