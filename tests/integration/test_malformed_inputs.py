"""The malformed-input matrix: each bad input gets a clear error naming it, a non-zero exit, and nothing
changes on the target - containers, volumes, networks, images, the database (schema and rows) and the
state folder are exactly as before. The table of these inputs and outcomes is in the README, kept in step
by test_every_case_is_in_the_readme_table.

The input checks report every problem of a run at once, so the cases one check stage refuses share one
ansible-playbook run (shared_runs, made once per module): each case keeps its own test, which asserts that
its message is in that run's output, the exit code, and that the run changed nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN, assert_ok, run
from tests.integration.shop_releases import add_migration
from tests.integration.tls import LocalCA, other_key_pem

# The check stages that report every problem of a run at once: cases refused by the same stage of the same
# playbook, with no preparation and variables of their own, share one ansible-playbook run (grouped_runs).
INPUTS = "inputs"  # smart_deploy_inputs (roles/smart_deploy, module_utils/smart_deploy/inputs.py): every problem, one failure
ARGUMENT_SPECS = "argument_specs"  # Ansible's check of a role's meta/argument_specs.yml: every problem of the first role


def components_with(**backend) -> dict:
    """The shop's components with keys of the backend's entry changed (None: the key left out), as extra vars."""
    entry = {"context": "backend", "dockerfile": "Dockerfile", "container": "web", "port": 8000, "health_path": "/api/health/"}
    for key, value in backend.items():
        if value is None:
            entry.pop(key)
        else:
            entry[key] = value
    frontend = {"context": "frontend", "container": "frontend", "port": 80, "health_path": "/healthz"}
    return {"smart_deploy_components": {"backend": entry, "frontend": frontend}}


def components_with_worker(name: str, **worker) -> dict:
    """One worker ``name`` (a loop of the backend's image) with ``worker``'s keys over {command: [python, manage.py,
    rqworker]}, as extra vars: its run shares the components of the other cases of that run (mappings merge), which
    give the backend and the frontend."""
    entry = {"command": ["python", "manage.py", "rqworker"]}
    entry.update(worker)
    return {"smart_deploy_components": {name: entry}}


# HTTPS inputs (issue 20): certificates made here by a CA of the test's own. The cases of one check stage and playbook
# share a run, so the ones that set the same variables set them to the same values: an expired certificate with the
# key of another one (two problems, each its case), and text that is not PEM for both with the HTTPS port on the HTTP one.
_CA = LocalCA()
TLS_EXPIRED_OTHER_KEY = {
    "smart_deploy_tls_certificate": _CA.issue(valid_from_days=-20, valid_days=10).certificate,
    "smart_deploy_tls_key": other_key_pem(),
}
TLS_NOT_PEM_SAME_PORT = {
    "smart_deploy_tls_certificate": "/etc/ssl/certs/site.pem",
    "smart_deploy_tls_key": "not a key",
    "smart_deploy_http_port": 18080,
    "smart_deploy_https_port": 18080,
}


@dataclass
class Case:
    id: str
    expect: str  # a fragment of the error, naming the input
    playbook: str = "deploy"
    extra: dict = field(default_factory=dict)  # extra vars, as JSON
    args: list = field(default_factory=list)  # more ansible-playbook arguments
    cli: list | None = None  # a ./deploy command line instead of a playbook
    setup: str | None = None  # name of a prepare_<setup> function below
    exit_code: int | None = None
    builds: bool = False  # the refusal comes after the release's images were built: new images may appear
    stage: str | None = None  # INPUTS or ARGUMENT_SPECS: refused by a check that reports all problems at once


CASES = [
    # ./deploy: usage errors, before anything runs
    Case("unknown-verb", "unknown verb 'deplyo'", cli=["deplyo"], exit_code=2),
    Case("unknown-option", "unknown option '--fast'", cli=["deploy", "--fast"], exit_code=2),
    Case("bad-since", "--since needs a duration", cli=["logs", "--since", "yesterday"], exit_code=2),
    Case("bad-lines", "--lines needs a number of lines", cli=["logs", "--lines", "-3"], exit_code=2),
    Case("rollback-target-not-an-id", "'../../etc/passwd' is not a release id", cli=["rollback", "../../etc/passwd"], exit_code=2),
    Case("force-with-lock-status", "--force goes with 'lock release' only", cli=["lock", "status", "--force"], exit_code=2),
    # verbs' options
    Case(
        "restore-db-not-a-boolean",
        "restore_db must be true or false, got 'ture'",
        playbook="rollback",
        extra={"restore_db": "ture"},
        stage=INPUTS,
    ),
    Case(
        "history-negative",
        "history (how many releases to show) must be a whole number >= 1, got '-5'",
        playbook="status",
        extra={"history": "-5"},
        stage=INPUTS,
    ),
    Case("since-not-a-duration", "since must be a duration", playbook="logs", extra={"since": "yesterday"}, stage=INPUTS),
    Case(
        "unknown-component",
        "component must be one of backend, database, frontend, proxy, got 'db'",
        playbook="logs",
        extra={"component": "db"},
        stage=INPUTS,
    ),
    Case(
        "rollback-to-unknown-release",
        '"no-such-release" is not a release that went live here',
        playbook="rollback",
        extra={"release": "no-such-release"},
    ),
    # application settings
    Case(
        "env-value-boolean",
        "smart_deploy_app_env.FEATURE is true (a boolean): environment values must be strings",
        extra={"smart_deploy_app_env": {"FEATURE": True}},
        stage=INPUTS,
    ),
    Case("env-value-number", "smart_deploy_app_env.WORKERS is 4 (a number)", extra={"smart_deploy_app_env": {"WORKERS": 4}}, stage=INPUTS),
    Case(
        "secret-env-value-number",
        "smart_deploy_app_secret_env.SHOP_PAYMENT_KEY is a number",
        extra={"smart_deploy_app_secret_env": {"SHOP_PAYMENT_KEY": 1234}},
        stage=INPUTS,
    ),
    Case(
        "port-out-of-range",
        "smart_deploy_http_port must be a port number 1-65535, got 70000",
        extra={"smart_deploy_http_port": 70000},
        stage=INPUTS,
    ),
    # types and choices declared in a role's meta/argument_specs.yml are refused by Ansible's own check, in its words
    Case(
        "port-not-a-number",
        "argument 'smart_deploy_http_port' is of type str and we were unable to convert to int",
        extra={"smart_deploy_http_port": "80a"},
        stage=ARGUMENT_SPECS,
    ),
    Case("port-in-use", "is already in use by another program", setup="port_in_use"),
    Case(
        "bind-not-an-address",
        "smart_deploy_http_bind must be an IP address",
        extra={"smart_deploy_http_bind": "localhost:80"},
        stage=INPUTS,
    ),
    Case(
        "bind-not-on-this-host",
        "smart_deploy_http_bind: 192.0.2.10 is not an address of this host",
        extra={"smart_deploy_http_bind": "192.0.2.10"},
    ),
    Case(
        "container-name-with-space",
        "smart_deploy_components.backend.container must be a container name",
        extra=components_with(container="my web"),
        stage=INPUTS,
    ),
    Case(
        "component-without-context", "smart_deploy_components.backend has no 'context'", extra=components_with(context=None), stage=INPUTS
    ),
    Case(
        "component-context-missing",
        "smart_deploy_components.backend.context 'api' is not a folder of the app source",
        extra=components_with(context="api"),
        stage=INPUTS,
    ),
    Case(
        "health-path-without-slash",
        "smart_deploy_components.backend.health_path must start with '/'",
        extra=components_with(health_path="api/health/"),
        stage=INPUTS,
    ),
    Case(
        "endpoint-path-without-slash",
        "health_check_endpoints[0].path must start with '/'",
        extra={"health_check_endpoints": [{"name": "health", "path": "api/health/"}]},
        stage=INPUTS,
    ),
    Case(
        "db-container-with-space",
        "smart_deploy_db_container must be a Docker name",
        extra={"smart_deploy_db_container": "shop db"},
        stage=INPUTS,
    ),
    Case(
        "external-db-without-host",
        "smart_deploy_db_host is required with smart_deploy_db_mode: external",
        extra={"smart_deploy_db_mode": "external"},
        stage=INPUTS,
    ),
    Case("backup-keep-zero", "db_backup_keep must be a whole number >= 1, got 0", extra={"db_backup_keep": 0}, stage=INPUTS),
    Case("empty-db-password", "smart_deploy_db_password is empty", extra={"smart_deploy_db_password": ""}, stage=INPUTS),
    Case("missing-secret-key", "smart_deploy_django_secret_key is not set", extra={"smart_deploy_django_secret_key": None}, stage=INPUTS),
    Case(
        "secret-key-not-a-string",
        "smart_deploy_django_secret_key must be a string",
        extra={"smart_deploy_django_secret_key": 12345678},
        stage=INPUTS,
    ),
    # workers and volumes (README "Workers and volumes"): one worker component each, all in one shared run
    Case(
        "worker-with-port",
        "smart_deploy_components.w-port.port: smart_deploy_components.w-port is a worker (it has a 'command'), which gets no traffic",
        extra=components_with_worker("w-port", port=9000),
        stage=INPUTS,
    ),
    Case(
        "worker-with-route",
        "smart_deploy_routes[2].component 'w-routed' is a worker (it runs a command, with no port): workers get no traffic",
        extra=dict(
            components_with_worker("w-routed"),
            smart_deploy_routes=[
                {"path": "/api/", "component": "backend"},
                {"path": "/", "component": "frontend"},
                {"path": "/jobs/", "component": "w-routed"},
            ],
        ),  # fmt: skip
        stage=INPUTS,
    ),
    Case(
        "replicas-zero",
        "smart_deploy_components.w-zero.replicas must be a whole number >= 1 (containers of this worker), got 0",
        extra=components_with_worker("w-zero", replicas=0),
        stage=INPUTS,
    ),
    Case(
        "replicas-negative",
        "smart_deploy_components.w-negative.replicas must be a whole number >= 1 (containers of this worker), got -2",
        extra=components_with_worker("w-negative", replicas=-2),
        stage=INPUTS,
    ),
    Case(
        "replicas-not-a-number",
        "smart_deploy_components.w-many.replicas must be a whole number >= 1 (containers of this worker), got 'many'",
        extra=components_with_worker("w-many", replicas="many"),
        stage=INPUTS,
    ),
    Case(
        "command-not-a-list",
        "smart_deploy_components.w-string.command must be a list of strings (argv, no shell), not a string: write [celery, -A, shop, "
        "worker]",
        extra=components_with_worker("w-string", command="celery -A shop worker"),
        stage=INPUTS,
    ),
    Case(
        "health-command-not-a-list",
        "smart_deploy_components.w-health.health_command must be a list of strings (argv, no shell), not a string",
        extra=components_with_worker("w-health", health_command="celery inspect ping"),
        stage=INPUTS,
    ),
    Case(
        "volume-without-path",
        "smart_deploy_components.w-volume.volumes[0] must be '<name>:<absolute path in the container>' with an optional ':ro', got 'media'",
        extra=components_with_worker("w-volume", volumes=["media"]),
        stage=INPUTS,
    ),
    Case(
        "volume-relative-path",
        "smart_deploy_components.w-relative.volumes[0]: 'srv/media' must be an absolute path in the container",
        extra=components_with_worker("w-relative", volumes=["media:srv/media"]),
        stage=INPUTS,
    ),
    Case(
        "volume-dotdot-path",
        "smart_deploy_components.w-dotdot.volumes[0]: '/srv/media/../../etc' must be a plain absolute folder in the container",
        extra=components_with_worker("w-dotdot", volumes=["media:/srv/media/../../etc"]),
        stage=INPUTS,
    ),
    Case(
        "volume-host-path",
        "smart_deploy_components.w-host.volumes[0] '/srv:/data' mounts a folder of the host: only named volumes",
        extra=components_with_worker("w-host", volumes=["/srv:/data"]),
        stage=INPUTS,
    ),
    Case(
        "volume-odd-name",
        "smart_deploy_components.w-odd.volumes[0]: the volume name 'my media!' must be 1-64 letters, digits, '_', '.' or '-'",
        extra=components_with_worker("w-odd", volumes=["my media!:/srv/media"]),
        stage=INPUTS,
    ),
    # unknown keys (issue 24): refused naming the key and the nearest known one, never ignored
    Case(
        "component-key-misspelt",
        "unknown key `volume` in smart_deploy_components.w-misspelt; did you mean `volumes`?",
        extra=components_with_worker("w-misspelt", volume=["media:/srv/media"]),
        stage=INPUTS,
    ),
    Case(
        "route-key-misspelt",
        "unknown key `componnet` in smart_deploy_routes[1]; did you mean `component`?",
        extra={"smart_deploy_routes": [{"path": "/api/", "component": "backend"}, {"path": "/", "componnet": "frontend"}]},
        stage=INPUTS,
    ),
    Case(
        "endpoint-key-misspelt",
        "unknown key `contain` in health_check_endpoints[0]; did you mean `contains`?",
        extra={"health_check_endpoints": [{"name": "health", "path": "/api/health/", "contain": "ok"}]},
        stage=INPUTS,
    ),
    Case(
        "hook-variable-misspelt",
        "unknown hook variable `release_before_swtich_tasks_file` (smart-deploy runs no such hook: the file would never run); did you "
        "mean `release_before_switch_tasks_file`?",
        extra={"release_before_swtich_tasks_file": "/srv/hooks/collectstatic.yml"},
        stage=INPUTS,
    ),
    Case("release-id-bad-characters", "smart_deploy_release must be letters, digits", extra={"smart_deploy_release": "../x"}, stage=INPUTS),
    Case("release-id-reused-for-other-code", "was already used here for other code", setup="reused_release"),
    Case(
        "labels-not-a-mapping",
        "argument 'smart_deploy_labels' is of type",
        extra={"smart_deploy_labels": "team: shop"},
        stage=ARGUMENT_SPECS,
    ),
    Case("state-dir-root", "smart_deploy_state_dir is '/', a system or shared folder", extra={"smart_deploy_state_dir": "/"}, stage=INPUTS),
    Case(
        "state-dir-tmp",
        "smart_deploy_state_dir is '/tmp', a system or shared folder",
        extra={"smart_deploy_state_dir": "/tmp"},
        stage=INPUTS,
    ),
    Case(
        "state-dir-srv",
        "smart_deploy_state_dir is '/srv', a system or shared folder",
        extra={"smart_deploy_state_dir": "/srv"},
        stage=INPUTS,
    ),
    Case("state-dir-of-another-app", "belongs to the app 'someoneelse'", setup="other_apps_folder"),
    Case("state-dir-with-foreign-files", "already holds files that are not smart-deploy's (notes.txt)", setup="foreign_folder"),
    Case("source-not-a-git-checkout", "is not in a git checkout", setup="source_without_git"),
    Case(
        "source-without-component-contexts",
        "smart_deploy_components.backend.context 'backend' is not a folder of the app source",
        setup="source_without_contexts",
    ),
    Case("conflicting-leaf-migrations", "conflicting migrations (several leaf nodes) in cart", setup="conflicting_leaves", builds=True),
    Case("host-does-not-answer", "UNREACHABLE", setup="unreachable_host", exit_code=4),
    # accessories, HTTPS, one-off commands and maintenance mode (issue 20)
    Case(
        "accessory-unknown-key",
        "unknown key `max_memory` in smart_deploy_accessories.redis; did you mean `maxmemory`?",
        extra={"smart_deploy_accessories": {"redis": {"max_memory": "1gb"}}},
        stage=INPUTS,
    ),
    Case(
        "accessory-unknown-kind",
        "unknown accessory `memcached` in smart_deploy_accessories (known: redis)",
        playbook="rollback",
        extra={"smart_deploy_accessories": {"memcached": {}}},
        stage=INPUTS,
    ),
    Case("tls-certificate-expired", "smart_deploy_tls_certificate expired on ", extra=TLS_EXPIRED_OTHER_KEY, stage=INPUTS),
    Case(
        "tls-key-of-another-certificate",
        "smart_deploy_tls_key does not match smart_deploy_tls_certificate (CN=localhost",
        extra=TLS_EXPIRED_OTHER_KEY,
        stage=INPUTS,
    ),
    Case(
        "tls-certificate-not-pem",
        "smart_deploy_tls_certificate is not PEM text (-----BEGIN CERTIFICATE----- ...) - a file name?",
        playbook="rollback",
        extra=TLS_NOT_PEM_SAME_PORT,
        stage=INPUTS,
    ),
    Case(
        "tls-key-not-pem",
        "smart_deploy_tls_key is not PEM text (-----BEGIN PRIVATE KEY----- ...); the value is not shown",
        playbook="rollback",
        extra=TLS_NOT_PEM_SAME_PORT,
        stage=INPUTS,
    ),
    Case(
        "https-port-is-the-http-port",
        "smart_deploy_https_port is 18080, the same port as smart_deploy_http_port on the same address",
        playbook="rollback",
        extra=TLS_NOT_PEM_SAME_PORT,
        stage=INPUTS,
    ),
    Case("manage-without-a-command", "manage needs the command after --", cli=["manage", "migrate"], exit_code=2),
    Case("maintenance-not-on-or-off", "maintenance takes 'on' or 'off', not 'maybe'", cli=["maintenance", "maybe"], exit_code=2),
]


# --- what "nothing changed on the target" means ------------------------------------------------------
def target_fingerprint(shop) -> dict:
    label = "label=smart-deploy.app=%s" % shop.name

    def lines(*cmd):
        return sorted(run(list(cmd)).stdout.split("\n"))

    database = shop.name.replace("-", "_")
    dump = subprocess.run(
        ["docker", "exec", "%s-db" % shop.name, "pg_dump", "-U", database, "-d", database], capture_output=True, check=True
    ).stdout
    dump = b"\n".join(line for line in dump.split(b"\n") if not line.startswith((b"\\restrict", b"\\unrestrict")))
    files = {}
    for path in sorted(shop.state_dir.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(shop.state_dir))] = (path.stat().st_mode & 0o777, hashlib.sha256(path.read_bytes()).hexdigest())
    return {
        "containers": lines("docker", "ps", "-a", "--filter", label, "--format", "{{.ID}} {{.Names}} {{.State}}"),
        "volumes": lines("docker", "volume", "ls", "-q", "--filter", label),
        "networks": lines("docker", "network", "ls", "-q", "--filter", label),
        "images": lines("docker", "images", "-q", "--filter", label),
        "database": hashlib.sha256(dump).hexdigest(),
        "databases": shop.psql("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database"),
        "state": files,
    }


@pytest.fixture(scope="module")
def baseline(shop):
    assert_ok(shop.deploy())  # settled: a second deploy of the same release changes nothing
    return target_fingerprint(shop)


# --- the cases' preparations: each returns (extra vars, more arguments) and may register a cleanup ------
def prepare_port_in_use(shop, case, request):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    request.addfinalizer(holder.close)
    return {"smart_deploy_http_port": holder.getsockname()[1]}, []


def prepare_reused_release(shop, case, request):
    shop.write("backend/src/shop/reused.py", "VALUE = 1\n")
    shop.commit("other code under the live release's id")
    request.addfinalizer(lambda: shop.reset_to(shop.base))
    return {"smart_deploy_release": shop.live}, []


def prepare_other_apps_folder(shop, case, request):
    folder = shop.workdir / "someoneelse-state"
    folder.mkdir(exist_ok=True)
    (folder / ".smart-deploy.json").write_text(json.dumps({"app": "someoneelse"}))
    return {"smart_deploy_state_dir": str(folder)}, []


def prepare_foreign_folder(shop, case, request):
    folder = shop.workdir / "home-of-someone"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("not smart-deploy's")
    return {"smart_deploy_state_dir": str(folder)}, []


def prepare_source_without_git(shop, case, request):
    folder = shop.workdir / "shop-without-git"
    if not folder.exists():
        shutil.copytree(shop.source, folder, ignore=shutil.ignore_patterns(".git", "wheels"))
    return {"smart_deploy_app_source": str(folder)}, []


def prepare_source_without_contexts(shop, case, request):
    folder = shop.workdir / "empty-app"
    folder.mkdir(exist_ok=True)
    run(["git", "-C", str(folder), "init", "-q"])
    return {"smart_deploy_app_source": str(folder)}, []


def prepare_conflicting_leaves(shop, case, request):
    for name in ("0002_first_branch", "0002_second_branch"):
        add_migration(
            shop,
            "cart",
            name,
            'class Migration(migrations.Migration):\n    dependencies = [("cart", "0001_initial")]\n    operations = []\n',
        )
    shop.commit("two leaf migrations in cart")
    request.addfinalizer(lambda: shop.reset_to(shop.base))
    return {}, []


def prepare_unreachable_host(shop, case, request):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the shop's inventory (its components, routes, endpoints) with a host that does not answer
    inventory = shop.workdir / "ghost-inventory"
    inventory.mkdir(exist_ok=True)
    if not (inventory / "group_vars").exists():
        (inventory / "group_vars").symlink_to(ROOT / "inventories" / "local" / "group_vars")
    (inventory / "hosts.yml").write_text(
        "app_servers:\n  hosts:\n    ghost:\n      ansible_host: 127.0.0.1\n      ansible_port: %d\n      ansible_connection: ssh\n"
        "      ansible_ssh_common_args: -o ConnectTimeout=3 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n" % port
    )
    return {}, ["-i", str(inventory)]


def run_cli(shop, args):
    env = dict(os.environ, SMART_DEPLOY_VENV=str(VENV_BIN.parent), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(ROOT / "deploy"), *args, "-e", "@%s" % shop.vars_file], capture_output=True, text=True, env=env, timeout=120)


# --- cases that share a run ---------------------------------------------------------------------------
def conflicts(one: dict, other: dict) -> bool:
    """Whether two cases' extra vars cannot be given together: a variable both set, unless both set it to a mapping
    and every key they share has the same value there (the shop's components, each with a worker of its own)."""
    for name in set(one) & set(other):
        a, b = one[name], other[name]
        if a == b:  # the same value (the HTTPS cases of one run set the same certificate)
            continue
        if not (isinstance(a, dict) and isinstance(b, dict)) or any(a[key] != b[key] for key in set(a) & set(b)):
            return True
    return False


def merged(extras) -> dict:
    """The extra vars of a group's cases given together (mappings merged key by key: they do not conflict)."""
    found = {}
    for extra in extras:
        for name, value in extra.items():
            found[name] = dict(found[name], **value) if isinstance(value, dict) and isinstance(found.get(name), dict) else value
    return found


def shared_runs(cases) -> list:
    """The groups of cases that one ansible-playbook run refuses together: the same playbook, check stage and
    exit code, no preparation, no ./deploy, no arguments, and variables that do not conflict (each set by one case of
    the group only, or to the same value, or mappings that agree on the keys they share; first fit, in the matrix's order). A case that
    fits no group runs on its own."""
    groups = []
    for case in cases:
        if case.stage is None or case.setup or case.cli is not None or case.args or case.builds:
            continue
        for group in groups:
            first = group[0]
            same = (first.playbook, first.stage, first.exit_code) == (case.playbook, case.stage, case.exit_code)
            if same and not any(conflicts(other.extra, case.extra) for other in group):
                group.append(case)
                break
        else:
            groups.append([case])
    return groups


GROUPS = {case.id: tuple(group) for group in shared_runs(CASES) for case in group}


@dataclass
class Outcome:
    """What a run showed: its exit code and output, the target after it, whether it left the deploy lock."""

    returncode: int
    output: str
    after: dict
    locked: bool


def outcome_of(shop, result) -> Outcome:
    return Outcome(result.returncode, result.stdout + result.stderr, target_fingerprint(shop), (shop.state_dir / "deploy.lock").exists())


@pytest.fixture(scope="module")
def grouped_runs(shop, baseline):
    """Each group's run, made once (on its first case's test) and kept for the module: its cases' ids -> Outcome."""
    return {}


def run_case(shop, case, request, grouped_runs) -> Outcome:
    group = GROUPS.get(case.id)
    if group is not None:
        key = tuple(member.id for member in group)
        if key not in grouped_runs:
            extra = merged(member.extra for member in group)
            grouped_runs[key] = outcome_of(shop, shop.playbook(case.playbook, "-e", json.dumps(extra)))
        return grouped_runs[key]
    if case.cli is not None:
        return outcome_of(shop, run_cli(shop, case.cli))
    extra, args = dict(case.extra), list(case.args)
    if case.setup:
        extra, args = globals()["prepare_" + case.setup](shop, case, request)
    return outcome_of(shop, shop.playbook(case.playbook, *(["-e", json.dumps(extra)] if extra else []), *args))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_input_is_refused_by_name_and_changes_nothing(shop, baseline, grouped_runs, case, request):
    outcome = run_case(shop, case, request, grouped_runs)
    output = outcome.output
    shared = (
        " (its run shared with %s)" % ", ".join(m.id for m in GROUPS[case.id] if m is not case) if len(GROUPS.get(case.id, ())) > 1 else ""
    )
    assert outcome.returncode != 0, "accepted%s: %s" % (shared, output[-3000:])
    if case.exit_code is not None:
        assert outcome.returncode == case.exit_code, output[-3000:]
    assert case.expect in output, "the error does not say %r%s:\n%s" % (case.expect, shared, output[-4000:])
    after = dict(outcome.after)
    if case.builds:
        assert set(baseline["images"]) <= set(after["images"]), "an image went"
        built = sorted(set(after["images"]) - set(baseline["images"]))
        if built:  # the next cases compare with the baseline again
            run(["docker", "rmi", "-f", *built])
        after["images"] = baseline["images"]
    assert after == baseline, "the target changed%s: %s" % (shared, {k: (baseline[k], after[k]) for k in after if after[k] != baseline[k]})
    assert not outcome.locked


def test_the_matrix_holds_at_least_thirty_inputs():
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)


def test_every_case_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    missing = [case.id for case in CASES if "`%s`" % case.id not in readme]
    assert not missing, "README's malformed-input table lacks %s" % missing
