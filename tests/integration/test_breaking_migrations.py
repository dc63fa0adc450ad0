"""Migrations the old release cannot live with, on one deployment of the shop deployed as a rolling deploy
(-e smart_deploy_rolling=true: old and new code would serve side by side), in order: expand - a nullable column
deploys without any flag; contract - the release that drops that column stops before anything changed, naming
the column and the two ways out; the same release with -e smart_deploy_allow_breaking=true deploys, and the
history says what the old release could not live with and who allowed it."""

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok

ROLLING = ("-e", "smart_deploy_rolling=true")
QUANTITY = "    quantity = models.PositiveIntegerField(default=1)\n"
GIFT_MESSAGE = "    gift_message = models.CharField(max_length=200, null=True, blank=True)\n"


def text(result):
    """What the run printed, with YAML's line folding undone."""
    return " ".join(result.stdout.split())


def newest_attempt(shop):
    return shop.releases()["releases"][-1]


def gift_message_columns(shop):
    return shop.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'cart_item' AND column_name = 'gift_message'")


def test_expand_a_nullable_column_deploys_without_the_flag(shop):
    releases.edit(shop, "cart/models.py", QUANTITY, QUANTITY + GIFT_MESSAGE)
    releases.add_migration(shop, "cart", "0002_cartitem_gift_message", """class Migration(migrations.Migration):
    dependencies = [("cart", "0001_initial")]

    operations = [
        migrations.AddField("cartitem", "gift_message", models.CharField(max_length=200, null=True, blank=True)),
    ]
""")  # fmt: skip
    commit = shop.commit("cart items: a gift message (nullable: the old release's INSERTs still work)")
    result = shop.deploy(*ROLLING)
    assert_ok(result)
    attempt = newest_attempt(shop)
    assert attempt["id"] == commit[:12] and attempt["status"] == "live"
    assert attempt["breaking"] == [] and attempt["backward_compatible"] is True
    assert "breaking" not in text(result).lower()
    assert gift_message_columns(shop) == "1"
    shop.live = commit[:12]


def test_contract_dropping_the_column_stops_before_anything_changed_naming_it(shop):
    releases.edit(shop, "cart/models.py", GIFT_MESSAGE, "")
    releases.add_migration(shop, "cart", "0003_remove_cartitem_gift_message", """class Migration(migrations.Migration):
    dependencies = [("cart", "0002_cartitem_gift_message")]

    operations = [migrations.RemoveField("cartitem", "gift_message")]
""")  # fmt: skip
    shop.commit("cart items: no gift message any more (drops the column)")
    before, history = shop.snapshot(), shop.releases()
    result = shop.deploy(*ROLLING)
    assert_failed(result)
    said = text(result)
    assert "Rolling deploy refused, nothing was changed:" in said, result.stdout[-6000:]
    assert "cart.0003_remove_cartitem_gift_message: drops column cart_item.gift_message" in said
    assert "-e smart_deploy_allow_breaking=true" in said and "two releases" in said
    assert shop.snapshot() == before and shop.releases() == history
    assert gift_message_columns(shop) == "1"
    assert shop.get_json("/api/health/")[1]["release"] == shop.live
    validation = shop.summary()["validation"]
    assert validation["breaking_gate"] == "refused"
    assert validation["breaking"] == ["cart.0003_remove_cartitem_gift_message: drops column cart_item.gift_message, which the old "
                                      "release still selects and writes"]  # fmt: skip
    assert "| breaking (refused)" in result.stdout  # the table at the end of the run
    verdict = shop.validation_reports()[-1]["verdict"]  # the saved report
    (item,) = verdict["breaking"]
    assert (item["table"], item["column"], item["rule"]) == ("cart_item", "gift_message", "drop-column")
    assert verdict["backward_compatible"] is False and verdict["strategy"] == "normal"


def test_the_same_release_allowed_deploys_and_the_history_says_what_and_who(shop):
    result = shop.deploy(*ROLLING, "-e", "smart_deploy_allow_breaking=true", "-e", "smart_deploy_actor=alice")
    assert_ok(result)
    attempt = newest_attempt(shop)
    assert attempt["status"] == "live" and attempt["deployed_by"] == "alice"
    (item,) = attempt["breaking"]
    assert (item["migration"], item["table"], item["column"]) == ("cart.0003_remove_cartitem_gift_message", "cart_item", "gift_message")
    assert attempt["backward_compatible"] is False
    assert "allowed by smart_deploy_allow_breaking (alice)" in attempt["breaking_gate"]
    assert "| breaking (allowed)" in result.stdout
    assert gift_message_columns(shop) == "0"
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == attempt["id"]
