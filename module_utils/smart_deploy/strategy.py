# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""normal / fake / abort, decided from a rehearsal report. Pure logic, no I/O.

- abort: a pre-check failed, the copy was not faithful, the rehearsal could not run, a migration
  failed on the copy (anything but a proven fake), the copy still had pending migrations after the
  run, or a warning whose rule the user listed in ``abort_on`` showed up;
- fake: every pending migration applied on the copy, some of them only after being faked with a
  proof (the objects existed and equalled what the migration creates); ``fake`` lists them in order;
- normal: every pending migration applied on the copy, or nothing is pending.
"""

from __future__ import annotations

NORMAL, FAKE, ABORT = "normal", "fake", "abort"


def failure_reason(entry: dict) -> str:
    error = entry.get("error") or {}
    reason = "%s failed on the copy" % entry["migration"]
    if error.get("sqlstate"):
        reason += " with SQLSTATE %s" % error["sqlstate"]
    if error.get("message"):
        reason += ": %s" % error["message"]
    proof = entry.get("fake_proof")
    if proof and proof.get("differences"):
        reason += "; not faked, because %s" % "; ".join(proof["differences"])
    for rows in entry.get("offending_rows", []):
        if rows.get("duplicate_values"):
            reason += "; %s.%s has %d duplicated values over %d rows" % (
                rows["table"],
                rows["column"],
                rows["duplicate_values"],
                rows["rows"],
            )
        if rows.get("null_rows"):
            reason += "; %s.%s has %d NULL rows" % (rows["table"], rows["column"], rows["null_rows"])
        if rows.get("rows_without_value"):
            reason += "; %s has %d rows that would get no value for %s" % (
                rows["table"],
                rows["rows_without_value"],
                rows["column"],
            )
    cleanup = entry.get("cleanup")
    if cleanup and cleanup.get("invalid_indexes_left"):
        reason += "; it left invalid indexes %s on the copy (dropped)" % ", ".join(cleanup["invalid_indexes_left"])
    return reason


def lint_warnings(lint: dict) -> list:
    """SQL linter findings ({migration: [finding]}) as warnings."""
    warnings = []
    for migration, findings in sorted((lint or {}).items()):
        for finding in findings or []:
            warnings.append(
                {
                    "migration": migration,
                    "rule": "squawk:%s" % finding.get("rule_name", "?"),
                    "message": " ".join(str(finding.get("message", "")).split()),
                }
            )
    return warnings


def decide(report: dict, lint: dict = None, abort_on=(), require_rehearsal: bool = True) -> dict:
    pending = [m["migration"] for m in report.get("pending") or []]
    warnings = list(report.get("warnings") or []) + lint_warnings(lint)
    reasons = []
    prechecks = report.get("prechecks") or {}
    reasons += list(prechecks.get("errors") or [])
    reasons += list(report.get("errors") or [])
    outcomes = {m["migration"]: m for m in report.get("migrations") or []}
    faked = []
    if not reasons and pending:
        copy = report.get("copy") or {}
        if copy.get("skipped") and not require_rehearsal:
            warnings.append({"rule": "not-rehearsed", "message": "the migrations were not rehearsed on a copy (%s)" % copy.get("why")})
            return verdict(NORMAL, pending, [], [], warnings)
        if copy.get("skipped"):
            reasons.append("the migrations were not rehearsed (%s)" % copy.get("why", "no copy"))
        for key in pending:
            entry = outcomes.get(key)
            if entry is None:
                reasons.append("%s has no outcome in the rehearsal" % key)
            elif entry.get("outcome") == "failed":
                reasons.append(failure_reason(entry))
            elif entry.get("outcome") == "faked":
                proof = entry.get("fake_proof") or {}
                if proof.get("found") and proof.get("compared_equal"):
                    faked.append(key)
                else:
                    reasons.append("%s was faked without a proof" % key)
            elif entry.get("outcome") != "applied":
                reasons.append("%s was %s" % (key, entry.get("outcome", "not reached")))
        post = report.get("post_check") or {}
        if not reasons and not post.get("ok", False):
            reasons.append("migrations still pending on the copy after the rehearsal: %s" % ", ".join(post.get("pending_after") or ["?"]))
    blocking = [w for w in warnings if w.get("rule") in set(abort_on)]
    for warning in blocking:
        reasons.append("warning %s is set to abort: %s" % (warning["rule"], warning["message"]))
    if reasons:
        strategy = ABORT
    elif faked:
        strategy = FAKE
    else:
        strategy = NORMAL
    return verdict(strategy, pending, faked, reasons, warnings)


def verdict(strategy, pending, faked, reasons, warnings) -> dict:
    return {
        "strategy": strategy,
        "pending": pending,
        "fake": faked if strategy == FAKE else [],
        "apply": [key for key in pending if key not in faked] if strategy != ABORT else [],
        "reasons": reasons,
        "warnings": warnings,
        "summary": summary(strategy, pending, faked, reasons),
    }


def summary(strategy, pending, faked, reasons) -> str:
    if strategy == ABORT:
        return "abort: %s" % reasons[0] + (" (and %d more reasons)" % (len(reasons) - 1) if len(reasons) > 1 else "")
    if not pending:
        return "normal: nothing to migrate"
    if strategy == FAKE:
        return "fake: fake %s, then apply %d migrations" % (", ".join(faked), len(pending) - len(faked))
    return "normal: %d migrations apply cleanly on the copy" % len(pending)
