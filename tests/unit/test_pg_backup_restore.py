"""pg_backup follows the dump file as pg_dump writes it, hashing every byte and feeding it to a verifying
pg_restore, and keeps nothing that failed; pg_restore copies the backup into the container for a parallel
restore, checking its sha256 on the way in, and falls back to one streamed job when the copy fails.

Real processes and the real Docker engine only: the following and verifying logic is shown with ordinary
commands standing for pg_dump and pg_restore, the copy with a real container. Backups and restores of real
databases are shown by the integration tests (test_scratch_lock_and_sql: the retention series, test_safety_net, test_least_privilege)."""

import hashlib
import json
import os
import stat
import subprocess
import uuid

import pytest

from tests.conftest import load_module

BASE_IMAGE = "smart-deploy/debian-base:bookworm"


def test_the_verifier_reads_the_very_bytes_written_and_hashed(tmp_path):
    """What the dump writes into the file is read back as it grows, hashed, and fed whole to the verifier."""
    module = load_module("pg_backup")
    seen = tmp_path / "seen"
    size, sha256, _wait = module.dump_to_file(["sh", "-c", "head -c 30000000 /dev/urandom"], str(tmp_path / "d"),
                                              ["sh", "-c", 'cat > "$0"', str(seen)])  # fmt: skip
    dump = (tmp_path / "d").read_bytes()
    assert size == len(dump) == 30000000 and seen.read_bytes() == dump
    assert sha256 == hashlib.sha256(dump).hexdigest()
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "dump, verify, message",
    [
        (
            "head -c 100000 /dev/zero",
            "cat >/dev/null; echo damaged archive >&2; exit 1",
            "failed verification, pg_restore exited 1: damaged archive",
        ),
        ("head -c 100000 /dev/zero; echo no such database >&2; exit 3", "cat >/dev/null", "pg_dump exited 3: no such database"),
        ("true", "cat >/dev/null", "empty"),
    ],
)
def test_a_dump_that_fails_or_fails_verification_is_an_error(tmp_path, dump, verify, message):
    module = load_module("pg_backup")
    with pytest.raises(module.BackupError, match=message):
        module.dump_to_file(["sh", "-c", dump], str(tmp_path / "d"), ["sh", "-c", verify])


def test_a_backup_that_fails_leaves_nothing(tmp_path, run_module):
    """The real Docker engine, asked for a database container that does not exist: a failure, and no file."""
    args = {"container": "sd-no-such-container-%s" % uuid.uuid4().hex[:8], "database": "shop", "user": "shop_owner",
            "dest": str(tmp_path / "backups"), "app": "shop", "release": "r2"}  # fmt: skip
    result = run_module("pg_backup", args)
    assert result["failed"] and "No such container" in result["msg"], result
    assert not (tmp_path / "backups").exists() or os.listdir(tmp_path / "backups") == []


def test_a_verifier_that_stops_reading_early_does_not_hang_the_dump(tmp_path):
    module = load_module("pg_backup")
    with pytest.raises(module.BackupError, match="failed verification, pg_restore exited 7"):
        module.dump_to_file(["sh", "-c", "head -c 50000000 /dev/zero"], str(tmp_path / "d"), ["sh", "-c", "head -c 10 >/dev/null; exit 7"])


def test_the_listing_header_gives_the_versions():
    module = load_module("pg_backup")
    listing = ";\n;     dbname: shop\n;     Dumped from database version: 15.9\n;     Dumped by pg_dump version: 15.10\n"
    assert module.listed(listing, "Dumped from database version") == "15.9"
    assert module.listed(listing, "Dumped by pg_dump version") == "15.10"
    assert module.listed(listing, "Compression") is None


def a_backup(tmp_path, damaged=False):
    dump = tmp_path / "shop-r1-20260101T000000Z.dump"
    dump.write_bytes(b"PGDMP" + os.urandom(3 << 20))
    digest = hashlib.sha256(dump.read_bytes() + (b"!" if damaged else b"")).hexdigest()
    dump.with_suffix(".json").write_text(json.dumps({"verified": True, "sha256": digest, "migration_state": {}}))
    return dump


@pytest.fixture
def container():
    """A real container to copy into (the base image every test run has)."""
    name = "sd-copy-test-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, BASE_IMAGE, "sleep", "120"], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_a_parallel_restore_copies_the_backup_in_checks_it_and_removes_the_copy(tmp_path, container):
    module = load_module("pg_restore")
    dump = a_backup(tmp_path)
    target = "/tmp/smart-deploy-restore-test.dump"
    digest = module.copy_into("docker", container, str(dump), target)
    assert digest == hashlib.sha256(dump.read_bytes()).hexdigest()
    inside = subprocess.run(["docker", "exec", container, "sh", "-c", 'stat -c %a "$0" && sha256sum "$0"', target],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert inside[0] == "600" and inside[1] == digest
    module.remove_from("docker", container, target)
    assert subprocess.run(["docker", "exec", container, "test", "-e", target], check=False).returncode == 1


def test_a_damaged_backup_is_refused_before_any_database_is_created(tmp_path, container, run_module):
    dump = a_backup(tmp_path, damaged=True)
    args = {"backup": str(dump), "container": container, "database": "shop", "user": "shop"}
    result = run_module("pg_restore", args)
    assert result["failed"] and "is damaged" in result["msg"], result
    left = subprocess.run(["docker", "exec", container, "sh", "-c", "ls /tmp"], capture_output=True, text=True, check=True).stdout
    assert "smart-deploy-restore" not in left, "the copy in the container was removed"


def test_a_copy_that_fails_falls_back_to_one_job_with_a_warning(tmp_path, run_module):
    """No container to copy into (as with no room for the copy): one job, said in a warning; the backup's own
    checksum is still checked (here it is damaged, which stops the restore before any database)."""
    dump = a_backup(tmp_path, damaged=True)
    args = {"backup": str(dump), "container": "sd-no-such-container-%s" % uuid.uuid4().hex[:8], "database": "shop", "user": "shop"}
    result = run_module("pg_restore", args)
    assert result["failed"] and "is damaged" in result["msg"], result
    warnings = json.dumps(result.get("warnings"))
    assert "one job instead of 2" in warnings and "No such container" in warnings
