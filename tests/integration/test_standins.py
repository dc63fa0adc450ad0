"""scripts/setup.sh builds a stand-in for a base image again when the folder it was built from changed
(bootstrap/images/<folder>: its label smart-deploy.standin holds that folder's sha256), or when it was built before
the label existed (sits on smart-deploy/debian-base); an image pulled under the name is kept. The script's own
functions, read from it, decide here on tiny images of their own (a Dockerfile that adds a label to the Debian
base), built in a second or two each."""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest

from tests.conftest import ROOT

BASE = "smart-deploy/debian-base:bookworm"


def setup_functions(*names: str) -> str:
    """The text of these functions of scripts/setup.sh."""
    text = (ROOT / "scripts" / "setup.sh").read_text()
    found = []
    for name in names:
        match = re.search(r"^%s\(\) \{\n.*?^\}\n" % re.escape(name), text, re.M | re.S)
        assert match, name
        found.append(match.group(0))
    return "".join(found)


@pytest.fixture
def standin(tmp_path):
    """Run ensure_standin on a folder of tmp_path/bootstrap/images, building an image of a name of its own."""
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
        pytest.skip("%s is only made where a stand-in was needed (no registry)" % BASE)
    folder = tmp_path / "bootstrap" / "images" / "tiny"
    folder.mkdir(parents=True)
    name = "sdw-standin-%s:test" % secrets.token_hex(3)
    script = tmp_path / "ensure.sh"
    script.write_text(
        "set -euo pipefail\nROOT=%s\n" % tmp_path
        + 'info() { printf "%s\\n" "$*"; }\ndie() { printf "ERROR: %s\\n" "$*" >&2; exit 1; }\nensure_debian_base() { :; }\n'
        + setup_functions("standin_hash", "standin_is_stale", "ensure_standin")
        + 'ensure_standin "$1" tiny bookworm\n'
    )

    made = set()  # every image that had the name (those replaced are left untagged): all removed after

    def seen() -> None:
        found = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True)
        made.update(found.stdout.split())

    def ensure(dockerfile: str) -> str:
        seen()
        (folder / "Dockerfile").write_text(dockerfile)
        done = subprocess.run(["bash", str(script), name], capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin", "SMART_DEPLOY_TRY_PULL": "0"})  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        seen()
        return done.stdout

    ensure.name = name
    yield ensure
    subprocess.run(["docker", "rmi", "-f", name, *made], capture_output=True)


def test_a_stand_in_is_built_again_when_its_folder_changed_and_only_then(standin):
    first = "ARG BASE\nFROM ${BASE}\nLABEL org.example.step=one\n"
    assert "building a stand-in" in standin(first)
    assert standin(first).strip().endswith("present"), "the same folder: nothing built"
    said = standin(first + "ENV STEP=two\n")
    assert "built from an older bootstrap/images/tiny: building it again" in said and "building a stand-in" in said
    env = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.Env}}", standin.name], capture_output=True, text=True)
    assert "STEP=two" in env.stdout


def test_a_stand_in_made_before_the_label_is_built_again_and_a_pulled_image_is_kept(standin):
    # as the stand-ins were built before: on the Debian base, no label
    subprocess.run(["docker", "build", "-q", "--build-arg", "BASE=" + BASE, "-t", standin.name, "-"],
                   input="ARG BASE\nFROM ${BASE}\nLABEL org.example.step=old\n", capture_output=True, text=True, check=True)  # fmt: skip
    assert "building it again" in standin("ARG BASE\nFROM ${BASE}\nLABEL org.example.step=new\n")
    # an image of that name that is not on the Debian base (pulled, or loaded from a file): kept as it is
    subprocess.run(["docker", "build", "-q", "-t", standin.name, "-"], input="FROM scratch\nLABEL org.example.pulled=yes\n",
                   capture_output=True, text=True, check=True)  # fmt: skip
    assert standin("ARG BASE\nFROM ${BASE}\nLABEL org.example.step=newer\n").strip().endswith("present")
