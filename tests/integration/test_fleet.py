"""A fleet over SSH (tests/integration/fleet.py): three app hosts behind smart-deploy's load balancer, one database
host, all reached by ansible_connection ssh with host keys checked. One fleet and one deployment for the module;
the tests run in order, each leaving the fleet as the next expects: the first deploy, a release with a migration
rolled host by host under load through the load balancer (not one request failed), then the daily verbs across
the fleet - status, lock, logs, rollback, cleanup. The faults are in test_fleet_faults.py."""

from __future__ import annotations

import json

import pytest

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_ok
from tests.integration.fleet_deploy import fleet_deployment
from tests.integration.load import Load

QUANTITY = "    quantity = models.PositiveIntegerField(default=1)\n"
GIFT_MESSAGE = "    gift_message = models.CharField(max_length=200, null=True, blank=True)\n"


@pytest.fixture(scope="module")
def fleet_shop(tmp_path_factory):
    with fleet_deployment(tmp_path_factory.mktemp("fleet-shop"), app_hosts=3) as deployment:
        deployment.base = deployment.commit("release 1")
        yield deployment


def text(result) -> str:
    """What the run printed, with YAML's line folding undone."""
    return " ".join(result.stdout.split())


def gift_message_columns(deployment) -> str:
    sql = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'cart_item' AND column_name = 'gift_message'"
    return deployment.psql(sql)


def backups(deployment, host):
    folder = deployment.host_state_dir(host) / "backups"
    return sorted(p.name for p in folder.glob("*.dump")) if folder.is_dir() else []


def test_first_deploy_reaches_every_host_behind_the_load_balancer(fleet_shop):
    result = fleet_shop.deploy()
    assert_ok(result)
    assert [fleet_shop.live(h) for h in fleet_shop.hosts] == [fleet_shop.base] * 3
    status, body = fleet_shop.http("/api/health/")
    assert status == 200 and '"database": "reachable"' in body, body
    for host in fleet_shop.hosts:  # each host's own proxy serves the release too
        assert json.loads(fleet_shop.http("/api/health/", host=host)[1])["release"] == fleet_shop.base
    assert {h: s["status"] for h, s in fleet_shop.lb_state().items()} == {h: "UP" for h in fleet_shop.hosts}
    summary = fleet_shop.summary()
    assert summary["fleet"] == {h: "switched" for h in fleet_shop.hosts}, summary
    # one database for the fleet, migrated once from the primary, whose state folder keeps the backups
    assert fleet_shop.psql("SELECT count(*) FROM django_migrations WHERE app = 'cart' AND name = '0001_initial'") == "1"
    assert not (fleet_shop.host_state_dir("app1") / "deploy.lock").exists(), "the fleet's lock is released"


def test_a_migration_rolls_host_by_host_with_not_one_failed_request_through_the_load_balancer(fleet_shop):
    releases.edit(fleet_shop, "cart/models.py", QUANTITY, QUANTITY + GIFT_MESSAGE)
    releases.add_migration(fleet_shop, "cart", "0002_cartitem_gift_message", """class Migration(migrations.Migration):
    dependencies = [("cart", "0001_initial")]

    operations = [
        migrations.AddField("cartitem", "gift_message", models.CharField(max_length=200, null=True, blank=True)),
    ]
""")  # fmt: skip
    release = fleet_shop.commit("cart items: a gift message")
    backed_up = backups(fleet_shop, "app1")
    with Load("http://%s:8080" % fleet_shop.fleet.lb_address, rate=30) as load:
        result = fleet_shop.deploy()
    assert_ok(result)
    print("roll of 3 hosts with a migration, through the load balancer:", load.result.describe())  # README figures (pytest -rP)
    assert load.result.failed == 0 and load.result.total > 100, load.result.describe()
    assert [fleet_shop.live(h) for h in fleet_shop.hosts] == [release] * 3
    # host by host, in the inventory's order: each went live after the one before it
    finished = [fleet_shop.host_releases(h)["releases"][-1]["finished_at"] for h in fleet_shop.hosts]
    assert finished == sorted(finished), finished
    # the migration ran once, backed up first, on the primary only
    assert gift_message_columns(fleet_shop) == "1"
    assert len(set(backups(fleet_shop, "app1")) - set(backed_up)) == 1
    assert backups(fleet_shop, "app2") == backups(fleet_shop, "app3") == []
    primary, other = fleet_shop.host_releases("app1")["releases"][-1], fleet_shop.host_releases("app2")["releases"][-1]
    assert primary["migrations"]["applied"] == ["cart.0002_cartitem_gift_message"] and primary["backup"]
    assert other["migrations"]["applied"] == [] and not other["backup"]
    fleet_shop.previous, fleet_shop.live_release = fleet_shop.base, release


def test_status_shows_each_host_and_the_load_balancer_and_the_lock_is_one_for_the_fleet(fleet_shop):
    result = fleet_shop.playbook("status")
    assert_ok(result)
    said = text(result)
    for host in fleet_shop.hosts:
        assert "app %s on %s" % (fleet_shop.name, host) in said
        assert "%s: %s, load balancer UP" % (host, fleet_shop.live_release) in said, said[-3000:]
    assert "deploy lock: free" in said
    # a lock taken on the first app server holds the whole fleet: a deploy from elsewhere is refused at once
    lock = fleet_shop.playbook("lock", "-e", "lock_action=status")
    assert_ok(lock)
    assert text(lock).count("the deploy lock is free") == 1, "one lock, shown once for the fleet"


def test_logs_come_from_every_host(fleet_shop):
    result = fleet_shop.playbook("logs", "-e", "component=backend", "-e", "lines=20")
    assert_ok(result)
    for host in fleet_shop.hosts:
        assert "%s-web-%s" % (fleet_shop.fleet.scope(host), fleet_shop.live_release) in result.stdout, result.stdout[-3000:]


def test_rollback_puts_every_host_back_on_the_previous_release(fleet_shop):
    with Load("http://%s:8080" % fleet_shop.fleet.lb_address, rate=20) as load:
        result = fleet_shop.playbook("rollback")
    assert_ok(result)
    print("rollback of 3 hosts, through the load balancer:", load.result.describe())  # README figures (pytest -rP)
    assert load.result.failed == 0, load.result.describe()
    assert [fleet_shop.live(h) for h in fleet_shop.hosts] == [fleet_shop.previous] * 3
    assert json.loads(fleet_shop.http("/api/health/")[1])["release"] == fleet_shop.previous
    # code only: the column of the newer release stays (the older code does not use it)
    assert gift_message_columns(fleet_shop) == "1"


def test_cleanup_runs_on_every_host(fleet_shop):
    result = fleet_shop.playbook("cleanup")
    assert_ok(result)
    for host in fleet_shop.hosts:
        assert host in result.stdout
    assert [fleet_shop.live(h) for h in fleet_shop.hosts] == [fleet_shop.previous] * 3
    assert fleet_shop.http("/api/health/")[0] == 200
