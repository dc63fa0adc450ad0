"""Hardening, on one deployed shop with the real playbooks: `build` removes its test database and holds
the deploy lock, the rehearsal refuses a copy the disk cannot hold before creating anything, and the
cleanup drops replaced databases by exact name prefix whatever characters their names hold; then, on the
same deployment, the backup retention with real backups (formerly test_retention.py).

The shop is deployed under a name with a '-' (sdt-xxxxxx), so its database name has a '_' (sdt_xxxxxx):
an SQL LIKE pattern built from it would take that '_' for a wildcard.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

import pytest
from ansible.module_utils.smart_deploy.common import utc_now
from ansible.module_utils.smart_deploy.lock import TAKEN, acquire, local_identity, new_lock, release

from tests.integration import shop_releases as releases
from tests.integration.conftest import Deployment, assert_failed, assert_ok, run


class DashedDeployment(Deployment):
    def __init__(self, workdir):
        super().__init__(workdir)
        self.name = "sdt-" + secrets.token_hex(3)
        settings = json.loads(self.vars_file.read_text())
        settings["smart_deploy_app_name"] = self.name
        self.vars_file.write_text(json.dumps(settings))

    @property
    def db_name(self) -> str:
        return self.name.replace("-", "_")

    def psql_admin(self, sql: str) -> str:
        """SQL on the maintenance database (CREATE/DROP DATABASE), as the database's owner role."""
        result = run(["docker", "exec", "%s-db" % self.name, "psql", "-XAtq", "-U", self.db_name, "-d", "postgres", "-c", sql])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def databases(self) -> set:
        return set(self.psql_admin("SELECT datname FROM pg_database").splitlines())


@pytest.fixture(scope="module")
def module_deployment(tmp_path_factory):
    """Overrides the conftest fixture of the same name for this module: the `shop` fixture deploys this one."""
    deployment = DashedDeployment(tmp_path_factory.mktemp("deployment"))
    try:
        yield deployment
    finally:
        deployment.destroy()


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def test_builds_with_a_cleanup_between_leave_no_test_database_behind(shop):
    # the cleanup keeps the engine's build cache: other builds share it
    for playbook, args in (("build", ()), ("cleanup", ("-e", "cleanup_build_cache=false")), ("build", ())):
        assert_ok(shop.playbook(playbook, *args))
    assert "tests passed" in shop.summary()["outcome"]
    scratch = ["--filter", "label=smart-deploy.app=%s" % shop.name, "--filter", "label=smart-deploy.scratch"]
    assert run(["docker", "ps", "-aq", *scratch]).stdout.split() == [], "a scratch container of a build is left"
    assert run(["docker", "network", "ls", "-q", *scratch]).stdout.split() == [], "a scratch network of a build is left"
    assert run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", "name=^%s-tests-" % shop.name]).stdout.split() == []
    assert shop.scratch_leftovers() == []
    assert not (shop.state_dir / "deploy.lock").exists(), "build released the deploy lock"


def test_a_build_started_while_another_run_holds_the_lock_fails_at_once_naming_the_holder(shop):
    path = shop.state_dir / "deploy.lock"
    # held by a live process of this machine (this test's): never stale
    holder = new_lock("another-run", "alice", "ci-runner-7", os.getpid(), "cafe12345678", "deploy", utc_now(), 3600, local_identity())
    assert acquire(str(path), holder, 3600, local_identity()).outcome == TAKEN
    try:
        started = time.monotonic()
        result = shop.playbook("build")
        seconds = time.monotonic() - started
        assert_failed(result)
        assert "another deploy is running" in result.stdout and "held by alice" in result.stdout and "ci-runner-7" in result.stdout
        assert "Run the app's tests" not in result.stdout and "Build the images" not in result.stdout, "it stopped before building"
        assert seconds < 60, "refused at once, not after the build (%.0f s)" % seconds
        assert json.loads(path.read_text())["lock_id"] == "another-run", "the holder's lock is left alone"
    finally:
        release(str(path), "another-run", False, 3600, local_identity())


def test_cleanup_drops_an_old_replaced_database_by_exact_prefix_whatever_its_name(shop):
    prefix = shop.db_name + "__replaced_"
    odd = prefix + '20200101t000000z "old copy"'  # a double quote and a space
    recent = prefix + utc_now().strftime("%Y%m%dt%H%M%Sz")  # replaced just now: kept for cleanup_replaced_db_days
    lookalike = shop.db_name.replace("_", "X") + "__replaced_20200101t000000z"  # matches only if '_' were a wildcard
    for name in (odd, recent, lookalike):
        shop.psql_admin("CREATE DATABASE %s" % quote_ident(name))
    try:
        result = shop.playbook("cleanup", "-e", "cleanup_build_cache=false")
        assert_ok(result)
        databases = shop.databases()
        assert odd not in databases, "the old replaced database was not dropped"
        assert recent in databases, "a database replaced less than cleanup_replaced_db_days ago was dropped"
        assert lookalike in databases, "a database of another name was dropped: the prefix was matched as a pattern"
        assert shop.db_name in databases and shop.get_json("/api/health/")[0] == 200
    finally:
        for name in (odd, recent, lookalike):
            shop.psql_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % quote_ident(name))


def test_rehearsal_refuses_a_copy_the_disk_cannot_hold_before_creating_anything(shop):
    releases.add_wishlist(shop)
    shop.commit("wishlists")
    before = shop.snapshot()
    docker_root = run(["docker", "info", "--format", "{{.DockerRootDir}}"]).stdout.strip()
    try:
        # a margin of ~1 EiB: no disk has that much free
        result = shop.playbook("validate", "-e", "migration_validation_disk_margin_mb=1000000000000")
        assert_failed(result)
        assert "not enough free disk for the rehearsal copy" in result.stdout, result.stdout[-4000:]
        assert "it would copy " in result.stdout and "of production (" in result.stdout
        assert "free on %s (Docker's data), which has " % docker_root in result.stdout
        assert "Nothing was created and production is untouched" in result.stdout
        assert shop.scratch_leftovers() == []
        assert shop.snapshot() == before
        assert not (shop.state_dir / "deploy.lock").exists()
    finally:
        shop.reset_to(shop.base)


# --- backup retention (formerly test_retention.py), last: its series records made-up attempts in the history.
# With real backups taken by the db_backup role (the role a deploy runs): failed deploys never push good backups
# out, and exactly the ten newest verified good backups stay, each restorable. (Before the fix, the deploy's
# rotation counted failed attempts: after 11 of them the older good backups were gone.) The tests above take
# no backup: the first deploy's is the only one.
def series(shop, attempts):
    """Run the attempts ([(id, 'live'|'failed')]) through tests/integration/playbooks/backup_series.yml."""
    extra = json.dumps({"series": [{"id": release, "outcome": outcome} for release, outcome in attempts]})
    result = shop.playbook("../tests/integration/playbooks/backup_series", "-e", extra)
    assert_ok(result)
    return result


def kept_backups(shop):
    """{release: dump path} of the backups in the folder, oldest first."""
    dumps = sorted((shop.state_dir / "backups").glob("*.dump"), key=lambda p: p.name.rsplit("-", 1)[1])
    return [(json.loads(d.with_suffix(".json").read_text())["release"], d) for d in dumps]


def test_failed_deploys_never_push_good_backups_out_and_ten_good_ones_stay(shop):
    first = [release for release, _dump in kept_backups(shop)]
    assert first == [shop.live], "the first deploy's backup"
    series(
        shop, [("good-%02d" % n, "live") for n in (1, 2, 3)] + [("bad-%02d" % n, "failed") for n in range(1, 12)] + [("good-04", "live")]
    )
    kept_ids = [release for release, _dump in kept_backups(shop)]
    good = [shop.live, "good-01", "good-02", "good-03", "good-04"]
    assert [r for r in kept_ids if not r.startswith("bad-")] == good, "every good backup from before the failures is still there"
    assert len([r for r in kept_ids if r.startswith("bad-")]) == 11, "fewer than ten good backups: nothing is removed"

    series(shop, [("good-%02d" % n, "live") for n in range(5, 11)])
    kept = [(release, dump) for release, dump in kept_backups(shop) if not release.startswith("bad-")]
    assert [r for r, _d in kept] == ["good-%02d" % n for n in range(1, 11)], "exactly the ten newest good backups; the oldest went"
    failed = [r for r, _d in kept_backups(shop) if r.startswith("bad-")]
    assert len(failed) == 11, "failed attempts' backups newer than the oldest kept good one stay until they fall out of the window"
    user = shop.name.replace("-", "_")
    for number, (_release, dump) in enumerate(kept):
        metadata = json.loads(dump.with_suffix(".json").read_text())
        assert metadata["verified"] is True and dump.stat().st_mode & 0o777 == 0o600
        database = "restorecheck%d" % number
        shop.psql("CREATE DATABASE %s" % database)
        with open(dump, "rb") as archive:
            restored = subprocess.run(["docker", "exec", "-i", "%s-db" % shop.name, "pg_restore", "--exit-on-error", "-U", user,
                                       "-d", database], stdin=archive, capture_output=True)  # fmt: skip
        assert restored.returncode == 0, restored.stderr
        count = run(["docker", "exec", "%s-db" % shop.name, "psql", "-XAtq", "-U", user, "-d", database, "-c",
                     "SELECT count(*) FROM django_migrations"]).stdout.strip()  # fmt: skip
        assert int(count) > 10
        shop.psql("DROP DATABASE %s" % database)
