"""Backup retention with real backups taken by the db_backup role (the role a deploy runs): failed deploys
never push good backups out, and exactly the ten newest verified good backups stay, each restorable.
(Before the fix, the deploy's rotation counted failed attempts: after 11 of them the older good backups
were gone.)"""

import json
import subprocess

from tests.integration.conftest import assert_ok, run


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
    releases = [release for release, _dump in kept_backups(shop)]
    good = [shop.live, "good-01", "good-02", "good-03", "good-04"]
    assert [r for r in releases if not r.startswith("bad-")] == good, "every good backup from before the failures is still there"
    assert len([r for r in releases if r.startswith("bad-")]) == 11, "fewer than ten good backups: nothing is removed"

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
