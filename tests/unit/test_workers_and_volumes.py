"""Workers and named volumes (README "Workers and volumes"), in plain logic: the input rules (every bad worker or
volume named before anything changes), how components run and what their containers are called
(module_utils/smart_deploy/services.py), change detection and cleanup around them, and the release history."""

import datetime

import pytest
from ansible.module_utils.smart_deploy import inputs, releases, services
from ansible.module_utils.smart_deploy.changes import derive_rules
from ansible.module_utils.smart_deploy.cleanup import plan_cleanup
from ansible.module_utils.smart_deploy.inputs import app_problems, logs_problems

from tests.unit.test_inputs import GOOD

BACKEND = {"context": "backend", "container": "web", "port": 8000, "health_path": "/api/health/", "volumes": ["media:/srv/media"]}
WORKER = {"command": ["celery", "-A", "shop", "worker"], "replicas": 2, "volumes": ["media:/srv/media:ro"]}
BEAT = {"command": ["celery", "-A", "shop", "beat"], "singleton": True, "stop_signal": "SIGINT",
        "health_command": ["celery", "-A", "shop", "inspect", "ping"]}  # fmt: skip
COMPONENTS = {"backend": BACKEND, "worker": WORKER, "beat": BEAT}


def with_components(**changes):
    """The shop's settings with the workers above, each component's entry changed (None: the component left out)."""
    components = {name: dict(spec) for name, spec in COMPONENTS.items()}
    for name, entry in changes.items():
        if entry is None:
            components.pop(name)
        else:
            components[name] = entry
    return dict(GOOD, smart_deploy_components=components, smart_deploy_routes=[{"path": "/", "component": "backend"}])


# --- input rules ------------------------------------------------------------------------------------------
def test_workers_that_run_the_django_image_and_a_shared_volume_are_fine():
    assert app_problems(with_components()) == []
    assert app_problems(with_components(worker=dict(WORKER, context="backend", stop_timeout=600, replicas="3"))) == []
    assert app_problems(with_components(beat=dict(BEAT, settle=2.5, stop_signal="QUIT"))) == []


W = "smart_deploy_components.worker"


@pytest.mark.parametrize(
    "worker, named",
    [
        (dict(WORKER, port=8001), "smart_deploy_components.worker.port: smart_deploy_components.worker is a worker"),
        (dict(WORKER, health_path="/up"), "smart_deploy_components.worker.health_path: smart_deploy_components.worker is a worker"),
        (dict(WORKER, replicas=0), W + ".replicas must be a whole number >= 1 (containers of this worker), got 0"),
        (dict(WORKER, replicas=-2), "smart_deploy_components.worker.replicas must be a whole number >= 1"),
        (dict(WORKER, replicas="two"), W + ".replicas must be a whole number >= 1 (containers of this worker), got 'two'"),
        (dict(WORKER, replicas=1.5), "smart_deploy_components.worker.replicas must be a whole number >= 1"),
        (dict(WORKER, replicas=True), "smart_deploy_components.worker.replicas must be a whole number >= 1"),
        (dict(WORKER, command="celery -A shop worker"),
         W + ".command must be a list of strings (argv, no shell), not a string: write [celery, -A, shop, worker]"),
        (dict(WORKER, command=[]), "smart_deploy_components.worker.command must be a non-empty list of strings (argv)"),
        (dict(WORKER, command=["celery", 3]), "smart_deploy_components.worker.command must be a non-empty list of strings (argv)"),
        (dict(WORKER, health_command="celery inspect ping"), "smart_deploy_components.worker.health_command must be a list of strings"),
        (dict(WORKER, health_command={"cmd": "x"}), "smart_deploy_components.worker.health_command must be a non-empty list of strings"),
        (dict(WORKER, singleton="maybe"), "smart_deploy_components.worker.singleton must be true or false"),
        (dict(WORKER, singleton=True), "a singleton runs one container at a time (replicas: 1), got replicas 2"),
        (dict(WORKER, settle=-1), "smart_deploy_components.worker.settle must be seconds from 0 to 600"),
        (dict(WORKER, stop_timeout="soon"), "smart_deploy_components.worker.stop_timeout must be a whole number of seconds >= 0"),
        (dict(WORKER, stop_signal="SIGBREAK"), "smart_deploy_components.worker.stop_signal must be a signal such as SIGTERM"),
        ({"replicas": 2}, "smart_deploy_components.worker has no 'context' (the folder of its Docker build, relative to the app "
                          "source); a worker that runs the Django component's image has a 'command' instead"),
        ({"context": "backend", "replicas": 2}, W + ".replicas is for workers only (a component with a 'command')"),
    ],
)  # fmt: skip
def test_a_bad_worker_is_named_with_what_is_expected(worker, named):
    problems = app_problems(with_components(worker=worker))
    assert any(named in problem for problem in problems), problems


@pytest.mark.parametrize(
    "volumes, named",
    [
        (["media"], "smart_deploy_components.backend.volumes[0] must be '<name>:<absolute path in the container>' with an optional ':ro'"),
        (["media:/srv/media:rx"], "must be '<name>:<absolute path in the container>' with an optional ':ro', got 'media:/srv/media:rx'"),
        (["media:srv/media"], "smart_deploy_components.backend.volumes[0]: 'srv/media' must be an absolute path in the container"),
        (["media:/srv/../etc"], "'/srv/../etc' must be a plain absolute folder in the container (no '..', '.', '//', not '/')"),
        (["media:/"], "'/' must be a plain absolute folder in the container"),
        (["/srv:/data"], "smart_deploy_components.backend.volumes[0] '/srv:/data' mounts a folder of the host: only named volumes"),
        (["./uploads:/data"], "mounts a folder of the host"),
        (["my media:/srv/media"], "the volume name 'my media' must be 1-64 letters, digits, '_', '.' or '-'"),
        (["méd$a:/srv/media"], "the volume name 'méd$a' must be 1-64 letters"),
        (["media:/srv/media", "other:/srv/media/"], "smart_deploy_components.backend.volumes[1]: /srv/media is mounted twice"),
        ("media:/srv/media", "smart_deploy_components.backend.volumes must be a list of '<name>:<absolute path in the container>'"),
        ([{"name": "media"}], "smart_deploy_components.backend.volumes[0] must be a string"),
        (["pgdata:/srv/media"], "the volume 'pgdata' would be shop-pgdata, the database's volume (smart_deploy_db_volume)"),
    ],
)
def test_a_bad_volume_is_named_with_what_is_expected(volumes, named):
    problems = app_problems(with_components(backend=dict(BACKEND, volumes=volumes)))
    assert any(named in problem for problem in problems), problems


def test_a_route_to_a_worker_is_refused():
    values = dict(with_components(), smart_deploy_routes=[{"path": "/", "component": "backend"}, {"path": "/jobs/", "component": "worker"}])
    assert app_problems(values) == [
        "smart_deploy_routes[1].component 'worker' is a worker (it runs a command, with no port): workers get no traffic, route to a "
        "component with a port (backend)"
    ]


def test_the_django_component_cannot_be_a_worker_and_every_problem_is_said_at_once():
    problems = app_problems(with_components(backend=dict(BACKEND, command=["celery"]), worker=dict(WORKER, port=1, replicas=0)))
    assert [p.split(":")[0].split(" ")[0] for p in problems] == [
        "smart_deploy_components.backend.command",
        "smart_deploy_components.worker.port",
        "smart_deploy_components.worker.replicas",
    ], problems


def test_smart_deploy_sets_app_release_itself():
    problems = app_problems(dict(with_components(), smart_deploy_app_env={"APP_RELEASE": "mine"}))
    assert problems == [
        "smart_deploy_app_env.APP_RELEASE: smart-deploy sets APP_RELEASE itself in every container of a release (the release of its "
        "image); remove it"
    ]


def test_the_health_gates_forwarded_proto_and_the_settle_time_are_checked():
    assert app_problems(dict(GOOD, release_health_forwarded_proto="https", release_worker_settle=0)) == []
    problems = app_problems(dict(GOOD, release_health_forwarded_proto="HTTPS", release_worker_settle=-1))
    assert sorted(problems) == [
        "release_health_forwarded_proto (the X-Forwarded-Proto the health gate sends) must be http, https or empty, got 'HTTPS' (a string)",
        "release_worker_settle must be a whole number >= 0, got -1 (a number)",
    ]


def test_logs_of_a_worker_component_may_be_asked_for():
    assert logs_problems({"component": "worker", "smart_deploy_components": COMPONENTS}) == []


def test_the_known_keys_are_the_same_in_the_input_rules_and_in_what_runs_them():
    assert (inputs.COMPONENT_KEYS, inputs.WORKER_KEYS, inputs.DJANGO_LAYOUT_KEYS) == (
        services.COMPONENT_KEYS,
        services.WORKER_KEYS,
        services.DJANGO_LAYOUT_KEYS,
    )
    assert set(services.RUNTIME_KEYS) <= set(inputs.COMPONENT_KEYS + inputs.WORKER_KEYS)
    for spec in COMPONENTS.values():
        assert set(spec) <= set(inputs.known_component_keys(is_django=False))
    assert "project_dir" in inputs.known_component_keys(is_django=True) and "project_dir" not in inputs.known_component_keys(False)


# --- how components run, and their containers' names -----------------------------------------------------
def test_a_worker_without_a_context_runs_the_django_image_with_the_apps_environment():
    found = services.normalise(dict(COMPONENTS, proxy={"context": "infra"}), "backend")
    assert set(found) == {"backend", "worker", "beat"}
    assert found["worker"] == {
        "container": "worker", "image_of": "backend", "builds": False, "worker": True, "port": None, "health_path": "",
        "app_env": True, "command": ["celery", "-A", "shop", "worker"], "replicas": 2, "singleton": False,
        "volumes": [{"name": "media", "target": "/srv/media", "read_only": True}], "stop_signal": "", "stop_timeout": None,
        "health_command": None, "settle": None,
    }  # fmt: skip
    assert found["beat"]["singleton"] and found["beat"]["stop_signal"] == "SIGINT" and found["beat"]["container"] == "beat"
    assert found["backend"]["worker"] is False and found["backend"]["image_of"] == "backend" and found["backend"]["port"] == 8000
    own = services.normalise({"backend": BACKEND, "worker": dict(WORKER, context="worker", app_env=False)}, "backend")["worker"]
    assert own["image_of"] == "worker" and own["builds"] and own["app_env"] is False


def test_containers_are_named_per_replica_and_plain_components_keep_their_names():
    found = services.normalise({"backend": {"context": "."}, "frontend": {"context": "frontend", "port": 80}, "worker": WORKER}, "backend")
    images = {"backend": "shop-backend:abc123", "frontend": "shop-frontend:def456"}
    names = services.container_names(found, images, "shop", "f" * 64)
    # the names of components without run settings are what they always were: <scope>-<container>-<tag>[-<config fp8>]
    assert names["backend"] == ["shop-backend-abc123-ffffffff"] and names["frontend"] == ["shop-frontend-def456"]
    fp8 = names["worker"][0].split("-")[3]
    assert names["worker"] == ["shop-worker-abc123-%s-1" % fp8, "shop-worker-abc123-%s-2" % fp8] and fp8 != "ffffffff"
    # another command, another count, another volume or the configuration: other names (new containers beside the old)
    for change in ({"command": ["rq", "worker"]}, {"replicas": 3}, {"volumes": ["media:/srv/media"]}, {"stop_timeout": 60}):
        other = services.normalise({"backend": {"context": "."}, "worker": dict(WORKER, **change)}, "backend")
        assert services.container_names(other, images, "shop", "f" * 64)["worker"][0].split("-")[3] != fp8, change
    assert services.container_names(found, images, "shop", "e" * 64)["worker"][0].split("-")[3] != fp8


def test_the_run_settings_fingerprint_is_empty_without_workers_or_volumes():
    plain = services.normalise({"backend": {"context": ".", "port": 8000}, "frontend": {"context": "f", "port": 80}}, "backend")
    assert services.runtime_fingerprint(plain) == ""
    found = services.normalise(COMPONENTS, "backend")
    assert len(services.runtime_fingerprint(found)) == 64
    assert services.runtime_fingerprint(services.normalise(dict(COMPONENTS, worker=dict(WORKER, replicas=3)), "backend")) != (
        services.runtime_fingerprint(found)
    )


def test_the_same_volume_name_in_two_components_is_one_volume():
    assert services.volumes_of(services.normalise(COMPONENTS, "backend"), "shop") == [
        {"name": "media", "docker_name": "shop-media", "components": ["backend", "worker"]}
    ]
    assert services.parse_volume("media:/srv/media:ro") == {"name": "media", "target": "/srv/media", "read_only": True}
    assert services.parse_volume("/srv:/data") is None


# --- change detection, cleanup, the release history --------------------------------------------------------
def test_a_worker_without_a_context_follows_the_django_image_in_change_detection():
    rules = derive_rules(COMPONENTS, "backend")
    assert set(rules["rules"]) == {"backend", "migrations"}, "no category of its own: it has no build context"
    assert rules["component_triggers"]["worker"] == rules["component_triggers"]["backend"] == ["backend", "migrations"]
    own = derive_rules({"backend": BACKEND, "worker": dict(WORKER, context="worker")}, "backend")
    assert own["rules"]["worker"] == ["worker/**"] and own["component_triggers"]["worker"] == ["worker"]


def test_cleanup_keeps_every_replica_of_a_kept_release():
    history = {
        "current": "r2",
        "releases": [
            {"id": "r1", "status": "superseded", "images": {"backend": "shop-backend:r1"},
             "containers": {"worker": "shop-worker-r1-a-1"}, "replicas": {"worker": ["shop-worker-r1-a-1", "shop-worker-r1-a-2"]}},
            {"id": "r2", "status": "live", "images": {"backend": "shop-backend:r2"}, "containers": {}, "replicas": {}},
        ],
    }  # fmt: skip
    containers = [{"name": n, "image": "shop-backend:r1", "running": False, "component": "worker"}
                  for n in ("shop-worker-r1-a-1", "shop-worker-r1-a-2", "shop-worker-r0-a-1")]  # fmt: skip
    plan = plan_cleanup(history, containers, [], keep_releases=0)
    assert plan["remove_containers"] == ["shop-worker-r0-a-1"]


def test_a_rollback_entry_keeps_how_its_workers_ran():
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    doc = releases.empty_state("shop")
    doc = releases.start(doc, "r1", now, {})
    doc = releases.finish(doc, "r1", now, {"images": {"backend": "b:r1"}, "services": {"worker": {"replicas": 2}},
                                             "replicas": {"worker": ["w-1", "w-2"]}, "runtime": "abc"})  # fmt: skip
    doc = releases.start(doc, "r2", now, {})
    doc = releases.finish(doc, "r2", now, {"images": {"backend": "b:r2"}, "services": {"worker": {"replicas": 3}}})
    doc = releases.rollback(doc, "r1", now, {"deployed_by": "pytest"})
    entry = doc["releases"][-1]
    assert (
        entry["services"] == {"worker": {"replicas": 2}} and entry["replicas"] == {"worker": ["w-1", "w-2"]} and entry["runtime"] == "abc"
    )


@pytest.mark.parametrize(
    "components",
    [
        None,
        "backend",
        {"backend": "x"},
        {"worker": {"command": "celery worker", "replicas": "many", "stop_timeout": "soon", "settle": "x", "port": "80a"}},
        {"worker": {"command": ["a"], "replicas": -2, "volumes": "media:/srv/media", "health_command": "ping"}},
        {"worker": {"command": ["a"], "replicas": True, "volumes": [3, "bad"], "singleton": "maybe"}},
    ],
)
def test_bad_components_never_break_what_runs_them_before_the_input_checks_name_them(components):
    """Ansible evaluates smart_deploy_services while it checks the roles' argument specs, before the input checks."""
    found = services.normalise(components, "backend")
    services.runtime_fingerprint(found)
    services.container_names(found, {"backend": "shop-backend:r1"}, "shop", "f" * 64)
    services.volumes_of(found, "shop")
    for service in found.values():
        assert service["replicas"] >= 1
