"""Retention rules of backup_rotate, on plain data."""

import pytest
from ansible.module_utils.smart_deploy.retention import Backup, backup_from_files, plan_retention


def backup(day: int, verified: bool = True, release: str | None = None) -> Backup:
    stamp = "202611%02dT120000Z" % day
    release = release or "rel%02d" % day
    return Backup(name="shop-%s-%s.dump" % (release, stamp), release=release, stamp=stamp, verified=verified)


def names(backups):
    return sorted(b.name for b in backups)


def test_keeps_everything_when_fewer_than_keep():
    backups = [backup(d) for d in range(1, 6)]
    plan = plan_retention(backups, keep=10)
    assert plan.remove == []
    assert names(plan.keep) == names(backups)


def test_removes_the_oldest_beyond_keep():
    backups = [backup(d) for d in range(1, 13)]
    plan = plan_retention(backups, keep=10)
    assert names(plan.remove) == names([backup(1), backup(2)])
    assert [b.name for b in plan.keep] == [backup(d).name for d in range(12, 2, -1)]


def test_unverified_backups_do_not_count():
    backups = [backup(d) for d in range(1, 4)] + [backup(d, verified=False) for d in range(4, 8)]
    plan = plan_retention(backups, keep=3)
    # three verified ones only: the window reaches day 1, nothing is older, nothing goes
    assert plan.remove == []
    assert plan.counted == [backup(3).name, backup(2).name, backup(1).name]


def test_unverified_backups_older_than_the_window_go():
    backups = [backup(1, verified=False)] + [backup(d) for d in range(2, 5)]
    plan = plan_retention(backups, keep=3)
    assert names(plan.remove) == [backup(1, verified=False).name]
    assert "unverified" in plan.reasons[backup(1, verified=False).name]


def test_unverified_backup_newer_than_the_window_stays():
    backups = [backup(d) for d in range(1, 5)] + [backup(5, verified=False)]
    plan = plan_retention(backups, keep=2)
    assert names(plan.remove) == names([backup(1), backup(2)])
    assert backup(5, verified=False) in plan.keep


def test_pinned_backup_stays_whatever_its_age():
    backups = [backup(d) for d in range(1, 6)]
    plan = plan_retention(backups, keep=2, pinned=[backup(1).name])
    assert names(plan.remove) == names([backup(2), backup(3)])
    assert plan.reasons[backup(1).name] == "pinned"


def test_newest_backup_stays_even_unverified():
    backups = [backup(d) for d in range(1, 4)] + [backup(9, verified=False)]
    plan = plan_retention(backups, keep=1)
    assert backup(9, verified=False) in plan.keep
    assert backup(3) in plan.keep
    assert names(plan.remove) == names([backup(1), backup(2)])


def test_failed_releases_do_not_push_good_backups_out():
    good = [backup(d) for d in range(1, 4)]
    failed = [backup(d, release="bad%02d" % d) for d in range(4, 9)]
    plan = plan_retention(good + failed, keep=3, failed_releases=[b.release for b in failed])
    assert plan.remove == []
    assert plan.counted == [backup(3).name, backup(2).name, backup(1).name]


def test_keep_below_one_is_refused():
    with pytest.raises(ValueError):
        plan_retention([backup(1)], keep=0)


@pytest.mark.parametrize(
    "name, metadata, owned",
    [
        ("shop-abc123-20261101T120000Z.dump", {"app": "shop", "verified": True, "sha256": "x"}, True),
        ("shop-abc123-20261101T120000Z.dump", None, False),  # no metadata: not ours
        ("shop-abc123-20261101T120000Z.dump", {"app": "shop-v2"}, False),  # another app's metadata
        ("shop-v2-abc123-20261101T120000Z.dump", {"app": "shop-v2"}, False),  # another app's name
        ("shop-abc123.dump", {"app": "shop"}, False),  # no timestamp
        ("notes.txt", {"app": "shop"}, False),
    ],
)
def test_only_own_backups_are_recognised(name, metadata, owned):
    assert (backup_from_files("shop", name, metadata) is not None) is owned


def test_verified_needs_a_checksum():
    assert backup_from_files("shop", "shop-a-20261101T120000Z.dump", {"app": "shop", "verified": True}).verified is False
