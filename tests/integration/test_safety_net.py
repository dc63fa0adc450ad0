"""The safety net, with faults injected at each named step of a real deploy (real Docker, PostgreSQL
and the shop): afterwards the previous release serves, the database equals the pre-deploy one, the
backups are intact and verified, the lock is free and releases.json tells the truth. (Secrets, overlapping
deploys and hooks: test_overlaps_and_hooks.py, on a deployment of its own.)"""

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, run


def content(snapshot):
    """Schema and rows; a restore keeps the replaced database aside, so the list of databases may grow."""
    return {k: v for k, v in snapshot.items() if k != "databases"}


def assert_backups_verified(shop):
    for metadata_path in (shop.state_dir / "backups").glob("*.json"):
        metadata = json.loads(metadata_path.read_text())
        dump = metadata_path.with_suffix(".dump")
        assert metadata["verified"] is True
        assert hashlib.sha256(dump.read_bytes()).hexdigest() == metadata["sha256"]


def assert_back_on_previous_release(shop, before):
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == shop.live and health["migrations"]["pending"] == 0
    assert content(shop.snapshot()) == content(before)
    assert not (shop.state_dir / "deploy.lock").exists()
    assert_backups_verified(shop)
    history = shop.releases()
    assert history["current"] == shop.live
    last = history["releases"][-1]
    assert last["status"] == "failed" and last["rollback"]["service"] == "release %s serves again" % shop.live
    return last


GATE_TASK = "Wait until each new container runs and answers its health path"
HOOKS = ROOT / "tests" / "integration" / "playbooks" / "hooks"
# the shop's critical endpoints, as its inventory gives them (a release that breaks /api/products/ fails the check)
SHOP_ENDPOINTS = [
    {"name": "health", "path": "/api/health/", "contains": '"database": "reachable"'},
    {"name": "products", "path": "/api/products/", "contains": '"results"'},
    {"name": "frontend", "path": "/"},
]
QUICK_HEALTH_CHECK = ["-e", json.dumps({"health_check_retries": 2, "health_check_delay": 1, "health_check_endpoints": SHOP_ENDPOINTS})]


def hook(variable, name):
    return ["-e", "%s=%s" % (variable, HOOKS / name)]


def assert_the_gate_failed_fast_with_the_logs(shop, result):
    """The health gate saw the new backend exit (it does at once) and failed within 10 s of it - not after
    its timeout - naming the container and showing its last log lines, and nothing of its environment even
    with -vv (the gate printed its whole `docker inspect` before; the canaries are searched by
    Deployment.playbook and here)."""
    failure = re.search(
        r"Container (%s-web-\S+) (.+?), ([0-9.]+) s into the health gate\. Its last (\d+) log lines" % shop.name, result.stdout
    )
    assert failure, result.stdout[-6000:]
    assert "keeps exiting" in failure.group(2) or "exited" in failure.group(2), failure.group(0)
    assert float(failure.group(3)) < 10, failure.group(0)
    shown = result.stdout[failure.end() :].split("\n")[1 : 1 + int(failure.group(4))]
    assert any(releases.BROKEN_START_ERROR in line for line in shown), result.stdout[-6000:]
    assert "POSTGRES_PASSWORD" not in result.stdout, "the container's environment is not printed"
    shop.assert_no_secret_leaks()
    # the whole task, module start-up included, as the JSON run log timed it: far below the gate's
    # timeout (60 s) and the 4 minutes the former retry loop took (a loose bound, not a benchmark)
    logs = sorted((shop.workdir / "logs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    gate = [s for s in json.loads(logs[-1].read_text())["steps"] if GATE_TASK in s["task"] and s["status"] == "failed"]
    assert len(gate) == 1 and gate[0]["seconds"] < 30, gate


def release_failing_after_the_backup(shop):
    releases.add_cart_item_note(shop)
    return hook("migrate_before_tasks_file", "fail.yml"), "the user's hook failed"


def release_failing_mid_migration(shop):
    """Two migrations in one transaction; the second (unique product names) fails for real on production: a
    product named like another was written after the rehearsal (the before-migrate hook plays that writer)."""
    releases.add_cart_item_note(shop)
    releases.make_product_name_unique(shop, also_after=[("cart", "0002_cartitem_note")])
    return hook("migrate_before_tasks_file", "concurrent_duplicate_product.yml"), "the whole batch was rolled back"


def release_failing_after_the_migrations(shop):
    releases.add_cart_item_note(shop)
    return hook("migrate_after_tasks_file", "fail.yml"), "the user's hook failed"


def release_whose_backend_cannot_start(shop):
    # a data migration: undoing it cannot be proven lossless, so the backup is restored
    releases.add_noop_data_migration(shop)
    releases.break_backend_start_command(shop)
    # the gate's own words depend on when it looks ("keeps exiting" while Docker restarts it, "exited and was
    # restarted" once it runs again): assert_the_gate_failed_fast_with_the_logs checks them, this the step
    return [], GATE_TASK + " (a worker - its health command, or runs for its settle time): Container"


def release_failing_its_health_check(shop):
    releases.add_cart_item_note(shop)
    releases.break_products_endpoint(shop)
    return [], "Health check failed after 2 tries: products (http"


@pytest.mark.parametrize(
    "step, make_release, database_back",
    [
        ("after_backup", release_failing_after_the_backup, "unchanged"),
        ("mid_migration", release_failing_mid_migration, "unchanged"),
        ("after_migration", release_failing_after_the_migrations, "reversed migrations"),
        ("container_start", release_whose_backend_cannot_start, "restored from"),
        ("health_check", release_failing_its_health_check, "reversed migrations"),
    ],
    ids=["after_backup", "mid_migration", "after_migration", "container_start", "health_check"],
)
def test_a_failure_at_each_step_puts_code_and_database_back(shop, step, make_release, database_back):
    args, reason = make_release(shop)
    shop.commit("release 2 (failing: %s)" % step)
    before = shop.snapshot()
    # -v: whatever a failure prints in verbose mode holds no secret either (Deployment.playbook checks); -vv
    # where a container cannot start (its gate's failure shows the most)
    result = shop.deploy("-vv" if step == "container_start" else "-v", *args, *QUICK_HEALTH_CHECK)
    assert_failed(result)
    assert "Rolled back" in result.stdout and "failed, rolled back" in result.stdout
    if step == "mid_migration":  # what the other writer wrote stays: the rollback loses nothing
        assert shop.psql("SELECT count(*) FROM catalog_product WHERE sku = 'CONCURRENT-1'") == "1"
        shop.psql("DELETE FROM catalog_product WHERE sku = 'CONCURRENT-1'")
    last = assert_back_on_previous_release(shop, before)
    assert any(said in last["reason"] for said in ((reason,) if isinstance(reason, str) else reason)), last["reason"]
    assert database_back in last["rollback"]["database"], last["rollback"]
    assert last["backup"], "the pre-deploy backup is recorded with the failed attempt"
    if step == "container_start":
        assert "__replaced_" in shop.snapshot()["databases"], "the replaced database is kept, nothing is lost for good"
        assert_the_gate_failed_fast_with_the_logs(shop, result)
    shop.reset_to(shop.base)


def test_a_rollback_that_fails_says_so_and_leaves_what_is_needed_to_finish_it(shop):
    """The release fails its health check; meanwhile a clean-up took the previous release's image away (the
    after-switch hook plays it), so the automatic rollback cannot serve that release and fails."""
    releases.add_cart_item_note(shop)
    releases.break_products_endpoint(shop)
    shop.commit("release 2 (note, and a broken products endpoint)")
    before = shop.snapshot()
    record = shop.workdir / "image-set-aside.json"
    args = [*hook("release_after_switch_tasks_file", "previous_image_aside.yml"), "-e", "hook_record=%s" % record]
    result = shop.deploy("-v", *args, *QUICK_HEALTH_CHECK)
    assert_failed(result)
    assert "ROLLBACK FAILED" in result.stdout and "Finish by hand" in result.stdout, result.stdout[-4000:]
    history = shop.releases()
    last = history["releases"][-1]
    assert history["current"] == shop.live and last["status"] == "failed"
    assert "Health check failed after 2 tries: products" in last["reason"], last["reason"]
    assert "answered 500, expected 200" in last["reason"], "the reason says what the endpoint answered"
    assert "Images of release %s are missing" % shop.live in last["rollback"]["error"], last["rollback"]
    manual = last["rollback"]["to_finish_by_hand"]
    assert manual["pre_deploy_backup"] == last["backup"] and Path(last["backup"]).is_file()
    assert_backups_verified(shop)
    assert not (shop.state_dir / "deploy.lock").exists(), "the lock is free for whoever finishes the job"
    assert content(shop.snapshot()) != content(before), "the database is still as the failed attempt left it"

    # what was missing comes back (the operator tags it again, or deploys that release to rebuild it), then
    # the printed command, run as printed, finishes the job
    moved = json.loads(record.read_text())
    for command in (["docker", "tag", moved["aside"], moved["image"]], ["docker", "rmi", moved["aside"]]):
        assert run(command).returncode == 0, command
    command = manual["restore_database"].split(" (or by hand")[0].split()
    assert command[:2] == ["ansible-playbook", "playbooks/rollback.yml"], manual
    finished = shop.playbook("rollback", *command[2:])
    assert_ok(finished)
    assert "restored from" in finished.stdout, finished.stdout[-4000:]
    assert shop.releases()["releases"][-1]["restored_backup"] == last["backup"], "the backup taken before the failed attempt"
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == shop.live and health["migrations"]["pending"] == 0
    assert content(shop.snapshot()) == content(before)
    assert shop.releases()["current"] == shop.live
    shop.reset_to(shop.base)


def test_rollback_refuses_what_is_not_a_release_before_any_change(shop):
    before = shop.snapshot()
    for bad in ("no-such-release", "../../etc/passwd", shop.live):
        result = shop.playbook("rollback", "-e", "release=%s" % bad)
        assert_failed(result)
        refusals = ("already live", "is not a release that went live here", "must be a release id")
        assert any(refusal in result.stdout for refusal in refusals), result.stdout[-3000:]
    assert shop.snapshot() == before
    assert not (shop.state_dir / "deploy.lock").exists()


def test_explicit_rollback_code_only_then_with_the_database(shop):
    releases.add_wishlist(shop)
    second = shop.commit("release 2: wishlists")
    assert_ok(shop.deploy())
    shop.psql("INSERT INTO cart_wishlist (name, created_at) VALUES ('birthday', now())")

    result = shop.playbook("rollback")  # to the previous good release, code only
    assert_ok(result)
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == shop.live
    assert shop.psql("SELECT count(*) FROM cart_wishlist") == "1", "code only: the database keeps what was written"
    history = shop.releases()
    assert history["current"] == shop.live
    assert [(e["id"], e["status"]) for e in history["releases"] if e["status"] in ("live", "rolled-back")][-2:] == [
        (second, "rolled-back"),
        (shop.live, "live"),
    ]

    assert_ok(shop.playbook("rollback", "-e", "release=%s" % second))  # forward again, code only
    result = shop.playbook("rollback", "-e", "release=%s" % shop.live, "-e", "restore_db=true")
    assert_ok(result)
    # the tables named (the summary's database row, whole: the table printed wraps it): the one release 2 made,
    # and its migration's row in Django's history
    database = shop.summary()["steps"]["database"]
    assert "1 table only in the replaced database (cart_wishlist)" in database, database
    assert re.search(r"tables? with other row counts \([^)]*django_migrations \d+ rows before, \d+ after", database), database
    assert shop.psql("SELECT to_regclass('cart_wishlist') IS NULL") == "t", "the database is back as release 1 left it"
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == shop.live and health["migrations"]["pending"] == 0
    shop.reset_to(shop.base)


def test_backups_are_listed(shop):
    result = shop.playbook("backups")
    assert_ok(result)
    assert "verified" in result.stdout and shop.live in result.stdout
