"""The build role for apps whose packages the default wheelhouse did not serve, role-level (no deploy):
tests/integration/playbooks/build.yml against this machine's Docker engine, with pip reading the real PyPI.

- The Python base images (the official ones, or the stand-ins scripts/setup.sh builds offline) offer a Dockerfile
  what the official images do: `pip install` into the system Python, `pip`, `pip3`, `python` on PATH, venv.
- A package published only as a source distribution (docopt 0.6.2: a pure-Python sdist, no wheel on PyPI): the
  role's wheelhouse step alone builds its wheel in a one-off container of the image's base (the Dockerfile's
  FROM), with no network, and the wheel installs offline in that image. A second run finds the stamp and does
  nothing; no container is left. Pinned with its hash (pip-compile --generate-hashes), it reaches the wheelhouse
  as its checked source, and the image's `pip install --require-hashes` builds it.
- A dependency whose environment marker holds for the image's Python and not for the controller's (redis 5.0.8's
  `async-timeout>=4.0.3; python_full_version < "3.11.3"`, Debian's 3.11.2 against the controller's 3.11.7): the
  image's own pip checks the wheelhouse and the role downloads what it lacks.
- Django 6.0 on the Python 3.13 base (python:3.13-slim-trixie, built offline by scripts/setup.sh): the whole
  role - the wheelhouse for cp313 (Django, and psycopg 3's binary wheel) and the image - and `python -m django
  --version` in it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import zipfile

import pytest
from packaging.version import Version

from tests.conftest import ROOT

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON_311, PYTHON_313 = "python:3.11-slim-bookworm", "python:3.13-slim-trixie"
# a Dockerfile as the official python image allows: pip install into the system Python, offline from the wheelhouse
SYSTEM_PIP = (
    "FROM {base}\n"
    "COPY requirements.txt /tmp/requirements.txt\n"
    "COPY wheels/ /wheels/\n"
    "RUN pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.txt{options}\n"
)
# the sha256 of docopt-0.6.2.tar.gz on PyPI (its only file)
DOCOPT_SDIST = "sha256:49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"
# num2words 0.5.14's wheel; it requires docopt>=0.6.2
NUM2WORDS_WHEEL = "sha256:1c8e5b00142fc2966fd8d685001e36c4a9911e070d1b120e1beb721fa1edb33d"


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

    def held(self) -> list:
        """Every file of the wheelhouse but its stamp."""
        return sorted(p.name for p in (self.source / "wheels").iterdir() if not p.name.startswith("."))

    def run(self, *command: str) -> subprocess.CompletedProcess:
        """``command`` in a one-off container of the component's image, with no network."""
        image = self.result()["images"]["backend"]
        return subprocess.run(["docker", "run", "--rm", "--network", "none", image, *command], capture_output=True, text=True, timeout=120)

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
    # no warning either (a first build once warned "Unable to find '<source>/./wheels' in expected paths"), but
    # ansible-core's own about deprecations
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if "WARNING]" in line and "deprecation" not in line.lower()]  # fmt: skip
    assert warnings == [] and "Unable to find" not in result.stdout + result.stderr, warnings


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


def a_wheel(folder, name: str, version: str) -> None:
    """A pure-Python wheel with one module (``VERSION`` in it), made here: no index needed to install it."""
    info = "%s-%s.dist-info" % (name, version)
    files = {
        "%s.py" % name: "VERSION = %r\n" % version,
        "%s/METADATA" % info: "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version),
        "%s/WHEEL" % info: "Wheel-Version: 1.0\nGenerator: smart-deploy-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files["%s/RECORD" % info] = "".join("%s,,\n" % member for member in [*files, "%s/RECORD" % info])
    with zipfile.ZipFile(folder / ("%s-%s-py3-none-any.whl" % (name, version)), "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)


@pytest.mark.parametrize("base", [PYTHON_311, PYTHON_313])
def test_the_python_base_images_let_a_dockerfile_pip_install_as_the_official_ones_do(tmp_path, base):
    """pip and pip3 on PATH, `pip install` into the system Python allowed (no EXTERNALLY-MANAGED marker), python and
    venv: what bakerydemo's and healthchecks' Dockerfiles count on (the stand-ins had no pip)."""
    (tmp_path / "wheels").mkdir()
    a_wheel(tmp_path / "wheels", "sdpipcheck", "1.0")
    (tmp_path / "Dockerfile").write_text(
        "FROM %s\n"
        "COPY wheels/ /wheels/\n"
        "RUN pip install --no-cache-dir --no-index --find-links /wheels sdpipcheck==1.0 \\\n"
        " && pip3 --version && python --version && python3 -m venv /tmp/venv && /tmp/venv/bin/pip --version\n"
        'CMD ["python", "-c", "import sdpipcheck, sys; print(sdpipcheck.VERSION, sys.version_info[:2])"]\n' % base
    )
    image = "sdw-pip-%s:test" % secrets.token_hex(3)
    try:
        built = subprocess.run(["docker", "build", "-q", "--label", "smart-deploy.app=sdw-pip", "-t", image, str(tmp_path)],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
        assert built.returncode == 0, built.stdout + built.stderr
        ran = subprocess.run(["docker", "run", "--rm", "--network", "none", image], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0 and ran.stdout.split()[0] == "1.0", ran.stdout + ran.stderr
        assert ran.stdout.strip().endswith(str(tuple(int(n) for n in base.split(":")[1].split("-")[0].split(".")))), ran.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_the_wheelhouse_is_completed_for_the_images_python_not_the_controllers(app_of):
    """pip download evaluates environment markers with the controller's Python (3.11.7 here, even with
    --python-version): redis 5.0.8's async-timeout (python_full_version < "3.11.3") is left out, and the image's
    Python (Debian's 3.11.2 in the stand-in) needs it. The image's own pip checks the wheelhouse; what it lacks is
    downloaded, and the image installs offline with its system pip."""
    app = app_of(SYSTEM_PIP.format(base=PYTHON_311, options=""), "redis==5.0.8\n", {})
    ok(app.build())
    [house] = app.result()["wheelhouses"]
    image_python = house["checked"]["python"].split()[0]
    assert house["checked"]["image"] == PYTHON_311 and "skipped" not in house["checked"], house["checked"]
    image_needs = Version(image_python) < Version("3.11.3")
    controller_needs = sys.version_info < (3, 11, 3)
    if image_needs and not controller_needs:  # this machine: the case the check is for
        assert house["checked"]["added"] == ["async-timeout>=4.0.3"], house["checked"]
    else:
        assert house["checked"]["added"] == [], house["checked"]
    assert any(name.startswith("async_timeout-") for name in app.wheels()) == (image_needs or controller_needs), app.wheels()
    imported = app.run("python", "-c", "import redis.asyncio, redis; print(redis.__version__)")
    assert imported.returncode == 0 and imported.stdout.strip() == "5.0.8", imported.stdout + imported.stderr
    assert app.leftovers() == [], "the one-off containers are removed"

    # nothing changed: the stamp matches, nothing is downloaded or checked
    ok(app.build("-e", "build_step=wheelhouse"))
    [again] = app.result()["wheelhouses"]
    assert again["downloaded"] is False and again["checked"] == {}


def test_a_hash_pinned_package_published_only_as_source_installs_with_require_hashes(app_of):
    """pip-compile --generate-hashes pins docopt to its sdist's hash: a wheel built from it has another hash, which
    `pip install --require-hashes` refuses. The sdist is checked against the pin, built (to prove it builds and to
    resolve through it), and reaches the wheelhouse as itself with its build requirements: the image's pip builds
    it, with the user's Dockerfile and requirements file as they are."""
    app = app_of(SYSTEM_PIP.format(base=PYTHON_311, options=" --require-hashes"), "docopt==0.6.2 \\\n    --hash=%s\n" % DOCOPT_SDIST, {})
    ok(app.build())
    [house] = app.result()["wheelhouses"]
    [built] = house["built"]
    assert built["requirement"] == "docopt==0.6.2" and built["hash_pinned"] is True
    assert built["shipped"][0] == "docopt-0.6.2.tar.gz" and {"docopt-0.6.2.tar.gz"} | set(built["shipped"]) <= set(app.held())
    assert any(name.startswith("setuptools-") for name in built["shipped"]), "its build requirements, for the image's pip"
    assert not any(name.startswith("docopt-") for name in app.wheels()), "no wheel the image's pip would prefer and refuse"
    imported = app.run("python", "-c", "import docopt; print(docopt.__version__)")
    assert imported.returncode == 0 and imported.stdout.strip() == "0.6.2", imported.stdout + imported.stderr
    assert app.leftovers() == []

    ok(app.build("-e", "build_step=wheelhouse"))
    [again] = app.result()["wheelhouses"]
    assert again["downloaded"] is False and "docopt-0.6.2.tar.gz" in app.held()

    # the requirements change: a package that depends on docopt comes (corpus N11, djangopackages' emojificate and
    # grapheme): filled again, the checked source already there is built again from it (not downloaded), so that
    # pip resolves num2words' docopt>=0.6.2 through the pinned version; left out, pip took another, unpinned one
    (app.source / "requirements.txt").write_text("docopt==0.6.2 --hash=%s\nnum2words==0.5.14 --hash=%s\n" % (DOCOPT_SDIST, NUM2WORDS_WHEEL))
    ok(app.build())
    [refilled] = app.result()["wheelhouses"]
    assert refilled["downloaded"] is True, refilled
    [rebuilt] = refilled["built"]
    assert (rebuilt["requirement"], rebuilt["sdist"], rebuilt["hash_pinned"]) == ("docopt==0.6.2", "docopt-0.6.2.tar.gz", True)
    assert rebuilt["reused"] is True, "built from the checked source the wheelhouse held"
    assert "num2words-0.5.14-py3-none-any.whl" in app.held() and not any(name.startswith("docopt-") for name in app.wheels())
    imported = app.run("python", "-c", "import docopt, num2words; print(docopt.__version__, num2words.num2words(2))")
    assert imported.returncode == 0 and imported.stdout.strip() == "0.6.2 two", imported.stdout + imported.stderr


def test_a_source_distribution_that_does_not_match_its_pinned_hash_is_not_built(app_of):
    app = app_of(SYSTEM_PIP.format(base=PYTHON_311, options=""), "docopt==0.6.2 --hash=sha256:%s\n" % ("0" * 64), {})
    result = app.build("-e", "build_step=wheelhouse")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "the source distribution of docopt==0.6.2 matches none of the hashes requirements.txt pins it to" in output, output[-4000:]
    assert app.leftovers() == [] and not any(name.startswith("docopt") for name in app.held())
