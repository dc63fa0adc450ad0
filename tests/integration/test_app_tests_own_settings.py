"""django_test runs an app's own test suite against smart-deploy's throwaway database even when the app's
settings read database variables of their own (examples/notes reads NOTES_DB_*, never POSTGRES_* nor
DATABASE_URL): Django's test command runs through the driver, which overrides settings.DATABASES from
SMART_DEPLOY_DB_*. The same suite run as the app's own `manage.py test` cannot reach any database.
Real Docker, real PostgreSQL, the notes image built from examples/notes (its wheels fetched with pip)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.conftest import ROOT, load_module
from tests.integration.conftest import run

DB_IMAGE = "postgres:15-bookworm"
NOTES = ROOT / "examples" / "notes"
WHEELS_CACHE = Path("/tmp/sd-notes-wheels")
NO_NETWORK = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution", "Network is unreachable",
              "ConnectTimeoutError", "ReadTimeoutError", "Could not fetch URL", "No route to host")  # fmt: skip


def wheels() -> Path:
    """The notes image's wheelhouse (pip download, kept in WHEELS_CACHE for the next runs)."""
    pip = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
                          "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "-d", str(WHEELS_CACHE),
                          "-r", str(NOTES / "requirements.txt")], capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if any(sign in output for sign in NO_NETWORK):
            pytest.skip("pip cannot reach the package index for the notes image's wheels: %s" % output.strip()[-300:])
        pytest.fail("pip could not download the notes image's wheels: %s" % output[-2000:])
    return WHEELS_CACHE


@pytest.fixture(scope="module")
def app():
    name = "sdt" + secrets.token_hex(3)
    yield name
    label = ["--filter", "label=smart-deploy.app=%s" % name]
    containers = run(["docker", "ps", "-aq", *label]).stdout.split()
    if containers:
        run(["docker", "rm", "-f", "-v", *containers])
    for network in run(["docker", "network", "ls", "-q", *label]).stdout.split():
        run(["docker", "network", "rm", network])


@pytest.fixture(scope="module")
def notes_image(app, tmp_path_factory):
    context = tmp_path_factory.mktemp("notes") / "notes"
    shutil.copytree(NOTES, context, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    shutil.copytree(wheels(), context / "wheels")
    image = "%s-notes:test" % app
    built = run(["docker", "build", "-q", "-t", image, str(context)], timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    yield image
    run(["docker", "rmi", "-f", image])


def django_test(app, image, capsys, **args):
    module = load_module("django_test")
    # the app's own database variables point nowhere: only smart-deploy's override can reach a database
    env = {"NOTES_DB_HOST": "127.0.0.1", "NOTES_DB_PORT": "9", "NOTES_DB_NAME": "notes", "NOTES_DB_USER": "notes",
           "NOTES_SECRET_KEY": "not-secret"}  # fmt: skip
    with patch_module_args(dict({"image": image, "app_name": app, "db_image": DB_IMAGE, "env": env, "timeout": 600}, **args)):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_the_apps_tests_run_on_the_throwaway_database_whatever_its_settings_read(app, notes_image, capsys):
    result = django_test(app, notes_image, capsys)  # the default command: python manage.py test --noinput
    assert result["passed"], result["output"]
    assert result["tests"] == 10 and result["counts"]["failures"] == 0 and result["counts"]["errors"] == 0, result
    assert "Ran 10 tests" in result["output"] and "SMART_DEPLOY_RESULT" not in result["output"]
    assert result["scratch"]["left"] == {"containers": [], "networks": []}


def test_the_apps_own_manage_py_test_cannot_reach_it(app, notes_image, capsys):
    """The control: the same suite through the app's manage.py (a command the driver does not run) uses the
    app's settings, whose NOTES_DB_HOST and NOTES_DB_PORT lead nowhere."""
    result = django_test(app, notes_image, capsys, command=["sh", "-c", "python manage.py test --noinput"])
    assert not result["passed"] and result["failed"]
    assert '"127.0.0.1", port 9 failed: Connection refused' in result["output"], result["output"]
    assert result["scratch"]["left"] == {"containers": [], "networks": []}
