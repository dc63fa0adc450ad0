"""The input rules (module_utils/smart_deploy/inputs.py): every malformed input is named, with what is expected."""

import pytest
from ansible.module_utils.smart_deploy.inputs import (
    app_problems,
    logs_problems,
    problems_of,
    rollback_problems,
    secret_problems,
    state_dir_problem,
    status_problems,
)

from tests.conftest import ROOT

SHOP = str(ROOT / "examples" / "shop")
COMPONENTS = {
    "backend": {"context": "backend", "container": "web", "port": 8000, "health_path": "/api/health/"},
    "frontend": {"context": "frontend", "container": "frontend", "port": 80, "health_path": "/healthz"},
}
GOOD = {
    "smart_deploy_app_name": "shop",
    "smart_deploy_app_source": SHOP,
    "smart_deploy_state_dir": "/srv/shop",
    "smart_deploy_components": COMPONENTS,
    "smart_deploy_release": "",
    "smart_deploy_db_container": "shop-db",
    "smart_deploy_db_volume": "shop-pgdata",
    "smart_deploy_network": "shop-net",
    "smart_deploy_db_name": "shop",
    "smart_deploy_db_user": "shop",
    "smart_deploy_http_bind": "127.0.0.1",
    "smart_deploy_http_port": 8080,
    "smart_deploy_app_env": {"FEATURE": "true"},
    "smart_deploy_app_secret_env": {"KEY": "s3cret"},
    "health_check_endpoints": [{"name": "health", "path": "/api/health/"}],
    "smart_deploy_routes": [{"path": "/api/", "component": "backend"}, {"path": "/", "component": "frontend"}],
    "db_backup_keep": 10,
    "smart_deploy_emergency": "false",
    "release_health_timeout": 60,
    "release_health_interval": "0.5",
}


def test_the_sample_shop_settings_are_fine():
    assert app_problems(GOOD) == []


@pytest.mark.parametrize(
    "change, named",
    [
        ({"smart_deploy_app_name": "Shop Two"}, "smart_deploy_app_name"),
        ({"smart_deploy_scope": "shop/app1"}, "smart_deploy_scope must be 1-40 lowercase letters"),
        ({"smart_deploy_app_source": "/nowhere"}, "smart_deploy_app_source '/nowhere' is not a folder"),
        ({"smart_deploy_state_dir": "/tmp"}, "smart_deploy_state_dir is '/tmp', a system or shared folder"),
        ({"smart_deploy_state_dir": "/"}, "smart_deploy_state_dir is '/', a system"),
        ({"smart_deploy_state_dir": "/srv"}, "smart_deploy_state_dir is '/srv', a system"),
        ({"smart_deploy_state_dir": "srv/shop"}, "smart_deploy_state_dir must be an absolute path"),
        ({"smart_deploy_state_dir": "/srv/../etc/shop"}, "plain absolute path"),
        ({"smart_deploy_state_dir": "/etc/shop"}, "inside the system folder /etc"),
        ({"smart_deploy_state_dir": "/shop"}, "a top-level folder"),
        ({"smart_deploy_http_port": "80800"}, "smart_deploy_http_port must be a port number 1-65535, got '80800'"),
        ({"smart_deploy_http_port": True}, "smart_deploy_http_port must be a port number 1-65535, got true (a boolean)"),
        ({"smart_deploy_http_bind": "localhost:80"}, "smart_deploy_http_bind must be an IP address"),
        (
            {"smart_deploy_app_env": {"FEATURE": True}},
            'smart_deploy_app_env.FEATURE is true (a boolean): environment values must be strings, quote it in YAML (FEATURE: "true")',
        ),
        ({"smart_deploy_app_env": {"WORKERS": 4}}, "smart_deploy_app_env.WORKERS is 4 (a number)"),
        ({"smart_deploy_app_env": {"BAD-NAME": "x"}}, "not an environment variable name"),
        ({"smart_deploy_app_secret_env": {"KEY": 12345}}, "smart_deploy_app_secret_env.KEY is a number"),
        ({"smart_deploy_db_container": "shop db"}, "smart_deploy_db_container must be a Docker name"),
        ({"smart_deploy_db_mode": "managed"}, "smart_deploy_db_mode must be container (smart-deploy runs PostgreSQL) or external"),
        (
            {"smart_deploy_db_mode": "external", "smart_deploy_db_host": ""},
            "smart_deploy_db_host is required with smart_deploy_db_mode: external",
        ),
        (
            {"smart_deploy_db_mode": "external", "smart_deploy_db_host": "db host"},
            "smart_deploy_db_host must be a host name or an IP address",
        ),
        (
            {"smart_deploy_db_mode": "external", "smart_deploy_db_host": "db", "smart_deploy_db_port": 70000},
            "smart_deploy_db_port must be a port number 1-65535, got 70000",
        ),
        ({"smart_deploy_db_port": 6432}, "smart_deploy_db_port is 6432, but the database container listens on 5432"),
        ({"smart_deploy_db_sslmode": "maybe"}, "smart_deploy_db_sslmode must be one of disable, allow, prefer, require"),
        ({"smart_deploy_release": "../x"}, "smart_deploy_release must be"),
        ({"db_backup_keep": 0}, "db_backup_keep must be a whole number >= 1, got 0"),
        ({"db_backup_keep": "ten"}, "db_backup_keep must be a whole number >= 1, got 'ten'"),
        ({"release_health_interval": 0}, "release_health_interval must be a number of seconds above 0 and at most 60, got 0"),
        ({"release_health_interval": "half"}, "release_health_interval must be a number of seconds above 0 and at most 60, got 'half'"),
        ({"release_health_retries": 3}, "release_health_retries is no longer read: set release_health_timeout (seconds"),
        ({"release_health_delay": 1}, "release_health_delay is no longer read: set release_health_interval"),
        ({"smart_deploy_emergency": "maybe"}, "smart_deploy_emergency must be true or false"),
        ({"health_check_endpoints": [{"name": "h", "path": "api/health/"}]}, "health_check_endpoints[0].path must start with '/'"),
    ],
)
def test_each_bad_setting_is_named_with_what_is_expected(change, named):
    problems = app_problems(dict(GOOD, **change))
    assert len(problems) == 1 and named in problems[0], problems


@pytest.mark.parametrize(
    "components, named",
    [
        ({"frontend": COMPONENTS["frontend"]}, "no 'backend' component"),
        (dict(COMPONENTS, proxy={"context": "infra/proxy", "port": 80}), "smart-deploy runs its own proxy (HAProxy)"),
        (dict(COMPONENTS, backend={"container": "web", "port": 8000}), "smart_deploy_components.backend has no 'context'"),
        (dict(COMPONENTS, backend=dict(COMPONENTS["backend"], context="api")), "context 'api' is not a folder of the app source"),
        (
            dict(COMPONENTS, backend=dict(COMPONENTS["backend"], container="my web")),
            "smart_deploy_components.backend.container must be a container name",
        ),
        (dict(COMPONENTS, backend=dict(COMPONENTS["backend"], health_path="api/health/")), "health_path must start with '/'"),
        (dict(COMPONENTS, backend=dict(COMPONENTS["backend"], port=0)), "smart_deploy_components.backend.port must be a port number"),
        (dict(COMPONENTS, frontend=dict(COMPONENTS["frontend"], dockerfile="Containerfile")), "has no Containerfile"),
        (dict(COMPONENTS, backend=dict(COMPONENTS["backend"], context="../backend")), "must be a folder inside the app source"),
    ],
)
def test_components_are_checked_against_the_source(components, named):
    problems = app_problems(dict(GOOD, smart_deploy_components=components, smart_deploy_routes=[{"path": "/", "component": "frontend"}]))
    assert len(problems) == 1 and named in problems[0], problems


@pytest.mark.parametrize(
    "routes, named",
    [
        ([], "smart_deploy_routes must be a list of {path, component}"),
        ("/api/", "smart_deploy_routes must be a list"),
        ([{"path": "api/", "component": "backend"}], "smart_deploy_routes[0].path must be a URL path starting with '/'"),
        ([{"path": "/a b", "component": "backend"}], "smart_deploy_routes[0].path must be a URL path"),
        (
            [{"path": "/", "component": "db"}],
            "smart_deploy_routes[0].component must be a component with a port (backend, frontend), got 'db'",
        ),
        (
            [{"path": "/", "component": "backend"}, {"path": "/", "component": "frontend"}],
            "smart_deploy_routes[1].path '/' is routed twice",
        ),
        (["/"], "smart_deploy_routes[0] must be a mapping {path, component}"),
    ],
)
def test_routes_are_checked(routes, named):
    problems = app_problems(dict(GOOD, smart_deploy_routes=routes))
    assert len(problems) == 1 and named in problems[0], problems


def test_secrets_are_named_never_shown():
    problems = secret_problems({"smart_deploy_db_password": "", "smart_deploy_django_secret_key": 1234567})
    assert problems[0].startswith("smart_deploy_db_password is empty") and "must be a string" in problems[1]
    assert "1234567" not in " ".join(problems)
    assert secret_problems({})[0].startswith("smart_deploy_db_password is not set")
    secret_env = app_problems(dict(GOOD, smart_deploy_app_secret_env={"KEY": 98765432}))
    assert "98765432" not in " ".join(secret_env)


@pytest.mark.parametrize(
    "check, values, named",
    [
        (rollback_problems, {"restore_db": "ture"}, "restore_db must be true or false, got 'ture'"),
        (rollback_problems, {"release": "../../etc/passwd"}, "release (the rollback target) must be a release id"),
        (rollback_problems, {"release": 83}, "got 83 - a number: YAML read the answer unquoted; quote it"),
        (status_problems, {"history": "-5"}, "history (how many releases to show) must be a whole number >= 1, got '-5'"),
        (status_problems, {"history": "ten"}, "history"),
        (
            status_problems,
            {"status_html": "deploys.html"},
            "status_html (the HTML file of the last deploys, on the controller) must be an absolute",
        ),
        (status_problems, {"status_html": "/tmp/"}, "status_html"),
        (
            status_problems,
            {"status_html": "/tmp/d.html", "status_last": "0"},
            "status_last (how many deploys to draw) must be a whole number >= 1",
        ),
        (logs_problems, {"lines": "0"}, "lines must be a whole number >= 1"),
        (logs_problems, {"since": "yesterday"}, "since must be a duration"),
        (
            logs_problems,
            {"component": "db", "smart_deploy_components": COMPONENTS},
            "component must be one of backend, database, frontend, proxy",
        ),
    ],
)
def test_verb_options_are_checked(check, values, named):
    problems = check(values)
    assert len(problems) == 1 and named in problems[0], problems


@pytest.mark.parametrize("good", [{"restore_db": "true"}, {"restore_db": "no"}, {"restore_db": False}, {"release": "3f2a1b9c0d1e"}])
def test_good_rollback_options_pass(good):
    assert rollback_problems(good) == []


@pytest.mark.parametrize("good", [{}, {"status_html": ""}, {"status_html": "/tmp/d.html", "status_last": "3"}, {"status_last": 5}])
def test_good_status_options_pass(good):
    assert status_problems(good) == []


@pytest.mark.parametrize("since", ["10m", "1h30m", "45s", "2026-11-30", "2026-11-30T10:00:00Z", "1764496800"])
def test_since_accepts_what_docker_logs_accepts(since):
    assert logs_problems({"since": since}) == []


@pytest.mark.parametrize(
    "path", ["/srv/shop", "/opt/apps/shop", "/tmp/smart-deploy-molecule/state", "/var/lib/smart-deploy/shop", "/home/deploy/shop"]
)
def test_state_folders_of_their_own_are_fine(path):
    assert state_dir_problem(path) is None


@pytest.mark.parametrize(
    "check, values, named",
    [
        (rollback_problems, {"rollback_release": "../x"}, "rollback_release (the rollback target) must be a release id"),
        (rollback_problems, {"rollback_restore_db": "maybe"}, "rollback_restore_db must be true or false"),
        (status_problems, {"status_history": 0}, "status_history (how many releases to show) must be a whole number >= 1"),
        (logs_problems, {"logs_lines": -1}, "logs_lines must be a whole number >= 1"),
        (logs_problems, {"logs_component": "db"}, "logs_component must be one of"),
        (logs_problems, {"logs_since": "yesterday"}, "logs_since must be a duration"),
    ],
)
def test_role_variables_set_directly_are_checked_under_their_own_name(check, values, named):
    # what an AWX survey sends (rollback_release, logs_lines, ...) is checked like ./deploy's short names
    problems = check(values)
    assert len(problems) == 1 and named in problems[0], problems


def test_a_role_variable_defaulted_from_the_short_name_is_reported_once():
    # the role default rollback_release: "{{ release }}" templates to the same bad value: one problem, not two
    assert rollback_problems({"release": "../x", "rollback_release": "../x"}) == [
        "release (the rollback target) must be a release id (letters, digits, '.', '_', '-'), got '../x'"
    ]
    assert len(rollback_problems({"release": "ok", "rollback_release": "../x"})) == 1


def test_problems_of_runs_the_groups_asked_for():
    problems = problems_of(dict(GOOD, history="0", restore_db="x"), ["app", "status"])
    assert len(problems) == 1 and problems[0].startswith("history")


# --- what the app has: a backend only, the Django component named, where the app lives in its image ------------
NOTES = str(ROOT / "examples" / "notes")
NOTES_APP = dict(
    GOOD,
    smart_deploy_app_name="notes",
    smart_deploy_app_source=NOTES,
    smart_deploy_state_dir="/srv/notes",
    smart_deploy_components={
        "backend": {
            "context": ".",
            "container": "web",
            "port": 8081,
            "health_path": "/healthz",
            "project_dir": "/srv/notes",
            "settings_module": "notesite.settings",
            "source_dir": "app",
            "python_version": "3.11",
        }
    },
    smart_deploy_routes=[{"path": "/", "component": "backend"}],
    health_check_endpoints=[{"name": "health", "path": "/healthz"}],
)


def test_a_backend_only_app_with_its_image_layout_is_good():
    assert app_problems(NOTES_APP) == []


def test_the_django_component_may_have_another_name():
    components = {"api": dict(NOTES_APP["smart_deploy_components"]["backend"])}
    app = dict(NOTES_APP, smart_deploy_components=components, smart_deploy_routes=[{"path": "/", "component": "api"}])
    assert app_problems(dict(app, smart_deploy_django_component="api")) == []
    problems = app_problems(app)  # smart_deploy_django_component left at backend
    assert len(problems) == 1 and "has no 'backend' component (the Django app, smart_deploy_django_component)" in problems[0], problems
    assert "a backend-only app needs only" in problems[0] and "(components: api)" in problems[0]


@pytest.mark.parametrize(
    "change, named",
    [
        ({"project_dir": "srv/notes"}, "backend.project_dir must be the absolute folder of manage.py in the image"),
        ({"python": "python -X dev"}, "backend.python must be the Python command of the image"),
        ({"settings_module": "notesite/settings.py"}, "backend.settings_module must be a dotted Python module"),
        ({"source_dir": "../app"}, "backend.source_dir must be a path inside the component's context"),
        ({"requirements": "/tmp/requirements.txt"}, "backend.requirements must be a path inside the component's context"),
        ({"wheels": ""}, "backend.wheels must be a path inside the component's context"),
        ({"python_version": 3.11}, "backend.python_version must be the image's Python as a quoted string such as '3.11', got 3.11"),
        ({"platforms": "manylinux2014_x86_64"}, "backend.platforms must be a list of wheel platforms"),
        ({"container": "proxy"}, "backend.container is 'proxy', the name of smart-deploy's own proxy container"),
        ({"dev_mounts": {"app": "srv"}}, "backend.dev_mounts must map folders of the context to absolute folders"),
    ],
)
def test_the_django_components_image_layout_is_checked(change, named):
    backend = dict(NOTES_APP["smart_deploy_components"]["backend"], **change)
    problems = app_problems(dict(NOTES_APP, smart_deploy_components={"backend": backend}))
    assert len(problems) == 1 and named in problems[0], problems


def test_an_empty_requirements_means_no_wheelhouse_and_the_image_layout_is_the_django_components_only():
    backend = dict(NOTES_APP["smart_deploy_components"]["backend"], requirements="")
    assert app_problems(dict(NOTES_APP, smart_deploy_components={"backend": backend})) == []
    frontend = dict(COMPONENTS["frontend"], dev_mounts={"public": "/usr/share/nginx/html"})
    assert app_problems(dict(GOOD, smart_deploy_components=dict(COMPONENTS, frontend=frontend))) == []
    # issue 24: a key of the Django component's image layout on another component is read nowhere: said so
    problems = app_problems(dict(GOOD, smart_deploy_components=dict(COMPONENTS, frontend=dict(frontend, python="python3"))))
    assert problems == ["smart_deploy_components.frontend.python: only the Django component's entry (smart_deploy_django_component: "
                        "backend) says where the app lives in its image; remove it here"], problems  # fmt: skip


def test_an_apps_own_proxy_component_points_to_the_readme():
    problems = app_problems(dict(GOOD, smart_deploy_components=dict(COMPONENTS, proxy={"context": "frontend", "port": 80})))
    assert len(problems) == 1 and "An app that brings its own proxy" in problems[0], problems


@pytest.mark.parametrize(
    "accept, problem",
    [
        ([], None),
        ("", None),
        ("missing-migration-sql", None),
        ("missing-migration-sql, schema-drift", None),
        (["duplicate-rows", "schema-drift"], None),
        ("missing-migrations", "unknown abort reason code 'missing-migrations' (known: inconsistent-history,"),
        (["schema-drift", "drift", "dup"], "unknown abort reason codes 'drift', 'dup'"),
        ({"code": "schema-drift"}, "must be a list of abort reason codes or one string of codes separated by commas, got {"),
        ([1], "must be a list of abort reason codes"),
    ],
)
def test_accepted_abort_codes_are_checked(accept, problem):
    problems = [p for p in app_problems(dict(GOOD, smart_deploy_accept=accept)) if "smart_deploy_accept" in p]
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0] and problems[0].startswith("smart_deploy_accept")


def test_an_external_server_on_another_port_is_fine():
    external = dict(GOOD, smart_deploy_db_mode="external", smart_deploy_db_host="host.docker.internal", smart_deploy_db_port=6432,
                    smart_deploy_db_sslmode="require")  # fmt: skip
    assert app_problems(external) == []


# --- unknown keys (issue 24): every key of every mapping the inventory gives smart-deploy is a known one -----------------
def test_a_misspelt_component_key_is_refused_naming_it_and_the_nearest_known_key():
    web = dict(COMPONENTS["backend"], volume=["media:/srv/media"])
    problems = app_problems(dict(GOOD, smart_deploy_components=dict(COMPONENTS, backend=web)))
    assert len(problems) == 1 and problems[0].startswith(
        "unknown key `volume` in smart_deploy_components.backend; did you mean `volumes`? (known: app_env, command, container, context,"
    ), problems  # fmt: skip
    # a worker's keys, and a key nothing resembles: the known ones listed
    worker = {"command": ["python", "manage.py", "rqworker"], "replica": 2, "image": "redis"}
    problems = app_problems(dict(GOOD, smart_deploy_components=dict(COMPONENTS, worker=worker)))
    assert problems[0] == ("unknown key `replica` in smart_deploy_components.worker; did you mean `replicas`? (known: app_env, command, "
                           "container, context, dev_mounts, dockerfile, health_command, health_path, port, replicas, settle, singleton, "
                           "stop_signal, stop_timeout, volumes)"), problems  # fmt: skip
    assert problems[1].startswith("unknown key `image` in smart_deploy_components.worker (known: app_env,"), problems
    assert len(problems) == 2


def test_the_django_components_layout_keys_are_known_there_only():
    backend = dict(NOTES_APP["smart_deploy_components"]["backend"], settings_modul="notesite.settings")
    problems = app_problems(dict(NOTES_APP, smart_deploy_components={"backend": backend}))
    assert problems == [problems[0]] and problems[0].startswith(
        "unknown key `settings_modul` in smart_deploy_components.backend; did you mean `settings_module`?"), problems  # fmt: skip


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"smart_deploy_routes": [{"path": "/", "component": "backend", "componnet": "frontend"}]},
         "unknown key `componnet` in smart_deploy_routes[0]; did you mean `component`? (known: component, path)"),
        ({"health_check_endpoints": [{"name": "health", "path": "/api/health/", "contain": "ok"}]},
         "unknown key `contain` in health_check_endpoints[0]; did you mean `contains`? (known: contains, name, path, status)"),
        ({"build_wheelhouses": [{"requirements": "backend/requirements.txt", "dest": "backend/wheels", "component": "backend",
                                 "pip_args": []}]},
         "unknown key `pip_args` in build_wheelhouses[0] (known: component, dest, dockerfile, requirements)"),
        ({"change_detection_component_triggers": {"fronted": ["frontend"]}},
         "unknown component `fronted` in change_detection_component_triggers; did you mean `frontend`? (known: backend, frontend)"),
    ],
)  # fmt: skip
def test_unknown_keys_of_routes_endpoints_wheelhouses_and_triggers_are_refused(change, problem):
    assert problem in app_problems(dict(GOOD, **change))


def test_every_problem_of_a_run_is_said_at_once():
    web = dict(COMPONENTS["backend"], volume=["media:/srv/media"])
    values = dict(GOOD, smart_deploy_components=dict(COMPONENTS, backend=web), smart_deploy_http_port="80a",
                  smart_deploy_routes=[{"path": "/", "componet": "backend"}])  # fmt: skip
    problems = app_problems(values)
    assert [p.split(" ", 3)[:3] for p in problems if p.startswith("unknown")] == [
        ["unknown", "key", "`volume`"],
        ["unknown", "key", "`componet`"],
    ]
    assert any(p.startswith("smart_deploy_http_port must be a port number") for p in problems), problems


def test_a_misspelt_hook_variable_is_refused_with_the_nearest_hook():
    from ansible.module_utils.smart_deploy.inputs import hook_variable_problems

    names = ["release_before_swtich_tasks_file", "relase_after_switch_tasks_file", "build_before_tasks_file", "mysite_tasks_file",
             "proxy_reload_tasks_file", "smart_deploy_app_name"]  # fmt: skip
    problems = hook_variable_problems(names)
    assert [p.split("`")[1] for p in problems] == ["proxy_reload_tasks_file", "relase_after_switch_tasks_file",
                                                   "release_before_swtich_tasks_file"]  # fmt: skip
    assert problems[2].startswith(
        "unknown hook variable `release_before_swtich_tasks_file` (smart-deploy runs no such hook: the file "
        "would never run); did you mean `release_before_switch_tasks_file`? (hooks: build_before_tasks_file,"
    )
    assert "did you mean" not in problems[0] and "(hooks: build_before_tasks_file" in problems[0]  # fmt: skip


def test_the_known_keys_are_those_the_roles_read():
    """The hooks are the roles' *_tasks_file options, checked at the start of a deploy (roles/smart_deploy/tasks/hooks.yml);
    an endpoint's keys are the health_check role's suboptions."""
    import yaml
    from ansible.module_utils.smart_deploy import inputs

    specs = {path.parts[-3]: yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
             for path in (ROOT / "roles").glob("*/meta/argument_specs.yml")}  # fmt: skip
    hooks = sorted(name for options in specs.values() for name in options if name.endswith("_tasks_file"))
    assert sorted(inputs.HOOK_VARIABLES) == hooks
    checked = yaml.safe_load((ROOT / "roles" / "smart_deploy" / "tasks" / "hooks.yml").read_text())[0]["vars"]["__deploy_hooks"]
    assert sorted(checked) == hooks
    assert set(hooks) <= {name for name in hooks if name.startswith(inputs.ROLE_PREFIXES)}
    assert sorted(inputs.ENDPOINT_KEYS) == sorted(specs["health_check"]["health_check_endpoints"]["options"])
    assert all(name + "_" in inputs.ROLE_PREFIXES for name in specs if name != "smart_deploy"), sorted(specs)


def test_the_inventories_and_scenarios_use_known_keys_only():
    import yaml
    from ansible.module_utils.smart_deploy.inputs import component_key_problems, keyed_mapping_problems

    files = [*(ROOT / "inventories").glob("*/group_vars/*/*.yml"), *(ROOT / "molecule").glob("*/molecule.yml")]
    seen = 0
    for path in files:
        found = [yaml.safe_load(path.read_text()) or {}]
        while found:  # the variables may sit deep in a molecule scenario
            value = found.pop()
            if isinstance(value, dict):
                components = value.get("smart_deploy_components")
                if isinstance(components, dict):
                    seen += 1
                    for name, spec in components.items():
                        assert component_key_problems("%s: %s" % (path.name, name), name, spec, "backend") == []
                    assert keyed_mapping_problems(value) == [], path
                found += list(value.values())
            elif isinstance(value, list):
                found += value
    assert seen >= 4
