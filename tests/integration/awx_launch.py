"""Launch smart-deploy's AWX job templates (awx/) the way AWX launches them, without an AWX server.

What AWX does between "Launch" and the job's status, re-done here from AWX's own code (ansible/awx, the
24.x line the bundled awx.awx collection goes with):

1. Launch-time validation (awx/main/models/mixins.py ``SurveyJobTemplateMixin._accept_or_ignore_variables`` and
   ``_survey_element_validation``; the API answers 400 with ``variables_needed_to_start``): required answers,
   types, choices, min/max (lengths for text), and nothing runs when an answer is wrong.
2. The job's extra vars (``_update_unified_job_kwargs``): the template's fixed extra_vars, then the survey's
   defaults that pass validation, then the answers; AWX's own ``awx_*``/``tower_*`` meta vars on top
   (awx/main/models/jobs.py ``awx_meta_vars``).
3. The private data dir (awx/main/tasks/jobs.py ``BaseTask.run`` / ``RunJob``): ``project/`` (the project's
   checkout: what git tracks, without ``.git``), ``inventory/hosts`` (a script printing the inventory's JSON,
   mode 0700), ``env/extravars`` written by AWX's ``safe_dump`` (every string ``!unsafe``,
   awx/main/utils/safe_yaml.py), the credential's injected extra vars in a file of their own passed as
   ``-e @file`` and its files/env (``CredentialType.inject_credential``), ``env/cmdline`` (``RunJob.build_args``:
   ``-u``, ``--forks``, ``-l``, ``-v``, ``-t``, ...), ``env/settings`` (job_timeout, suppress_output_file, ...),
   ``env/envvars`` (``RunJob.build_env``: JOB_ID, ANSIBLE_ROLES_PATH from the project's ansible.cfg, ...).
4. ``ansible-runner run <dir> -p <playbook> --ident <id>`` (the CLI, from .venv/bin, as a subprocess) and the
   job's ``artifacts/<id>/rc`` and ``status``: what AWX shows. The job's output is what AWX's job output
   shows: the stdout of the job events, in order.

Stand-ins, because there is no AWX here: the execution environment is this machine with .venv/bin first on
PATH (the EE image would hold the same ansible-core, collections and Python packages, execution-environment.yml);
process isolation is off (AWX runs the job in that image with podman), so paths are the host's, not /runner/...
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jinja2 import sandbox

from tests.conftest import ROOT

VENV_BIN = Path(os.environ.get("SMART_DEPLOY_VENV", ROOT / ".venv")) / "bin"
AWX_DIR = ROOT / "awx"
# AWX_RUNNER settings of a default install (awx/settings/defaults.py) that the job sees
MAX_EVENT_RES_DATA = 700000
JOB_VARIABLE_PREFIXES = ("awx", "tower")
# awx/main/constants.py ENV_BLOCKLIST: what a credential type's env injector may not set (nor any ANSIBLE_*)
ENV_BLOCKLIST = frozenset(
    ("VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID", "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID",
     "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES", "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG",
     "INVENTORY_HOSTVARS", "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH")
)  # fmt: skip


def env_var_refusal(name: str) -> str | None:
    """awx/main/fields.py CredentialTypeInjectorField.validate_env_var_allowed: why AWX refuses an env injector
    (the credential type cannot be saved; one stored anyway is skipped at launch), None when it is allowed."""
    if name.startswith("ANSIBLE_"):
        return "Environment variable %s may affect Ansible configuration so its use is not allowed in credentials." % name
    if name in ENV_BLOCKLIST:
        return "Environment variable %s is not allowed to be used in credentials." % name
    return None


# --- the definitions ------------------------------------------------------------------------------------------
class _VarsLoader(yaml.SafeLoader):
    """Reads a vars file as Ansible's loader does, ``!unsafe`` strings (AWX's own templates) as plain strings."""


_VarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_definitions(awx_dir: Path = AWX_DIR) -> dict:
    """Every vars file under awx/ (job_templates.yml and its neighbours), merged: what awx_configure.yml loads."""
    found = {}
    for path in sorted(awx_dir.glob("*.yml")):
        found.update(yaml.load(path.read_text(), Loader=_VarsLoader) or {})
    return found


def job_templates(awx_dir: Path = AWX_DIR) -> dict:
    """The job templates by verb, each with its survey spec loaded (``survey_spec``; {} without a survey)."""
    templates = {}
    for entry in load_definitions(awx_dir)["smart_deploy_awx_job_templates"]:
        template = dict(entry)
        template["survey_spec"] = json.loads((awx_dir / "surveys" / entry["survey"]).read_text()) if entry.get("survey") else {}
        template.setdefault("survey_enabled", bool(template["survey_spec"]))
        template.setdefault("extra_vars", {})
        templates[entry["verb"]] = template
    return templates


def credential_type(awx_dir: Path = AWX_DIR) -> dict:
    """The custom credential type that carries the app's secrets (inputs + injectors, as AWX stores it)."""
    definitions = load_definitions(awx_dir)
    for key, value in definitions.items():
        if key.startswith("smart_deploy_awx_credential_type") and isinstance(value, dict) and "injectors" in value:
            return value
    raise LookupError("awx/: no smart_deploy_awx_credential_type* with injectors in %s" % sorted(definitions))


# --- launch-time validation (awx/main/models/mixins.py) -------------------------------------------------------
class LaunchRefused(Exception):
    """What AWX's launch endpoint answers with HTTP 400: the job is never created, nothing runs."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__("400 Bad Request: %s" % json.dumps(errors))


def _choices(element: dict) -> list:
    choices = copy.copy(element.get("choices", []))
    if isinstance(choices, str):
        choices = [choice for choice in choices.splitlines() if choice.strip() != ""]
    return choices


def survey_element_errors(element: dict, data: dict, validate_required: bool = True) -> list:
    """AWX's ``_survey_element_validation`` for one question (without the encrypted-password special case:
    smart-deploy's surveys ask for no password, its secrets come from the credential)."""
    errors = []
    variable = element["variable"]
    kind = element["type"]
    bounded = [bound for bound in ("min", "max") if element.get(bound) not in ("", None)]
    if variable not in data:
        if element["required"] and validate_required:
            errors.append("'%s' value missing" % variable)
        return errors
    value = data[variable]
    if kind in ("textarea", "text", "password"):
        if not isinstance(value, str):
            return ["Value %s for '%s' expected to be a string." % (value, variable)]
        if "min" in bounded and len(value) < int(element["min"]):
            errors.append("'%s' value %s is too small (length is %s must be at least %s)." % (variable, value, len(value), element["min"]))
        if "max" in bounded and len(value) > int(element["max"]):
            errors.append("'%s' value %s is too large (must be no more than %s)." % (variable, value, element["max"]))
    elif kind == "integer":
        if type(value) is not int:
            return ["Value %s for '%s' expected to be an integer." % (value, variable)]
        if "min" in bounded and value < int(element["min"]):
            errors.append("'%s' value %s is too small (must be at least %s)." % (variable, value, element["min"]))
        if "max" in bounded and value > int(element["max"]):
            errors.append("'%s' value %s is too large (must be no more than %s)." % (variable, value, element["max"]))
    elif kind == "float":
        if type(value) not in (float, int):
            return ["Value %s for '%s' expected to be a numeric type." % (value, variable)]
        if "min" in bounded and value < float(element["min"]):
            errors.append("'%s' value %s is too small (must be at least %s)." % (variable, value, element["min"]))
        if "max" in bounded and value > float(element["max"]):
            errors.append("'%s' value %s is too large (must be no more than %s)." % (variable, value, element["max"]))
    elif kind == "multiselect":
        if type(value) is not list:
            return ["'%s' value is expected to be a list." % variable]
        errors += [
            "Value %s for '%s' expected to be one of %s." % (item, variable, _choices(element))
            for item in value
            if item not in _choices(element)
        ]
    elif kind == "multiplechoice":
        if value not in _choices(element):
            errors.append("Value %s for '%s' expected to be one of %s." % (value, variable, _choices(element)))
    return errors


def launch_extra_vars(template: dict, answers: dict) -> dict:
    """The job's extra vars as AWX makes them at launch, or LaunchRefused (HTTP 400) when an answer breaks the
    survey: ``_accept_or_ignore_variables`` (answers not in the survey are ignored unless the template asks
    for variables on launch, as the launch serializer does with _exclude_errors=['prompts']), then
    ``_update_unified_job_kwargs``: template extra_vars <- survey defaults that validate <- accepted answers."""
    spec = template["survey_spec"].get("spec", []) if template.get("survey_enabled") else []
    errors, accepted = [], {}
    leftover = dict(answers)
    for element in spec:
        found = survey_element_errors(element, answers)
        errors += found
        if element["variable"] in leftover:
            value = leftover.pop(element["variable"])
            if not found:
                accepted[element["variable"]] = value
    if errors:
        raise LaunchRefused({"variables_needed_to_start": errors})
    if template.get("ask_variables_on_launch"):
        accepted.update(leftover)
    extra_vars = dict(template.get("extra_vars") or {})
    for element in spec:
        default = element.get("default")
        if default is not None and not survey_element_errors(element, {element["variable"]: default}):
            extra_vars[element["variable"]] = default
    extra_vars.update(accepted)
    return extra_vars


# --- awx/main/utils/safe_yaml.py ---------------------------------------------------------------------------------
class _SafeStringDumper(yaml.SafeDumper):
    def represent_data(self, data):
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super().represent_data(data)


def safe_dump(data, safe_dict: dict | None = None) -> str:
    """AWX's safe_dump: every string (keys too) tagged ``!unsafe`` so Ansible never templates it, except the
    top-level entries equal to ``safe_dict``'s (the template's own extra_vars, with ALLOW_JINJA_IN_EXTRA_VARS
    = 'template', AWX's default)."""
    if not isinstance(data, dict):
        return yaml.dump_all([data], None, Dumper=_SafeStringDumper, default_flow_style=False)
    safe_dict = safe_dict or {}
    parts = []
    for key, value in data.items():
        dumper = yaml.SafeDumper if key in safe_dict and safe_dict.get(key) == value else _SafeStringDumper
        parts.append(yaml.dump_all([{key: value}], None, Dumper=dumper, default_flow_style=False))
    return "".join(parts)


# --- the private data dir (awx/main/tasks/jobs.py) --------------------------------------------------------------
def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    """BaseTask.write_private_data_file: created with its mode, then written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=mode, exist_ok=True)
    path.write_text(text)
    return path


def _mkstemp(folder: Path, text: str, mode: int) -> Path:
    handle, name = tempfile.mkstemp(dir=folder)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(name, mode)
    return Path(name)


def copy_project(destination: Path, source: Path = ROOT) -> None:
    """The project's checkout as a project sync leaves it: the files git has (tracked, and new ones not
    ignored, so a working copy's changes are in), without .git; .venv, .secrets, caches and logs are git-ignored."""
    listed = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"], capture_output=True, check=True
    ).stdout.decode()
    destination.mkdir(parents=True)
    for relative in sorted(set(filter(None, listed.split("\0")))):
        origin = source / relative
        if not (origin.is_symlink() or origin.is_file()):  # deleted in the working copy
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():  # as git checks it out
            target.symlink_to(os.readlink(origin))
        else:
            shutil.copy2(origin, target)


def inventory_script(groups: dict) -> str:
    """AWX's inventory/hosts: a script that prints the inventory (hosts, group vars, _meta hostvars) as JSON."""
    data = {"all": {"children": sorted(set(groups) - {"all"}), "hosts": [], "vars": {}}, "_meta": {"hostvars": {}}}
    for name, group in groups.items():
        data.setdefault(name, {}).update({"hosts": sorted(group["hosts"]), "vars": group.get("vars", {})})
        for host, host_vars in group["hosts"].items():
            data["_meta"]["hostvars"].setdefault(host, {}).update(host_vars)
    return "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data)


def _read_ansible_config(project: Path, names: list) -> dict:
    """awx/main/utils/common.py read_ansible_config: the raw [defaults] values of the project's ansible.cfg."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(project / "ansible.cfg")
    return {name: parser.get("defaults", name) for name in names if parser.has_option("defaults", name)}


@dataclass
class Credential:
    """A credential of the custom type, with its inputs (the secrets)."""

    type: dict
    inputs: dict


@dataclass
class Job:
    """A finished job, as AWX would show it."""

    id: int
    private_data_dir: Path
    command: list
    process: subprocess.CompletedProcess
    extra_vars: dict = field(default_factory=dict)

    @property
    def artifacts(self) -> Path:
        return self.private_data_dir / "artifacts" / str(self.id)

    @property
    def rc(self) -> int:
        return int((self.artifacts / "rc").read_text().strip())

    @property
    def status(self) -> str:
        """The runner's status, as AWX maps it (a timeout shows as failed)."""
        status = (self.artifacts / "status").read_text().strip()
        return "failed" if status == "timeout" else status

    def events(self) -> list:
        folder = self.artifacts / "job_events"
        found = [json.loads(path.read_text()) for path in folder.glob("*.json")] if folder.is_dir() else []
        return sorted(found, key=lambda event: event.get("counter", 0))

    @property
    def stdout(self) -> str:
        """The job's output in AWX: its events' stdout, in order."""
        return "\n".join(event["stdout"] for event in self.events() if event.get("stdout"))

    def all_text(self) -> str:
        """Everything the job left: what the CLI printed and every file under the private data dir's artifacts."""
        texts = [self.process.stdout, self.process.stderr]
        texts += [path.read_text(errors="replace") for path in sorted(self.artifacts.rglob("*")) if path.is_file()]
        return "\n".join(texts)


class AwxLauncher:
    """Launches job templates as AWX would, against one inventory, with one credential of the custom type."""

    def __init__(
        self,
        workdir: Path,
        inventory: dict,
        credential: Credential,
        vault_password: str | None = None,
        env: dict | None = None,
        project: Path = ROOT,
    ):
        """``credential``: one of the custom type (the app's secrets); ``vault_password``: that of a credential of
        AWX's own Vault type on the template, if any."""
        self.workdir = workdir
        self.vault_password = vault_password
        self.inventory = inventory
        self.credential = credential
        self.env = env or {}
        self.project = project
        self.next_id = 1
        self.ignored_env = []  # env injectors AWX skips (env_var_refusal)

    def launch(self, template: dict, answers: dict | None = None, timeout: int = 1200) -> Job:
        """Launch ``template`` with the survey ``answers``: LaunchRefused (and no job) when AWX would answer 400."""
        extra_vars = launch_extra_vars(template, answers or {})
        job_id, self.next_id = self.next_id, self.next_id + 1
        private_data_dir = self.build_private_data_dir(template, job_id, extra_vars, timeout)
        command = [str(VENV_BIN / "ansible-runner"), "run", str(private_data_dir), "-p", template["playbook"], "--ident", str(job_id)]
        process = subprocess.run(command, capture_output=True, text=True, env=self._process_env(), timeout=timeout + 120)
        return Job(job_id, private_data_dir, command, process, extra_vars)

    def build_private_data_dir(self, template: dict, job_id: int, extra_vars: dict, timeout: int) -> Path:
        """BaseTask.run's steps up to the runner: the dir, project/, credentials, extravars, cmdline, env, inventory, settings."""
        private_data_dir = Path(tempfile.mkdtemp(prefix="awx_%d_" % job_id, dir=self.workdir))
        os.chmod(private_data_dir, stat.S_IRWXU)
        for sub in ("inventory", "env"):
            (private_data_dir / sub).mkdir()
        copy_project(private_data_dir / "project")
        # RunJob.build_extra_vars_file: the job's extra vars and AWX's meta vars; the template's own entries stay templatable
        job_vars = dict(extra_vars, **self.meta_vars(template, job_id))
        _write(private_data_dir / "env" / "extravars", safe_dump(job_vars, safe_dict=template.get("extra_vars") or {}))
        args = self.build_args(template)
        env = self.build_env(template, job_id, private_data_dir)
        self.inject_credential(env, args, private_data_dir)
        _write(private_data_dir / "env" / "cmdline", " ".join(shlex.quote(arg) for arg in args))
        _write(private_data_dir / "env" / "envvars", json.dumps(env, indent=2))
        _write(private_data_dir / "inventory" / "hosts", inventory_script(self.inventory), mode=0o700)
        if self.vault_password:
            # RunJob.get_password_prompts/build_passwords: the prompt and its answer (AWX hands them to the runner
            # as its `passwords` parameter; the CLI reads them from env/passwords)
            _write(private_data_dir / "env" / "passwords", json.dumps({r"Vault password:\s*?$": self.vault_password}))
        settings = {
            "job_timeout": int(template.get("timeout") or 0) or timeout,
            # AWX reads the output from the job events and sets this True; shown here so a failing test says why
            "suppress_ansible_output": False,
            "suppress_output_file": True,
        }
        _write(private_data_dir / "env" / "settings", json.dumps(settings))
        return private_data_dir

    @staticmethod
    def meta_vars(template: dict, job_id: int) -> dict:
        found = {}
        for prefix in JOB_VARIABLE_PREFIXES:
            found.update(
                {
                    "%s_job_id" % prefix: job_id,
                    "%s_job_launch_type" % prefix: "manual",
                    "%s_job_template_id" % prefix: 1,
                    "%s_job_template_name" % prefix: template["name"],
                    "%s_user_name" % prefix: "pytest",
                }
            )
        return found

    def build_args(self, template: dict) -> list:
        """RunJob.build_args for a template with no machine credential (the connection is the inventory's)."""
        args = ["--check"] if template.get("job_type") == "check" else []
        args += ["-u", "root"]
        if template.get("become_enabled"):
            args.append("--become")
        if template.get("diff_mode"):
            args.append("--diff")
        if self.vault_password:  # a Vault credential: ansible-playbook asks, the runner answers (env/passwords)
            args.append("--ask-vault-pass")
        if template.get("forks"):
            args.append("--forks=%d" % int(template["forks"]))
        if template.get("force_handlers"):
            args.append("--force-handlers")
        if template.get("limit"):
            args += ["-l", template["limit"]]
        if template.get("verbosity"):
            args.append("-%s" % ("v" * min(5, int(template["verbosity"]))))
        if template.get("job_tags"):
            args += ["-t", template["job_tags"]]
        if template.get("skip_tags"):
            args.append("--skip-tags=%s" % template["skip_tags"])
        return args

    def build_env(self, template: dict, job_id: int, private_data_dir: Path) -> dict:
        """RunJob.build_env: the job's environment (the execution environment's PATH stands in for the image)."""
        env = {
            "AWX_PRIVATE_DATA_DIR": str(private_data_dir),
            "JOB_ID": str(job_id),
            "INVENTORY_ID": "1",
            "PROJECT_REVISION": subprocess.run(
                ["git", "-C", str(self.project), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip(),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "MAX_EVENT_RES": str(MAX_EVENT_RES_DATA),
            "AWX_HOST": "https://awx.example.invalid",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private_data_dir / "cp"),
            "PATH": "%s:%s" % (VENV_BIN, os.environ.get("PATH", "/usr/bin:/bin")),
        }
        (private_data_dir / "cp").mkdir(mode=0o700)
        # the requirements folders a project sync fills, then the project's ansible.cfg paths, then Ansible's defaults
        path_vars = (
            (
                "ANSIBLE_COLLECTIONS_PATHS",
                "collections_paths",
                "requirements_collections",
                "~/.ansible/collections:/usr/share/ansible/collections",
            ),
            ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles", "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"),
            (
                "ANSIBLE_COLLECTIONS_PATH",
                "collections_path",
                "requirements_collections",
                "~/.ansible/collections:/usr/share/ansible/collections",
            ),
        )
        config = _read_ansible_config(private_data_dir / "project", [setting for _env, setting, _folder, _default in path_vars])
        for env_key, setting, folder, default in path_vars:
            paths = default.split(":")
            if setting in config:
                paths = [config[setting]] + [p for p in paths if p != config[setting]]
            env[env_key] = os.pathsep.join([str(private_data_dir / folder)] + paths)
        env.update(self.env)
        return env

    def inject_credential(self, env: dict, args: list, private_data_dir: Path) -> None:
        """CredentialType.inject_credential: file injectors written to env/ (0600), env injectors into the job's
        env, extra_vars injectors rendered and written with safe_dump to a file of their own passed as -e @file."""
        injectors = self.credential.type.get("injectors", {})
        namespace = dict(self.credential.inputs)
        for spec in self.credential.type.get("inputs", {}).get("fields", []):
            if spec.get("type") == "boolean" and spec["id"] not in namespace:
                namespace[spec["id"]] = False

        class Tower:
            pass

        namespace["tower"] = tower = Tower()
        jinja = sandbox.ImmutableSandboxedEnvironment()
        for label, template in injectors.get("file", {}).items():
            path = _mkstemp(private_data_dir / "env", jinja.from_string(template).render(**namespace), stat.S_IRUSR | stat.S_IWUSR)
            if "." not in label:
                tower.filename = str(path)
            else:
                if not hasattr(tower, "filename"):
                    tower.filename = Tower()
                setattr(tower.filename, label.split(".", 1)[1], str(path))
        for name, template in injectors.get("env", {}).items():
            if env_var_refusal(name):  # AWX: logger.error('Ignoring prohibited env var ...'), the job runs without it
                self.ignored_env.append(name)
                continue
            env[name] = jinja.from_string(template).render(**namespace)

        def render(node):
            if isinstance(node, dict):
                return {render(key): render(value) for key, value in node.items()}
            if isinstance(node, list):
                return [render(item) for item in node]
            return jinja.from_string(node).render(**namespace)

        extra_vars = render(injectors.get("extra_vars", {}))
        if extra_vars:
            path = _mkstemp(private_data_dir / "env", safe_dump(extra_vars), stat.S_IRUSR)
            args += ["-e", "@%s" % path]

    @staticmethod
    def _process_env() -> dict:
        """The runner's own environment: the machine's basics (the job's environment is env/envvars)."""
        keep = ("HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
        env = {key: os.environ[key] for key in keep if key in os.environ}
        env["PATH"] = "%s:%s" % (VENV_BIN, os.environ.get("PATH", "/usr/bin:/bin"))
        return env
