"""backup_rotate, run as Ansible runs it, on a real folder."""

import json
import os

APP = "shop"


def make_backup(folder, day, verified=True, app=APP, release=None, metadata=True):
    release = release or "rel%02d" % day
    name = "%s-%s-202611%02dT120000Z" % (app, release, day)
    (folder / (name + ".dump")).write_bytes(b"PGDMP" + bytes([day]))
    if metadata:
        (folder / (name + ".json")).write_text(json.dumps({"app": app, "verified": verified, "sha256": "ab" * 32}))
    return name + ".dump"


def test_removes_backups_beyond_keep_with_their_metadata(tmp_path, run_module):
    created = [make_backup(tmp_path, d) for d in range(1, 13)]
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 10})
    assert result["changed"] is True
    assert sorted(result["removed"]) == sorted(created[:2])
    for name in created[:2]:
        assert not (tmp_path / name).exists()
        assert not (tmp_path / name.replace(".dump", ".json")).exists()
    assert len(list(tmp_path.glob("*.dump"))) == 10


def test_fewer_than_keep_changes_nothing(tmp_path, run_module):
    for day in range(1, 4):
        make_backup(tmp_path, day)
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP})
    assert result["changed"] is False
    assert result["removed"] == []
    assert len(result["kept"]) == 3


def test_check_mode_reports_but_removes_nothing(tmp_path, run_module):
    for day in range(1, 6):
        make_backup(tmp_path, day)
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 2}, check_mode=True)
    assert result["changed"] is True
    assert len(result["removed"]) == 3
    assert len(list(tmp_path.glob("*.dump"))) == 5


def test_foreign_files_are_never_touched(tmp_path, run_module):
    for day in range(1, 6):
        make_backup(tmp_path, day)
    foreign = [
        make_backup(tmp_path, 1, app="shop-v2"),  # another app whose name starts like ours
        make_backup(tmp_path, 1, release="manual", metadata=False),  # a dump nobody vouches for
    ]
    (tmp_path / "README.txt").write_text("hands off")
    (tmp_path / ".shop-rel09-20261109T120000Z.dump.partial").write_bytes(b"half")
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 1})
    assert len(result["removed"]) == 4
    for name in foreign + ["README.txt", ".shop-rel09-20261109T120000Z.dump.partial"]:
        assert (tmp_path / name).exists(), name
        assert name in result["ignored"]


def test_pinned_paths_are_kept(tmp_path, run_module):
    oldest = make_backup(tmp_path, 1)
    for day in range(2, 6):
        make_backup(tmp_path, day)
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 2, "pinned": [str(tmp_path / oldest)]})
    assert oldest in result["kept"]
    assert (tmp_path / oldest).exists()
    assert len(result["removed"]) == 2


def test_unverified_backups_are_not_counted(tmp_path, run_module):
    for day in range(1, 4):
        make_backup(tmp_path, day)
    for day in range(4, 7):
        make_backup(tmp_path, day, verified=False)
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 3})
    assert result["removed"] == []
    assert len(result["counted"]) == 3


def test_keep_zero_is_refused_before_anything_changes(tmp_path, run_module):
    for day in range(1, 4):
        make_backup(tmp_path, day)
    result = run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 0})
    assert result["failed"] is True
    assert "keep must be at least 1" in result["msg"]
    assert len(list(tmp_path.glob("*.dump"))) == 3


def test_missing_folder_is_a_clear_error(tmp_path, run_module):
    result = run_module("backup_rotate", {"path": str(tmp_path / "nope"), "app": APP})
    assert result["failed"] is True
    assert "does not exist" in result["msg"]


def test_second_run_is_idempotent(tmp_path, run_module):
    for day in range(1, 8):
        make_backup(tmp_path, day)
    assert run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 3})["changed"] is True
    assert run_module("backup_rotate", {"path": str(tmp_path), "app": APP, "keep": 3})["changed"] is False
    assert os.path.exists(tmp_path / "shop-rel07-20261107T120000Z.dump")
