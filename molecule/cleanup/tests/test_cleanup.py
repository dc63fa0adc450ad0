"""After three deploys (release one, then two that change only the frontend) and a cleanup: what the live and
the previous release need stays, the rest went."""

import json
import urllib.request

APP = "sdmolclean"
STATE = "/tmp/smart-deploy-molecule-cleanup/state"


def images(host):
    out = host.check_output("docker images --format '{{.Repository}}:{{.Tag}}' --filter label=smart-deploy.app=%s" % APP)
    return set(out.split())


def test_the_live_release_serves(host):
    assert host.docker(APP + "-db").is_running and host.docker(APP + "-proxy").is_running
    history = json.loads(host.file(STATE + "/releases.json").content_string)
    live = next(e for e in reversed(history["releases"]) if e["id"] == history["current"])
    assert live["containers"]["backend"].startswith(APP + "-web-one-"), "the backend did not change: release one's image serves"
    assert host.docker(live["containers"]["backend"]).is_running
    assert host.docker(APP + "-frontend-three").is_running
    with urllib.request.urlopen("http://127.0.0.1:18091/api/health/", timeout=10) as response:
        assert json.load(response)["release"] == "one", "the backend's own release"


def test_live_and_previous_images_stay_the_oldest_go(host):
    found = images(host)
    assert {APP + "-frontend:three", APP + "-frontend:two"} <= found, "live and previous frontends stay"
    assert APP + "-backend:one" in found, "the images the live release still uses stay"
    assert APP + "-frontend:one" not in found, "release one's frontend, used by nothing kept, goes"


def state_of(host, name):
    result = host.run("docker inspect -f '{{.State.Status}}' %s" % name)
    return result.stdout.strip() if result.rc == 0 else "absent"


def test_the_previous_release_containers_stay_stopped_the_oldest_are_removed(host):
    assert state_of(host, APP + "-frontend-two") == "exited"
    assert state_of(host, APP + "-frontend-one") == "absent"


def test_the_database_and_its_volume_stay(host):
    assert host.run("docker volume inspect %s-pgdata" % APP).rc == 0
    count = host.check_output("docker exec %s-db psql -XAtq -U %s -d %s -c 'SELECT count(*) FROM catalog_product'" % (APP, APP, APP))
    assert int(count) == 3


def test_backups_within_retention_stay_readable_by_their_owner_only(host):
    dumps = [name for name in host.file(STATE + "/backups").listdir() if name.endswith(".dump")]
    assert len(dumps) == 1, "one backup, before the first migrations; the later deploys changed nothing in the database"
    for name in dumps:
        assert host.file("%s/backups/%s" % (STATE, name)).mode == 0o600


def test_the_history_is_intact(host):
    state = json.loads(host.file(STATE + "/releases.json").content_string)
    assert [(e["id"], e["status"]) for e in state["releases"]] == [("one", "superseded"), ("two", "superseded"), ("three", "live")]
