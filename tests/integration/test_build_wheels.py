"""The build role for apps whose packages the default wheelhouse did not serve, role-level (no deploy):
tests/integration/playbooks/build.yml against this machine's Docker engine, with pip reading the real PyPI.

- A package published only as a source distribution (docopt 0.6.2: a pure-Python sdist, no wheel on PyPI): the
  role's wheelhouse step alone builds its wheel in a one-off container of the image's base (the Dockerfile's
  FROM), with no network, and the wheel installs offline in that image. A second run finds the stamp and does
  nothing; no container is left.
- Django 6.0 on the Python 3.13 base (python:3.13-slim-trixie, built offline by scripts/setup.sh): the whole
  role - the wheelhouse for cp313 (Django, and psycopg 3's binary wheel) and the image - and `python -m django
  --version` in it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest

from tests.conftest import ROOT

VENV_BIN = ROOT / ".venv" / "bin"


class App:
    """A git checkout holding one Django component (context '.'), built by the build role under a name of its own."""

    def __init__(self, workdir, dockerfile: str, requirements: str, component: dict):
        self.workdir = workdir
        self.name = "sdw-" + secrets.token_hex(3)
        self.source = workdir / "app"
        self.source.mkdir()
        (self.source / "Dockerfile").write_text(dockerfile)
        (self.source / "requirements.txt").write_text(requirements)
        (self.source / ".gitignore").write_text("wheels/\n")
        for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "app"]):
            subprocess.run(["git", *args], cwd=self.source, check=True, capture_output=True)
        self.report = workdir / "build.json"
        self.vars = workdir / "vars.json"
        self.vars.write_text(json.dumps({
            "smart_deploy_app_name": self.name, "smart_deploy_app_source": str(self.source),
            "smart_deploy_components": {"backend": dict(context=".", container="web", port=8000, health_path="/", **component)},
            "build_report": str(self.report), "ansible_python_interpreter": str(VENV_BIN / "python"),
            # the roles' argument specs want them; nothing here connects to a database
            "smart_deploy_db_password": secrets.token_hex(8), "smart_deploy_django_secret_key": secrets.token_hex(16),
        }))  # fmt: skip

    def build(self, *args: str) -> subprocess.CompletedProcess:
        logs = str(self.workdir / "logs")
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", SMART_DEPLOY_LOG_DIR=logs)
        env.pop("GITHUB_STEP_SUMMARY", None)
        return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", "@%s" % self.vars,
                               "tests/integration/playbooks/build.yml", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip

    def result(self) -> dict:
        return json.loads(self.report.read_text())

    def wheels(self) -> list:
        return sorted(p.name for p in (self.source / "wheels").glob("*.whl"))

    def leftovers(self) -> list:
        found = subprocess.run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.app=%s" % self.name], capture_output=True, text=True)
        return found.stdout.split()

    def remove(self) -> None:
        containers = self.leftovers()
        if containers:
            subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)
        images = subprocess.run(["docker", "images", "-q", "--filter", "label=smart-deploy.app=%s" % self.name],
                                capture_output=True, text=True).stdout.split()  # fmt: skip
        if images:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


@pytest.fixture
def app_of(tmp_path):
    made = []

    def make(*args, **kwargs) -> App:
        made.append(App(tmp_path, *args, **kwargs))
        return made[-1]

    yield make
    for app in made:
        app.remove()


def in_container(image: str, wheels, script: str) -> subprocess.CompletedProcess:
    """``script`` in a one-off container of ``image`` with no network and the wheelhouse at /wheels."""
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/wheels:ro" % wheels, image, "sh", "-c", script],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_a_package_published_only_as_source_is_built_into_the_wheelhouse(app_of):
    app = app_of("FROM python:3.11-slim-bookworm\n", "docopt==0.6.2\n", {})
    result = app.build("-e", "build_step=wheelhouse")
    ok(result)
    assert app.wheels() == ["docopt-0.6.2-py2.py3-none-any.whl"]
    [house] = app.result()["wheelhouses"]
    assert house["downloaded"] is True
    [built] = house["built"]
    assert built["requirement"] == "docopt==0.6.2" and built["sdist"] == "docopt-0.6.2.tar.gz"
    assert built["image"] == "python:3.11-slim-bookworm", "built in the image the Dockerfile starts FROM"
    assert built["build_requires"] == ["setuptools>=40.8.0", "wheel"], "a setup.py: setuptools and wheel, downloaded as wheels"
    assert app.leftovers() == [], "the one-off build container is removed"
    # the wheel installs with no index and no network in the image's base, and works
    installed = in_container("python:3.11-slim-bookworm", app.source / "wheels",
                             "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index --find-links /wheels -r /dev/stdin <<EOF\n"
                             "docopt==0.6.2\nEOF\n/tmp/v/bin/python -c 'import docopt; print(docopt.__version__)'")  # fmt: skip
    assert installed.returncode == 0 and installed.stdout.strip().endswith("0.6.2"), installed.stdout + installed.stderr

    # nothing changed: the stamp matches, nothing is downloaded or built
    ok(app.build("-e", "build_step=wheelhouse"))
    [again] = app.result()["wheelhouses"]
    assert again["downloaded"] is False and again["built"] == []
    assert app.wheels() == ["docopt-0.6.2-py2.py3-none-any.whl"]


def test_a_requirement_with_neither_a_wheel_nor_a_source_for_the_image_fails_naming_it(app_of):
    """Django 6 needs Python 3.12+: for the default Python 3.11 there is no wheel, and its source is not for 3.11 either."""
    app = app_of("FROM python:3.11-slim-bookworm\n", "Django==6.0.*\n", {})
    result = app.build("-e", "build_step=wheelhouse")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Django==6.0.* has no wheel for the image (Python 3.11" in output and "no source distribution" in output, output[-4000:]
    assert "python_version" in output


def test_django_6_builds_on_the_python_313_base_through_the_build_role(app_of):
    dockerfile = (
        "FROM python:3.13-slim-trixie\n"
        "COPY requirements.txt /tmp/requirements.txt\n"
        "COPY wheels/ /wheels/\n"
        "RUN python3 -m venv /opt/venv \\\n"
        " && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.txt\n"
        "ENV PATH=/opt/venv/bin:$PATH\n"
    )
    app = app_of(dockerfile, "Django>=6.0,<6.1\npsycopg[binary]>=3.2\n", {"python_version": "3.13"})
    ok(app.build())
    report = app.result()
    assert "--python-version=3.13" in report["pip_args"] and "--platform=manylinux_2_28_x86_64" in report["pip_args"]
    assert any(name.startswith("psycopg_binary-") and "-cp313-" in name for name in app.wheels()), app.wheels()
    assert report["built"] == ["backend"]
    image = report["images"]["backend"]
    version = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python", "-m", "django", "--version"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert version.returncode == 0 and version.stdout.startswith("6.0."), version.stdout + version.stderr
    python = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python", "-c",
                             "import sys, psycopg; print(sys.version_info[:2], psycopg.pq.__impl__)"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert python.stdout.strip() == "(3, 13) binary", python.stdout + python.stderr
