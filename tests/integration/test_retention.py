"""A long series of deploys against the backup retention."""

import json
import subprocess

from tests.integration.conftest import assert_ok, run


def test_twelve_deploys_keep_exactly_the_ten_newest_verified_backups(shop):
    for number in range(1, 13):
        # a new release id each time, same code: everything runs (no change detection), nothing needs rebuilding
        assert_ok(shop.deploy("-e", "smart_deploy_release=series-%02d" % number, "-e", "db_backup_always=true",
                              "-e", "change_detection_enabled=false", "-e", '{"build_only": []}'))  # fmt: skip
    backups = sorted((shop.state_dir / "backups").glob("*.dump"), key=lambda p: p.name.rsplit("-", 1)[1])
    assert len(backups) == 10
    releases_kept = [json.loads(b.with_suffix(".json").read_text())["release"] for b in backups]
    assert releases_kept == ["series-%02d" % n for n in range(3, 13)], "the newest ten"
    user = shop.name.replace("-", "_")
    for number, dump in enumerate(backups):
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
