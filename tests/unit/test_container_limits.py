"""Memory, CPU and process limits of the containers smart-deploy starts for a moment (one-offs of the
release image, scratch PostgreSQL): the docker run arguments, the options that set them, and the
labels that let a run remove what it started."""

import runpy

import pytest
import yaml
from ansible.module_utils.smart_deploy.args import app_container_spec, scratch_database_spec
from ansible.module_utils.smart_deploy.oneoff import (
    DriverError,
    Limits,
    driver_run_argv,
    limit_args,
    limits_problem,
    oneoff_limits,
    parse_size,
    run_driver,
)
from ansible.module_utils.smart_deploy.scratch import APP_LABEL, PURPOSE_LABEL, SCRATCH_LABEL, SCRATCH_SHM_BYTES, Scratch, scratch_limits

from tests.conftest import ROOT, load_module

GIB = 1024**3


def flag(argv, name):
    """The value after ``name`` in ``argv`` (None when absent; it must appear at most once)."""
    assert argv.count(name) <= 1, argv
    return argv[argv.index(name) + 1] if name in argv else None


@pytest.mark.parametrize(
    "text, size",
    [("1g", GIB), ("1G", GIB), ("1gb", GIB), ("1GiB", GIB), ("512m", 512 * 2**20), ("1.5g", int(1.5 * GIB)), ("1073741824", GIB),
     ("64k", 65536), ("0", 0)],
)  # fmt: skip
def test_docker_sizes_are_read_as_docker_reads_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1x", "-1g", "g", "1 g b"])
def test_a_size_docker_would_refuse_is_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_limits_become_memory_cpus_and_pids_flags():
    argv = limit_args(Limits("1g", 1.5, 512), host_cpus=2)
    assert argv == ["--memory", str(GIB), "--cpus", "1.5", "--pids-limit", "512"]


@pytest.mark.parametrize("limits", [Limits("", 0, 0), Limits("0", 0.0, -1), Limits(None, None, None), None])
def test_no_limit_means_no_flag(limits):
    assert limit_args(limits, host_cpus=2) == []


def test_cpu_limit_is_capped_at_the_hosts_cpus():
    # docker run --cpus 1.5 on a one-CPU host fails: "range of CPUs is from 0.01 to 1.00"
    assert flag(limit_args(Limits("", 1.5, 0), host_cpus=1), "--cpus") == "1"
    assert flag(limit_args(Limits("", 0.25, 0), host_cpus=8), "--cpus") == "0.25"


def test_scratch_memory_must_stay_above_its_shared_memory():
    problem = limits_problem(Limits("256m", 1, 0), "the scratch database", SCRATCH_SHM_BYTES, "its shared memory")
    assert problem and "above 256 MiB" in problem and "shared memory" in problem
    assert limits_problem(Limits("257m", 1, 0), "the scratch database", SCRATCH_SHM_BYTES) is None
    assert limits_problem(Limits("0", 1, 0), "the scratch database", SCRATCH_SHM_BYTES) is None, "0 is no limit"


@pytest.mark.parametrize("limits", [Limits("4m", 1, 0), Limits("plenty", 1, 0), Limits("1g", -1, 0)])
def test_limits_docker_refuses_are_named_before_anything_starts(limits):
    assert "the test container" in limits_problem(limits, "the test container")


def test_default_limits_fit_the_shop_on_two_cores():
    params = {k: v.get("default") for k, v in dict(app_container_spec(), **scratch_database_spec()).items()}
    assert oneoff_limits(params) == Limits("1g", 1.5, 512)
    assert scratch_limits(params) == Limits("1g", 1.5, 512)
    assert limits_problem(scratch_limits(params), "scratch", SCRATCH_SHM_BYTES) is None


def test_driver_one_off_runs_within_its_limits_with_no_secret_on_the_command_line():
    argv = driver_run_argv("docker", "shop-backend:abc", "rehearse", "shop-scratch-oneoff-1", "/tmp/x/env", "/tmp/x/driver.py",
                           "/tmp/x/input.json", labels={APP_LABEL: "shop"}, network="shop-scratch-1",
                           limits=Limits("768m", 1.5, 256), host_cpus=2)  # fmt: skip
    assert flag(argv, "--memory") == str(768 * 2**20) and flag(argv, "--cpus") == "1.5" and flag(argv, "--pids-limit") == "256"
    assert argv[-3:] == ["shop-backend:abc", "/smart-deploy/driver.py", "rehearse"], "options come before the image"
    assert argv.index("--memory") < argv.index("shop-backend:abc")
    assert flag(argv, "--env-file") == "/tmp/x/env" and not any("PASSWORD" in a for a in argv)
    assert argv[1] == "create" and "-v" not in argv, "driver and input are copied in (docker cp), never bind-mounted"


def test_scratch_database_runs_within_its_limits():
    scratch = Scratch("docker", "shop", "postgres:15-bookworm", run_id="r1", limits=Limits("1g", 1.5, 512))
    argv = scratch.run_args("/tmp/env", host_cpus=2)
    assert flag(argv, "--memory") == str(GIB) and flag(argv, "--cpus") == "1.5" and flag(argv, "--pids-limit") == "512"
    assert flag(argv, "--shm-size") == "256m"
    assert argv.index("--memory") < argv.index("postgres:15-bookworm")


def test_tests_scratch_is_labelled_with_the_app_it_removes_by():
    """scratch.remove() finds its resources by the labels smart-deploy.app=<app> and smart-deploy.scratch=<run
    id>: the labels must say the app itself (a label <app>-tests was found by nothing)."""
    scratch = Scratch("docker", "shop", "postgres:15-bookworm", run_id="r1", purpose="tests")
    assert scratch.labels == {APP_LABEL: "shop", SCRATCH_LABEL: "r1", PURPOSE_LABEL: "tests"}
    assert scratch.app == "shop"
    assert scratch.container == "shop-tests-scratch-db-r1" and scratch.network == "shop-tests-scratch-r1"
    rehearsal = Scratch("docker", "shop", "postgres:15-bookworm", run_id="r2")
    assert rehearsal.labels == {APP_LABEL: "shop", SCRATCH_LABEL: "r2", PURPOSE_LABEL: "rehearsal"}
    assert rehearsal.container == "shop-scratch-db-r2" and rehearsal.network == "shop-scratch-r2"


def test_test_container_runs_within_its_limits_on_the_scratch_network():
    django_test = load_module("django_test")
    scratch = Scratch("docker", "shop", "postgres:15-bookworm", run_id="r1", purpose="tests")
    argv = django_test.suite_argv("docker", "shop-backend:abc", ["python", "manage.py", "test"], "shop-tests-oneoff-1", scratch.network,
                                  "/tmp/env", scratch.labels, "/app", Limits("1g", 1.5, 512), host_cpus=2)  # fmt: skip
    assert flag(argv, "--memory") == str(GIB) and flag(argv, "--cpus") == "1.5" and flag(argv, "--pids-limit") == "512"
    assert flag(argv, "--network") == "shop-tests-scratch-r1" and flag(argv, "--workdir") == "/app"
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--label"]
    assert {"smart-deploy.app=shop", "smart-deploy.scratch=r1", "smart-deploy.purpose=tests", "smart-deploy.oneoff=tests"} <= set(labels)
    assert argv[-4:] == ["shop-backend:abc", "python", "manage.py", "test"]


def fragment(name):
    # read as plain YAML: importing Ansible's controller code here would change how modules run in this process
    fragments = runpy.run_path(str(ROOT / "plugins" / "doc_fragments" / "smart_deploy.py"))["ModuleDocFragment"]
    return yaml.safe_load(getattr(fragments, name))["options"]


@pytest.mark.parametrize(
    "spec, fragment_name",
    [(app_container_spec(), "APP_CONTAINER"), (scratch_database_spec(), "SCRATCH_DATABASE")],
)
def test_limit_options_and_their_documentation_agree(spec, fragment_name):
    documented = fragment(fragment_name)
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name].get("type", "str") == option.get("type", "str"), name
        assert documented[name].get("default") == option.get("default"), name


@pytest.mark.parametrize(
    "role, options",
    [
        ("app_tests", ["oneoff_memory", "oneoff_cpus", "oneoff_pids_limit", "scratch_memory", "scratch_cpus", "scratch_pids_limit"]),
        (
            "migration_validation",
            ["oneoff_memory", "oneoff_cpus", "oneoff_pids_limit", "scratch_memory", "scratch_cpus", "scratch_pids_limit"],
        ),  # fmt: skip
        # production's migrations get more memory than a rehearsal (migrate_oneoff_memory: 4g): a data migration may need it
        ("migrate", ["oneoff_cpus", "oneoff_pids_limit"]),
    ],
)
def test_role_defaults_are_the_modules_defaults(role, options):
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    spec = dict(app_container_spec(), **scratch_database_spec())
    for option in options:
        assert defaults["%s_%s" % (role, option)] == spec[option]["default"], option


def test_a_one_off_killed_for_memory_says_so(tmp_path):
    docker = tmp_path / "docker"
    # what `docker start --attach` says when the kernel kills the container (created and copied into first)
    docker.write_text('#!/bin/sh\n[ "$1" = start ] && exit 137\nexit 0\n')
    docker.chmod(0o755)
    with pytest.raises(DriverError) as failed:
        run_driver(str(docker), "shop-backend:abc", "apply", {}, source="# driver", limits=Limits("1g", 1.5, 512))
    assert "exit 137 - killed, perhaps for using more than its memory limit (1g)" in str(failed.value)
