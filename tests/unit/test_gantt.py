"""The deploy as a picture: Mermaid gantts built from real timelines (timeline.py's Timeline, as the callback
feeds it), and the HTML page of the last deploys. Pure logic, no Ansible run."""

import datetime
import html
import json
import re

import pytest
from ansible.module_utils.smart_deploy.gantt import MERMAID_JS, gantt, html_page, label, markdown
from ansible.module_utils.smart_deploy.timeline import Timeline

T0 = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC).timestamp()
MS0 = int(T0 * 1000)
BAR = re.compile(r"^    (?P<name>.*) :(?P<crit>crit, )?(?P<start>\d+), (?P<end>\d+)$")


def at(seconds):
    return T0 + seconds


def run(timeline, key, role, task, start, end, status="ok", hosts=("web1",)):
    timeline.start(key, role, task, now=at(start))
    for host in hosts:
        timeline.end(key, host, status, now=at(end))


def record_of(timeline, **fields):
    return dict(
        dict(playbook="deploy.yml", started="2026-11-29T12:00:00+00:00", seconds=30.0, summary={"app": "shop", "release": "3f2a1b9c0d1e"}),
        steps=timeline.steps(),
        **fields,
    )


def parse(chart):
    """{section: [(name, crit, start ms, end ms)]}, in order, and the header lines."""
    sections, header, current = {}, [], None
    for line in chart.splitlines()[1:]:
        if line.startswith("    section "):
            current = line[len("    section ") :]
            sections[current] = []
        elif current is None:
            header.append(line.strip())
        else:
            match = BAR.match(line)
            assert match, "not a bar: %r" % line
            sections[current].append((match["name"], bool(match["crit"]), int(match["start"]), int(match["end"])))
    return header, sections


def a_deploy():
    """A deploy as the callback sees it: short checks, a long build, the migrations failing, the rollback."""
    timeline = Timeline()
    run(timeline, "a", "preflight", "Check the inputs", 0.0, 0.1)
    run(timeline, "b", "preflight", "Take the deploy lock", 0.1, 0.3)
    run(timeline, "c", "preflight", "Measure free disk", 0.3, 0.4)
    run(timeline, "d", "build", "Build the images of this release", 0.5, 8.5, status="changed")
    run(timeline, "e", None, "Apply the migrations", 8.5, 8.6)
    run(timeline, "f", "migrate", "Apply the validated plan", 8.6, 10.1, status="failed")
    run(timeline, "g", "rollback", "Restore the database", 10.2, 12.0, status="changed")
    run(timeline, "h", "preflight", "Release the deploy lock", 12.1, 12.2)
    return timeline


def test_one_section_per_role_in_run_order_with_long_tasks_failures_and_folds():
    header, sections = parse(gantt(record_of(a_deploy())))
    assert header[1:] == ["dateFormat x", "axisFormat %M:%S", "todayMarker off"]
    assert list(sections) == ["preflight 0.5 s", "build 8.0 s", "(playbook) 0.1 s", "migrate 1.5 s", "rollback 1.8 s"]
    assert sections["preflight 0.5 s"] == [
        # three short checks in a row: one bar from the first one's start to the last one's end
        ("3 short tasks (0.4 s)", False, MS0, MS0 + 400),
        # alone, later (other roles ran between): its own bar, by its name
        ("Release the deploy lock (0.1 s)", False, MS0 + 12100, MS0 + 12200),
    ]
    assert sections["build 8.0 s"] == [("Build the images of this release (8.0 s)", False, MS0 + 500, MS0 + 8500)]
    assert sections["migrate 1.5 s"] == [("Apply the validated plan (1.5 s)", True, MS0 + 8600, MS0 + 10100)]
    assert sections["rollback 1.8 s"] == [("Restore the database (1.8 s)", False, MS0 + 10200, MS0 + 12000)]


def test_the_picture_covers_each_role_exactly_whatever_is_folded():
    timeline = a_deploy()
    for minimum in (0.0, 0.5, 5, 60):
        _header, sections = parse(gantt(record_of(timeline), min_seconds=minimum))
        covered = {name.rsplit(" ", 2)[0]: sum(end - start for _n, _c, start, end in bars) for name, bars in sections.items()}
        assert covered == {"preflight": 500, "build": 8000, "(playbook)": 100, "migrate": 1500, "rollback": 1800}, minimum
        # a failure is never folded away
        assert ("Apply the validated plan (1.5 s)", True, MS0 + 8600, MS0 + 10100) in sections["migrate 1.5 s"]


def test_a_task_on_several_hosts_is_one_bar_to_its_last_host_and_fails_when_one_host_failed():
    timeline = Timeline()
    timeline.start("m", "migrate", "Apply", now=at(0))
    timeline.end("m", "web1", "changed", now=at(2))
    timeline.end("m", "web2", "unreachable", now=at(3))
    _header, sections = parse(gantt(record_of(timeline)))
    assert sections == {"migrate 3.0 s": [("Apply (3.0 s)", True, MS0, MS0 + 3000)]}


def test_odd_task_names_cannot_break_the_chart():
    names = [
        "Wait: 30 s; then retry #2",
        "Two\nlines\r\nand\ttabs",
        "%% not a comment",
        "excludes weekends",
        "section of the proxy",
        "title",
        "Close the fence ``` here",
        "x" * 300,
    ]
    timeline = Timeline()
    for index, name in enumerate(names):
        run(timeline, str(index), "odd: role; #1", name, index * 2.0, index * 2.0 + 1.5)
    chart = gantt(record_of(timeline, summary={"app": "shop#1: x; y"}))
    header, sections = parse(chart)
    assert len(sections) == 1 and len(next(iter(sections.values()))) == len(names)
    for line in chart.splitlines()[1:]:
        text = line.split(" :", 1)[0] if BAR.match(line) else line
        assert ":" not in text.replace("axisFormat %M:%S", "") and "#" not in text and ";" not in text
        assert not line.lstrip().startswith("%") and "```" not in line
    assert "```" not in markdown(record_of(timeline))[3:-3]
    bars = [name for name, *_ in next(iter(sections.values()))]
    assert bars[0] == "Wait\u2236 30 s, then retry \u266f2 (1.5 s)"
    assert bars[1] == "Two lines and tabs (1.5 s)"
    assert bars[2] == "\u00b7 %% not a comment (1.5 s)", "a line that starts with % is a comment"
    assert [bar.split(" ")[:2] for bar in bars[3:6]] == [["\u00b7", "excludes"], ["\u00b7", "section"], ["\u00b7", "title"]]
    assert len(bars[7]) <= len(" (1.5 s)") + 70 and bars[7].endswith("\u2026 (1.5 s)")
    assert label("") == "\u00b7 " and label(None) == "\u00b7 "


def test_markdown_is_a_mermaid_fence_and_a_run_without_steps_draws_nothing():
    text = markdown(record_of(a_deploy()))
    assert text.startswith("```mermaid\ngantt\n    title deploy of shop 3f2a1b9c0d1e on 2026-11-29 12\u223600\u223600 UTC, 30.0 s\n")
    assert text.endswith("\n```")
    assert markdown({"steps": []}) == "" and gantt({}) == ""


def test_the_html_page_has_one_chart_per_deploy_escaped_and_the_mermaid_script():
    first, second = record_of(a_deploy()), record_of(a_deploy(), summary={"app": "shop", "outcome": "failed <b>& rolled back</b>"})
    page = html_page([second, first], "shop")
    assert page.startswith("<!DOCTYPE html>") and page.count('<pre class="mermaid">') == 2
    assert '<script type="module">' in page and MERMAID_JS in page
    assert "<b>" not in page and "failed &lt;b&gt;&amp; rolled back&lt;/b&gt;" in page
    # what Mermaid reads (the text of each <pre>) is the chart itself
    charts = [html.unescape(chunk.split("</pre>")[0]).strip("\n") for chunk in page.split('<pre class="mermaid">')[1:]]
    assert charts == [gantt(second), gantt(first)]
    assert "No run logs" in html_page([], "shop") and '<pre class="mermaid">' not in html_page([], "shop")


# --- deploy_picture: the last deploys of an app, from the run logs, into a page ----------------------------


def write_log(folder, name, record):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(record))


def a_log(app, started, playbook="deploy.yml", outcome="live"):
    timeline = Timeline()
    run(timeline, "a", "build", "Build the images of this release", 0, 2)
    return dict(record_of(timeline, summary={"app": app, "outcome": outcome}), started=started, playbook=playbook)


def test_deploy_picture_draws_the_newest_deploys_of_the_app_into_a_private_page(run_module, tmp_path):
    logs = tmp_path / "logs"
    write_log(logs, "1-shop-deploy.yml.json", a_log("shop", "2026-11-29T10:00:00+00:00", outcome="the oldest"))
    write_log(logs, "2-shop-deploy.yml.json", a_log("shop", "2026-11-29T11:00:00+00:00", outcome="the middle one"))
    write_log(logs, "3-shop-deploy.yml.json", a_log("shop", "2026-11-29T12:00:00+00:00", outcome="the newest"))
    write_log(logs, "4-shop-validate.yml.json", a_log("shop", "2026-11-29T13:00:00+00:00", playbook="validate.yml"))
    write_log(logs, "5-blog-deploy.yml.json", a_log("blog", "2026-11-29T14:00:00+00:00"))
    (logs / "6-broken.json").write_text("{not json")
    page = tmp_path / "deploys.html"
    args = {"dest": str(page), "apps": ["shop"], "last": 2, "log_dir": str(logs)}

    planned = run_module("deploy_picture", args, check_mode=True)
    assert planned["changed"] is True and not page.exists()
    result = run_module("deploy_picture", args)
    assert result["changed"] is True and result["deploys"] == ["3-shop-deploy.yml.json", "2-shop-deploy.yml.json"]
    assert "6-broken.json" in json.dumps(result.get("warnings")), result
    text = page.read_text()
    assert page.stat().st_mode & 0o777 == 0o600
    assert text.count('<pre class="mermaid">') == 2 and text.index("the newest") < text.index("the middle one")
    assert "the oldest" not in text and "blog" not in text and "validate" not in text
    assert run_module("deploy_picture", args)["changed"] is False, "the same logs, the same page"
    page.chmod(0o644)
    assert run_module("deploy_picture", args)["changed"] is True and page.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "args, message",
    [
        ({"last": 0}, "last (how many deploys to draw) must be 1 or more, got 0"),
        ({"dest": "deploys.html"}, "dest must be an absolute path"),
        ({"dest": "/no/such/folder/deploys.html"}, "the folder of /no/such/folder/deploys.html does not exist"),
        ({"apps": []}, "apps must name at least one app"),
    ],
)
def test_deploy_picture_refuses_bad_input_and_writes_nothing(run_module, tmp_path, args, message):
    result = run_module("deploy_picture", dict({"dest": str(tmp_path / "d.html"), "apps": ["shop"], "log_dir": str(tmp_path)}, **args))
    assert result["failed"] is True and message in result["msg"]
    assert not (tmp_path / "d.html").exists()


def test_no_run_logs_is_a_page_that_says_so(run_module, tmp_path):
    result = run_module("deploy_picture", {"dest": str(tmp_path / "d.html"), "apps": ["shop"], "log_dir": str(tmp_path / "none")})
    assert result["changed"] is True and result["deploys"] == []
    assert "No run logs of deploys" in (tmp_path / "d.html").read_text()
