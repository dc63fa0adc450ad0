# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy as a picture: a Mermaid gantt of a run's steps (the ``steps`` of the JSON run log, see
timeline.py), and an HTML page of several of them. Pure logic, self-contained (the callback loads this file by
its path; ``deploy_picture`` imports it).

- one section per role, in the order the roles first ran (tasks outside any role: ``(playbook)``), its
  seconds in the section's name;
- a bar per task that took ``min_seconds`` or more (one bar per task run: a task run on several hosts spans
  from its start to the end of its last host), its duration in its label, ``crit`` when it failed or a host
  was unreachable;
- the shorter tasks that ran one after another in the same role folded into one bar ("7 short tasks") that
  spans exactly from the first one's start to the last one's end: the role-level picture stays exact;
- ``dateFormat x`` (milliseconds since the epoch), ``axisFormat %M:%S``.

Task names go through ``label()``: what Mermaid's gantt syntax breaks on (``:``, ``#``, ``;``, newlines, a
leading ``%`` that makes a comment, a leading keyword such as ``section`` or ``excludes``, backquotes that would
close the Markdown fence) is replaced. Checked with Mermaid 11's own parser.
"""

from __future__ import annotations

import datetime
import html

OUTSIDE_ROLES = "(playbook)"
FAILED = ("failed", "unreachable")
MAX_LABEL = 70
# words that start a statement of a gantt chart: a task name must not begin with one
KEYWORDS = (
    "accdescr", "acctitle", "axisformat", "click", "dateformat", "excludes", "gantt", "includes",
    "inclusiveenddates", "section", "tickinterval", "title", "todaymarker", "topaxis", "weekday", "weekend",
)  # fmt: skip
MERMAID_JS = "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs"


def label(text, limit=MAX_LABEL) -> str:
    """``text`` as a gantt task or section name: one line, none of ``: # ;`` nor backquotes, not starting with
    a keyword nor with ``%`` (a comment), at most ``limit`` characters."""
    text = " ".join(str(text if text is not None else "").split())  # newlines and runs of spaces: one space
    text = text.replace(":", "\u2236").replace("#", "\u266f").replace(";", ",").replace("`", "'")
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    if not text or text.startswith("%") or text.split(" ", 1)[0].lower().rstrip(",") in KEYWORDS:
        text = "\u00b7 " + text
    return text


def millis(iso_time) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (the run log's ``start`` and ``end``)."""
    moment = datetime.datetime.fromisoformat(str(iso_time).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(round(moment.timestamp() * 1000))


def duration(seconds) -> str:
    if seconds >= 60:
        return "%d min %02d s" % (seconds // 60, round(seconds % 60))
    return "%.1f s" % seconds


def task_runs(steps) -> list:
    """The run log's steps (one per task and host) as task runs, in the order they started:
    dicts of role, task, start, end (ms), hosts, failed."""
    runs, index = [], {}
    for step in steps or []:
        try:
            start, end = millis(step["start"]), millis(step["end"])
        except (KeyError, TypeError, ValueError):
            continue  # a step without its times cannot be drawn
        role = step.get("role") or OUTSIDE_ROLES
        key = (role, step.get("task"), start)
        if key not in index:
            index[key] = len(runs)
            runs.append({"role": role, "task": step.get("task") or "?", "start": start, "end": end, "hosts": [], "failed": False})
        run = runs[index[key]]
        run["end"] = max(run["end"], end)
        run["hosts"].append(step.get("host"))
        run["failed"] = run["failed"] or step.get("status") in FAILED
    runs.sort(key=lambda run: run["start"])
    return runs


def bars(runs, min_seconds=0.5) -> list:
    """(role, bars) per role in the order the roles first ran; a bar is a dict of name, start, end, crit.
    Short runs that follow each other in the same role (no other role's task between) make one bar."""
    sections = {}
    previous_role, fold = None, None
    for run in runs:
        role = run["role"]
        section = sections.setdefault(role, [])
        long_enough = (run["end"] - run["start"]) >= min_seconds * 1000
        if long_enough or run["failed"]:
            section.append({"name": run["task"], "start": run["start"], "end": run["end"], "crit": run["failed"], "count": 1})
            fold = None
        else:
            if fold is None or previous_role != role:
                fold = {"name": None, "start": run["start"], "end": run["end"], "crit": False, "count": 0, "first": run["task"]}
                section.append(fold)
            fold["end"] = max(fold["end"], run["end"])
            fold["count"] += 1
        previous_role = role
    for section in sections.values():
        for bar in section:
            if bar["name"] is None:
                bar["name"] = bar.pop("first") if bar["count"] == 1 else "%d short tasks" % bar["count"]
            bar.pop("first", None)
    return list(sections.items())


def role_seconds(runs) -> dict:
    """Seconds per role, as the run log's ``roles``: each task run from its start to the end of its last host."""
    totals = {}
    for run in runs:
        totals[run["role"]] = totals.get(run["role"], 0) + (run["end"] - run["start"])
    return {role: ms / 1000.0 for role, ms in totals.items()}


def title_of(record) -> str:
    summary = record.get("summary") or {}
    verb = str(record.get("playbook") or "run").rsplit(".", 1)[0]
    words = [verb, "of", str(summary.get("app", "?"))]
    if summary.get("release"):
        words.append(str(summary["release"]))
    if record.get("started"):
        words.append("on %s UTC" % str(record["started"])[:19].replace("T", " "))
    text = " ".join(words)
    if record.get("seconds") is not None:
        text += ", %s" % duration(float(record["seconds"]))
    if summary.get("outcome"):
        text += ", %s" % summary["outcome"]
    return text


def gantt(record, min_seconds=0.5) -> str:
    """The Mermaid gantt (text) of one run log record (``steps``, and ``summary``, ``playbook``, ``started``,
    ``seconds`` for the title); empty when the record has no steps with times."""
    runs = task_runs(record.get("steps"))
    if not runs:
        return ""
    seconds = role_seconds(runs)
    lines = ["gantt", "    title %s" % label(title_of(record), limit=160)]
    lines += ["    dateFormat x", "    axisFormat %M:%S", "    todayMarker off"]
    for role, section in bars(runs, min_seconds):
        lines.append("    section %s %s" % (label(role, limit=40), duration(seconds[role])))
        for bar in section:
            end = max(bar["end"], bar["start"] + 1)  # a bar of no length is not drawn
            tags = "crit, " if bar["crit"] else ""
            name = "%s (%s)" % (label(bar["name"]), duration((bar["end"] - bar["start"]) / 1000.0))
            lines.append("    %s :%s%d, %d" % (name, tags, bar["start"], end))
    return "\n".join(lines)


def markdown(record, min_seconds=0.5) -> str:
    """The gantt in a Markdown fence (GitHub renders ``mermaid`` fences, step summaries included)."""
    chart = gantt(record, min_seconds)
    return "```mermaid\n%s\n```" % chart if chart else ""


DEPLOY_PLAYBOOKS = ("deploy.yml",)  # emergency deploys run deploy.yml too


def last_deploys(records, apps, last) -> list:
    """The newest ``last`` deploys of each app in ``apps`` among run log records, newest first (app by app, in
    the order given): runs of deploy.yml whose summary names the app."""
    chosen = []
    for app in apps:
        runs = [
            r
            for r in records
            if isinstance(r, dict) and r.get("playbook") in DEPLOY_PLAYBOOKS and (r.get("summary") or {}).get("app") == app
        ]
        runs.sort(key=lambda r: str(r.get("started", "")), reverse=True)
        chosen += runs[: max(0, int(last))]
    return chosen


def html_page(records, app, min_seconds=0.5) -> str:
    """A self-contained HTML page: one ``<pre class="mermaid">`` per run log record (newest first), drawn by the
    Mermaid script when it can be loaded; without it, the charts' text stays readable."""
    heading = "The last deploy of %s" % app if len(records) == 1 else "The last %d deploys of %s" % (len(records), app)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>%s</title>" % html.escape("smart-deploy: the last deploys of %s" % app),
        "<style>body{font-family:sans-serif;margin:2em}pre.mermaid{background:#f6f8fa;padding:1em;overflow-x:auto}</style>",
        "</head>",
        "<body>",
        "<h1>%s</h1>" % html.escape(heading),
        "<p>Each chart is a Mermaid gantt of a deploy's steps (bars of 0.5 s or more, shorter steps folded,"
        " failed steps in red). Drawing them needs the Mermaid script (%s); offline, the text below is the chart.</p>"
        % html.escape(MERMAID_JS),
    ]
    if not records:
        parts.append("<p>No run logs of deploys of this app on this controller.</p>")
    for record in records:
        parts.append("<h2>%s</h2>" % html.escape(title_of(record)))
        chart = gantt(record, min_seconds)
        if chart:
            parts.append('<pre class="mermaid">\n%s\n</pre>' % html.escape(chart, quote=False))
        else:
            parts.append("<p>No steps recorded.</p>")
    parts += [
        '<script type="module">',
        "import mermaid from '%s';" % MERMAID_JS,
        "mermaid.initialize({ startOnLoad: true, securityLevel: 'strict' });",
        "</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
