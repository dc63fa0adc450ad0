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

Every abort reason has a stable code (REASON_CODES). ``accept`` lists codes the user accepted
(``-e smart_deploy_accept=<code>``): reasons with an accepted code do not abort, they are returned in
``accepted`` (code, reason) and the verdict is what it would be without them: ``fake`` when every fake
is proven, else ``normal``. An accepted code that did not occur is harmless (``accepted_unused``).

Missing migrations (model changes with no migration, what ``makemigrations --check`` reports) are
classified by the driver with the SQL ``sqlmigrate`` would print for the migrations makemigrations
would write: state-only ones (no SQL) are warnings, never aborts; SQL-changing ones abort naming the SQL.

smart-deploy's own failures (its driver broke - the driver says whose a failure is, ``origin`` - or its result could
not be read) have the code DEFECT_CODE: never a reason of the app's, never accepted, whatever ``accept`` says (it is
not among the codes ``smart_deploy_accept`` takes); ``defect`` says whether one occurred (``abort_message`` then
sends the user to smart-deploy's traceback rather than to an override). The migrations not reached after a failure
are counted in that failure's reason, not listed one reason each.

Breaking operations (``compat.py``: what the old release cannot live with while old and new code run side by
side) are listed in ``breaking``, never an abort reason: the rolling gate decides on them (``compat.gate``);
``backward_compatible`` says whether there are none (and none that could not be read).

Reasons and warnings carry counts, table and column names, constraint names and SQLSTATEs, never the values of
production rows: PostgreSQL's messages are redacted (``redact.py``: ``Key (name)=(…) is duplicated``). They go to
the run's output, the step summary, the run log and releases.json; the values stay in the rehearsal report.
"""

from __future__ import annotations

from ansible.module_utils.smart_deploy.compat import breaking_operations, existing_tables
from ansible.module_utils.smart_deploy.redact import redact, redact_text

NORMAL, FAKE, ABORT = "normal", "fake", "abort"

# code -> what it means; README "Migration checks" documents the same table (tests keep them equal)
REASON_CODES = {
    "inconsistent-history": "a migration is applied in production before one it depends on",
    "migration-conflict": "an app has several leaf migrations (run makemigrations --merge)",
    "missing-migration-sql": "models have changes with no migration, and that migration would change the schema (SQL named)",
    "missing-migration-unknown": "models have changes with no migration whose SQL could not be generated (operations named)",
    "copy-not-faithful": "the rehearsal copy's schema or migration history differs from production's",
    "rehearsal-failed": "the rehearsal could not run, or reported an error of its own",
    "plan-mismatch": "the copy's migration plan differs from the analysed one",
    "not-rehearsed": "pending migrations were not rehearsed on a copy (no copy made)",
    "schema-drift": "a migration failed on the copy because production's schema differs from what the migrations expect",
    "duplicate-rows": "a migration failed on the copy: a unique constraint meets duplicated values",
    "null-rows": "a migration failed on the copy: NOT NULL meets NULL rows",
    "rows-without-value": "a migration failed on the copy: a new NOT NULL column without a default on a table with rows",
    "migration-failed": "a migration failed on the copy for another reason (SQLSTATE and message named)",
    "fake-unproven": "a migration was faked without a proof that its objects equal what it creates",
    "migration-not-applied": "a pending migration has no outcome or was not applied in the rehearsal",
    "pending-after-rehearsal": "migrate --check still finds pending migrations on the copy after the rehearsal",
    "abort-on-warning": "a warning whose rule is listed in migration_validation_abort_on showed up",
}
# smart-deploy's own failure (the driver broke): not a code of REASON_CODES, so smart_deploy_accept never takes it
DEFECT_CODE = "smart-deploy-defect"
NOT_REACHED_NAMED = 3  # migrations named in "N more migrations were not reached: a, b, c..."
DUPLICATE_OBJECT = ("42P07", "42701", "42710")
MISSING_OBJECT = ("42P01", "42703", "42704")
MAX_SQL_CHARS = 600
# report error texts (from the driver and the rehearsal module) -> code; anything else: rehearsal-failed
ERROR_PREFIXES = (
    ("inconsistent migration history", "inconsistent-history"),
    ("conflicting migrations", "migration-conflict"),
    ("the copy's schema or migration history differs", "copy-not-faithful"),
    ("the copy's plan", "plan-mismatch"),
)


def error_code(text) -> str:
    if isinstance(text, dict):
        return text.get("code") or "rehearsal-failed"
    for prefix, code in ERROR_PREFIXES:
        if str(text).startswith(prefix):
            return code
    return "rehearsal-failed"


def error_text(text) -> str:
    return text.get("reason", "") if isinstance(text, dict) else str(text)


def defect(entry: dict) -> bool:
    """Whether a migration failed on the copy because smart-deploy's driver broke (the driver's ``origin``)."""
    return (entry.get("error") or {}).get("origin") == "smart-deploy"


def failure_code(entry: dict) -> str:
    """The code of a migration that failed on the copy: smart-deploy's defect, the data problem found, else the schema's."""
    if defect(entry):
        return DEFECT_CODE
    for rows in entry.get("offending_rows", []):
        if rows.get("duplicate_values"):
            return "duplicate-rows"
        if rows.get("null_rows"):
            return "null-rows"
        if rows.get("rows_without_value"):
            return "rows-without-value"
    sqlstate = (entry.get("error") or {}).get("sqlstate")
    if (entry.get("fake_proof") or {}).get("differences") or sqlstate in DUPLICATE_OBJECT + MISSING_OBJECT:
        return "schema-drift"
    return "migration-failed"


def missing_migration_findings(missing) -> tuple:
    """(reasons as (code, text), warnings) from the driver's classified missing migrations."""
    reasons, warnings = [], []
    for entry in missing or []:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("kind")
        what = "; ".join(op.get("describe", "?") for op in entry.get("operations") or [])
        name = entry.get("migration") or entry.get("app") or "?"
        if kind == "state-only":
            message = "%s: models have changes with no migration that change no SQL (state only): %s" % (name, what)
            warnings.append({"migration": name, "rule": "missing-migration-state-only", "message": message})
        elif kind == "sql":
            sql = " ".join(entry.get("sql") or [])
            if len(sql) > MAX_SQL_CHARS:
                sql = sql[:MAX_SQL_CHARS] + " ... (%d statements)" % len(entry.get("sql") or [])
            reasons.append(("missing-migration-sql", "%s: models have changes with no migration (makemigrations --check: %s) that change "
                            "the schema: %s" % (name, what, sql)))  # fmt: skip
        elif kind == "unknown":
            failed = "; ".join("%s (%s)" % (op.get("describe", "?"), op.get("error", "?")) for op in entry.get("operations") or []
                               if op.get("sql") is None)  # fmt: skip
            reasons.append(("missing-migration-unknown", "%s: models have changes with no migration (makemigrations --check: %s) whose "
                            "SQL could not be generated: %s" % (name, what, failed)))  # fmt: skip
        elif kind == "unchecked":
            warnings.append({"rule": "missing-migrations-unchecked",
                             "message": "model changes without migrations could not be checked: %s" % entry.get("error", "?")})  # fmt: skip
    return reasons, warnings


def failure_reason(entry: dict) -> str:
    error = entry.get("error") or {}
    if defect(entry):
        return (
            "%s failed on the copy because smart-deploy's driver broke, not because of the migration: %s (a defect of "
            "smart-deploy: the driver's traceback is in the validation report)"
            % (entry["migration"], redact_text(error.get("message", "?")))
        )
    reason = "%s failed on the copy" % entry["migration"]
    if error.get("sqlstate"):
        reason += " with SQLSTATE %s" % error["sqlstate"]
    if error.get("message"):
        reason += ": %s" % redact_text(error["message"])
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


def linted_statements(entry: dict) -> list:
    """The statements a migration's SQL was linted as (django_driver.lint_sql: on tables that existed before the
    release, data changes left out, joined by ";\n"), each as (first line, last line, table), lines from 0."""
    spans, line = [], 0
    for statement in entry.get("statements") or []:
        sql = statement.get("sql") or ""
        if not statement.get("existing_relation") or sql.upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            continue
        last = line + sql.count("\n")
        spans.append((line, last, statement.get("relation")))
        line = last + 1
    return spans


def lint_warnings(lint: dict, migrations=()) -> list:
    """SQL linter findings ({migration: [finding]}) as warnings, each naming its migration and the table of the
    statement it is about (from the finding's line in the SQL linted; ``migrations``: the report's entries)."""
    spans = {entry.get("migration"): linted_statements(entry) for entry in migrations or []}
    warnings = []
    for migration, findings in sorted((lint or {}).items()):
        for finding in findings or []:
            line = finding.get("line")
            tables = [table for first, last, table in spans.get(migration, []) if table and (line is None or first <= line <= last)]
            if not tables and line is None:
                tables = sorted({table for _f, _l, table in spans.get(migration, []) if table})
            rule = finding.get("rule_name", "?")
            where = "%s, table %s" % (migration, ", ".join(dict.fromkeys(tables))) if tables else migration
            warnings.append(
                {
                    "migration": migration,
                    "rule": "squawk:%s" % rule,
                    "table": tables[0] if len(tables) == 1 else None,
                    "message": "%s: %s (squawk %s)" % (where, " ".join(str(finding.get("message", "")).split()), rule),
                }
            )
    return warnings


def decide(report: dict, lint: dict = None, abort_on=(), require_rehearsal: bool = True, accept=()) -> dict:
    pending = [m["migration"] for m in report.get("pending") or []]
    warnings = list(report.get("warnings") or []) + lint_warnings(lint, report.get("migrations"))
    accept = set(accept or ())
    reasons = []  # (code, text), in the order found
    prechecks = report.get("prechecks") or {}
    reasons += [(error_code(e), error_text(e)) for e in prechecks.get("errors") or []]
    reasons += [(error_code(e), error_text(e)) for e in report.get("errors") or []]
    missing_reasons, missing_warnings = missing_migration_findings(prechecks.get("missing_migrations"))
    warnings += missing_warnings
    outcomes = {m["migration"]: m for m in report.get("migrations") or []}
    faked = []
    rehearsed = []
    # no rehearsal asked for (an emergency deploy): it never stops on a warning, abort_on included (as before)
    emergency = not require_rehearsal
    if not [r for r in reasons if r[0] not in accept] and pending:
        copy = report.get("copy") or {}
        if copy.get("skipped") and not require_rehearsal:
            warnings.append({"rule": "not-rehearsed", "message": "the migrations were not rehearsed on a copy (%s)" % copy.get("why")})
        elif copy.get("skipped"):
            rehearsed.append(("not-rehearsed", "the migrations were not rehearsed (%s)" % copy.get("why", "no copy")))
        else:
            first_failure, not_reached = None, []
            for key in pending:
                entry = outcomes.get(key)
                if entry is None:
                    rehearsed.append(("migration-not-applied", "%s has no outcome in the rehearsal" % key))
                elif entry.get("outcome") == "failed":
                    code = failure_code(entry)
                    first_failure = first_failure if first_failure is not None else len(rehearsed)
                    rehearsed.append((code, failure_reason(entry)))
                elif entry.get("outcome") == "faked":
                    proof = entry.get("fake_proof") or {}
                    if proof.get("found") and proof.get("compared_equal"):
                        faked.append(key)
                    else:
                        rehearsed.append(("fake-unproven", "%s was faked without a proof" % key))
                elif entry.get("outcome", "not reached") == "not reached":
                    not_reached.append(key)
                elif entry.get("outcome") != "applied":
                    rehearsed.append(("migration-not-applied", "%s was %s" % (key, entry["outcome"])))
            if not_reached and first_failure is not None:
                # not reached after a failure: part of that failure (counted in its reason), accepted with it
                code, text = rehearsed[first_failure]
                rehearsed[first_failure] = (code, "%s; %s" % (text, not_reached_text(not_reached)))
            elif not_reached:
                rehearsed.append(("migration-not-applied", not_reached_text(not_reached)))
            post = report.get("post_check") or {}
            if not rehearsed and not post.get("ok", False):
                rehearsed.append(("pending-after-rehearsal", "migrations still pending on the copy after the rehearsal: %s"
                                  % ", ".join(post.get("pending_after") or ["?"])))  # fmt: skip
    reasons += rehearsed + missing_reasons
    # every text that leaves the rehearsal report: no row values (the report keeps them, on the target)
    reasons = [(code, redact_text(text)) for code, text in reasons]
    warnings = redact(warnings)
    blocking = [] if emergency else [w for w in warnings if w.get("rule") in set(abort_on)]
    for warning in blocking:
        reasons.append(("abort-on-warning", "warning %s is set to abort: %s" % (warning["rule"], warning["message"])))
    accept.discard(DEFECT_CODE)  # smart-deploy's defect is never the user's to accept
    accepted = [{"code": code, "reason": text} for code, text in reasons if code in accept]
    refused = [(code, text) for code, text in reasons if code not in accept]
    if refused:
        strategy = ABORT
    elif faked:
        strategy = FAKE
    else:
        strategy = NORMAL
    result = verdict(strategy, pending, faked, [text for _code, text in refused], warnings)
    result["abort_reasons"] = [{"code": code, "reason": text} for code, text in refused]
    result["defect"] = any(code == DEFECT_CODE for code, _text in refused)
    result["abort_message"] = abort_message(result["abort_reasons"]) if refused else ""
    result["accepted"] = accepted
    result["accepted_unused"] = sorted(accept - {item["code"] for item in accepted})
    # what the old release cannot live with (compat.py): refused by the rolling gate, and what a failed roll
    # decides on (backward compatible: the migrated database can stay under the old code)
    breaking, unchecked = breaking_operations(report.get("pending"), existing_tables(report.get("production")))
    result["breaking"] = breaking
    result["breaking_unchecked"] = unchecked
    result["backward_compatible"] = not breaking and not unchecked
    return result


def not_reached_text(keys) -> str:
    """``N more migrations were not reached: a, b, c and M more`` (a count, a few names: never a list of hundreds)."""
    named = ", ".join(keys[:NOT_REACHED_NAMED]) + (
        " and %d more" % (len(keys) - NOT_REACHED_NAMED) if len(keys) > NOT_REACHED_NAMED else ""
    )
    return "%d more migration%s %s not reached: %s" % (len(keys), "" if len(keys) == 1 else "s", "was" if len(keys) == 1 else "were", named)


def abort_message(abort_reasons) -> str:
    """What the run says when it stops on an abort verdict (``abort_reasons``: [{code, reason}]). With smart-deploy's
    own defect among them: that it is smart-deploy's, where its traceback is, and no override (the verdict could
    not be reached; accepting would go on blind); otherwise every reason and the override for their codes."""
    reasons = "; ".join("%s: %s" % (item["code"], item["reason"]) for item in abort_reasons)
    if any(item["code"] == DEFECT_CODE for item in abort_reasons):
        return ("Migration validation could not reach a verdict because smart-deploy itself failed (a defect of smart-deploy, "
                "not of your app or its migrations): %s. Nothing was changed. Please report it to smart-deploy with the driver's "
                "traceback from the validation report; it cannot be accepted with smart_deploy_accept." % reasons)  # fmt: skip
    codes = []
    for item in abort_reasons:
        if item["code"] not in codes:
            codes.append(item["code"])
    return "Migration validation says abort: %s (to go through, after reading them: -e smart_deploy_accept=%s)" % (reasons, ",".join(codes))


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
