"""The JSON run log's steps and role times: the Timeline on its own, then the callback in a real
ansible-playbook run on this machine (no Docker), through the project's strategy (Mitogen). The callback
runs in that subprocess only: importing Ansible's controller code here would turn the modules other
tests run in this process into controller code (their warnings would go to the display)."""

import datetime
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap

from ansible.module_utils.smart_deploy.timeline import Timeline, monotonic_wall_clock

from tests.conftest import ROOT

T0 = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC).timestamp()


def at(seconds):
    return T0 + seconds


def parsed(stamp):
    return datetime.datetime.fromisoformat(stamp)


# --- the Timeline ----------------------------------------------------------------------------------


def test_one_step_per_task_and_host_with_iso_times_in_milliseconds():
    timeline = Timeline()
    timeline.start("t1", "preflight", "Check the host", now=at(0))
    timeline.end("t1", "web1", "ok", now=at(1.2345))
    assert timeline.steps() == [
        {
            "role": "preflight",
            "task": "Check the host",
            "host": "web1",
            "start": "2026-11-29T12:00:00.000+00:00",
            "end": "2026-11-29T12:00:01.234+00:00",
            "seconds": 1.234,
            "status": "ok",
        }
    ]


def test_hosts_of_a_task_share_its_start_and_end_each_with_their_result():
    timeline = Timeline()
    timeline.start("t1", "build", "Build", now=at(0))
    timeline.end("t1", "web2", "changed", now=at(3))
    timeline.end("t1", "web1", "skipped", now=at(1))
    steps = timeline.steps()
    assert [(s["host"], s["seconds"], s["status"]) for s in steps] == [("web2", 3.0, "changed"), ("web1", 1.0, "skipped")]
    assert {s["start"] for s in steps} == {"2026-11-29T12:00:00.000+00:00"}
    # the role took as long as its slowest host, not the sum of the hosts
    assert timeline.roles() == {"build": 3.0}


def test_steps_keep_the_order_the_tasks_started_in():
    timeline = Timeline()
    for index, (role, task) in enumerate([("preflight", "Lock"), (None, "Set a fact"), ("release", "Start"), ("preflight", "Unlock")]):
        timeline.start("t%d" % index, role, task, now=at(index * 10))
        timeline.end("t%d" % index, "web1", "ok", now=at(index * 10 + index + 1))
    steps = timeline.steps()
    assert [s["task"] for s in steps] == ["Lock", "Set a fact", "Start", "Unlock"]
    assert [s["role"] for s in steps] == ["preflight", None, "release", "preflight"]
    starts = [parsed(s["start"]) for s in steps]
    assert starts == sorted(starts)


def test_role_times_add_up_its_tasks_even_when_other_roles_come_between():
    timeline = Timeline()
    timeline.start("lock", "preflight", "Lock", now=at(0))
    timeline.end("lock", "web1", "changed", now=at(2))
    timeline.start("fact", None, "Set a fact", now=at(2.5))
    timeline.end("fact", "web1", "ok", now=at(3))
    timeline.start("migrate", "migrate", "Apply", now=at(3))
    timeline.end("migrate", "web1", "changed", now=at(13))
    timeline.start("unlock", "preflight", "Unlock", now=at(20))
    timeline.end("unlock", "web1", "changed", now=at(21.5))
    assert timeline.roles() == {"preflight": 3.5, "(playbook)": 0.5, "migrate": 10.0}


def test_a_later_result_of_the_same_run_moves_its_end_and_status():
    timeline = Timeline()
    timeline.start("loop", None, "A loop", now=at(0))
    timeline.end("loop", "web1", "ok", now=at(1))
    timeline.end("loop", "web1", "failed", now=at(4))
    assert [(s["seconds"], s["status"]) for s in timeline.steps()] == [(4.0, "failed")]


def test_a_task_run_again_is_a_step_of_its_own():
    """A handler notified twice, a task file included twice: the same task, two runs."""
    timeline = Timeline()
    timeline.start("handler", "release", "Reload", now=at(0))
    timeline.end("handler", "web1", "changed", now=at(1))
    timeline.start("handler", "release", "Reload", now=at(5))
    timeline.end("handler", "web1", "changed", now=at(7))
    assert [s["seconds"] for s in timeline.steps()] == [1.0, 2.0]
    assert timeline.roles() == {"release": 3.0}


def test_results_without_a_start_and_tasks_without_results_leave_no_step():
    timeline = Timeline()
    timeline.end("unknown", "web1", "ok", now=at(1))
    timeline.start("none", "report", "Nobody ran this", now=at(2))
    assert timeline.steps() == [] and timeline.roles() == {}


def test_an_end_never_comes_before_its_start():
    timeline = Timeline()
    timeline.start("t", None, "Quick", now=at(5))
    timeline.end("t", "web1", "ok", now=at(4.9))
    step = timeline.steps()[0]
    assert step["seconds"] == 0.0 and step["start"] == step["end"]


def test_the_default_clock_is_wall_time_that_never_goes_back():
    clock = monotonic_wall_clock()
    readings = [clock() for _ in range(1000)]
    assert readings == sorted(readings)
    assert abs(readings[0] - datetime.datetime.now(datetime.UTC).timestamp()) < 5


# --- the callback in a real run ----------------------------------------------------------------------

SECRET = "CanaryTimeline-7f3a9c"
ROW_VALUE = "Canary Row Value 42"  # a production row's value, in a PostgreSQL message a role published

PLAYBOOK = """
- name: Timed
  hosts: all
  gather_facts: false
  vars:
    secret: %s
  tasks:
    - name: Outside any role
      ansible.builtin.debug:
        msg: "{{ secret }}"
    - name: The role
      ansible.builtin.import_role:
        name: timed
    - name: A loop
      ansible.builtin.command: "echo {{ item }} {{ secret }}"
      loop: [1, 2, 3]
      changed_when: false
    - name: Skipped
      ansible.builtin.debug:
        msg: never
      when: false
    - name: Ignored failure
      ansible.builtin.fail:
        msg: "failed with {{ secret }}"
      ignore_errors: true
    - name: A block
      block:
        - name: Fails
          ansible.builtin.fail:
            msg: "{{ secret }}"
      rescue:
        - name: Rescues
          ansible.builtin.debug:
            msg: rescued
    - name: Publish a summary
      ansible.builtin.set_stats:
        data:
          smart_deploy:
            app: timed
            failure: "Apply: IntegrityError: could not create unique index DETAIL:  Key (name)=(%s) is duplicated."
""" % (SECRET, ROW_VALUE)

ROLE_TASKS = """
- name: Sleep a little
  ansible.builtin.command: sleep 0.3
  changed_when: true
  notify: Say it slept
- name: Use the secret
  ansible.builtin.command: echo {{ secret }}
  no_log: true
"""

ROLE_HANDLERS = """
- name: Say it slept
  ansible.builtin.debug:
    msg: "slept with {{ secret }}"
"""


def test_a_real_run_logs_every_step_with_its_role_and_no_result(tmp_path):
    for relative, text in (
        ("play.yml", PLAYBOOK),
        ("roles/timed/tasks/main.yml", ROLE_TASKS),
        ("roles/timed/handlers/main.yml", ROLE_HANDLERS),
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(textwrap.dedent(text))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(tmp_path / "roles"),
        SMART_DEPLOY_LOG_DIR=str(tmp_path / "logs"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "step-summary.md")
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter=" + sys.executable,
            "play.yml",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert SECRET in result.stdout, "the run did show the secret; the log must not"

    [log] = (tmp_path / "logs").glob("*.json")
    text = log.read_text()
    assert SECRET not in text
    record = json.loads(text)
    assert [(s["role"], s["task"], s["status"]) for s in record["steps"]] == [
        (None, "Outside any role", "ok"),
        ("timed", "Sleep a little", "changed"),
        ("timed", "Use the secret", "changed"),
        (None, "A loop", "ok"),  # one step for the three items
        (None, "Skipped", "skipped"),
        (None, "Ignored failure", "ignored"),
        (None, "Fails", "failed"),  # rescued: the recap counts it so
        (None, "Rescues", "ok"),
        (None, "Publish a summary", "ok"),
        ("timed", "Say it slept", "ok"),  # the handler
    ]
    assert record["recap"]["localhost"]["rescued"] == 1
    for step in record["steps"]:
        assert set(step) == {"role", "task", "host", "start", "end", "seconds", "status"}
        assert step["host"] == "localhost"
        assert parsed(step["start"]) <= parsed(step["end"]) and step["seconds"] >= 0
        assert parsed(step["start"]).utcoffset() == datetime.timedelta(0) and len(step["start"].split(".")[1]) == len("123+00:00")
    for before, after in itertools.pairwise(record["steps"]):
        assert parsed(before["end"]) <= parsed(after["start"]), "one host, one task at a time"
    assert record["steps"][1]["seconds"] >= 0.3
    assert set(record["roles"]) == {"timed", "(playbook)"} and record["roles"]["timed"] >= 0.3
    assert sum(record["roles"].values()) <= record["seconds"] + 0.1

    # the step summary: the table, then the same steps as a Mermaid gantt; no row value in either, nor in the log
    summary = (tmp_path / "step-summary.md").read_text()
    assert "### SMART-DEPLOY play of timed" in summary and "| failure | Apply" in summary
    assert summary.index("| outcome |") < summary.index("#### The run as a picture") < summary.index("```mermaid\n")
    chart = summary.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    assert chart.startswith("gantt\n") and "    dateFormat x\n" in chart and "    axisFormat %M:%S\n" in chart
    assert [line.split(" ", 6)[5] for line in chart.splitlines() if line.startswith("    section ")] == ["(playbook)", "timed"]
    assert re.search(r"^    Fails \(\d\.\d s\) :crit, \d+, \d+$", chart, re.M), "the failed task is a bar of its own, in red"
    assert SECRET not in summary
    assert ROW_VALUE not in summary and ROW_VALUE not in text
    assert "Key (name)=(\u2026) is duplicated" in summary and "Key (name)=(\u2026) is duplicated" in record["summary"]["failure"]
