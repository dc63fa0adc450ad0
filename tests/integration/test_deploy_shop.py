"""Deploy the sample shop, then its next release with one more migration, with the real playbooks,
Docker engine and PostgreSQL."""

import hashlib
import json
from datetime import datetime

from tests.integration.conftest import assert_ok
from tests.integration.shop_releases import add_wishlist


def test_deploys_the_shop_then_a_release_with_one_more_migration(deployment):
    first = deployment.commit("release 1")
    assert_ok(deployment.deploy())

    status, health = deployment.get_json("/api/health/")
    assert status == 200
    assert health["database"] == "reachable" and health["migrations"]["pending"] == 0
    assert health["release"] == first
    status, products = deployment.get_json("/api/products/")
    assert status == 200 and products["count"] == 3
    status, cart = json.loads("[%d, %s]" % deployment.http("/api/cart/", method="POST", body={}))
    assert status == 201
    status, body = deployment.http("/api/cart/%d/items/" % cart["id"], method="POST", body={"sku": "TEA-001", "quantity": 2})
    assert status == 201, body

    add_wishlist(deployment)
    second = deployment.commit("release 2: wishlists")
    # built from a copy of the source on the target, as for a remote server
    result = deployment.deploy("-e", "build_sync_source=true")
    assert_ok(result)
    assert "1 applied: cart.0002_wishlist" in result.stdout

    # the run log times every step by role and task, in the order they ran (bench/deploy_time.py reads it)
    run_log = deployment.run_log()
    steps = run_log["steps"]
    roles = {"preflight", "change_detection", "build", "migration_validation", "db_backup", "migrate", "release", "health_check", "report"}
    assert roles <= {step["role"] for step in steps} and roles <= set(run_log["roles"])
    for step in steps:
        assert datetime.fromisoformat(step["start"]) <= datetime.fromisoformat(step["end"]) and step["seconds"] >= 0, step
    starts = [datetime.fromisoformat(step["start"]) for step in steps]
    assert starts == sorted(starts)
    assert ("migrate", "changed") in {(step["role"], step["status"]) for step in steps}

    status, health = deployment.get_json("/api/health/")
    assert status == 200 and health["release"] == second and health["migrations"]["pending"] == 0
    assert deployment.psql("SELECT to_regclass('cart_wishlist')") == "cart_wishlist"
    status, kept = deployment.get_json("/api/cart/%d/" % cart["id"])
    assert kept["items"] == [{"product": "TEA-001", "quantity": 2}], "data written under release 1 survives"

    # the previous release's containers are stopped, not serving; containers are named after the release
    history = deployment.releases()
    webs = {entry["id"]: entry["containers"]["backend"] for entry in history["releases"]}
    assert webs[first].startswith("%s-web-%s-" % (deployment.name, first[:12]))
    assert deployment.container_state(webs[first]) == "exited"
    assert deployment.container_state(webs[second]) == "running"

    # two verified backups, one per release, readable by their owner only, checksums right
    dumps = sorted((deployment.state_dir / "backups").glob("*.dump"), key=lambda d: d.name.rsplit("-", 1)[1])
    assert [d.name.split("-")[1] for d in dumps] == [first, second]
    for dump in dumps:
        metadata = json.loads(dump.with_suffix(".json").read_text())
        assert metadata["verified"] is True
        assert metadata["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
        assert dump.stat().st_mode & 0o777 == 0o600
        assert dump.with_suffix(".json").stat().st_mode & 0o777 == 0o600
    assert (deployment.state_dir / "backups").stat().st_mode & 0o777 == 0o700

    # the history holds both releases, in order
    history = deployment.releases()
    assert history["current"] == second
    assert [(r["id"], r["status"]) for r in history["releases"]] == [(first, "superseded"), (second, "live")]
    assert history["releases"][1]["migrations"]["applied"] == ["cart.0002_wishlist"]
    assert history["releases"][1]["backup"] == str(dumps[1])
    assert history["releases"][1]["deployed_by"] == "pytest"
    assert (deployment.state_dir / "build" / second / "backend" / "Dockerfile").exists()
    assert not (deployment.state_dir / "deploy.lock").exists()
