"""The health gate's judgement of new containers, on plain data: engine states as Docker's inspect has
them, a scripted clock, and what a health URL answers."""

import pytest
from ansible.module_utils.smart_deploy.health_gate import (
    FAIL,
    HEALTHY,
    WAIT,
    engine_state,
    failure_message,
    judge,
    last_lines,
    run_gate,
)

SECRET_ENV = ["DATABASE_URL=postgres://shop:Canary-pw@db/shop", "POSTGRES_PASSWORD=Canary-pw"]


def inspect(status="running", exit_code=0, restarts=0, health=None, probe="", oom=False, error=""):
    """A container's inspect as the engine returns it: with its configuration and environment."""
    state = {"Status": status, "Running": status in ("running", "restarting"), "Restarting": status == "restarting",
             "ExitCode": exit_code, "OOMKilled": oom, "Error": error}  # fmt: skip
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": [{"ExitCode": 1, "Output": probe}] if probe else []}
    return {
        "Id": "0123abcd",
        "State": state,
        "RestartCount": restarts,
        "Config": {"Env": SECRET_ENV, "Tty": False, "Image": "shop-backend:r2"},
    }


def test_engine_state_keeps_nothing_of_the_configuration():
    state = engine_state(inspect(health="starting"))
    assert state == {"status": "running", "restarting": False, "exit_code": 0, "oom_killed": False, "error": "", "restart_count": 0,
                     "health": "starting", "probe_output": "", "tty": False}  # fmt: skip
    assert "Canary" not in repr(state)
    assert engine_state(None) is None
    assert engine_state(inspect())["health"] is None, "no HEALTHCHECK in the image"


@pytest.mark.parametrize(
    "first, now, wants_http, http_ok, verdict, words",
    [
        # fails at once
        (inspect(), None, True, False, FAIL, "does not exist"),
        (inspect(), inspect("exited", 3), True, False, FAIL, "exited with code 3"),
        (inspect(), inspect("exited", 137, oom=True), True, False, FAIL, "code 137, killed for lack of memory"),
        (inspect(), inspect("dead", 1, error="driver failed"), False, False, FAIL, "is dead with code 1, Docker says: driver failed"),
        (inspect(restarts=1), inspect("exited", 3, restarts=3), True, False, FAIL, "restarted 2 times by its restart policy first"),
        (inspect(), inspect("restarting", 3, restarts=1), True, False, FAIL,
         "keeps exiting: Docker is restarting it (last exit code 3, restarted 1 time"),
        (inspect(restarts=2), inspect("running", 3, restarts=3), True, True, FAIL,
         "exited and was restarted 1 time by its restart policy since the gate started"),
        (inspect(), inspect(health="unhealthy", probe="curl: (7) refused"), True, True, FAIL,
         "is unhealthy (Docker's health check, its last probe said 'curl: (7) refused')"),
        (inspect(), inspect("paused"), True, False, FAIL, "is paused"),
        # waits
        (inspect("created"), inspect("created"), True, False, WAIT, "is created, not running yet"),
        (inspect(), inspect(), True, False, WAIT, "does not answer its health URL with 200 yet"),
        (inspect(), inspect(health="starting"), False, False, WAIT, "HEALTHCHECK has not reported healthy yet"),
        # passes
        (inspect(), inspect(health="starting"), True, True, HEALTHY, "answers its health URL"),
        (inspect(), inspect(health="healthy"), True, True, HEALTHY, "answers"),
        (inspect(), inspect(), False, False, HEALTHY, "runs"),
        (inspect(), inspect(health="healthy"), False, False, HEALTHY, "runs and is healthy"),
        # restarts before the gate started are not held against a container that runs now (an unchanged one)
        (inspect(restarts=4), inspect(restarts=4), True, True, HEALTHY, "answers"),
    ],
)  # fmt: skip
def test_judge(first, now, wants_http, http_ok, verdict, words):
    got, why = judge(engine_state(first), engine_state(now), wants_http, http_ok)
    assert (got, words in why) == (verdict, True), why


class Script:
    """A scripted run of the gate: a clock that moves only when the gate sleeps or asks a URL (0.05 s),
    the engine states each container shows in turn (the last one stays), and what each URL answers in turn."""

    def __init__(self, states, answers=None):
        self.now = 100.0
        self.states = {name: list(seq) for name, seq in states.items()}
        self.answers = {url: list(seq) for url, seq in (answers or {}).items()}
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def look(self, name):
        seq = self.states[name]
        return engine_state(seq.pop(0) if len(seq) > 1 else seq[0])

    def probe(self, url, seconds):
        assert 0 < seconds <= 2.0
        self.now += 0.05
        seq = self.answers[url]
        status = seq.pop(0) if len(seq) > 1 else seq[0]
        return status == 200, "HTTP %d" % status if status else "connection refused"

    def run(self, containers, timeout=60, interval=0.5):
        return run_gate(containers, self.look, self.probe, self.clock, self.sleep, timeout, interval)


WEB = {"name": "shop-web-r2", "url": "http://10.0.0.5:8000/api/health/"}
FRONT = {"name": "shop-frontend-r2", "url": "http://10.0.0.6:80/healthz"}


def test_healthy_when_every_container_answers_each_timed_from_the_start():
    script = Script(
        {WEB["name"]: [inspect(health="starting")], FRONT["name"]: [inspect()]},
        {WEB["url"]: [0, 0, 503, 200], FRONT["url"]: [200]},
    )
    gate = script.run([WEB, FRONT])
    assert gate["ok"] and not gate["failed"] and not gate["timed_out"]
    by_name = {c["name"]: c for c in gate["containers"]}
    assert by_name[FRONT["name"]]["seconds"] == 0.1 and by_name[FRONT["name"]]["answer"] == "HTTP 200"
    assert by_name[WEB["name"]] == {"name": WEB["name"], "url": WEB["url"], "state": "running", "health": "starting",
                                    "seconds": 1.7, "answer": "HTTP 200"}  # fmt: skip
    assert script.slept == [0.5, 0.5, 0.5] and gate["waited"] == 1.7


def test_a_container_that_exits_fails_at_the_next_look_not_at_the_timeout():
    script = Script({WEB["name"]: [inspect(), inspect("restarting", 3, restarts=1)], FRONT["name"]: [inspect()]},
                    {WEB["url"]: [0], FRONT["url"]: [200]})  # fmt: skip
    gate = script.run([WEB, FRONT], timeout=240)
    assert not gate["ok"] and not gate["timed_out"]
    assert [f["name"] for f in gate["failed"]] == [WEB["name"]] and "keeps exiting" in gate["failed"][0]["reason"]
    assert gate["waited"] < 1


def test_a_container_that_passed_is_still_watched_while_the_others_start():
    script = Script(
        {FRONT["name"]: [inspect(), inspect(), inspect("exited", 1)], WEB["name"]: [inspect()]},
        {WEB["url"]: [0], FRONT["url"]: [200]},
    )
    gate = script.run([FRONT, WEB])
    assert [f["name"] for f in gate["failed"]] == [FRONT["name"]] and "exited with code 1" in gate["failed"][0]["reason"]


def test_without_a_url_running_is_enough_unless_the_image_has_a_healthcheck():
    worker = {"name": "shop-worker-r2", "url": ""}
    gate = Script({worker["name"]: [inspect()]}).run([worker])
    assert gate["ok"] and gate["containers"][0]["seconds"] == 0.0
    script = Script({worker["name"]: [inspect(health="starting"), inspect(health="starting"), inspect(health="healthy")]})
    gate = script.run([worker])
    assert gate["ok"] and gate["containers"][0]["seconds"] == 1.0


def test_timeout_names_what_each_late_container_last_answered():
    script = Script({WEB["name"]: [inspect()], FRONT["name"]: [inspect()]}, {WEB["url"]: [503], FRONT["url"]: [200]})
    gate = script.run([WEB, FRONT], timeout=3, interval=1)
    assert not gate["ok"] and gate["timed_out"]
    assert gate["failed"] == [
        {"name": WEB["name"], "reason": "runs, but does not answer its health URL with 200 yet (last answer: HTTP 503)"}
    ]
    assert 3 <= gate["waited"] <= 3.5 and sum(script.slept) <= 3


def test_last_lines_keeps_the_end_cut_and_clean():
    text = "one\r\ntwo\n\x1b[31mred\x1b[0m\n" + "x" * 500 + "\n\n"
    assert last_lines(text, 3) == ["two", "red", "x" * 397 + "..."]
    assert last_lines(text, 0) == [] and last_lines("", 5) == []


def test_failure_message_names_the_container_what_happened_and_its_log_lines():
    failed = {"name": "shop-web-r2", "reason": "keeps exiting: Docker is restarting it (last exit code 3, restarted 2 times so far)"}
    message = failure_message(failed, 0.4, False, 60, ["injected failure: this container does not start"] * 2)
    assert message == (
        "Container shop-web-r2 keeps exiting: Docker is restarting it (last exit code 3, restarted 2 times so far), 0.4 s into the "
        "health gate. Its last 2 log lines (stdout and stderr):\n"
        "  injected failure: this container does not start\n  injected failure: this container does not start"
    )
    late = failure_message({"name": "shop-web-r2", "reason": "runs, but ..."}, 60.2, True, 60, [])
    assert late == "Container shop-web-r2 was not healthy after the health gate's 60 s: it runs, but .... It logged nothing."
    assert failure_message(failed, 1, False, 60, [], "logging driver none").endswith("Its logs cannot be read: logging driver none")


# --- workers: a settle time, or a health command; and health URLs that redirect -----------------------------
WORKER = {"name": "shop-worker-r2-1a2b3c4d-1", "url": "", "settle": 2}


def test_a_worker_without_a_check_passes_once_it_kept_running_for_its_settle_time():
    gate = Script({WORKER["name"]: [inspect()]}).run([WORKER])
    assert gate["ok"] and gate["containers"][0]["seconds"] == 2.0


def test_a_worker_that_dies_while_it_settles_fails_at_once():
    script = Script({WORKER["name"]: [inspect(), inspect(), inspect("exited", 1)]})
    gate = script.run([WORKER], timeout=60)
    assert not gate["ok"] and not gate["timed_out"] and "exited with code 1" in gate["failed"][0]["reason"]
    assert gate["waited"] == 1.0


def test_a_worker_that_settles_longer_than_the_gate_waits_says_so():
    gate = Script({WORKER["name"]: [inspect()]}).run([dict(WORKER, settle=10)], timeout=3, interval=1)
    assert gate["timed_out"] and "runs, for 3 of the 10 s it must keep running (its settle time)" in gate["failed"][0]["reason"]


def test_a_worker_with_a_health_command_passes_when_it_exits_0():
    runs = []

    def execute(name, command, seconds):
        runs.append((name, command))
        return (True, "health command exited 0") if len(runs) == 3 else (False, "health command exited 1")

    script = Script({"shop-beat-r2-1": [inspect(health="starting")]})
    checked = {"name": "shop-beat-r2-1", "command": ["celery", "inspect", "ping"]}
    gate = run_gate([checked], script.look, script.probe, script.clock, script.sleep, 60, 0.5, execute=execute)
    assert gate["ok"] and gate["containers"][0]["answer"] == "health command exited 0" and gate["containers"][0]["seconds"] == 1.0
    assert runs == [("shop-beat-r2-1", ["celery", "inspect", "ping"])] * 3
    never = run_gate([checked], script.look, script.probe, script.clock, script.sleep, 2, 0.5,
                     execute=lambda *a: (False, "health command exited 1"))  # fmt: skip
    assert never["timed_out"] and never["failed"][0]["reason"] == (
        "runs, but its health command has not exited 0 yet (last answer: health command exited 1)"
    )


def test_a_redirect_fails_the_gate_at_once_with_what_it_answered():
    answer = "answered 301 to https://10.0.0.5:8000/api/health/: the gate asks the container directly"

    def probe(url, seconds):
        return False, answer, True

    script = Script({WEB["name"]: [inspect()]})
    gate = run_gate([WEB], script.look, probe, script.clock, script.sleep, 60, 0.5)
    assert not gate["ok"] and not gate["timed_out"] and gate["waited"] == 0.0
    assert gate["failed"] == [{"name": WEB["name"], "reason": answer}]
    message = failure_message(gate["failed"][0], gate["waited"], False, 60, ["GET /api/health/ 301"])
    assert message.startswith("Container shop-web-r2 answered 301 to https://10.0.0.5:8000/api/health/")
