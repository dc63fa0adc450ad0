# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: smart_deploy_summary
type: aggregate
short_description: Summary table of a smart-deploy run, JSON run log and GitHub step summary
description:
  - Reads what the roles published with C(set_stats) under the key C(smart_deploy) and, at the end of
    the run, prints it as a table after the PLAY RECAP.
  - Writes the run as JSON into O(log_dir), one file per run - C(playbook), C(started), C(seconds), C(summary),
    C(recap) per host, C(steps) and C(roles) - when the roles published a summary.
  - C(steps) lists every task run, in the order the tasks started, one entry per task and host (a loop is
    one entry, ending with its last item), with C(role) (null outside a role), C(task), C(host), C(start)
    and C(end) (ISO 8601, UTC, milliseconds), C(seconds) and C(status) (ok, changed, skipped, failed,
    ignored for a failure with C(ignore_errors), unreachable). A failure a C(rescue) section handled is
    C(failed) here and counted as rescued in C(recap). Nothing of a task's result but its status is kept,
    neither output nor arguments nor messages.
  - C(roles) holds the seconds spent in each role, the tasks outside any role under the key "(playbook)"; each
    task counts from its start to the end of its last host.
  - When C(GITHUB_STEP_SUMMARY) is set (GitHub Actions), appends the summary there as Markdown - the table,
    then the deploy as a picture, a Mermaid gantt of C(steps) (C(module_utils/smart_deploy/gantt.py)).
  - Neither the summary, the run log nor the step summary carries the values of production rows that
    PostgreSQL's messages hold (Key (name)=(…) is duplicated, Failing row contains (…)); they are replaced by
    C(…) (C(module_utils/smart_deploy/redact.py)), the values stay in the validation report on the target.
requirements:
  - enable in ansible.cfg (callbacks_enabled = smart_deploy_summary)
options:
  log_dir:
    description: Folder of the JSON run logs; empty disables them.
    type: path
    default: ~/.local/state/smart-deploy/logs
    env:
      - name: SMART_DEPLOY_LOG_DIR
"""

import datetime
import importlib.util
import json
import os
from pathlib import Path

from ansible.plugins.callback import CallbackBase


def _load(name):
    """module_utils/smart_deploy/<name>.py (pure logic, unit-tested on its own): loaded by its path, like the
    rules of the action plugins."""
    spec = importlib.util.spec_from_file_location(
        "smart_deploy_%s" % name, Path(__file__).resolve().parents[2] / "module_utils" / "smart_deploy" / ("%s.py" % name)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timeline = _load("timeline")  # the start and end of every task
gantt = _load("gantt")  # the deploy as a picture
redact = _load("redact")  # no row values in what is recorded

ORDER = ("app", "host", "release", "live_before", "previous", "kind", "outcome", "failure")
STEP_ORDER = ("changes", "build", "tests", "validation", "backup", "migrations", "switch", "live database", "health")


def validation_rows(validation):
    """Rows for what the migration checks published: warnings (never stop a deploy), reasons accepted with
    smart_deploy_accept (and by whom), accepted codes that did not occur (harmless), abort reasons with their codes,
    migrations the old release cannot live with (breaking) with what the deploy did about them."""
    rows = []
    if not isinstance(validation, dict):
        return rows
    for message in validation.get("warnings") or []:
        rows.append(("warning", message))
    for item in validation.get("accepted") or []:
        rows.append(("ACCEPTED", "%s by %s: %s" % (item.get("code", "?"), item.get("by", "?"), item.get("reason", ""))))
    if validation.get("accepted_unused"):
        rows.append(("accept unused", "%s: did not occur in this deploy (nothing to accept)" % ", ".join(validation["accepted_unused"])))
    for item in validation.get("abort_reasons") or []:
        rows.append(("abort reason", "%s: %s" % (item.get("code", "?"), item.get("reason", ""))))
    # operations the old release cannot live with, and what the deploy did with them (refused, allowed, reported)
    gate = validation.get("breaking_gate") or "?"
    for message in validation.get("breaking") or []:
        rows.append(("breaking (%s)" % gate, message))
    return rows


def rows_of(summary):
    rows = []
    for key in ORDER:
        if key in summary and key != "outcome":
            rows.append((key, summary[key]))
    for key in STEP_ORDER:
        if key in summary.get("steps", {}):
            rows.append((key, summary["steps"][key]))
    for key, value in summary.get("steps", {}).items():
        if key not in STEP_ORDER:
            rows.append((key, value))
    rows += validation_rows(summary.get("validation"))
    for key, value in summary.items():
        if key not in ORDER and key not in ("steps", "new_release", "validation"):
            rows.append((key, value))
    rows.append(("outcome", summary.get("outcome", "unknown (the run stopped early)")))
    return [(str(k), " ".join(str(v).split())) for k, v in rows]


def table(title, rows, width=110):
    key_width = max(len(k) for k, _ in rows)
    value_width = max(20, min(width - key_width - 7, max(len(v) for _, v in rows)))
    border = "+-%s-+-%s-+" % ("-" * key_width, "-" * value_width)
    lines = [title, border]
    for key, value in rows:
        chunks = [value[i : i + value_width] for i in range(0, len(value), value_width)] or [""]
        for index, chunk in enumerate(chunks):
            lines.append("| %s | %s |" % ((key if index == 0 else "").ljust(key_width), chunk.ljust(value_width)))
    lines.append(border)
    return "\n".join(lines)


def role_of(task):
    role = getattr(task, "_role", None)
    return None if role is None else str(role.get_name(include_role_fqcn=False))


def name_of(task):
    return str(task.name or task.action)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "smart_deploy_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.clock = timeline.monotonic_wall_clock()
        self.started = self.clock()
        self.playbook = None
        self.timeline = timeline.Timeline(self.clock)

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(playbook._file_name)

    # --- the steps: names, hosts, times and statuses only, never anything of a result -------------------
    def v2_playbook_on_task_start(self, task, is_conditional):
        self.timeline.start(task._uuid, role_of(task), name_of(task))

    def v2_playbook_on_handler_task_start(self, task):
        self.timeline.start(task._uuid, role_of(task), name_of(task))

    def _ended(self, result, status):
        self.timeline.end(result.task._uuid, result.host.get_name(), status)

    def v2_runner_on_ok(self, result):
        self._ended(result, "changed" if result.is_changed() else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._ended(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._ended(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._ended(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        summary = (stats.custom.get("_run") or {}).get("smart_deploy")
        if not summary:
            return
        # the roles publish no row values; this holds for whatever a hook or a future role publishes too
        summary = redact.redact(summary)
        seconds = self.clock() - self.started
        verb = (self.playbook or "run").rsplit(".", 1)[0]
        title = "SMART-DEPLOY %s of %s, %.1f s" % (verb, summary.get("app", "?"), seconds)
        self._display.display("\n" + table(title, rows_of(summary)))

        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        record = dict(
            playbook=self.playbook,
            started=datetime.datetime.fromtimestamp(self.started, datetime.timezone.utc).isoformat(),
            seconds=round(seconds, 1),
            summary=summary,
            recap=recap,
            steps=self.timeline.steps(),
            roles=self.timeline.roles(),
        )
        self._write_log(record)
        self._write_github_summary(title, summary, record)

    def _write_log(self, record):
        log_dir = self.get_option("log_dir")
        if not log_dir:
            return
        try:
            os.makedirs(log_dir, mode=0o700, exist_ok=True)
            stamp = record["started"][:19].replace(":", "").replace("-", "")
            path = os.path.join(log_dir, "%s-%s-%s.json" % (stamp, record["summary"].get("app", "app"), record["playbook"]))
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=2, sort_keys=True, default=str)
            self._display.display("run log: %s" % path)
        except OSError as exc:
            self._display.warning("smart_deploy_summary: could not write the run log: %s" % exc)

    def _write_github_summary(self, title, summary, record):
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        lines = ["### %s" % title, "", "| | |", "|---|---|"]
        lines += ["| %s | %s |" % (k, v.replace("|", "\\|")) for k, v in rows_of(summary)]
        picture = gantt.markdown(record)
        if picture:
            lines += ["", "#### The run as a picture", "",
                      "Tasks of 0.5 s or more, shorter ones in a row folded, failed ones in red.", "", picture]  # fmt: skip
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n\n")
        except OSError as exc:
            self._display.warning("smart_deploy_summary: could not write the GitHub step summary: %s" % exc)
