"""git_release on real git repositories made by the tests."""

import subprocess

import pytest


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "app"
    (repo / "backend").mkdir(parents=True)
    (repo / "backend" / "models.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("wheels/\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "first")
    return repo


def head(repo):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_clean_checkout_is_named_after_the_sha(repo, run_module):
    result = run_module("git_release", {"path": str(repo)})
    assert result["release_id"] == head(repo)[:12]
    assert result["dirty"] is False and result["subject"] == "first"


def test_ignored_files_do_not_make_it_dirty(repo, run_module):
    (repo / "wheels").mkdir()
    (repo / "wheels" / "x.whl").write_bytes(b"x")
    assert run_module("git_release", {"path": str(repo)})["dirty"] is False


def test_uncommitted_change_gets_a_stable_content_suffix(repo, run_module):
    (repo / "backend" / "models.py").write_text("x = 2\n")
    first = run_module("git_release", {"path": str(repo)})
    second = run_module("git_release", {"path": str(repo)})
    assert first["dirty"] is True
    assert first["release_id"].startswith(head(repo)[:12] + "-dirty.")
    assert first["release_id"] == second["release_id"]
    (repo / "backend" / "models.py").write_text("x = 3\n")
    assert run_module("git_release", {"path": str(repo)})["release_id"] != first["release_id"]
    # the user's index is untouched
    status = subprocess.run(["git", "-C", str(repo), "diff", "--cached", "--name-only"], capture_output=True, text=True)
    assert status.stdout == ""


def test_explicit_release_is_used_when_valid(repo, run_module):
    assert run_module("git_release", {"path": str(repo), "release": "v1.2.3"})["release_id"] == "v1.2.3"


@pytest.mark.parametrize("bad", ["../etc", "a b", "-rm", "x" * 65, "rel;ls"])
def test_bad_release_ids_are_refused(repo, run_module, bad):
    result = run_module("git_release", {"path": str(repo), "release": bad})
    assert result["failed"] is True and "not a valid release id" in result["msg"]


def test_a_folder_outside_git_is_a_clear_error(tmp_path, run_module):
    result = run_module("git_release", {"path": str(tmp_path)})
    assert result["failed"] is True and "not in a git checkout" in result["msg"]


def test_a_repository_without_commits_is_a_clear_error(tmp_path, run_module):
    git(tmp_path, "init", "-q")
    result = run_module("git_release", {"path": str(tmp_path)})
    assert result["failed"] is True and "no commit yet" in result["msg"]
