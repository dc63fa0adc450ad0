# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate of new containers: what the Docker engine, each health URL and each health command say,
judged. Pure logic.

A container passes when it runs, Docker does not call it unhealthy, its health URL (when it has one) answers
200 itself, its health command (a worker's, when it has one) exits 0 inside it, and - a worker without a
health command - it kept running for its settle time. It fails at once - no point waiting out a timeout -
when it exited, died, is being restarted by its restart policy or was restarted since the gate started,
Docker calls it unhealthy, or its health URL answered a redirect (the gate never follows one: an app that
sends HTTP to HTTPS answers ``301 to https://...`` in milliseconds, and will answer the same at the timeout).

The engine state kept of a container is a handful of fields of its inspect (``engine_state``): never its
configuration, whose environment holds the app's secrets.

Standard library only, so the module (``container_health_gate``) and the unit tests share this file.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

HEALTHY = "healthy"
WAIT = "wait"
FAIL = "fail"

# a line of a container's log longer than this is cut (a stack trace line, a JSON dump)
LOG_LINE_WIDTH = 400
# what is kept of the output of Docker's last health probe
PROBE_OUTPUT_WIDTH = 300


def engine_state(inspect: Optional[dict]) -> Optional[dict]:
    """What the gate needs of a container's inspect (``docker inspect``, ``GET /containers/<name>/json``),
    and nothing else: its configuration (environment included) is left behind. None: no such container."""
    if inspect is None:
        return None
    state = inspect.get("State") or {}
    health = state.get("Health") or {}
    probes = health.get("Log") or []
    status = state.get("Status") or ("running" if state.get("Running") else "unknown")
    return {
        "status": status,
        "restarting": bool(state.get("Restarting")) or status == "restarting",
        "exit_code": state.get("ExitCode"),
        "oom_killed": bool(state.get("OOMKilled")),
        "error": str(state.get("Error") or ""),
        "restart_count": int(inspect.get("RestartCount") or 0),
        # None when the image has no HEALTHCHECK (or it is disabled)
        "health": health.get("Status") or None,
        "probe_output": " ".join(str((probes[-1] or {}).get("Output") or "").split())[:PROBE_OUTPUT_WIDTH] if probes else "",
        "tty": bool((inspect.get("Config") or {}).get("Tty")),
    }


def plural(count: int, word: str) -> str:
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def exit_words(now: dict) -> str:
    """'code 3', 'code 137, killed for lack of memory', with Docker's own error when it has one."""
    words = "code %s" % now.get("exit_code")
    if now.get("oom_killed"):
        words += ", killed for lack of memory"
    if now.get("error"):
        words += ", Docker says: %s" % now["error"]
    return words


def judge(
    first: Optional[dict],
    now: Optional[dict],
    wants_http: bool,
    http_ok: bool,
    refused: str = "",
    settling: str = "",
    check: str = "health URL",
) -> Tuple[str, str]:
    """The verdict on one container: (HEALTHY | WAIT | FAIL, why) from its engine state when the gate
    started (``first``), now (``now``), and whether its check - its health URL, or a worker's health command
    (``check`` names which) - passed (when it has one). ``refused``: why its check failed for good (a health
    URL that answered a redirect); ``settling``: why a running container without a check has not run long
    enough yet (a worker's settle time).

    Docker's own health status: 'unhealthy' fails; 'starting' does not hold back a container whose
    check passes (the check is the gate - Docker's first probe only comes after the image's
    HEALTHCHECK interval, 30 s by default); a container without a check waits for 'healthy' when its
    image has a HEALTHCHECK, the only sign of readiness there is, and is ready once running otherwise.
    """
    if now is None:
        return FAIL, "does not exist (it was never created, or was removed while the gate waited)"
    status = now["status"]
    restarts = now["restart_count"] - (first or now)["restart_count"]
    if status in ("exited", "dead"):
        again = " (restarted %s by its restart policy first)" % plural(restarts, "time") if restarts > 0 else ""
        return FAIL, "%s with %s%s" % ("exited" if status == "exited" else "is dead", exit_words(now), again)
    if now["restarting"]:
        return FAIL, "keeps exiting: Docker is restarting it (last exit %s, restarted %s so far)" % (
            exit_words(now),
            plural(now["restart_count"], "time"),
        )
    if restarts > 0:  # it runs again: Docker has already forgotten the exit code, its logs tell why
        return FAIL, "exited and was restarted %s by its restart policy since the gate started" % plural(restarts, "time")
    if now["health"] == "unhealthy":
        probe = ", its last probe said %r" % now["probe_output"] if now["probe_output"] else ""
        return FAIL, "is unhealthy (Docker's health check%s)" % probe
    if status in ("paused", "removing"):
        return FAIL, "is %s" % status
    if status != "running":
        return WAIT, "is %s, not running yet" % status
    if refused:
        return FAIL, refused
    if wants_http:
        if check == "health URL":
            return (HEALTHY, "answers its health URL") if http_ok else (WAIT, "runs, but does not answer its health URL with 200 yet")
        return (HEALTHY, "passes its %s" % check) if http_ok else (WAIT, "runs, but its %s has not exited 0 yet" % check)
    if now["health"] == "starting":
        return WAIT, "runs, its image's HEALTHCHECK has not reported healthy yet"
    if settling:
        return WAIT, settling
    return HEALTHY, "runs" + (" and is healthy" if now["health"] == "healthy" else "")


def run_gate(
    containers: List[dict],
    look: Callable[[str], Optional[dict]],
    probe: Callable[[str, float], tuple],
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
    timeout: float,
    interval: float,
    http_timeout: float = 2.0,
    execute: Optional[Callable[[str, List[str], float], Tuple[bool, str]]] = None,
) -> dict:
    """Poll every container until all are healthy, one fails, or ``timeout`` seconds went by.

    ``containers``: [{name, url, command, settle}] (url '' = no HTTP check; command: a worker's health command,
    argv run inside it; settle: seconds a container without a check must keep running, 0 by default);
    ``look(name)``: its ``engine_state`` now (None: absent); ``probe(url, seconds)``: (answered 200, what it
    answered[, final]) - final: the answer will not change (a redirect), the container fails at once;
    ``execute(name, command, seconds)``: (exited 0, what it did) of the health command. A container that passed
    is still looked at in every later round (it must not die while the others start) but not probed again.

    Returns {ok, waited, failed: [{name, reason}], containers: [{name, url, state, health, seconds, answer}]}:
    ``seconds`` from the start of the gate to the container passing (None when it did not), ``waited``
    from the start to the end of the gate.
    """
    start = clock()
    first: Dict[str, Optional[dict]] = {}
    running_since: Dict[str, float] = {}
    report = {c["name"]: {"name": c["name"], "url": c.get("url") or "", "state": "unknown", "health": None, "seconds": None, "answer": ""}
              for c in containers}  # fmt: skip
    reasons: Dict[str, str] = {}
    while True:
        reasons = {}
        failed = []
        for container in containers:
            name, url, command = container["name"], container.get("url") or "", container.get("command") or []
            settle = float(container.get("settle") or 0)
            entry = report[name]
            now = look(name)
            if name not in first:
                first[name] = now
            entry["state"] = now["status"] if now else "absent"
            entry["health"] = now["health"] if now else None
            check_ok, refused, settling = entry["seconds"] is not None, "", ""
            running = now is not None and now["status"] == "running" and not now["restarting"]
            if running and not check_ok:
                remaining = timeout - (clock() - start)
                if url:
                    answer = probe(url, max(0.1, min(http_timeout, remaining)))
                    check_ok, entry["answer"] = answer[0], answer[1]
                    refused = entry["answer"] if len(answer) > 2 and answer[2] and not check_ok else ""
                elif command and execute is not None:
                    check_ok, entry["answer"] = execute(name, command, max(0.1, remaining))
                elif settle > 0:
                    since = running_since.setdefault(name, clock())
                    if clock() - since < settle:
                        settling = "runs, for %s of the %s s it must keep running (its settle time)" % (
                            fmt_seconds(round(clock() - since, 1)),
                            fmt_seconds(settle),
                        )
            check = "health URL" if url or not command else "health command"
            verdict, reason = judge(first[name], now, bool(url) or bool(command and execute), check_ok, refused, settling, check)
            reasons[name] = reason
            if verdict == FAIL:
                failed.append({"name": name, "reason": reason})
            elif verdict == HEALTHY and entry["seconds"] is None:
                entry["seconds"] = round(clock() - start, 1)
        waited = round(clock() - start, 1)
        if failed:
            return {"ok": False, "timed_out": False, "waited": waited, "failed": failed, "containers": list(report.values())}
        if all(entry["seconds"] is not None for entry in report.values()):
            return {"ok": True, "timed_out": False, "waited": waited, "failed": [], "containers": list(report.values())}
        remaining = timeout - (clock() - start)
        if remaining <= 0:
            late = [
                {"name": name, "reason": reasons[name] + ((" (last answer: %s)" % entry["answer"]) if entry["answer"] else "")}
                for name, entry in report.items()
                if entry["seconds"] is None
            ]
            return {"ok": False, "timed_out": True, "waited": waited, "failed": late, "containers": list(report.values())}
        sleep(min(interval, remaining))


def last_lines(text: str, count: int, width: int = LOG_LINE_WIDTH) -> List[str]:
    """The last ``count`` lines of ``text`` (a container's log), each cut at ``width`` characters,
    without the carriage returns and colour codes a terminal would have swallowed."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = strip_escapes(line.rstrip("\r"))
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-count:] if count > 0 else []


def strip_escapes(line: str) -> str:
    """``line`` without ANSI escape sequences (colours) and other control characters but tabs."""
    out, index = [], 0
    while index < len(line):
        char = line[index]
        if char == "\x1b":
            index += 1
            if index < len(line) and line[index] == "[":
                index += 1
                while index < len(line) and not ("@" <= line[index] <= "~"):
                    index += 1
            index += 1
            continue
        if char == "\t" or ord(char) >= 32:
            out.append(char)
        index += 1
    return "".join(out)


def failure_message(failed: dict, waited: float, timed_out: bool, timeout: float, logs: Optional[List[str]], log_error: str = "") -> str:
    """What the user reads about one container that failed the gate: which, why, when, and its last log lines."""
    if timed_out:
        head = "Container %s was not healthy after the health gate's %s s: it %s." % (
            failed["name"],
            fmt_seconds(timeout),
            failed["reason"],
        )
    else:
        head = "Container %s %s, %s s into the health gate." % (failed["name"], failed["reason"], fmt_seconds(waited))
    if log_error:
        return "%s Its logs cannot be read: %s" % (head, log_error)
    if not logs:
        return "%s It logged nothing." % head
    return "%s Its last %s (stdout and stderr):\n%s" % (head, plural(len(logs), "log line"), "\n".join("  " + line for line in logs))


def fmt_seconds(seconds: float) -> str:
    return ("%.1f" % seconds).rstrip("0").rstrip(".") if seconds != int(seconds) else "%d" % seconds
