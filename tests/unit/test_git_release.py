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


@pytest.mark.parametrize(
    "sha, expected",
    [
        ("3f2a1b9c0d1e" + "0" * 28, "3f2a1b9c0d1e"),  # letters: as it is
        ("851263105671" + "a" * 28, "851263105671a"),  # digits only: an int in YAML, one more character
        ("0123456701234" + "f" * 27, "0123456701234f"),  # octal-looking digits, one more digit, still a number
        ("1234567e1234" + "c" * 28, "1234567e1234"),  # a string for PyYAML (a float needs a dot in YAML 1.1)
        ("0b0101010101" + "d" * 28, "0b0101010101d"),  # a binary integer in YAML 1.1
    ],
)
def test_a_release_id_never_reads_as_a_number(sha, expected):
    import yaml

    from library.git_release import sha_release_id

    assert sha_release_id(sha, 12) == expected
    assert isinstance(yaml.safe_load(expected), str)


def test_a_commit_whose_sha_starts_with_twelve_digits_gets_a_longer_id(repo, run_module):
    """A real commit whose sha starts with 12 digits (its date searched for, as git hashes it): the id reads as
    text in YAML, a prefix of the sha still (git finds the commit by it)."""
    import hashlib

    tree = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD^{tree}"], check=True, capture_output=True, text=True).stdout.strip()
    for stamp in range(1_700_000_000, 1_700_000_000 + 200_000):
        body = "tree %s\nauthor t <t@e> %d +0000\ncommitter t <t@e> %d +0000\n\nsecond\n" % (tree, stamp, stamp)
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body.encode()).hexdigest()
        if sha[:12].isdigit():
            break
    else:
        pytest.fail("no date in the range gives a sha of 12 leading digits")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "GIT_AUTHOR_DATE": "%d +0000" % stamp, "GIT_COMMITTER_DATE": "%d +0000" % stamp, "PATH": "/usr/bin:/bin"}  # fmt: skip
    made = subprocess.run(["git", "-C", str(repo), "commit-tree", tree, "-m", "second"], env=env, check=True, capture_output=True)
    made = made.stdout.decode().strip()
    assert made == sha
    git(repo, "reset", "-q", "--hard", made)
    result = run_module("git_release", {"path": str(repo)})
    import yaml

    assert result["release_id"] != sha[:12] and sha.startswith(result["release_id"]) and len(result["release_id"]) > 12
    assert isinstance(yaml.safe_load(result["release_id"]), str)
