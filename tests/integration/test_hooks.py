"""The hooks of a deploy (*_tasks_file): the user's own task files run around build, migrate, the switch, the
health check and on failure, with the release's facts; a missing hook file is refused before anything changes; a
failing hook before the switch rolls the deploy back, and the on-failure hook runs (its own failure ignored)."""

import json

from tests.integration.conftest import assert_failed, assert_ok, run

# every hook of a successful deploy appends its name to a trace: they all ran, once, in this order
TRACED = [
    "build_before_tasks_file",
    "build_after_tasks_file",
    "migrate_before_tasks_file",
    "migrate_after_tasks_file",
    "release_before_switch_tasks_file",
    "release_after_switch_tasks_file",
    "health_check_after_tasks_file",
]

TRACE_HOOK = """- name: Trace the {name} hook
  ansible.builtin.shell: echo "{name} {{{{ smart_deploy_release_id }}}}" >> {trace}
  delegate_to: localhost
  changed_when: true
"""

# before the switch: the new backend container runs and is healthy, the proxy still serves the old release.
# A collectstatic-like step writes into a named volume from the release image; a marker records what was seen.
BEFORE_SWITCH_HOOK = """- name: Ask the new backend container which release it runs (it runs, before any traffic reaches it)
  ansible.builtin.command:
    argv: [docker, exec, "{{{{ release_containers.backend }}}}", python, -c, "import os; print(os.environ['APP_RELEASE'])"]
  register: hook_new_release
  changed_when: false

- name: Ask the proxy which release serves now (the old one - not switched yet)
  ansible.builtin.uri:
    url: "{{{{ health_check_base_url }}}}/api/health/"
    return_content: true
  register: hook_serving

- name: Collect the static files into a named volume (a one-off container of the release image)
  community.docker.docker_container:
    name: "{{{{ smart_deploy_app_name }}}}-hook-collectstatic"
    image: "{{{{ build_images.backend }}}}"
    user: "0"
    command: [sh, -c, "mkdir -p /static/$R && echo collected > /static/$R/marker.txt"]
    env:
      R: "{{{{ smart_deploy_release_id }}}}"
    volumes: ["{volume}:/static"]
    detach: false
    cleanup: true
    state: started
    output_logs: true

- name: Record what the hook saw
  ansible.builtin.copy:
    dest: {marker}
    content: "{{{{ {{'release': smart_deploy_release_id, 'app': smart_deploy_app_name, 'container': release_containers.backend,
                   'container_release': hook_new_release.stdout, 'serving': hook_serving.json.release,
                   'images': build_images}} | to_json }}}}"
    mode: "0600"
  delegate_to: localhost
"""

NOTIFY_HOOK = """- name: Send the notification (a JSON file here)
  ansible.builtin.copy:
    dest: {path}
    content: "{{{{ {{'app': smart_deploy_app_name, 'release': smart_deploy_release_id, 'outcome': 'live',
                   'containers': release_containers, 'health': health_check_results}} | to_json }}}}"
    mode: "0600"
  delegate_to: localhost
"""

FAILING_HOOK = """- name: A before-switch step that fails
  ansible.builtin.fail:
    msg: hook says no for {{ release_containers.backend }}
"""

# the on-failure hook records what it was given, then fails itself: that must change nothing of the outcome
ON_FAILURE_HOOK = """- name: Send the failure notification (a JSON file here)
  ansible.builtin.copy:
    dest: {path}
    content: "{{{{ {{'release': smart_deploy_release_id, 'outcome': 'failed', 'failure': smart_deploy_failure,
                   'rollback': rollback_actions | default(None)}} | to_json }}}}"
    mode: "0600"
  delegate_to: localhost

- name: The notification service is down
  ansible.builtin.fail:
    msg: notification service unreachable
"""


def hook(shop, name, text):
    path = shop.workdir / ("hook-%s.yml" % name)
    path.write_text(text)
    return path


def change_backend(shop, text):
    shop.write("backend/src/shop/hook_test_marker.py", "MARKER = %r\n" % text)
    return shop.commit(text)


def test_a_missing_hook_file_is_refused_before_anything_changes(shop):
    before = shop.releases()
    result = shop.deploy(
        "-e", "release_before_switch_tasks_file=%s" % (shop.workdir / "no-such-hook.yml"), "-e", "build_after_tasks_file=hooks/relative.yml"
    )
    assert_failed(result)
    assert "Hook task files not found" in result.stdout
    assert "release_before_switch_tasks_file=%s" % (shop.workdir / "no-such-hook.yml") in result.stdout
    assert "build_after_tasks_file=hooks/relative.yml" in result.stdout
    assert shop.releases() == before, "nothing recorded, nothing changed"


def test_the_hooks_run_around_each_step_with_the_release_facts(shop):
    trace = shop.workdir / "hook-trace.txt"
    volume = "%s-hooktest-static" % shop.name
    marker = shop.workdir / "before-switch.json"
    notification = shop.workdir / "notification.json"
    args = []
    for name in TRACED:
        args += ["-e", "%s=%s" % (name, hook(shop, name, TRACE_HOOK.format(name=name, trace=trace)))]
    # the before-switch and after-health-check hooks also do real work: both in one file each
    before_switch = hook(
        shop,
        "before-switch",
        BEFORE_SWITCH_HOOK.format(volume=volume, marker=marker) + TRACE_HOOK.format(name="release_before_switch_tasks_file", trace=trace),
    )
    notify = hook(
        shop, "notify", NOTIFY_HOOK.format(path=notification) + TRACE_HOOK.format(name="health_check_after_tasks_file", trace=trace)
    )
    args += ["-e", "release_before_switch_tasks_file=%s" % before_switch, "-e", "health_check_after_tasks_file=%s" % notify]
    # an on-failure hook given to a deploy that succeeds does not run
    failure_marker = shop.workdir / "unexpected-failure.json"
    args += ["-e", "report_on_failure_tasks_file=%s" % hook(shop, "unexpected-failure", ON_FAILURE_HOOK.format(path=failure_marker))]
    old = shop.live
    release = change_backend(shop, "hooks")
    try:
        result = shop.deploy(*args)
        assert_ok(result)
        assert [line.split() for line in trace.read_text().splitlines()] == [[name, release] for name in TRACED]
        seen = json.loads(marker.read_text())
        container = "%s-web-%s" % (shop.name, release)
        assert seen["release"] == release and seen["app"] == shop.name
        assert seen["container"].startswith(container), seen
        assert seen["container_release"] == release, "the new container ran before the switch"
        assert seen["serving"] == old, "the proxy still served the previous release before the switch"
        assert seen["images"]["backend"] == "%s-backend:%s" % (shop.name, release)
        collected = run(
            ["docker", "run", "--rm", "-v", "%s:/static" % volume, seen["images"]["backend"], "cat", "/static/%s/marker.txt" % release]
        )
        assert collected.stdout.strip() == "collected", collected.stderr
        sent = json.loads(notification.read_text())
        assert sent["release"] == release and sent["outcome"] == "live" and sent["app"] == shop.name
        assert sent["containers"]["backend"] == seen["container"] and "health: 200" in sent["health"]
        assert not failure_marker.exists()
        status, health = shop.get_json("/api/health/")
        assert status == 200 and health["release"] == release
    finally:
        run(["docker", "volume", "rm", "-f", volume])
    shop.live = release


def test_a_failing_hook_before_the_switch_rolls_back_and_the_on_failure_hook_runs(shop):
    notified = shop.workdir / "failure.json"
    old = shop.live
    release = change_backend(shop, "hook fails")
    result = shop.deploy(
        "-e",
        "release_before_switch_tasks_file=%s" % hook(shop, "failing", FAILING_HOOK),
        "-e",
        "report_on_failure_tasks_file=%s" % hook(shop, "on-failure", ON_FAILURE_HOOK.format(path=notified)),
    )
    assert_failed(result)
    assert "hook says no for %s-web-%s" % (shop.name, release) in " ".join(result.stdout.split())
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == old, "the previous release serves"
    history = shop.releases()
    assert history["current"] == old
    attempt = [e for e in history["releases"] if e["id"] == release][-1]
    assert attempt["status"] == "failed" and "hook says no" in attempt["reason"]
    sent = json.loads(notified.read_text())
    assert sent["release"] == release and sent["outcome"] == "failed" and "hook says no" in sent["failure"]
    assert sent["rollback"]["service"] == "release %s serves again" % old
    # the on-failure hook's own failure is shown and ignored: the deploy's failure is what ends the run
    said = " ".join(result.stdout.split())  # the YAML result format wraps long lines
    assert "The on-failure hook %s failed (ignored" % (shop.workdir / "hook-on-failure.yml") in said
    assert "The notification service is down: notification service unreachable" in said
    assert "Deploy of %s failed: A before-switch step that fails: hook says no" % release in said
