"""The build role's wheelhouse (roles/build/tasks/wheelhouse.yml) is downloaded again only when what it was
filled for changed: the requirements file, the pip arguments or the wheels in it. Its tasks file runs here
through a tiny playbook against localhost, with pip reading a local folder of wheels (--no-index --find-links,
offline). Whether pip ran is seen from outside: when the wheels it would need are gone from that folder, a
download fails the run, a skipped one does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

STAMP = ".smart-deploy-stamp"


def make_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel (metadata only), enough for pip download to resolve and copy it."""
    path = folder / ("%s-%s-py3-none-any.whl" % (name, version))
    info = "%s-%s.dist-info" % (name, version)
    files = {
        "%s/METADATA" % info: "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version),
        "%s/WHEEL" % info: "Wheel-Version: 1.0\nGenerator: smart-deploy-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files["%s/RECORD" % info] = "".join("%s,,\n" % member for member in [*files, "%s/RECORD" % info])
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


class Wheelhouse:
    """An app source with a requirements file, its wheelhouse (wheels/), and the local index pip reads."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.source = tmp_path / "app"
        self.source.mkdir()
        self.index = tmp_path / "index"
        self.index.mkdir()
        self.wheels = self.source / "wheels"
        self.pip_args = ["--no-index", "--find-links", str(self.index)]

    def requirements(self, text: str) -> None:
        (self.source / "requirements.txt").write_text(text)

    def stamp(self) -> str | None:
        path = self.wheels / STAMP
        return path.read_text() if path.exists() else None

    def held(self) -> list:
        return sorted(p.name for p in self.wheels.glob("*.whl")) if self.wheels.is_dir() else []

    def fill(self, *args: str) -> subprocess.CompletedProcess:
        """Run the build role's wheelhouse tasks, as the build role includes them."""
        play = self.tmp / "play.yml"
        play.write_text(
            json.dumps(
                [
                    {
                        "name": "Fill the wheelhouse",
                        "hosts": "localhost",
                        "gather_facts": False,
                        "tasks": [
                            {
                                "name": "The build role's wheelhouse tasks",
                                "ansible.builtin.include_tasks": str(ROOT / "roles" / "build" / "tasks" / "wheelhouse.yml"),
                                "vars": {
                                    "smart_deploy_app_source": str(self.source),
                                    "__build_wheelhouses": [{"requirements": "requirements.txt", "dest": "wheels"}],
                                    "build_wheelhouse_pip_args": self.pip_args,
                                },
                            }
                        ],
                    }
                ]
            )
        )
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", SMART_DEPLOY_LOG_DIR=str(self.tmp / "logs"))
        env.pop("GITHUB_STEP_SUMMARY", None)
        return subprocess.run(
            [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
             "-e", "ansible_python_interpreter=" + sys.executable, str(play), *args],
            cwd=self.tmp, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_matching_stamp_skips_the_download_and_a_change_downloads_again(tmp_path):
    house = Wheelhouse(tmp_path)
    tiny = make_wheel(house.index, "sdtiny", "1.0")
    make_wheel(house.index, "sdother", "2.0")
    house.requirements("sdtiny==1.0\n")

    first_fill = house.fill()  # first fill: downloaded and stamped
    ok(first_fill)
    assert house.held() == ["sdtiny-1.0-py3-none-any.whl"]
    # no Dockerfile named here: no image to check the wheelhouse in, which is said (and how to say which)
    assert "was not checked with the image's Python: no image known" in first_fill.stderr and "build_wheel_image" in first_fill.stderr
    first = house.stamp()
    assert first and len(first.strip()) == 64

    # same requirements, same arguments, same wheels: pip is not run (it would fail: the index no longer has sdtiny)
    tiny.unlink()
    ok(house.fill())
    assert house.stamp() == first and house.held() == ["sdtiny-1.0-py3-none-any.whl"]

    # the requirements changed: downloaded again, stamped anew (the check turned off: nothing said of it)
    house.requirements("sdother==2.0\n")
    unchecked = house.fill("-e", "build_wheelhouse_check=false")
    ok(unchecked)
    assert "not checked" not in unchecked.stdout + unchecked.stderr
    assert "sdother-2.0-py3-none-any.whl" in house.held()
    second = house.stamp()
    assert second != first

    # a wheel removed from the wheelhouse: downloaded again
    (house.wheels / "sdother-2.0-py3-none-any.whl").unlink()
    ok(house.fill())
    assert "sdother-2.0-py3-none-any.whl" in house.held()

    # other pip arguments: downloaded again and stamped anew (pip runs; a wheel the wheelhouse holds counts as found)
    third = house.stamp()
    (house.index / "sdother-2.0-py3-none-any.whl").unlink()
    house.pip_args = [*house.pip_args, "--no-deps"]
    ok(house.fill())
    assert house.stamp() != third

    # a requirement neither the index nor the wheelhouse has: pip runs and fails, naming it
    house.requirements("sdother==2.0\nsdmissing==1.0\n")
    result = house.fill()
    assert result.returncode != 0 and "sdmissing==1.0" in result.stdout + result.stderr, result.stdout[-4000:]


def test_a_changed_file_the_requirements_include_downloads_again(tmp_path):
    """pip reads -r and -c files (nested, relative to the file that names them): the stamp covers them."""
    house = Wheelhouse(tmp_path)
    for version in ("1.0", "2.0"):
        make_wheel(house.index, "sdtiny", version)
    make_wheel(house.index, "sdother", "1.0")
    (house.source / "requirements").mkdir()
    house.requirements("-r requirements/base.txt\n")
    (house.source / "requirements" / "base.txt").write_text("--constraint pins.txt\nsdtiny\nsdother==1.0\n")
    (house.source / "requirements" / "pins.txt").write_text("sdtiny==1.0\n")
    ok(house.fill())
    assert house.held() == ["sdother-1.0-py3-none-any.whl", "sdtiny-1.0-py3-none-any.whl"]
    first = house.stamp()

    ok(house.fill())
    assert house.stamp() == first, "nothing changed: nothing downloaded"

    # the pin two files down changes: pip must run again (it was skipped, and the image lacked sdtiny 2.0)
    (house.source / "requirements" / "pins.txt").write_text("sdtiny==2.0\n")
    ok(house.fill())
    assert "sdtiny-2.0-py3-none-any.whl" in house.held() and house.stamp() != first


def test_check_mode_downloads_nothing_and_writes_no_stamp(tmp_path):
    house = Wheelhouse(tmp_path)
    make_wheel(house.index, "sdtiny", "1.0")
    house.requirements("sdtiny==1.0\n")
    ok(house.fill("--check"))
    assert house.held() == [] and house.stamp() is None
    ok(house.fill())
    assert house.held() == ["sdtiny-1.0-py3-none-any.whl"] and house.stamp()
