"""Waiting for PostgreSQL quietly (library/pg_ready.py, pgclient.wait_ready): one task that asks pg_isready until
the server accepts connections, instead of until/retries and its "FAILED - RETRYING" lines; a server that does not
come fails with what pg_isready said. The loop on plain data; the module as Ansible runs it against a real
PostgreSQL container started at the same moment (its first start runs initdb), and against none."""

from __future__ import annotations

import secrets
import subprocess

import pytest
from ansible.module_utils.smart_deploy.pgclient import wait_ready


class Clock:
    """Time that moves only when the loop sleeps (or a probe takes time)."""

    def __init__(self):
        self.t = 100.0
        self.slept = []

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.t += seconds


def answers(*codes, takes=0.0, clock=None):
    left = list(codes)

    def probe():
        if clock:
            clock.t += takes
        code = left.pop(0) if len(left) > 1 else left[0]
        return code, {0: "accepting connections", 1: "rejecting connections", 2: "no response", 3: "no attempt"}[code]

    return probe


def test_it_waits_while_the_server_starts_and_stops_when_it_accepts():
    clock = Clock()
    waited = wait_ready(answers(2, 2, 1, 0), timeout=60, interval=1, now=clock.now, sleep=clock.sleep)
    assert waited == {"ready": True, "attempts": 4, "seconds": 3.0, "code": 0, "said": "accepting connections"}
    assert clock.slept == [1, 1, 1]


def test_a_server_that_does_not_come_gives_up_at_the_timeout_with_its_last_answer():
    clock = Clock()
    waited = wait_ready(answers(2, 1), timeout=10, interval=2, now=clock.now, sleep=clock.sleep)
    assert waited["ready"] is False and waited["said"] == "rejecting connections" and waited["code"] == 1
    assert waited["seconds"] == 10.0 and waited["attempts"] == 6  # at 0, 2, 4, 6, 8 and 10 s


def test_slow_probes_count_against_the_timeout():
    clock = Clock()
    waited = wait_ready(answers(2, clock=clock, takes=4), timeout=10, interval=1, now=clock.now, sleep=clock.sleep)
    # at 0 (answered at 4), 5 (at 9), 10 (at 14): no attempt starts after the timeout
    assert waited["ready"] is False and waited["attempts"] == 3 and waited["seconds"] == 14.0


def test_bad_parameters_stop_at_once():
    clock = Clock()
    assert wait_ready(answers(3), timeout=60, now=clock.now, sleep=clock.sleep)["attempts"] == 1


@pytest.fixture
def starting_postgres():
    name = "sd-ready-%s" % secrets.token_hex(4)
    started = subprocess.run(["docker", "run", "-d", "--name", name, "--network", "none", "-e", "POSTGRES_USER=app",
                              "-e", "POSTGRES_PASSWORD=%s" % secrets.token_hex(8), "-e", "POSTGRES_DB=app", "postgres:15-bookworm"],
                             capture_output=True, text=True)  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def test_the_module_waits_quietly_for_a_first_start(run_module, starting_postgres):
    result = run_module("pg_ready", {"db_container": starting_postgres, "db_name": "app", "db_user": "app", "timeout": 90})
    assert not result.get("failed"), result
    assert result["changed"] is False and result["attempts"] > 1, "initdb of a first start takes seconds: it did wait"
    assert "accepting connections" in result["said"]


def test_the_module_fails_naming_the_server_when_it_never_answers(run_module):
    missing = "sd-ready-missing-%s" % secrets.token_hex(4)
    result = run_module("pg_ready", {"db_container": missing, "db_name": "app", "db_user": "app", "timeout": 3, "interval": 1})
    assert result["failed"] is True
    assert result["msg"].startswith("PostgreSQL (container %s, database app) did not accept connections within 3 s" % missing)
    assert "No such container" in result["msg"]
