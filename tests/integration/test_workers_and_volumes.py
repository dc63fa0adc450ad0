"""Workers and uploads (README "Workers and volumes"), on one deployment of the notes sample with two traits of real
projects (tests/integration/traits.py): uploads in MEDIA_ROOT on a named volume, and two workers that run the Django
image - ``worker`` (a management-command loop, 2 replicas, stopped with SIGTERM) and ``beat`` (a singleton stopped
with SIGINT, gated by a health command). Each writes what it does into the shared volume, so the tests see them work
and stop. In order: the first deploy, an upload, a release that changes the code (new workers, the old ones stopped
gracefully, the singleton never twice), status and logs, a rollback (the previous workers back, the upload still
there), a cleanup (the volume kept)."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration.conftest import assert_ok, release_id, run
from tests.integration.traits import WorkersNotes

REPLICAS = {"worker": 2, "beat": 1}


@pytest.fixture(scope="module")
def deployment_kind():
    return WorkersNotes


@pytest.fixture(scope="module")
def app(module_deployment, timings):
    app = module_deployment
    app.base = app.commit("release 1: notes with uploads and workers")
    app.r1 = release_id(app.base)
    started = time.monotonic()
    result = app.deploy()
    timings["first deploy"] = time.monotonic() - started
    assert_ok(result)
    app.first_output = result.stdout
    return app


def names_of(app, component):
    return app.containers(component)


def wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.25)
    return condition()


# --- the health gate of workers, on containers of the base image (no deployment) ---------------------------
BASE_IMAGE = "python:3.11-slim-bookworm"


@pytest.fixture
def container(request):
    """Start a container of the base image running ``sh -c <script>``; removed afterwards."""
    started = []

    def start(script):
        name = "sdwgate-%s-%d" % (request.node.name[-20:].strip("_[]").replace("[", "-"), len(started))
        result = run(["docker", "run", "-d", "--name", name, "--label", "smart-deploy.test=workers", BASE_IMAGE, "sh", "-c", script])
        assert result.returncode == 0, result.stderr
        started.append(name)
        return name

    yield start
    if started:
        run(["docker", "rm", "-f", *started])


def test_a_worker_that_exits_fails_the_gate_at_once_with_its_last_log_lines_masked(run_module, container):
    secret = "CanaryWorkerSecret-%d" % time.time_ns()
    name = container("echo 'connecting to redis://:%s@broker:6379/0'; echo 'Error: broker refused'; sleep 1; exit 3" % secret)
    result = run_module("container_health_gate", {"containers": [{"name": name, "settle": 30}], "wait_timeout": 60,
                                                  "interval": 0.25, "mask_values": [secret]})  # fmt: skip
    assert result["failed"] and not result["timed_out"] and result["waited"] < 10, result
    assert "Container %s exited with code 3" % name in result["msg"]
    assert "connecting to redis://:********@broker:6379/0" in result["msg"] and "Error: broker refused" in result["msg"]
    assert secret not in repr(result)


def test_a_worker_with_a_health_command_passes_when_it_exits_0_inside_it(run_module, container):
    name = container("sleep 1; touch /tmp/ready; sleep 60")
    result = run_module("container_health_gate", {"containers": [{"name": name, "command": ["sh", "-c", "test -f /tmp/ready"]}],
                                                  "wait_timeout": 30, "interval": 0.25})  # fmt: skip
    assert not result.get("failed"), result
    assert result["containers"][0]["answer"] == "health command exited 0" and result["containers"][0]["seconds"] >= 1, result
    never = container("sleep 60")
    result = run_module("container_health_gate", {"containers": [{"name": never, "command": ["sh", "-c", "exit 4"]}],
                                                  "wait_timeout": 2, "interval": 0.25})  # fmt: skip
    assert result["failed"] and result["timed_out"]
    assert "its health command has not exited 0 yet (last answer: health command exited 4)" in result["msg"], result["msg"]


# --- one deployment, through the verbs ------------------------------------------------------------------------
def test_the_first_deploy_runs_each_worker_with_its_replicas_from_the_one_django_image(app):
    entry = app.releases()["releases"][-1]
    assert entry["status"] == "live" and entry["built"] == ["backend"], entry["built"]
    image = entry["images"]["backend"]
    assert entry["images"]["worker"] == entry["images"]["beat"] == image, entry["images"]
    for component, count in REPLICAS.items():
        running = names_of(app, component)
        assert running == entry["replicas"][component], (component, running, entry["replicas"])
        assert len(running) == count
        pattern = r"^%s-%s-%s-[0-9a-f]{8}-\d$" % (app.name, component, app.r1)
        assert all(re.match(pattern, name) for name in running), running
        for name in running:
            inspect = json.loads(run(["docker", "inspect", name]).stdout)[0]
            assert inspect["Config"]["Image"] == image
            env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
            # the app's environment (a worker runs the app's code), and the one name smart-deploy adds
            assert env["APP_RELEASE"] == app.r1 and "NOTES_DB_PASSWORD" in env and "NOTES_SECRET_KEY" in env
            assert {"%s-media" % app.name: "/srv/media"} == {m["Name"]: m["Destination"] for m in inspect["Mounts"]}
    beat = json.loads(run(["docker", "inspect", names_of(app, "beat")[0]]).stdout)[0]
    assert beat["Config"]["StopSignal"] == "SIGINT" and beat["Config"]["Healthcheck"]["Test"][0] == "CMD"
    worker = json.loads(run(["docker", "inspect", names_of(app, "worker")[0]]).stdout)[0]
    assert worker["Config"]["StopTimeout"] == 10 and worker["Config"]["Healthcheck"]["Test"] == ["NONE"]
    # never routed: the proxy knows the backend only
    config = (app.state_dir / "proxy" / "conf" / "haproxy.cfg").read_text()
    assert "backend backend" in config and "%s-worker-" % app.name not in config and "%s-beat-" % app.name not in config
    lines = wait_for(lambda: [line for line in app.worker_lines() if line[3] == "started"])
    assert sorted((role, release) for _, role, release, _ in lines) == [("beat", app.r1), ("worker", app.r1), ("worker", app.r1)]


def test_the_same_release_again_restarts_no_worker(app, timings):
    ids = run(["docker", "ps", "-q", "--no-trunc", "--filter", "label=smart-deploy.app=%s" % app.name]).stdout.split()
    started = time.monotonic()
    result = app.deploy()
    timings["no-op deploy"] = time.monotonic() - started
    assert_ok(result)
    assert app.summary()["outcome"] == "nothing to deploy, nothing changed", app.summary()
    assert run(["docker", "ps", "-q", "--no-trunc", "--filter", "label=smart-deploy.app=%s" % app.name]).stdout.split() == ids


def test_an_upload_lands_in_the_named_volume_with_smart_deploys_labels(app):
    status, body = app.http("/media/hello.txt", method="PUT", body={"kept": "across releases"})
    assert status == 201, body
    assert app.http("/media/hello.txt") == (200, json.dumps({"kept": "across releases"}))
    volume = "%s-media" % app.name
    assert app.volumes() == sorted([volume, "%s-pgdata" % app.name])
    labels = json.loads(run(["docker", "volume", "inspect", volume]).stdout)[0]["Labels"]
    assert labels == {"smart-deploy.app": app.name, "smart-deploy.volume": "media"}


def test_a_release_starts_new_workers_and_stops_the_old_ones_gracefully(app, timings):
    old = {component: names_of(app, component) for component in REPLICAS}
    app.edit("notes/views.py", '"status": "ok"', '"status": "ok", "version": 2')
    app.r2 = app.commit("release 2: the health endpoint says its version")
    started = time.monotonic()
    result = app.deploy()
    timings["release with new workers"] = time.monotonic() - started
    assert_ok(result)
    lines = app.worker_lines()
    for component, count in REPLICAS.items():
        new = names_of(app, component)
        assert len(new) == count and all(app.r2 in name for name in new), new
        assert app.containers(component, "exited") == old[component]
        for name in old[component]:  # stopped by their signal, not killed at the stop timeout
            assert run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name]).stdout.strip() == "0", name
    stopped = {(role, words) for _, role, release, words in lines if release == app.r1 and words.startswith("stopped")}
    assert stopped == {("worker", "stopped on SIGTERM"), ("beat", "stopped on SIGINT")}, lines
    assert sum(1 for _, role, release, words in lines if (role, release, words) == ("worker", app.r1, "stopped on SIGTERM")) == 2

    def when(role, release, words):
        return [stamp for stamp, r, rel, w in lines if (r, rel, w) == (role, release, words)]

    # the singleton: the old one stopped before the new one started; the workers: the new ones ran before the old stopped
    assert max(when("beat", app.r1, "stopped on SIGINT")) < min(when("beat", app.r2, "started")), lines
    assert max(when("worker", app.r2, "started")) < min(when("worker", app.r1, "stopped on SIGTERM")), lines
    assert app.http("/media/hello.txt")[0] == 200


def test_a_worker_that_exits_fails_the_deploy_at_once_and_the_release_keeps_running(app, timings):
    """Only a worker's command changes (a run setting: same release, nothing built, no database step): its new
    containers exit, the gate fails at once with their last log lines, and the automatic rollback leaves the live
    release's containers - web and workers - running as they were."""
    running = {component: names_of(app, component) for component in ("backend", *REPLICAS)}
    components = WorkersNotes.components()
    components["worker"]["command"] = ["python", "manage.py", "no_such_command"]
    started = time.monotonic()
    result = app.deploy("-e", json.dumps({"smart_deploy_components": components}))
    timings["failing worker, rolled back"] = time.monotonic() - started
    assert result.returncode != 0
    assert "run settings of components changed" in result.stdout, result.stdout[-3000:]
    assert re.search(r"Container %s-worker-%s-[0-9a-f]{8}-[12] (keeps exiting|exited)" % (app.name, app.r2), result.stdout), result.stdout[
        -4000:
    ]
    assert "Unknown command: 'no_such_command'" in result.stdout
    assert {component: names_of(app, component) for component in running} == running
    failed = app.releases()["releases"][-1]
    assert failed["status"] == "failed" and "worker" in failed["reason"] and app.releases()["current"] == app.r2
    assert len(app.containers("worker", "exited")) == 4, "the 2 of release 1 and the 2 that failed"


def test_status_shows_each_worker_with_its_replicas_and_the_volumes(app):
    result = app.playbook("status")
    assert_ok(result)
    assert "worker: 2/2 running" in result.stdout and "beat: 1/1 running, singleton, health command" in result.stdout, result.stdout
    assert re.search(r"%s-media  [0-9.]+ (Bytes|kB|MB)  mounted by backend, beat, worker" % app.name, result.stdout), result.stdout


def test_logs_of_a_worker_show_every_replica(app):
    result = app.playbook("logs", "-e", "component=worker", "-e", "lines=5")
    assert_ok(result)
    for name in names_of(app, "worker"):
        assert "(item=%s)" % name in result.stdout, result.stdout
    assert "worker %s " % app.r2 in result.stdout
    assert "beat %s" % app.r2 not in result.stdout


def test_a_rollback_brings_the_previous_workers_back_and_keeps_the_uploads(app, timings):
    first = app.releases()["releases"][0]["replicas"]
    before, wall = time.monotonic(), time.time()
    result = app.playbook("rollback")
    timings["rollback"] = time.monotonic() - before
    assert_ok(result)
    for component, count in REPLICAS.items():
        assert names_of(app, component) == first[component] and len(first[component]) == count
        assert all(app.r2 in name for name in app.containers(component, "exited"))
    assert app.http("/media/hello.txt") == (200, json.dumps({"kept": "across releases"}))
    restarted = wait_for(lambda: [line for line in app.worker_lines() if line[2] == app.r1 and line[3] == "started" and line[0] > wall])
    assert sorted(role for _, role, _, _ in restarted) == ["beat", "worker", "worker"]
    assert app.releases()["releases"][-1]["replicas"] == first


def test_cleanup_never_removes_the_volume(app, timings):
    before = time.monotonic()
    result = app.playbook("cleanup", "-e", "cleanup_keep_releases=0")
    timings["cleanup"] = time.monotonic() - before
    assert_ok(result)
    assert "%s-media" % app.name in app.volumes()
    assert app.http("/media/hello.txt") == (200, json.dumps({"kept": "across releases"}))
