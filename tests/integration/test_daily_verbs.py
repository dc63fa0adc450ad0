"""The daily verbs on the shop, with the real playbooks: change-driven deploys (frontend only, proxy
settings, nothing), emergency, cleanup, build and dev. (A backend change with a migration, under load and
with the app's tests: test_validation.py's test_clean_new_migration_is_normal_and_deploy_applies_it.)"""

import json
import time
import urllib.request

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, free_port, run
from tests.integration.load import Load


def container_id(name):
    return run(["docker", "inspect", "-f", "{{.Id}}", name]).stdout.strip()


def live_entry(shop):
    history = shop.releases()
    return next(e for e in reversed(history["releases"]) if e["id"] == history["current"])


def test_nothing_changed_is_a_fast_no_op_that_says_so(shop):
    result = shop.deploy()
    assert_ok(result)
    assert shop.summary()["steps"]["changes"].startswith("nothing to deploy")
    assert "changed=0" in result.stdout
    assert len(shop.releases()["releases"]) == 1


def test_a_documentation_only_commit_deploys_nothing(shop):
    shop.write("README.md", "# the shop, now documented\n")
    shop.commit("docs")
    before = shop.snapshot()
    result = shop.deploy()
    assert_ok(result)
    assert shop.summary()["steps"]["changes"].startswith("nothing to deploy: no component changed")
    assert shop.snapshot() == before and len(shop.releases()["releases"]) == 1


def test_frontend_only_change_never_touches_the_database(shop):
    web = live_entry(shop)["containers"]["backend"]
    web_id = container_id(web)
    before = shop.snapshot()
    backups_before = sorted((shop.state_dir / "backups").glob("*.dump"))
    shop.write("frontend/public/style.css", "body { font-family: serif; }\n")
    release = shop.commit("serif")
    result = shop.deploy()
    assert_ok(result)
    changes = shop.summary()["steps"]["changes"]
    assert "rebuild frontend, keep backend" in changes
    assert "database not concerned: rehearsal, backup and migrate skipped" in changes
    assert "Rehearse the migrations" not in result.stdout and "Back up the database" not in result.stdout
    assert shop.snapshot() == before, "the database is untouched"
    assert sorted((shop.state_dir / "backups").glob("*.dump")) == backups_before
    assert container_id(web) == web_id, "the backend was not restarted"
    entry = live_entry(shop)
    assert entry["id"] == release and entry["built"] == ["frontend"] and entry["changes"]["database"] is False
    assert entry["containers"]["frontend"].endswith(release)
    status, page = shop.http("/style.css")
    assert status == 200 and "serif" in page
    shop.base = shop.git("rev-parse", "HEAD")  # the later tests come back to it


def test_a_proxy_settings_change_reloads_the_proxy_without_dropping_a_request(shop):
    web_id = container_id(live_entry(shop)["containers"]["backend"])
    proxy_id = container_id("%s-proxy" % shop.name)
    assert "Service ready" not in shop.http("/alive")[1], "the frontend answers every path the proxy does not"
    settings = json.loads(shop.vars_file.read_text())
    shop.vars_file.write_text(json.dumps(dict(settings, proxy_health_path="/alive")))
    with Load("http://127.0.0.1:%d" % shop.port, rate=40) as load:
        result = shop.deploy()
    assert_ok(result)
    assert shop.summary()["steps"]["changes"].startswith("the proxy's routes or settings changed")
    assert container_id("%s-proxy" % shop.name) == proxy_id, "reloaded in place, not recreated"
    assert container_id(live_entry(shop)["containers"]["backend"]) == web_id
    assert shop.http("/alive") == (200, "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n"), "the proxy answers it now"
    assert load.result.failed == 0 and load.result.total > 100, load.result.describe()


def test_a_backend_that_docker_restarts_with_another_address_is_still_served(shop):
    web = live_entry(shop)["containers"]["backend"]
    network = "%s-net" % shop.name

    def address():
        template = "{{(index .NetworkSettings.Networks %s).IPAddress}}" % json.dumps(network)
        return run(["docker", "inspect", "-f", template, web]).stdout.strip()

    before = address()
    fillers = []
    try:
        # a crashed container comes back with whatever address is free: make sure its own is taken
        while address() == before and len(fillers) < 5:
            run(["docker", "stop", "-t", "30", web])
            fillers.append("%s-filler-%d" % (shop.name, len(fillers)))
            run(["docker", "run", "-d", "--name", fillers[-1], "--network", network, "--label", "smart-deploy.app=%s" % shop.name,
                 "python:3.11-slim-bookworm", "sleep", "120"])  # fmt: skip
            run(["docker", "start", web])
        assert address() != before
        for _ in range(40):
            if shop.http("/api/health/")[0] == 200:
                break
            time.sleep(0.25)
        assert shop.get_json("/api/health/")[0] == 200, "the proxy follows the container by its name"
    finally:
        run(["docker", "rm", "-f", *fillers])


def test_emergency_deploy_skips_tests_and_rehearsal_but_keeps_backup_and_health(shop):
    releases.add_cart_item_note(shop)
    release = shop.commit("hotfix: notes on cart items")
    backups_before = len(list((shop.state_dir / "backups").glob("*.dump")))
    result = shop.deploy("-e", "smart_deploy_emergency=true", "-e", "smart_deploy_app_tests=true")
    assert_ok(result)
    assert "Run the app's tests" not in result.stdout
    assert "migrations were not rehearsed on a copy" in result.stdout
    assert "emergency: tests and rehearsal skipped" in shop.summary()["outcome"]
    assert "tests" not in shop.summary()["steps"]
    assert len(list((shop.state_dir / "backups").glob("*.dump"))) == backups_before + 1
    entry = live_entry(shop)
    assert entry["id"] == release and entry["kind"] == "emergency" and entry["migrations"]["applied"] == ["cart.0002_cartitem_note"]
    assert shop.get_json("/api/health/")[0] == 200


def test_a_failing_app_test_stops_the_deploy_before_any_change(shop):
    shop.write("backend/src/catalog/tests_broken.py", "from django.test import TestCase\n\n\nclass Broken(TestCase):\n"
               "    def test_fails(self):\n        self.assertEqual(1, 2)\n")  # fmt: skip
    shop.commit("a broken test")
    before, history = shop.snapshot(), shop.releases()
    result = shop.deploy("-e", "smart_deploy_app_tests=true")
    assert_failed(result)
    assert "the app's tests failed" in result.stdout
    assert shop.snapshot() == before and shop.releases() == history, "nothing changed, not even the history"
    build = shop.playbook("build")
    assert_failed(build)
    assert "FAILED (failures=1)" in build.stdout
    shop.reset_to(shop.base)  # a passing build: test_scratch_lock_and_sql.py, test_safety_net.py (its secrets section)


def test_cleanup_keeps_what_the_live_and_previous_release_need(shop):
    # a crashed validation left a scratch container behind
    leftover = run(["docker", "run", "-d", "--label", "smart-deploy.app=%s" % shop.name, "--label", "smart-deploy.scratch=dead",
                    "--name", "%s-scratch-db-dead" % shop.name, "python:3.11-slim-bookworm", "sleep", "600"]).stdout.strip()  # fmt: skip
    assert leftover
    history = shop.releases()
    live = history["current"]
    result = shop.playbook("cleanup", "-e", "cleanup_keep_releases=0")
    assert_ok(result)
    assert "free" in result.stdout and "before" in result.stdout and "after" in result.stdout
    assert shop.get_json("/api/health/")[0] == 200
    assert run(["docker", "inspect", leftover]).returncode != 0, "the scratch leftover is gone"
    images = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "label=smart-deploy.app=%s" % shop.name])
    tags = set(images.stdout.split())
    live_entry_images = next(e for e in reversed(history["releases"]) if e["id"] == live)["images"].values()
    assert set(live_entry_images) <= tags, "the live release's images stay"
    previous = next(e for e in reversed(history["releases"]) if e["status"] == "superseded")
    assert set(previous["images"].values()) <= tags, "the previous release's images stay"
    first = history["releases"][0]
    assert first["images"]["frontend"] not in tags or first["images"]["frontend"] in set(live_entry_images) | set(
        previous["images"].values()
    )


def test_dev_stack_reloads_code_and_stops_cleanly(shop):
    port = str(free_port())
    up = shop.playbook("dev", "-e", "dev_port=%s" % port)
    assert_ok(up)
    with urllib.request.urlopen("http://127.0.0.1:%s/api/health/" % port, timeout=10) as response:
        assert json.load(response)["release"] == "dev"
    views = shop.source / "backend" / "src" / "shop" / "views.py"
    views.write_text(
        views.read_text().replace('body = {"release": settings.APP_RELEASE}', 'body = {"release": settings.APP_RELEASE, "dev": "reloaded"}')
    )
    deadline, body = time.monotonic() + 30, {}
    while time.monotonic() < deadline and body.get("dev") != "reloaded":
        time.sleep(1)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%s/api/health/" % port, timeout=5) as response:
                body = json.load(response)
        except OSError:
            pass
    assert body.get("dev") == "reloaded", "the server reloaded the edited code"
    down = shop.playbook("dev", "-e", "dev_action=down", "-e", "dev_purge=true")
    assert_ok(down)
    names = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert not [n for n in names if n.startswith("%s-dev-" % shop.name)]
    assert run(["docker", "volume", "inspect", "%s-dev-pgdata" % shop.name]).returncode != 0
    shop.reset_to(shop.base)


def test_preflight_cleans_up_by_itself_when_disk_is_low_and_refuses_when_still_too_low(shop):
    result = shop.deploy("-e", "preflight_cleanup_below_mb=100000000")
    assert_ok(result)
    assert "kept releases" in shop.summary()["steps"]["cleanup"]
    before = shop.snapshot()
    result = shop.deploy("-e", "preflight_cleanup_below_mb=100000000", "-e", "preflight_min_free_mb=100000000")
    assert_failed(result)
    assert "even after a cleanup" in result.stdout and "Free some space" in result.stdout
    assert shop.snapshot() == before
    assert not (shop.state_dir / "deploy.lock").exists()
