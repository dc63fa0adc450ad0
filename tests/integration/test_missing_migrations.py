"""Model changes without a migration, on one deployment of the shop, in order: a state-only change (a Meta
ordering dropped) deploys with a warning; a new field without its migration aborts naming the column and
changes nothing; the same release with -e smart_deploy_accept=missing-migration-sql deploys, and the
history says who accepted what. Decided the way Django would: the migrations makemigrations would write,
generated in memory in the release's image, and the SQL sqlmigrate gives for them."""

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, release_id

GIFT_WRAP = "    gift_wrap = models.BooleanField(default=False)\n"


def text(result):
    """What the run printed, with YAML's line folding undone (the verdict's lines are long)."""
    return " ".join(result.stdout.split())


def newest_attempt(shop):
    return shop.releases()["releases"][-1]


def test_a_dropped_meta_ordering_deploys_with_a_warning(shop):
    releases.edit(shop, "catalog/models.py", '    class Meta:\n        ordering = ["id"]\n\n', "")
    commit = shop.commit("products: no default ordering (no migration: it changes no SQL)")
    result = shop.deploy()
    assert_ok(result)
    assert "warning: catalog.0003_alter_product_options: " in text(
        result
    ) and "change no SQL (state only): Change Meta options on product" in text(result)
    summary = shop.summary()
    (warning,) = [w for w in summary["validation"]["warnings"] if "state only" in w]
    assert warning.startswith("catalog.0003_alter_product_options: ") and "Change Meta options on product" in warning
    assert "| warning" in result.stdout  # the table at the end of the run
    attempt = newest_attempt(shop)
    assert attempt["id"] == release_id(commit) and attempt["status"] == "live"
    assert attempt["migration_warnings"] == [warning] and attempt["accepted"] == []
    status, products = shop.get_json("/api/products/")
    assert status == 200 and products["results"]
    shop.live = release_id(commit)


def test_a_new_field_without_its_migration_aborts_naming_the_column_and_changes_nothing(shop):
    releases.edit(shop, "cart/models.py", "    quantity = models.PositiveIntegerField(default=1)\n",
                  "    quantity = models.PositiveIntegerField(default=1)\n" + GIFT_WRAP)  # fmt: skip
    shop.commit("cart items: gift wrap (its migration forgotten)")
    before, history = shop.snapshot(), shop.releases()
    result = shop.deploy()
    assert_failed(result)
    column = 'ALTER TABLE "cart_item" ADD COLUMN "gift_wrap" boolean DEFAULT false NOT NULL'
    assert "Migration validation says abort: missing-migration-sql: cart.0002_cartitem_gift_wrap: " in text(result), result.stdout[-6000:]
    assert column in text(result) and "Add field gift_wrap to cartitem" in text(result)
    assert "-e smart_deploy_accept=missing-migration-sql" in text(result)
    (reason,) = shop.summary()["validation"]["abort_reasons"]
    assert reason["code"] == "missing-migration-sql" and column in reason["reason"]
    assert shop.snapshot() == before and shop.releases() == history
    assert shop.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'gift_wrap'") == "0"
    assert shop.get_json("/api/health/")[1]["release"] == shop.live
    assert not list((shop.source / releases.SRC / "cart" / "migrations").glob("0002_*"))  # nothing written into the app


def test_the_same_release_accepted_deploys_and_the_history_says_who_accepted_what(shop):
    result = shop.deploy("-e", "smart_deploy_accept=missing-migration-sql,duplicate-rows", "-e", "smart_deploy_actor=alice")
    assert_ok(result)
    assert "ACCEPTED missing-migration-sql: cart.0002_cartitem_gift_wrap: " in text(result)
    attempt = newest_attempt(shop)
    assert attempt["status"] == "live" and attempt["deployed_by"] == "alice"
    (accepted,) = attempt["accepted"]
    assert accepted["code"] == "missing-migration-sql" and accepted["by"] == "alice"
    assert 'ADD COLUMN "gift_wrap" boolean' in accepted["reason"]
    assert attempt["accepted_unused"] == ["duplicate-rows"]  # accepted, did not occur: harmless, said
    summary = shop.summary()
    assert summary["validation"]["accepted"] == [accepted] and summary["validation"]["accepted_unused"] == ["duplicate-rows"]
    assert "| ACCEPTED" in result.stdout and "accept unused" in result.stdout
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == attempt["id"]
    # status shows the history, and draws the last deploys into a page on the controller (./deploy status --html)
    page = shop.workdir / "deploys.html"
    shown = shop.playbook("status", "-e", "status_html=%s" % page, "-e", "status_last=3")
    assert_ok(shown)
    assert "accepted missing-migration-sql by alice: cart.0002_cartitem_gift_wrap: models have changes" in text(shown)
    assert_the_last_deploys_drawn(shop, page, shown, newest=attempt["id"])


def assert_the_last_deploys_drawn(shop, page, shown, newest):
    """The page of the last 3 of the 4 deploys of this module (release 1, the dropped ordering, the abort, the
    accepted one): one Mermaid gantt each, newest first, the abort's refusal a red bar; the first deploy left out."""
    assert "3 deploys drawn in %s" % page in shown.stdout
    assert page.stat().st_mode & 0o777 == 0o600
    html = page.read_text()
    charts = [chunk.split("</pre>")[0] for chunk in html.split('<pre class="mermaid">')[1:]]
    assert len(charts) == 3 and '<script type="module">' in html
    titles = [chart.split("\n    title ", 1)[1].split("\n", 1)[0] for chart in charts]
    assert titles[0].startswith("deploy of %s %s on " % (shop.name, newest)) and titles[0].endswith(", live"), titles
    assert titles[1].endswith(", failed before changing anything"), titles
    assert "Stop before any change when the verdict is abort" in charts[1] and ":crit, " in charts[1]
    assert ":crit, " not in charts[0] and "    section migrate " in charts[0] and "    section release " in charts[0]
    first = shop.releases()["releases"][0]["id"]
    assert first not in html, "only the last 3 deploys"
