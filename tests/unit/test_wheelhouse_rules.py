"""The wheelhouse's rules on plain data (module_utils/smart_deploy/wheelhouse.py): which files pip reads, the stamp,
what pip's failure names, and what a source distribution needs to be built."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest
from ansible.module_utils.smart_deploy.wheelhouse import (
    LEGACY_BUILD_REQUIREMENTS,
    build_requirements,
    canonical_name,
    check_verdict,
    dockerfile_base_image,
    hash_pins,
    image_lacks_problem,
    image_python,
    image_refuses_problem,
    includes,
    index_args,
    logical_lines,
    missing_requirement,
    pinned_line,
    pyproject_of,
    python_version,
    requirement_files,
    rewritten_requirements,
    sources_of,
    stamp,
    versions_seen,
    wheels_of,
    without_marker,
)
from ansible.plugins.filter.core import to_json


def test_pip_reads_lines_with_continuations_and_without_comments():
    text = "Django==6.0.7  # the web\n# a comment\n\ngunicorn\\\n==23.0\n-r base.txt#not a comment\n"
    assert logical_lines(text) == ["Django==6.0.7", "gunicorn==23.0", "-r base.txt#not a comment"]


def test_every_way_of_including_a_file_is_seen():
    text = "-r base.txt\n-rdev.txt\n--requirement extra.txt\n--requirement=more.txt\n-c pins.txt\n--constraint=c2.txt\n-cc3.txt\nDjango\n"
    assert includes(text) == [("requirement", "base.txt"), ("requirement", "dev.txt"), ("requirement", "extra.txt"),
                              ("requirement", "more.txt"), ("constraint", "pins.txt"), ("constraint", "c2.txt"),
                              ("constraint", "c3.txt")]  # fmt: skip


def test_included_files_are_found_relative_to_the_file_that_names_them(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements.txt").write_text("-r requirements/base.txt\n-r https://example.invalid/remote.txt\n")
    (tmp_path / "requirements" / "base.txt").write_text("-c pins.txt\n-r ../requirements.txt\nDjango\n")  # a cycle: read once
    (tmp_path / "requirements" / "pins.txt").write_text("Django==6.0.7\n-r missing.txt\n")
    files = requirement_files(str(tmp_path / "requirements.txt"))
    assert [(path.replace(str(tmp_path), "."), text) for path, text in files] == [
        ("./requirements.txt", "-r requirements/base.txt\n-r https://example.invalid/remote.txt\n"),
        ("./requirements/base.txt", "-c pins.txt\n-r ../requirements.txt\nDjango\n"),
        ("./requirements/pins.txt", "Django==6.0.7\n-r missing.txt\n"),
        ("./requirements/missing.txt", None),
    ]


def old_stamp(requirements_text, pip_args, wheels) -> str:
    """What roles/build/tasks/wheelhouse.yml wrote before: to_json(sort_keys=true) | hash('sha256')."""
    value = to_json({"requirements": requirements_text, "pip_args": pip_args, "wheels": sorted(wheels)}, sort_keys=True)
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def test_a_stamp_written_before_stays_valid_when_nothing_is_included(tmp_path):
    top = tmp_path / "requirements.txt"
    top.write_text("Django>=5.2,<5.3\ngunicorn  # « the server »\n")
    args = ["--only-binary=:all:", "--python-version=3.11", "--platform=manylinux2014_x86_64"]
    wheels = ["gunicorn-23.0.0-py3-none-any.whl", "django-5.2.8-py3-none-any.whl"]
    assert stamp(str(top), args, wheels) == old_stamp(top.read_text(), args, wheels)
    assert stamp(str(tmp_path / "none.txt"), args, []) == old_stamp(None, args, [])


def test_a_change_in_an_included_file_changes_the_stamp(tmp_path):
    top = tmp_path / "requirements.txt"
    top.write_text("-r base.txt\n")
    (tmp_path / "base.txt").write_text("-c pins.txt\nDjango\n")
    (tmp_path / "pins.txt").write_text("Django==5.2.8\n")
    first = stamp(str(top), [], [])
    (tmp_path / "pins.txt").write_text("Django==6.0.7\n")
    assert stamp(str(top), [], []) != first


def test_the_requirement_pip_found_nothing_for_is_read_from_its_output():
    output = (
        "WARNING: Location 'file:///opt/pypi/simple/docopt/' is ignored\n"
        "ERROR: Could not find a version that satisfies the requirement docopt==0.6.2 (from versions: none)\n"
        "ERROR: No matching distribution found for docopt==0.6.2\n"
    )
    assert missing_requirement(output) == "docopt==0.6.2"
    assert versions_seen(output, "docopt==0.6.2") == "none"
    nested = (
        "ERROR: Could not find a version that satisfies the requirement Django==6.0.7 (from myapp) (from versions: 5.2.7, 5.2.8)\n"
        "ERROR: No matching distribution found for Django==6.0.7\n"
    )
    assert missing_requirement(nested) == "Django==6.0.7" and versions_seen(nested, "Django==6.0.7") == "5.2.7, 5.2.8"
    assert missing_requirement("ERROR: HTTP error 503") is None


def test_a_missing_requirement_with_a_marker_is_read_without_it():
    """What the image's pip says when the controller's skipped a dependency whose marker holds for the image only."""
    output = (
        "Processing /check/wheels/redis-5.0.8-py3-none-any.whl\n"
        'ERROR: Could not find a version that satisfies the requirement async-timeout>=4.0.3; python_full_version < "3.11.3" '
        "(from redis) (from versions: none)\n"
        'ERROR: No matching distribution found for async-timeout>=4.0.3; python_full_version < "3.11.3"\n'
    )
    assert missing_requirement(output) == "async-timeout>=4.0.3"
    assert versions_seen(output, "async-timeout>=4.0.3") == "none"
    assert without_marker("Django[argon2] >=5.2 ; python_version >= '3.10'") == "Django[argon2] >=5.2"


def test_the_hashes_a_requirement_is_pinned_to_are_read_from_every_file_pip_reads(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\ndocopt==0.6.2 \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\nDjango==5.2.8  # no hash here\n"
    )
    (tmp_path / "base.txt").write_text("Zope.Interface==7.0 --hash sha256:ccc\n--hash=sha256:not-a-pin\n")
    pins = hash_pins(requirement_files(str(tmp_path / "requirements.txt")))
    assert pins == {"docopt": ["sha256:aaa", "sha256:bbb"], "zope-interface": ["sha256:ccc"]}
    assert hash_pins([("r.txt", "Django==5.2.8\n"), ("x.txt", None)]) == {}
    assert (
        pinned_line('docopt==0.6.2; python_version < "4"', ["sha256:aaa", "sha256:bbb"])
        == "docopt==0.6.2 --hash=sha256:aaa --hash=sha256:bbb"
    )


def test_rewritten_requirements_name_the_new_places_and_allow_the_wheels_built(tmp_path):
    (tmp_path / "req").mkdir()
    top = tmp_path / "requirements.txt"
    top.write_text(
        "-r req/base.txt  # the rest\n--constraint=req/pins.txt\n-r https://example.invalid/r.txt\ndocopt==0.6.2 --hash=sha256:aaa\n"
    )
    (tmp_path / "req" / "base.txt").write_text("-c pins.txt\nredis==5.0.8 --hash=sha256:rrr\n")
    (tmp_path / "req" / "pins.txt").write_text("redis==5.0.8\n")
    files = requirement_files(str(top))
    placed = {
        str(p.resolve()): "/check/req/%d.txt" % i for i, p in enumerate([top, tmp_path / "req" / "base.txt", tmp_path / "req" / "pins.txt"])
    }
    assert rewritten_requirements(files, placed) == [
        (
            "/check/req/0.txt",
            "-r /check/req/1.txt\n-c /check/req/2.txt\n-r https://example.invalid/r.txt\ndocopt==0.6.2 --hash=sha256:aaa\n",
        ),
        ("/check/req/1.txt", "-c /check/req/2.txt\nredis==5.0.8 --hash=sha256:rrr\n"),
        ("/check/req/2.txt", "redis==5.0.8\n"),
    ]
    allowed = rewritten_requirements(files, placed, {"docopt": ["sha256:www"], "redis": ["sha256:not-built"]})
    assert allowed[0][1].endswith("docopt==0.6.2 --hash=sha256:aaa --hash=sha256:www\n")
    assert allowed[1][1] == "-c /check/req/2.txt\nredis==5.0.8 --hash=sha256:rrr --hash=sha256:not-built\n"
    assert allowed[2][1] == "redis==5.0.8\n", "a line without hashes is not hash-checked: nothing to add"
    left_out = rewritten_requirements(files, placed, {}, {"docopt"})
    assert left_out[0][1] == "-r /check/req/1.txt\n-c /check/req/2.txt\n-r https://example.invalid/r.txt\n"


def test_the_source_distributions_of_a_requirement_are_found_by_name():
    names = ["django-secure-1.0.2.tar.gz", "django_secure-1.0.1.zip", "docopt-0.6.2.tar.gz", "docopt-0.6.2-py2.py3-none-any.whl"]
    assert sources_of(names, "Django.Secure==1.0.2") == ["django-secure-1.0.2.tar.gz", "django_secure-1.0.1.zip"]
    assert sources_of(names, "docopt") == ["docopt-0.6.2.tar.gz"] and sources_of(names, "django") == []


def test_what_the_images_pip_said_of_the_wheelhouse():
    said = "smart-deploy-check: python 3.11.2 x86_64\nWould install redis-5.0.8 async-timeout-5.0.1\n"
    assert check_verdict(0, said) == ("complete", None) and image_python(said) == "3.11.2 x86_64"
    lacks = (
        "smart-deploy-check: python 3.11.2 x86_64\n"
        'ERROR: No matching distribution found for async-timeout>=4.0.3; python_full_version < "3.11.3"\n'
    )
    assert check_verdict(1, lacks) == ("missing", "async-timeout>=4.0.3")
    assert check_verdict(3, "smart-deploy-check: cannot check: the image has no python3\n") == ("unchecked", "the image has no python3")
    assert check_verdict(2, "smart-deploy-check: python 3.8.1 x86_64\n\nno such option: --dry-run\n")[0] == "unchecked"
    hashes = "ERROR: Hashes are required in --require-hashes mode, but they are missing from some requirements.\n"
    assert check_verdict(1, hashes) == ("refused", None) and image_python(hashes) == "?"
    assert check_verdict(127, 'exec: "sh": executable file not found in $PATH') == ("unchecked", "the image has no sh to run the check")
    assert check_verdict(4, "smart-deploy-check: failed: could not unpack\n") == ("failed", "could not unpack")
    assert "pip-compile --generate-hashes" in image_refuses_problem("python:3.11-slim-bookworm", "3.11.2 x86_64", hashes)
    unpinned = "ERROR: In --require-hashes mode, all requirements must have their versions pinned with ==. These do not:\n"
    assert "add the package with its hash" in image_refuses_problem("python:3.11-slim-bookworm", "3.11.2 x86_64", unpinned)
    assert "hashes" not in image_refuses_problem("python:3.11-slim-bookworm", "3.11.2 x86_64", "ResolutionImpossible")
    problem = image_lacks_problem("psycopg-binary==3.2.3", "python:3.13-slim-trixie", "3.13.5 aarch64", "none",
                                  ["--python-version=3.13", "--platform=manylinux_2_28_x86_64"])  # fmt: skip
    assert "psycopg-binary==3.2.3" in problem and "Python 3.13.5 aarch64 in python:3.13-slim-trixie" in problem
    assert "platforms manylinux_2_28_x86_64" in problem and "python_version and platforms" in problem


def test_only_the_options_that_say_where_packages_come_from_are_kept_for_a_source_download():
    args = ["--only-binary=:all:", "--python-version=3.13", "--implementation=cp", "--platform=manylinux_2_28_x86_64",
            "--no-index", "--find-links", "/srv/index", "--index-url=https://pypi.example/simple", "-f", "/more"]  # fmt: skip
    assert index_args(args) == ["--no-index", "--find-links", "/srv/index", "--index-url=https://pypi.example/simple", "-f", "/more"]
    assert python_version(args) == "3.13" and python_version(["--python-version", "3.11"]) == "3.11" and python_version([]) is None


def test_names_are_compared_as_pep_503_says():
    assert canonical_name("Django[argon2]>=5") == "django" and canonical_name("zope.interface==7") == "zope-interface"
    names = [
        "docopt-0.6.2-py3-none-any.whl",
        "zope_interface-7.0-cp313-cp313-manylinux_2_28_x86_64.whl",
        "docopt_ng-0.9.0-py3-none-any.whl",
    ]
    assert wheels_of(names, "docopt==0.6.2") == ["docopt-0.6.2-py3-none-any.whl"]
    assert wheels_of(names, "Zope.Interface") == ["zope_interface-7.0-cp313-cp313-manylinux_2_28_x86_64.whl"]


@pytest.mark.parametrize(
    "pyproject, expected",
    [
        (None, LEGACY_BUILD_REQUIREMENTS),
        ("[project]\nname = 'x'\n", LEGACY_BUILD_REQUIREMENTS),
        ("[build-system]\nrequires = ['hatchling>=1.18']\nbuild-backend = 'hatchling.build'\n", ["hatchling>=1.18"]),
        ("[build-system]\nrequires = ['flit_core >=3.2,<4']\nbuild-backend = 'flit_core.buildapi'\n", ["flit_core >=3.2,<4"]),
        ("[build-system]\nrequires = ['setuptools>=61']\nbuild-backend = 'setuptools.build_meta'\n", ["setuptools>=61", "wheel"]),
        ("[build-system]\nrequires = ['setuptools', 'wheel']\n", ["setuptools", "wheel"]),
    ],
)
def test_what_building_a_source_distribution_needs(pyproject, expected):
    assert build_requirements(pyproject) == expected


def test_the_pyproject_of_a_source_distribution_is_read_from_its_top_folder(tmp_path):
    text = "[build-system]\nrequires = ['flit_core']\n"
    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, data in (("pkg-1.0/pyproject.toml", text), ("pkg-1.0/tests/pyproject.toml", "not this one")):
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            archive.addfile(info, io.BytesIO(data.encode()))
    assert pyproject_of(str(sdist)) == text
    old = tmp_path / "old-1.0.zip"
    with zipfile.ZipFile(old, "w") as archive:
        archive.writestr("old-1.0/setup.py", "from setuptools import setup\nsetup()\n")
    assert pyproject_of(str(old)) is None


@pytest.mark.parametrize(
    "dockerfile, image",
    [
        ("FROM python:3.13-slim-trixie AS deps\nFROM python:3.13-slim-trixie\n", "python:3.13-slim-trixie"),
        ("# syntax=docker/dockerfile:1\nARG PY=3.12\nFROM --platform=linux/amd64 python:${PY}-slim AS build\n", "python:3.12-slim"),
        ("ARG BASE=smart-deploy/debian-base:bookworm\nFROM ${BASE}\n", "smart-deploy/debian-base:bookworm"),
        ("ARG UNSET\nFROM python:$UNSET\n", None),
        ("FROM scratch\n", None),
        ("RUN true\n", None),
    ],
)
def test_the_image_to_build_wheels_in_is_the_dockerfiles_first_from(dockerfile, image):
    assert dockerfile_base_image(dockerfile) == image
