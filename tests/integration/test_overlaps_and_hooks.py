"""On a deployment of its own (the safety net's file is long enough): secrets never reach what smart-deploy
prints or records (a failure whose message holds them is recorded masked, the offline steps get
placeholders, the search for them finds a planted one); deploys that overlap (two started together, one
killed while it migrates then recovered); and the hooks of a deploy (they run around each step with the
release's facts, a missing one is refused before anything changes, a failing one before the switch rolls
back). The tests run in order on the same deployment."""

import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN, assert_failed, assert_ok, run

# --- secrets never reach what smart-deploy prints or records (formerly test_secrets.py). Every test deployment
# (tests/integration/conftest.py) has canary secrets: a database password with '/', '@' and ':', a Django secret
# key and an app secret. Every playbook run of the whole suite is searched for them (Deployment.playbook), and so
# are, when a deployment is removed, releases.json, the validation reports, the backup metadata, the JSON run
# logs and the GitHub step summary (Deployment.destroy). test_safety_net.py: each real failure with -v, the container that
# cannot start with -vv (the gate printed its whole `docker inspect` before: it must show the logs and no
# environment), a failed rollback; test_validation: a failed rehearsal. Here: a failure whose own message holds
# the secrets, the offline steps' placeholder secrets, and a check that the search itself finds a planted canary.
# The shop is on release 1 here, its source too.
LEAKY_MIGRATION = """import os

from django.conf import settings
from django.db import migrations


def leak(apps, schema_editor):
    raise RuntimeError("cannot migrate with key %s, password %s, payment key %s, url %s" % (
        settings.SECRET_KEY, os.environ["POSTGRES_PASSWORD"], os.environ["SHOP_PAYMENT_KEY"], os.environ["DATABASE_URL"]))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]
    operations = [migrations.RunPython(leak, migrations.RunPython.noop)]
"""


def test_the_search_finds_a_planted_canary(shop):
    planted = shop.state_dir / "validations" / "planted.json"
    planted.parent.mkdir(exist_ok=True)
    for canary in (shop.db_password, shop.secret_key, shop.app_secret):
        planted.write_text(json.dumps({"oops": "x%sx" % canary}))
        with pytest.raises(AssertionError, match="secrets leaked"):
            shop.assert_no_secret_leaks()
    planted.unlink()
    with pytest.raises(AssertionError):
        shop.assert_no_secret_leaks("a line with %s in it" % shop.app_secret)
    shop.assert_no_secret_leaks()


def test_a_failure_whose_message_holds_the_secrets_is_recorded_masked(shop):
    """An emergency deploy (no rehearsal) whose migration fails with the secrets in its error: the rescue
    copies the failure into releases.json and the summary - masked."""
    shop.write("backend/src/catalog/migrations/0003_leak.py", LEAKY_MIGRATION)
    shop.commit("a migration that fails with secrets in its message")
    result = shop.deploy("-v", "-e", "smart_deploy_emergency=true")  # Deployment.playbook: nothing printed holds a canary
    assert_failed(result)
    assert "Rolled back" in result.stdout
    last = shop.releases()["releases"][-1]
    assert last["status"] == "failed" and "cannot migrate with key ********, password ********, payment key ********" in last["reason"]
    assert "********" in shop.summary()["failure"]
    shop.assert_no_secret_leaks()
    shop.reset_to(shop.base)


def test_the_analysis_the_rehearsal_and_the_app_tests_never_get_production_secrets(shop):
    """They run the release's code away from production: the same variable names (every name of the
    inventory's smart_deploy_app_secret_env), throwaway values - the database's names (POSTGRES_PASSWORD,
    DATABASE_URL) hold the throwaway database's - and no production secret under any name (the database
    superuser's, owner's and app role's passwords included)."""
    # the secrets' digests, not the secrets, go into the test's source (it is built into an image)
    digests = sorted(hashlib.sha256(c.encode()).hexdigest() for c in (shop.db_password, shop.secret_key, shop.app_secret,
                                                                       shop.owner_password(), shop.app_password()))  # fmt: skip
    shop.write("backend/src/catalog/tests_env.py", "import hashlib\nimport os\n\nfrom django.test import SimpleTestCase\n\n\n"
               "class Env(SimpleTestCase):\n    def test_secrets_are_placeholders(self):\n"
               "        for name in ('DJANGO_SECRET_KEY', 'SHOP_PAYMENT_KEY'):\n"
               "            self.assertTrue(os.environ[name].startswith('smart-deploy-placeholder'), name)\n"
               "        found = [n for n, v in os.environ.items() if hashlib.sha256(v.encode()).hexdigest() in %r]\n"
               "        self.assertEqual(found, [], 'production secrets')\n" % (digests,))  # fmt: skip
    shop.commit("a test that looks at its environment")
    result = shop.playbook("build", "-v")
    assert result.returncode == 0, "the app's test saw a production secret:\n" + result.stdout[-4000:]
    assert "tests passed" in shop.summary()["outcome"]
    shop.reset_to(shop.base)


# --- deploys that overlap (formerly test_concurrency.py): two started together, and one killed with SIGKILL while
# it migrates. The shop is on release 1 here; afterwards on the recovered release (shop.base, shop.live).
def start_deploy(shop, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]),
               SMART_DEPLOY_LOG_DIR=str(shop.workdir / "logs"), ANSIBLE_NOCOLOR="1")  # fmt: skip
    cmd = [str(VENV_BIN / "ansible-playbook"), "playbooks/deploy.yml", "-e", "@%s" % shop.vars_file, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_deploys_started_together_exactly_one_proceeds(shop):
    first, second = start_deploy(shop), start_deploy(shop)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert not shop.leaks("".join(outputs))
    codes = [p.returncode for p in (first, second)]
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, codes
    loser = outputs[codes.index(max(codes))]
    assert "another deploy is running" in loser and "held by pytest" in loser
    assert not (shop.state_dir / "deploy.lock").exists()


def test_a_deploy_killed_while_migrating_is_recovered_by_the_next_one(shop):
    shop.write(
        "backend/src/catalog/migrations/0003_slow_backfill.py",
        """import time

from django.db import migrations


def backfill(apps, schema_editor):
    time.sleep(3)
    apps.get_model("catalog", "Product").objects.update(name=models_upper())


def models_upper():
    from django.db.models.functions import Upper

    return Upper("name")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
""",
    )
    release = shop.commit("slow backfill")
    before = shop.snapshot()
    deploy = start_deploy(shop)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until the migration runs in production
        running = run(["docker", "ps", "-q", "--filter", "label=smart-deploy.app=%s" % shop.name,
                       "--filter", "label=smart-deploy.oneoff=apply"]).stdout.split()  # fmt: skip
        if running:
            break
        assert deploy.poll() is None, deploy.stdout.read()[-4000:]
        time.sleep(0.2)
    assert running, "the migration never started"
    time.sleep(1)
    os.kill(deploy.pid, signal.SIGKILL)
    deploy.wait()
    assert json.loads((shop.state_dir / "deploy.lock").read_text())["pid"] == deploy.pid, "the dead run's lock is left"
    assert shop.releases()["releases"][-1]["status"] == "deploying"

    result = shop.deploy()
    assert_ok(result)
    assert "took over a stale deploy lock" in result.stdout + result.stderr
    assert "Recovered from an interrupted deploy" in result.stdout
    history = shop.releases()["releases"]
    assert [(e["id"], e["status"]) for e in history[-2:]] == [(release, "failed"), (release, "live")]
    assert "interrupted" in history[-2]["reason"] and "recovered" in history[-2]["reason"]
    applied = shop.psql("SELECT count(*) FROM django_migrations WHERE name = '0003_slow_backfill'")
    assert applied == "1", "applied exactly once"
    assert shop.psql("SELECT name FROM catalog_product WHERE sku = 'TEA-001'") == "GREEN TEA, 100 G"
    assert before["rows"]["django_migrations"] != shop.snapshot()["rows"]["django_migrations"]
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == release
    assert shop.scratch_leftovers() == []
    leftovers = run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.app=%s" % shop.name, "--filter", "label=smart-deploy.oneoff"])
    assert leftovers.stdout.split() == []
    shop.base = shop.git("rev-parse", "HEAD")
    shop.live = release


# --- the hooks of a deploy (*_tasks_file), on this module's deployment once the tests above are done: the
# user's own task files run around build, migrate, the switch, the health check and on failure, with the
# release's facts; a missing hook file is refused before anything changes; a failing hook before the switch
# rolls the deploy back, and the on-failure hook runs (its own failure ignored). shop.live serves here.
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


def hook_file(shop, name, text):
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
        args += ["-e", "%s=%s" % (name, hook_file(shop, name, TRACE_HOOK.format(name=name, trace=trace)))]
    # the before-switch and after-health-check hooks also do real work: both in one file each
    before_switch = hook_file(
        shop,
        "before-switch",
        BEFORE_SWITCH_HOOK.format(volume=volume, marker=marker) + TRACE_HOOK.format(name="release_before_switch_tasks_file", trace=trace),
    )
    notify = hook_file(
        shop, "notify", NOTIFY_HOOK.format(path=notification) + TRACE_HOOK.format(name="health_check_after_tasks_file", trace=trace)
    )
    args += ["-e", "release_before_switch_tasks_file=%s" % before_switch, "-e", "health_check_after_tasks_file=%s" % notify]
    # an on-failure hook given to a deploy that succeeds does not run
    failure_marker = shop.workdir / "unexpected-failure.json"
    args += ["-e", "report_on_failure_tasks_file=%s" % hook_file(shop, "unexpected-failure", ON_FAILURE_HOOK.format(path=failure_marker))]
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
        "release_before_switch_tasks_file=%s" % hook_file(shop, "failing", FAILING_HOOK),
        "-e",
        "report_on_failure_tasks_file=%s" % hook_file(shop, "on-failure", ON_FAILURE_HOOK.format(path=notified)),
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
