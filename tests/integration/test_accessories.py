"""Redis beside the app (roles/accessories), proven with the role on its own (tests/integration/playbooks/accessories.yml)
and the notes sample's inventory for the names: a real Redis in <app>-redis (the image scripts/setup.sh builds offline as
redis:7-bookworm), its data in <app>-redis-data, its password from smart_deploy_db_password, asked for by every client
and never on a command line; restarted only when its settings change; kept, with its data, when the inventory drops it.
How the app reaches it in a real deploy is in test_traits.py (one deployment of the notes sample)."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import assert_failed, assert_ok, run
from tests.integration.notes import Notes


@pytest.fixture(scope="module")
def deployment_kind():
    return Notes


def accessories(notes, wanted, *args):
    return notes.playbook(
        "../tests/integration/playbooks/accessories",
        "-e",
        json.dumps({"smart_deploy_accessories": wanted, "accessories_health_interval": "1s"}),
        *args,
    )


def redis_cli(notes, *args, password=None):
    """redis-cli in the Redis container; with the container's own REDISCLI_AUTH unless ``password`` says otherwise."""
    auth = [] if password is None else ["-e", "REDISCLI_AUTH=%s" % password]
    return run(["docker", "exec", *auth, "%s-redis" % notes.name, "redis-cli", *args])


def inspect(notes, what: str) -> str:
    return run(["docker", "inspect", "-f", what, "%s-redis" % notes.name]).stdout.strip()


@pytest.fixture(scope="module")
def redis(module_deployment):
    notes = module_deployment
    result = accessories(notes, {"redis": {}})
    assert_ok(result)
    notes.redis_first = result.stdout
    return notes


def test_redis_runs_with_its_volume_and_answers_only_with_its_password(redis):
    assert redis_cli(redis, "PING").stdout.strip() == "PONG"
    refused = redis_cli(redis, "PING", password="")
    assert "NOAUTH" in refused.stdout + refused.stderr or "WRONGPASS" in refused.stdout + refused.stderr
    assert redis_cli(redis, "PING", password="wrong-password-123").stdout.strip() != "PONG"
    assert (
        inspect(redis, "{{.Config.Image}} {{.Config.User}} {{.HostConfig.RestartPolicy.Name}}") == "redis:7-bookworm redis unless-stopped"
    )
    mounts = json.loads(inspect(redis, "{{json .Mounts}}"))
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", "%s-redis-data" % redis.name, "/data")]
    assert inspect(redis, '{{index .Config.Labels "smart-deploy.app"}} {{index .Config.Labels "smart-deploy.accessory"}}') == (
        "%s redis" % redis.name
    )
    networks = json.loads(inspect(redis, "{{json .NetworkSettings.Networks}}"))
    assert list(networks) == ["%s-net" % redis.name]
    assert "redis started" in redis.redis_first


def test_the_password_is_never_on_a_command_line(redis):
    password = redis.redis_password()
    assert redis_cli(redis, "PING", password=password).stdout.strip() == "PONG"  # it is the derived one
    shown = inspect(redis, "{{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Healthcheck}} {{json .Args}} {{.Path}}")
    assert password not in shown and "--appendonly" in shown
    processes = run(["docker", "top", "%s-redis" % redis.name, "-o", "pid,args"]).stdout
    assert password not in processes and "redis-server" in processes
    # only the environment holds it (like the database container's POSTGRES_PASSWORD); the server's own is emptied
    server_env = run(["docker", "exec", "%s-redis" % redis.name, "cat", "/proc/1/environ"]).stdout
    assert password not in server_env


def test_it_turns_healthy_and_a_second_run_changes_nothing(redis):
    started = inspect(redis, "{{.Id}}")
    redis_cli(redis, "SET", "kept", "across-runs")
    result = accessories(redis, {"redis": {}})
    assert_ok(result)
    assert "redis running" in result.stdout and inspect(redis, "{{.Id}}") == started
    for _ in range(30):
        if inspect(redis, "{{.State.Health.Status}}") == "healthy":
            break
        run(["sleep", "0.5"])
    assert inspect(redis, "{{.State.Health.Status}}") == "healthy"


def test_changed_settings_restart_it_and_the_data_stays(redis):
    started = inspect(redis, "{{.Id}}")
    result = accessories(redis, {"redis": {"maxmemory": "64mb", "maxmemory_policy": "allkeys-lru"}})
    assert_ok(result)
    assert inspect(redis, "{{.Id}}") != started
    assert redis_cli(redis, "CONFIG", "GET", "maxmemory").stdout.split() == ["maxmemory", "67108864"]
    assert redis_cli(redis, "CONFIG", "GET", "maxmemory-policy").stdout.split() == ["maxmemory-policy", "allkeys-lru"]
    assert redis_cli(redis, "GET", "kept").stdout.strip() == "across-runs"


def test_an_unknown_key_is_refused_by_name_before_anything_changes(redis):
    started = inspect(redis, "{{.Id}}")
    result = accessories(redis, {"redis": {"max_memory": "64mb"}, "memcached": {}})
    assert_failed(result)
    assert "unknown key `max_memory` in smart_deploy_accessories.redis; did you mean `maxmemory`?" in result.stdout
    assert "unknown accessory `memcached` in smart_deploy_accessories" in result.stdout
    assert inspect(redis, "{{.Id}}") == started


def test_logs_shows_redis(redis):
    refused = redis.playbook("logs", "-e", "component=redis")  # an inventory without Redis has no such component
    assert_failed(refused)
    assert "component must be one of backend, database, proxy, got 'redis'" in refused.stdout
    result = redis.playbook("logs", "-e", "component=redis", "-e", json.dumps({"smart_deploy_accessories": {"redis": {}}}))
    assert_ok(result)
    assert "Ready to accept connections" in result.stdout


def test_status_shows_redis_running_healthy_with_its_memory(redis):
    redis.state_dir.mkdir(exist_ok=True)  # (status reads the state folder a deploy makes; none ran here)
    result = redis.playbook("status", "-e", json.dumps({"smart_deploy_accessories": {"redis": {"maxmemory": "64mb"}}}))
    assert_ok(result)
    line = next(line for line in result.stdout.splitlines() if "%s-redis" % redis.name in line and "memory" in line)
    assert "(healthy)" in line and "of 64.00M (allkeys-lru)" in line, line


def test_dropped_from_the_inventory_it_keeps_running_with_its_data(redis):
    started = inspect(redis, "{{.Id}}")
    result = accessories(redis, {})
    assert_ok(result)
    said = " ".join(result.stdout.split())
    assert "redis (%s-redis, running) is no longer in smart_deploy_accessories: it keeps running with its data" % redis.name in said
    assert "| accessories | redis (%s-redis, running) no longer wanted: kept running with its data" % redis.name in said
    assert inspect(redis, "{{.Id}} {{.State.Status}}") == "%s running" % started
    assert redis_cli(redis, "GET", "kept").stdout.strip() == "across-runs"
    assert run(["docker", "volume", "inspect", "%s-redis-data" % redis.name]).returncode == 0
