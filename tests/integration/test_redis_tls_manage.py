"""Issue 20's traits through real deploys of one app: the notes sample with Redis beside it (reached from the app with
the URL its environment gives), HTTPS at smart-deploy's proxy with settings that redirect plain HTTP
(SECURE_SSL_REDIRECT behind SECURE_PROXY_SSL_HEADER, no path exempted), a one-off management command in the live
release, and maintenance mode kept on through a deploy that also rotates the certificate. One deployment, two deploys
(the proxy's and Redis's own rules are proven by their roles alone: test_proxy_tls.py, test_accessories.py)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import assert_failed, assert_ok, free_port, run
from tests.integration.notes import Notes
from tests.integration.tls import LocalCA, request, served_serial
from tests.integration.traits import add_manage_command, add_secure_proxy_settings, add_trait_views, notes_env, redis_vars, tls_vars


@pytest.fixture(scope="module")
def deployment_kind():
    return Notes


class Traits:
    def __init__(self, notes):
        self.notes = notes
        self.ca = LocalCA()
        self.pair = self.ca.issue()
        self.https_port = free_port()
        self.vars_file = notes.workdir / "traits-vars.json"
        self.started = time.monotonic()
        self.app_env = {}

    def write_vars(self):
        accessories, secret = redis_vars()
        values = {**accessories, **notes_env(self.app_env, secret), **tls_vars(self.pair, self.https_port)}
        self.vars_file.write_text(json.dumps(values))
        self.vars_file.chmod(0o600)

    def playbook(self, name, *args):
        return self.notes.playbook(name, "-e", "@%s" % self.vars_file, *args)

    def https(self, path, **kwargs):
        return request(self.https_port, path, https=True, ca=self.ca, **kwargs)

    def get_json(self, path):
        answer = self.https(path)
        assert answer.status == 200, (answer.status, answer.body[:300])
        return json.loads(answer.body)

    def manage(self, *args, **extra):
        result_file = self.notes.workdir / "manage.rc"
        result_file.unlink(missing_ok=True)
        result = self.playbook("manage", "-e", json.dumps({"manage_args": list(args), "manage_result_file": str(result_file), **extra}))
        code = int(result_file.read_text()) if result_file.exists() else None
        return result, code

    def events(self, kind):
        return [event for event in self.notes.releases().get("events", []) if event["kind"] == kind]


@pytest.fixture(scope="module")
def traits(module_deployment):
    notes = module_deployment
    traits = Traits(notes)
    traits.app_env = add_secure_proxy_settings(notes)  # NOTES_SSL_REDIRECT=1
    add_trait_views(notes)
    add_manage_command(notes)
    notes.base = notes.commit("release 1: behind TLS, with Redis and a management command")
    traits.write_vars()
    result = traits.playbook("deploy")
    assert_ok(result)
    traits.first_output = result.stdout
    print("first deploy with Redis and TLS: %.1f s" % (time.monotonic() - traits.started))
    return traits


def test_the_app_behind_tls_sees_https_and_plain_http_is_redirected_by_the_proxy(traits):
    seen = traits.get_json("/api/whoami/")
    assert seen["is_secure"] is True and seen["x_forwarded_proto"] == "https"
    plain = request(traits.notes.port, "/api/notes/?x=1")
    assert plain.status == 301 and plain.headers["location"] == "https://127.0.0.1:%d/api/notes/?x=1" % traits.https_port
    assert traits.https("/healthz").headers["strict-transport-security"] == "max-age=600"
    # the deploy's checks went over HTTPS; the health gate (plain HTTP to the container) said https and got 200
    said = " ".join(traits.first_output.split())
    assert "health | health: 200" in said


def test_redis_runs_beside_the_app_and_the_app_reaches_it_with_its_url(traits):
    assert traits.get_json("/api/redis/") == {"auth": "+OK", "redis": "+PONG"}
    said = " ".join(traits.first_output.split())
    assert (
        "| accessories | redis started (%s-redis, redis:7-bookworm, data in %s-redis-data)" % (traits.notes.name, traits.notes.name) in said
    )
    live = traits.notes.releases()["releases"][-1]
    assert live["status"] == "live" and len(live["accessories"]) == 64


def test_a_management_command_runs_in_the_live_release_with_its_environment(traits):
    result, code = traits.manage("add_note", "written by manage")
    assert_ok(result)
    assert code == 0 and "added note" in result.stdout
    assert [n["title"] for n in traits.get_json("/api/notes/")["results"]] == ["written by manage"]
    event = traits.events("manage")[-1]
    assert event["args"] == ["add_note", "written by manage"] and event["exit_code"] == 0 and event["by"] == "pytest"
    assert event["release"] == traits.notes.base[:12]
    # the one-off container is gone
    assert not run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.oneoff=manage", "--filter",
                    "label=smart-deploy.app=%s" % traits.notes.name]).stdout.strip()  # fmt: skip


def test_its_exit_code_is_passed_on_and_secrets_in_its_arguments_are_masked(traits):
    result, code = traits.manage("add_note", traits.notes.secret_key, "--exit", "3")
    assert_failed(result)
    assert code == 3
    assert "exited with 3" in result.stdout and "********" in result.stdout
    event = traits.events("manage")[-1]
    assert event["exit_code"] == 3 and event["args"] == ["add_note", "********", "--exit", "3"]


def test_a_management_command_is_refused_while_a_deploy_holds_the_lock(traits):
    lock = traits.notes.state_dir / "deploy.lock"
    holder = {"lock_id": "x", "owner": "someone", "host": "elsewhere", "pid": 1, "machine_id": "m", "boot_id": "b", "pid_ns": "p",
              "started": "2026-01-01T00:00:00Z", "release": "r", "expires": "2999-01-01T00:00:00Z", "operation": "deploy"}  # fmt: skip
    lock.write_text(json.dumps(holder))
    try:
        result, code = traits.manage("add_note", "never written")
        assert_failed(result)
        assert code is None and "someone" in result.stdout
        read_only, code = traits.manage("showmigrations", "notes", manage_lock=False)
        assert_ok(read_only)
        assert code == 0 and "0001_initial" in read_only.stdout
    finally:
        lock.unlink()
    assert "never written" not in [n["title"] for n in traits.get_json("/api/notes/")["results"]]


def test_a_deploy_during_maintenance_keeps_it_on_checks_past_the_page_and_rotates_the_certificate(traits):
    assert_ok(traits.playbook("maintenance", "-e", json.dumps({"maintenance": "on", "message": "Moving notes"})))
    assert traits.https("/api/notes/").status == 503
    traits.notes.write("app/notes/traits_release.py", "RELEASE = 2\n")
    second = traits.notes.commit("release 2")
    old = traits.pair
    traits.pair = traits.ca.issue()
    traits.write_vars()
    result = traits.playbook("deploy")
    assert_ok(result)
    said = " ".join(result.stdout.split())
    assert "| maintenance | on - users get the maintenance page (the checks went past it)" in said
    assert traits.notes.releases()["current"] == second[:12]
    answer = traits.https("/api/notes/")
    assert answer.status == 503 and "Moving notes" in answer.body  # users still get the page
    assert answer.peer_serial == traits.pair.serial != old.serial  # the new certificate: a reload of the proxy
    assert_ok(traits.playbook("maintenance", "-e", json.dumps({"maintenance": "off"})))
    assert served_serial(traits.https_port, traits.ca) == traits.pair.serial
    assert traits.get_json("/api/redis/")["redis"] == "+PONG"
    assert [e["state"] for e in traits.events("maintenance")] == ["on", "off"]


def test_status_shows_redis_https_maintenance_and_the_commands(traits):
    result = traits.playbook("status")
    assert_ok(result)
    said = " ".join(result.stdout.split())
    assert "redis %s-redis Up" % traits.notes.name in said and "memory " in said
    assert "https: on 127.0.0.1:%d" % traits.https_port in said and "maintenance: off" in said
    assert "manage manage.py add_note ******** --exit 3 exit 3 by pytest" in said


def test_cleanup_keeps_redis_and_its_data(traits):
    assert_ok(traits.playbook("cleanup"))
    state = run(["docker", "inspect", "-f", "{{.State.Status}}", "%s-redis" % traits.notes.name]).stdout.strip()
    assert state == "running"
    assert run(["docker", "volume", "inspect", "%s-redis-data" % traits.notes.name]).returncode == 0
    print("module: %.1f s" % (time.monotonic() - traits.started))
