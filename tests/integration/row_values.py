"""Where a production row's value may go (issue 12): a migration that fails on the copy over rows - duplicates
under a new unique constraint - leaves their values in PostgreSQL's message (``Key (name)=(Green tea, 100 g) is
duplicated``). The step summary, the JSON run log and releases.json name counts, tables, columns and the SQLSTATE
only; the value is in the validation report on the target, readable by its owner alone."""

import json
import re


def assert_the_value_only_in_the_validation_report(deployment, column, value):
    """After a validation that aborted over ``value`` of ``column``; returns the step summary's text."""
    shown, hidden = "Key (%s)=(%s)" % (column, value), "Key (%s)=(\u2026) is duplicated" % column
    step_summary = (deployment.workdir / "step-summary.md").read_text()
    run_log = json.dumps(deployment.run_log(), ensure_ascii=False)
    releases = (deployment.state_dir / "releases.json").read_text()  # validate records no attempt: unchanged
    for name, text in (("step summary", step_summary), ("run log", run_log), ("releases.json", releases)):
        assert shown not in text and "(%s)" % value not in text, "%s holds the row value %r" % (name, value)
    last_summary = step_summary.rsplit("### SMART-DEPLOY ", 1)[1]
    assert hidden in last_summary and "SQLSTATE 23505" in last_summary, last_summary[:3000]
    assert hidden in run_log
    # the run as a picture: the rehearsal in its section, the abort (validate.yml's exit code) a red bar
    chart = last_summary.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    assert "\n    section migration_validation " in chart, chart
    assert re.search(r"^    Rehearse the migrations on a copy of production \([^)]+\) :\d+, \d+$", chart, re.M), chart
    assert re.search(r"^    Fail on abort \(exit code non-zero\), production untouched \([^)]+\) :crit, \d+, \d+$", chart, re.M), chart

    reports = sorted((deployment.state_dir / "validations").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert reports[-1].stat().st_mode & 0o777 == 0o600
    report = json.loads(reports[-1].read_text())
    assert shown in json.dumps(report["report"]["migrations"], ensure_ascii=False), "the evidence stays in the report"
    assert shown not in json.dumps(report["verdict"], ensure_ascii=False)
    return step_summary
