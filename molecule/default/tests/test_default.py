"""What a user of the converged deployment can see on the host."""

import json
import urllib.request

APP = "sdmolecule"
STATE = "/tmp/smart-deploy-molecule/state"


def releases(host):
    return json.loads(host.file(STATE + "/releases.json").content_string)


def test_database_proxy_and_release_containers_run(host):
    history = releases(host)
    live = next(e for e in reversed(history["releases"]) if e["id"] == history["current"])
    for name in (APP + "-db", APP + "-proxy", live["containers"]["backend"], live["containers"]["frontend"]):
        assert host.docker(name).is_running, name


def test_proxy_answers_on_its_port(host):
    assert host.socket("tcp://127.0.0.1:18090").is_listening
    with urllib.request.urlopen("http://127.0.0.1:18090/api/health/", timeout=10) as response:
        health = json.load(response)
    assert response.status == 200
    assert health["database"] == "reachable" and health["migrations"]["pending"] == 0
    assert health["release"] == releases(host)["current"]


def test_backups_are_readable_by_their_owner_only(host):
    backups = host.file(STATE + "/backups")
    assert backups.mode == 0o700
    dumps = [name for name in backups.listdir() if name.endswith(".dump")]
    assert len(dumps) == 1, "one backup before the first migration, none on the idempotent second run"
    for name in dumps:
        assert host.file("%s/backups/%s" % (STATE, name)).mode == 0o600
        metadata = json.loads(host.file("%s/backups/%s" % (STATE, name.replace(".dump", ".json"))).content_string)
        assert metadata["verified"] is True and metadata["app"] == APP


def test_state_file_records_one_live_release(host):
    state = releases(host)
    assert state["app"] == APP
    assert [entry["status"] for entry in state["releases"]] == ["live"]
    entry = state["releases"][0]
    assert entry["id"] == state["current"]
    assert entry["deployed_by"] == "molecule"
    assert "catalog.0002_seed_products" in entry["migrations"]["applied"]
    assert not host.file(STATE + "/deploy.lock").exists
