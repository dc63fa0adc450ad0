"""Faults of a fleet deploy over SSH (tests/integration/fleet.py: three app hosts, a database host, a load balancer
host). One fleet and one deployment for the module, in order: the database host unreachable at preflight (nothing
changes), SSH dropped to the second app host mid-roll (the first is put back, the third never reached, the database
kept: its migration is backward compatible), a migration the old code cannot live with refused before anything
changes, then allowed - and the second host of three failing its health gate: the first put back, and the database
put back too (not backward compatible: the backup restored behind every host's maintenance page, then every host on
fresh containers)."""

from __future__ import annotations

import json

import pytest

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok
from tests.integration.fleet_deploy import fleet_deployment

QUANTITY = "    quantity = models.PositiveIntegerField(default=1)\n"
GIFT_MESSAGE = "    gift_message = models.CharField(max_length=200, null=True, blank=True)\n"
GIFT_WRAP = "    gift_wrap = models.BooleanField(null=True)\n"


@pytest.fixture(scope="module")
def fleet_shop(tmp_path_factory):
    with fleet_deployment(tmp_path_factory.mktemp("fleet-faults"), app_hosts=3) as deployment:
        # release 1 already has the column a later release drops
        releases.edit(deployment, "cart/models.py", QUANTITY, QUANTITY + GIFT_MESSAGE)
        releases.add_migration(deployment, "cart", "0002_cartitem_gift_message", """class Migration(migrations.Migration):
    dependencies = [("cart", "0001_initial")]

    operations = [
        migrations.AddField("cartitem", "gift_message", models.CharField(max_length=200, null=True, blank=True)),
    ]
""")  # fmt: skip
        deployment.live_release = deployment.commit("release 1")
        assert_ok(deployment.deploy())
        yield deployment


def text(result) -> str:
    return " ".join(result.stdout.split())


def hook(deployment, name: str, body: str) -> str:
    path = deployment.workdir / ("%s.yml" % name)
    path.write_text(body)
    return str(path)


def columns(deployment, column: str) -> str:
    return deployment.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'cart_item' AND column_name = '%s'" % column)


def lives(deployment) -> list:
    return [deployment.live(h) for h in deployment.hosts]


def histories(deployment) -> dict:
    return {h: deployment.host_releases(h) for h in deployment.hosts}


def test_database_host_unreachable_at_preflight_changes_nothing(fleet_shop):
    releases.edit(fleet_shop, "cart/models.py", GIFT_MESSAGE, GIFT_MESSAGE + GIFT_WRAP)
    releases.add_migration(fleet_shop, "cart", "0003_cartitem_gift_wrap", """class Migration(migrations.Migration):
    dependencies = [("cart", "0002_cartitem_gift_message")]

    operations = [migrations.AddField("cartitem", "gift_wrap", models.BooleanField(null=True))]
""")  # fmt: skip
    fleet_shop.additive = fleet_shop.commit("cart items: gift wrap (a nullable column)")
    before = histories(fleet_shop)
    fleet_shop.fleet.stop_host("db1")
    try:
        result = fleet_shop.deploy()
    finally:
        fleet_shop.fleet.start_host("db1")
    assert_failed(result)
    assert "db1" in result.stdout and "UNREACHABLE" in result.stdout, result.stdout[-3000:]
    assert histories(fleet_shop) == before, "no host recorded anything"
    assert lives(fleet_shop) == [fleet_shop.live_release] * 3
    assert not (fleet_shop.host_state_dir("app1") / "deploy.lock").exists()
    assert columns(fleet_shop, "gift_wrap") == "0"
    assert fleet_shop.http("/api/health/")[0] == 200


def test_ssh_dropped_to_the_second_host_mid_roll_stops_and_puts_the_first_back(fleet_shop):
    # the moment app1 has switched, app2's SSH goes away (its container stops)
    drop = hook(
        fleet_shop,
        "drop-app2",
        """- name: SSH to app2 goes away while app1 is switched
  ansible.builtin.command:
    argv: [docker, stop, -t, "1", %s]
  delegate_to: localhost
  when: inventory_hostname == 'app1'
  changed_when: true
"""
        % fleet_shop.fleet.container("app2"),
    )
    try:
        result = fleet_shop.deploy("-e", "release_after_switch_tasks_file=%s" % drop)
    finally:
        fleet_shop.fleet.start_host("app2")
    assert_failed(result)
    said = text(result)
    assert "each host - app1: put back" in said and "app2: unreachable" in said and "app3: not reached" in said, said[-4000:]
    assert "Database: kept migrated (backward compatible)" in said
    assert lives(fleet_shop) == [fleet_shop.live_release] * 3
    # the additive migration stays: the previous release runs on it, nothing written since is lost
    assert columns(fleet_shop, "gift_wrap") == "1"
    assert fleet_shop.lb_state()["app2"]["status"] == "MAINT", "kept out of the load balancer until a deploy puts it back"
    assert {h: s["status"] for h, s in fleet_shop.lb_state().items() if h != "app2"} == {"app1": "UP", "app3": "UP"}
    assert json.loads(fleet_shop.http("/api/health/")[1])["release"] == fleet_shop.live_release
    assert not (fleet_shop.host_state_dir("app1") / "deploy.lock").exists()


def test_a_migration_the_old_code_cannot_live_with_is_refused_before_anything_changes(fleet_shop):
    releases.edit(fleet_shop, "cart/models.py", GIFT_MESSAGE, "")
    releases.add_migration(fleet_shop, "cart", "0004_remove_cartitem_gift_message", """class Migration(migrations.Migration):
    dependencies = [("cart", "0003_cartitem_gift_wrap")]

    operations = [migrations.RemoveField("cartitem", "gift_message")]
""")  # fmt: skip
    fleet_shop.breaking = fleet_shop.commit("cart items: no gift message any more (drops the column)")
    before = histories(fleet_shop)
    result = fleet_shop.deploy()
    assert_failed(result)
    said = text(result)
    assert "Rolling deploy refused, nothing was changed:" in said, said[-4000:]
    assert "cart.0004_remove_cartitem_gift_message: drops column cart_item.gift_message" in said
    assert "-e smart_deploy_allow_breaking=true" in said and "two releases" in said
    assert "| breaking (refused)" in result.stdout  # the table at the end of the run
    assert columns(fleet_shop, "gift_message") == "1" and columns(fleet_shop, "gift_wrap") == "1"
    assert lives(fleet_shop) == [fleet_shop.live_release] * 3
    after = histories(fleet_shop)
    assert {h: after[h] for h in ("app2", "app3")} == {h: before[h] for h in ("app2", "app3")}
    reports = sorted((fleet_shop.host_state_dir("app1") / "validations").glob("*.json"), key=lambda p: p.stat().st_mtime)
    verdict = json.loads(reports[-1].read_text())["verdict"]
    (item,) = verdict["breaking"]
    assert (item["table"], item["column"], item["rule"]) == ("cart_item", "gift_message", "drop-column")
    assert verdict["backward_compatible"] is False


def test_the_second_host_of_three_failing_puts_the_first_and_the_database_back(fleet_shop):
    fail_app2 = hook(
        fleet_shop,
        "fail-app2",
        """- name: The release does not work on app2
  ansible.builtin.fail:
    msg: app2 answers wrong with this release
  when: inventory_hostname == 'app2'
""",
    )
    with_app2_back = fleet_shop.lb_state()["app2"]["status"]
    assert with_app2_back == "MAINT"
    result = fleet_shop.deploy("-e", "smart_deploy_allow_breaking=true", "-e", "smart_deploy_actor=alice",
                               "-e", "health_check_after_tasks_file=%s" % fail_app2)  # fmt: skip
    assert_failed(result)
    said = text(result)
    assert "each host - app1: put back" in said and "app2: failed (" in said, said[-4000:]
    assert "app2 answers wrong with this release" in said
    assert "| breaking (allowed)" in result.stdout
    # the primary's history says what the old release could not live with, and who allowed it
    attempt = [r for r in fleet_shop.host_releases("app1")["releases"] if r["id"] == fleet_shop.breaking][-1]
    assert attempt["status"] == "rolled-back", attempt
    (item,) = attempt["breaking"]
    assert (item["migration"], item["table"], item["column"]) == ("cart.0004_remove_cartitem_gift_message", "cart_item", "gift_message")
    assert attempt["backward_compatible"] is False and "allowed by smart_deploy_allow_breaking (alice)" in attempt["breaking_gate"]
    assert "app3: not reached" in said
    # not backward compatible: the database went back to its pre-deploy state (the dropped column is there again)
    assert columns(fleet_shop, "gift_message") == "1", said[-3000:]
    assert lives(fleet_shop) == [fleet_shop.live_release] * 3
    assert json.loads(fleet_shop.http("/api/health/")[1])["release"] == fleet_shop.live_release
    # app2 was put back and passed the load balancer's check: every host serves again
    assert {h: s["status"] for h, s in fleet_shop.lb_state().items()} == {h: "UP" for h in fleet_shop.hosts}
    summary = fleet_shop.summary()
    assert summary["fleet"]["app3"] == "not reached" and summary["fleet"]["app1"].startswith("put back"), summary
    # undoing the dropped column would lose data: the backup was restored, behind every host's maintenance page, and then
    # every host served from fresh containers, connected to the restored database (recorded on its live release)
    assert summary["database_after_roll"].startswith("restored from"), summary
    for host, history in histories(fleet_shop).items():
        live = [e for e in history["releases"] if e["status"] == "live"][-1]
        assert live.get("containers_since") and fleet_shop.container_state(live["containers"]["backend"]) == "running", (host, live)
        assert [e["state"] for e in history.get("events", []) if e["kind"] == "maintenance"][-2:] == ["on", "off"], (host, history)
    assert not (fleet_shop.host_state_dir("app1") / "deploy.lock").exists()
