"""The AWX definitions under awx/ checked without a server (issue 12, points 1-3 and 5).

- every survey is a survey AWX accepts: a JSON Schema (awx/survey.schema.json) and the checks AWX does across
  fields (JobTemplateSurveySpec._validate_spec_data in awx/api/views/__init__.py, and the checks of an answer
  in SurveyJobTemplateMixin._survey_element_validation, which AWX also applies to a default before sending it);
- every survey variable is one the template's playbook and its roles declare in meta/argument_specs.yml, and
  every value the survey can send passes that argument spec and the playbooks' input checks
  (module_utils/smart_deploy/inputs.py): a survey can never send what the role rejects;
- every awx.awx module call of playbooks/awx_configure.yml, rendered by Ansible's own templating for each loop
  item, is valid for that module's own argument spec (captured from the installed collection);
- the execution environment is written by ``ansible-builder create`` (offline) with what the controller needs.

Each rule is shown to fail on a broken input (the ``*_is_reported`` tests).
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from module_utils.smart_deploy import inputs
from tests.conftest import ROOT

VENV_BIN = Path(os.environ.get("SMART_DEPLOY_VENV", ROOT / ".venv")) / "bin"
AWX = ROOT / "awx"
SURVEYS = AWX / "surveys"
SCHEMA = json.loads((AWX / "survey.schema.json").read_text())
VERBS = ("deploy", "emergency", "validate", "rollback", "status", "logs", "backups", "cleanup", "maintenance")


def ansible_yaml(path: Path):
    """A YAML file as Ansible reads it (!unsafe and !vault tags known)."""
    from ansible.parsing.dataloader import DataLoader

    return DataLoader().load_from_file(str(path))


DEFINITIONS = dict(ansible_yaml(AWX / "job_templates.yml"))
CREDENTIAL_TYPE = ansible_yaml(AWX / "credential_type.yml")["smart_deploy_awx_credential_type"]
TEMPLATES = DEFINITIONS["smart_deploy_awx_job_templates"]
SURVEY_FILES = sorted(p.name for p in SURVEYS.glob("*.json"))


def survey(name: str) -> dict:
    return json.loads((SURVEYS / name).read_text())


# --- AWX's rules for a survey --------------------------------------------------------------------------------------


def schema_problems(spec: dict) -> list:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return ["%s: %s" % ("/".join(map(str, error.absolute_path)) or "survey", error.message) for error in validator.iter_errors(spec)]


def choice_list(question: dict) -> list:
    """The choices as AWX uses them: a list, or one string split by lines without the blank ones."""
    choices = question.get("choices", [])
    return [c for c in choices.splitlines() if c.strip()] if isinstance(choices, str) else list(choices)


def default_list(question: dict) -> list:
    default = question.get("default", "")
    return [d for d in default.splitlines() if d.strip()] if isinstance(default, str) else list(default)


def awx_problems(spec: dict) -> list:
    """What AWX refuses across fields, or would refuse when the default is sent as the answer (AWX drops such
    a default without a word), and what AWX would rewrite on save (then the survey is not stable: a second run
    of awx_configure.yml would see a difference)."""
    problems, seen = [], set()
    for index, q in enumerate(spec.get("spec", [])):
        where = "question %d (%s)" % (index, q.get("variable"))
        if q.get("variable") in seen:
            problems.append("%s: variable duplicated" % where)
        seen.add(q.get("variable"))
        qtype, low, high = q.get("type"), q.get("min"), q.get("max")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            problems.append("%s: min %d above max %d" % (where, low, high))
        has_default = "default" in q and q["default"] != ""
        if qtype in ("multiplechoice", "multiselect"):
            choices, defaults = choice_list(q), default_list(q)
            if qtype == "multiplechoice" and len(defaults) > 1:
                problems.append("%s: a multiple choice question has one default at most" % where)
            if any(d not in choices for d in defaults):
                problems.append("%s: default %r is not among the choices %s" % (where, q.get("default"), choices))
            if isinstance(q.get("choices"), str) and q["choices"] != "\n".join(choices):
                problems.append("%s: AWX would rewrite the choices (blank lines)" % where)
            if qtype == "multiselect" and has_default:
                problems.append("%s: AWX never sends a multiselect default (it is a string, answers are lists): leave it out" % where)
        if has_default and qtype in ("integer", "float"):
            if isinstance(low, int) and q["default"] < low or isinstance(high, int) and q["default"] > high:
                problems.append("%s: default %r outside min/max %r-%r" % (where, q["default"], low, high))
        if has_default and qtype in ("text", "textarea", "password"):
            if isinstance(low, int) and len(q["default"]) < low or isinstance(high, int) and len(q["default"]) > high:
                problems.append("%s: default %r length outside min/max %r-%r" % (where, q["default"], low, high))
    return problems


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", SURVEY_FILES)
def test_survey_is_valid_for_awx(name):
    spec = survey(name)
    assert schema_problems(spec) == []
    assert awx_problems(spec) == []


GOOD_QUESTION = {
    "question_name": "Lines",
    "variable": "logs_lines",
    "type": "integer",
    "required": True,
    "default": 100,
    "min": 1,
    "max": 10,
}


def broken(**changes):
    question = dict(GOOD_QUESTION, **changes)
    return {"name": "x", "description": "", "spec": [{k: v for k, v in question.items() if v is not None}]}


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"name": "x", "spec": [GOOD_QUESTION]}, "'description' is a required property"),
        ({"name": "x", "description": "", "spec": []}, "should be non-empty"),
        (broken(type="checkbox"), "'checkbox' is not one of"),
        (broken(required="yes"), "'yes' is not of type 'boolean'"),
        (broken(variable="logs-lines"), "does not match"),
        (broken(question_name=None), "'question_name' is a required property"),
        (broken(default="100"), "default"),
        (broken(min="1"), "'1' is not of type 'integer', 'null'"),
        (broken(type="multiplechoice", default="a", min=None, max=None), "'choices' is a required property"),
        (broken(type="text", default=3, min=None, max=None), "3 is not of type 'string'"),
        (broken(type="text", default="$encrypted$abc", min=None, max=None), "should not be valid"),
        (broken(choice=["a"]), "Additional properties are not allowed ('choice' was unexpected)"),
    ],
)
def test_a_survey_awx_refuses_is_reported_by_the_schema(spec, says):
    problems = schema_problems(spec)
    assert any(says in p for p in problems), problems


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"name": "x", "description": "", "spec": [GOOD_QUESTION, dict(GOOD_QUESTION, question_name="Again")]}, "variable duplicated"),
        (broken(min=10, max=1), "min 10 above max 1"),
        (broken(default=0), "default 0 outside min/max 1-10"),
        (broken(default=11), "default 11 outside min/max 1-10"),
        (broken(type="multiplechoice", choices=["yes", "no"], default="maybe", min=None, max=None), "not among the choices"),
        (broken(type="multiplechoice", choices="yes\nno", default="yes\nno", min=None, max=None), "one default at most"),
        (broken(type="multiplechoice", choices="yes\n\nno", default="yes", min=None, max=None), "AWX would rewrite the choices"),
        (broken(type="multiselect", choices=["a", "b"], default="a", min=None, max=None), "AWX never sends a multiselect default"),
        (broken(type="text", default="abcdef", min=0, max=3), "length outside min/max"),
    ],
)
def test_a_survey_awx_refuses_is_reported_by_the_cross_field_checks(spec, says):
    assert schema_problems(spec) == []
    problems = awx_problems(spec)
    assert any(says in p for p in problems), problems


# --- the job templates ---------------------------------------------------------------------------------------------


def test_one_job_template_per_verb_with_its_playbook_and_survey():
    assert sorted(t["verb"] for t in TEMPLATES) == sorted(VERBS)
    assert len({t["name"] for t in TEMPLATES}) == len(TEMPLATES)
    for template in TEMPLATES:
        assert (ROOT / template["playbook"]).is_file(), template["playbook"]
        assert isinstance(template["extra_vars"], dict), template["name"]
    used = sorted(t["survey"] for t in TEMPLATES if "survey" in t)
    assert used == SURVEY_FILES, "every survey file is used, by one template"
    by_verb = {t["verb"]: t for t in TEMPLATES}
    assert {q["variable"] for q in survey(by_verb["rollback"]["survey"])["spec"]} == {"rollback_release", "rollback_restore_db"}
    assert {q["variable"] for q in survey(by_verb["logs"]["survey"])["spec"]} == {"logs_component", "logs_lines", "logs_since"}
    assert "smart_deploy_release" in {q["variable"] for q in survey(by_verb["deploy"]["survey"])["spec"]}
    assert by_verb["deploy"]["ask_scm_branch_on_launch"], "deploy: the git ref is chosen at launch"
    assert by_verb["emergency"]["extra_vars"] == {"smart_deploy_emergency": True}


def test_inventories_are_sourced_from_the_project():
    for inventory in DEFINITIONS["smart_deploy_awx_inventories"]:
        assert re.fullmatch(r"inventories/[a-z0-9_-]+", inventory["source_path"]), inventory
        assert (ROOT / inventory["source_path"] / "hosts.yml").is_file(), inventory["source_path"]
    assert DEFINITIONS["smart_deploy_awx_default_inventory"] in [i["name"] for i in DEFINITIONS["smart_deploy_awx_inventories"]]


def test_the_synced_inventory_folders_hold_no_vaulted_file():
    # AWX allows no Vault credential on an SCM inventory source: a vaulted file would stop the sync
    for inventory in DEFINITIONS["smart_deploy_awx_inventories"]:
        for path in (ROOT / inventory["source_path"]).rglob("*"):
            if path.is_file() and path.suffix in ("", ".yml", ".yaml", ".json", ".ini"):
                assert not path.read_text().startswith("$ANSIBLE_VAULT"), path


def workflow_problems(workflow: dict, templates: list) -> list:
    problems = []
    by_name = {t["name"]: t for t in templates}
    nodes = {n["identifier"]: n for n in workflow["nodes"]}
    for node in workflow["nodes"]:
        if node["job_template"] not in by_name:
            problems.append("node %s: no job template %r" % (node["identifier"], node["job_template"]))
            continue
        for follower in node.get("success_nodes", []) + node.get("failure_nodes", []):
            if follower not in nodes:
                problems.append("node %s: no node %r" % (node["identifier"], follower))
        # a workflow sends no survey answers: a required question needs a default, or the node cannot start
        template = by_name[node["job_template"]]
        for q in survey(template["survey"])["spec"] if "survey" in template else []:
            if q["required"] and q.get("default", "") == "":
                problems.append("node %s: required question %s has no default" % (node["identifier"], q["variable"]))
    verb = {n["identifier"]: by_name[n["job_template"]]["verb"] for n in workflow["nodes"] if n["job_template"] in by_name}
    roots = set(nodes) - {f for n in workflow["nodes"] for f in n.get("success_nodes", []) + n.get("failure_nodes", [])}
    if [verb.get(r) for r in roots] != ["validate"]:
        problems.append("the workflow starts with %s, not validate" % sorted(verb.get(r) for r in roots))
    for identifier, node in nodes.items():
        if verb.get(identifier) == "validate" and "deploy" not in [verb.get(f) for f in node.get("success_nodes", [])]:
            problems.append("validate is not followed by deploy on success")
        if verb.get(identifier) in ("validate", "deploy") and "status" not in [verb.get(f) for f in node.get("failure_nodes", [])]:
            problems.append("%s has no failure path to status" % identifier)
    return problems


def test_workflow_validates_then_deploys_and_shows_the_status_on_failure():
    assert workflow_problems(DEFINITIONS["smart_deploy_awx_workflow"], TEMPLATES) == []


def test_a_broken_workflow_is_reported():
    workflow = copy.deepcopy(DEFINITIONS["smart_deploy_awx_workflow"])
    for node in workflow["nodes"]:
        node.pop("failure_nodes", None)
    workflow["nodes"][0]["success_nodes"] = ["nowhere"]
    templates = copy.deepcopy(TEMPLATES)
    problems = workflow_problems(workflow, templates)
    assert "node validate: no node 'nowhere'" in problems and "validate has no failure path to status" in problems, problems


# AWX's rules for a credential type (awx/main/fields.py: CredentialTypeInputField, CredentialTypeInjectorField)
ENV_BLOCKLIST = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID", "INVENTORY_UPDATE_ID",
                 "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES", "CALLBACK_QUEUE", "CALLBACK_CONNECTION",
                 "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS", "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH"}  # fmt: skip
NAME = r"^[a-zA-Z_]+[a-zA-Z0-9_]*$"


def credential_type_problems(credential_type: dict) -> list:
    import jinja2.sandbox

    problems = []
    fields = credential_type.get("inputs", {}).get("fields", [])
    for field in fields:
        if not re.match(NAME, field.get("id", "")) or field["id"] == "tower" or not isinstance(field.get("label"), str):
            problems.append("input field %r: an id (a variable name, not 'tower') and a label" % field)
        if field.get("type", "string") not in ("string", "boolean"):
            problems.append("input field %s: type %r" % (field.get("id"), field.get("type")))
    ids = [f.get("id") for f in fields]
    problems += ["required %r is no input field" % r for r in credential_type["inputs"].get("required", []) if r not in ids]
    injectors = credential_type.get("injectors", {})
    problems += ["injector kind %r" % kind for kind in injectors if kind not in ("file", "env", "extra_vars")]
    files = list(injectors.get("file", {}))
    problems += ["file injector %r" % key for key in files if not re.match(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$", key)]
    for variable in injectors.get("env", {}):
        if variable.startswith("ANSIBLE_") or variable in ENV_BLOCKLIST or not re.match(NAME, variable):
            problems.append("env injector %s is not allowed in credentials" % variable)
    filenames = type("Files", (), {f.split(".", 1)[1]: "FILE" for f in files if "." in f})()
    namespace = dict({i: "EXAMPLE" for i in ids}, tower=type("Tower", (), {"filename": "FILE" if "template" in files else filenames})())
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    for kind in ("file", "env", "extra_vars"):
        for key, template in injectors.get(kind, {}).items():
            if kind == "extra_vars" and not re.match(r"^[a-zA-Z_{}]+[a-zA-Z0-9_{}]*$", key):
                problems.append("extra_vars injector %s is not a variable name" % key)
            try:
                environment.from_string(template).render(namespace)
            except jinja2.exceptions.TemplateError as error:
                problems.append("%s injector %s: %s" % (kind, key, error))
    return problems


def test_the_credential_type_is_one_awx_accepts():
    assert credential_type_problems(CREDENTIAL_TYPE) == []


def test_a_credential_type_awx_refuses_is_reported():
    credential_type = copy.deepcopy(CREDENTIAL_TYPE)
    credential_type["injectors"]["file"] = {"template.vault_password": "{{ vault_password }}"}
    credential_type["injectors"]["env"] = {"ANSIBLE_VAULT_PASSWORD_FILE": "{{ tower.filename.vault_password }}"}
    credential_type["inputs"]["required"].append("api_token")
    assert credential_type_problems(credential_type) == [
        "required 'api_token' is no input field",
        "env injector ANSIBLE_VAULT_PASSWORD_FILE is not allowed in credentials",
        "file injector template.vault_password: 'vault_password' is undefined",
    ]


def test_secrets_come_from_the_credential_never_from_a_survey():
    injected = CREDENTIAL_TYPE["injectors"]["extra_vars"]
    assert injected == {"smart_deploy_db_password": "{{ db_password }}", "smart_deploy_django_secret_key": "{{ django_secret_key }}"}
    assert all(f["secret"] for f in CREDENTIAL_TYPE["inputs"]["fields"])
    secret = {name for name, spec in role_options().items() if any(s.get("no_log") for _, s in spec)}
    assert set(injected) <= secret
    for name in SURVEY_FILES:
        for q in survey(name)["spec"]:
            assert q["type"] != "password" and q["variable"] not in secret, (name, q["variable"])


# --- survey variables against the roles' argument specs ------------------------------------------------------------


@functools.cache
def role_options() -> dict:
    """variable -> [(role, option spec)] over every entry point of every role."""
    found = {}
    for specs_file in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        role = specs_file.parent.parent.name
        for entry in (yaml.safe_load(specs_file.read_text())["argument_specs"] or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                found.setdefault(name, []).append((role, spec))
    return found


def roles_of_playbook(playbook: Path) -> set:
    """The roles a playbook runs: roles:, import_role and include_role (names known statically), and their
    dependencies (meta/main.yml), transitively."""
    names = set()

    def tasks(items):
        for task in items or []:
            yield task
            for part in ("block", "rescue", "always"):
                yield from tasks(task.get(part))

    for play in yaml.safe_load(playbook.read_text()):
        for role in play.get("roles", []):
            names.add(role if isinstance(role, str) else role.get("role") or role.get("name"))
        for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            for task in tasks(play.get(section)):
                for action in ("ansible.builtin.import_role", "ansible.builtin.include_role", "import_role", "include_role"):
                    if action in task:
                        names.add(task[action]["name"])
    todo = list(names)
    while todo:
        meta = yaml.safe_load((ROOT / "roles" / todo.pop() / "meta" / "main.yml").read_text()) or {}
        for dependency in meta.get("dependencies") or []:
            name = dependency if isinstance(dependency, str) else dependency.get("role") or dependency.get("name")
            if name not in names:
                names.add(name)
                todo.append(name)
    return names


def answers(question: dict) -> list:
    """Values the survey can send for the question, as AWX sends them (types as in _survey_element_validation)."""
    qtype = question["type"]
    if qtype in ("multiplechoice",):
        return choice_list(question)
    if qtype == "multiselect":
        return [[c] for c in choice_list(question)] + [choice_list(question)]
    if qtype in ("integer", "float"):
        return [v for v in (question.get("min"), question.get("max"), question.get("default")) if isinstance(v, (int, float))]
    # free text: any string within its length; the input checks refuse a malformed one before anything changes
    return [question.get("default", "")]


# Settings every playbook has, for the input checks of one variable to be looked at alone.
BASE_SETTINGS = {"smart_deploy_app_name": "shop", "smart_deploy_app_source": "/src/shop", "smart_deploy_state_dir": "/srv/shop"}


def rejections(variable: str, value, declared: list) -> list:
    """Why the role's argument spec or the playbooks' input checks refuse ``value`` for ``variable``."""
    problems = []
    for role, spec in declared:
        result = ArgumentSpecValidator({variable: spec}).validate({variable: value})
        problems += ["%s's argument spec: %s" % (role, m) for m in result.error_messages]

    def checked(values):
        return inputs.problems_of(values, inputs.GROUPS, source_is_dir=lambda _path: True)

    baseline = set(checked(BASE_SETTINGS))
    problems += ["input checks: %s" % p for p in checked(dict(BASE_SETTINGS, **{variable: value})) if p not in baseline]
    return problems


def survey_role_problems(template: dict, spec: dict, options: dict) -> list:
    problems = []
    roles = roles_of_playbook(ROOT / template["playbook"])
    questions = [(q["variable"], q) for q in spec["spec"]] + [(k, None) for k in template.get("extra_vars", {})]
    for variable, question in questions:
        declared = [(role, s) for role, s in options.get(variable, []) if role in roles]
        if not declared:
            problems.append(
                "%s: %s is declared by none of the playbook's roles (%s)" % (template["name"], variable, ", ".join(sorted(roles)))
            )
            continue
        if question is None:
            values = [template["extra_vars"][variable]]
        else:
            values = answers(question)
            for role, s in declared:
                if s.get("choices") and question["type"] not in ("multiplechoice", "multiselect"):
                    problems.append(
                        "%s: %s takes one of %s (%s), not free %s" % (template["name"], variable, s["choices"], role, question["type"])
                    )
        for value in values:
            problems += ["%s: %s=%r refused - %s" % (template["name"], variable, value, p) for p in rejections(variable, value, declared)]
    return problems


@pytest.mark.parametrize("template", [t for t in TEMPLATES if "survey" in t or t["extra_vars"]], ids=lambda t: t["verb"])
def test_every_survey_answer_is_one_the_roles_accept(template):
    spec = survey(template["survey"]) if "survey" in template else {"spec": []}
    assert survey_role_problems(template, spec, role_options()) == []


ROLLBACK = next(t for t in TEMPLATES if t["verb"] == "rollback")
STATUS = next(t for t in TEMPLATES if t["verb"] == "status")


def with_question(template: dict, **changes) -> tuple:
    spec = survey(template["survey"])
    spec["spec"][-1].update(changes)
    return template, spec


@pytest.mark.parametrize(
    "template_and_spec, says",
    [
        # ./deploy's short name: no role declares it
        (with_question(ROLLBACK, variable="restore_db"), "restore_db is declared by none of the playbook's roles"),
        # a role variable of another playbook
        (with_question(ROLLBACK, variable="logs_lines"), "logs_lines is declared by none of the playbook's roles"),
        (with_question(ROLLBACK, choices=["yes", "no", "maybe"]), "rollback_restore_db='maybe' refused"),
        (with_question(STATUS, min=0), "status_history=0 refused - input checks: status_history"),
        (with_question(STATUS, type="text", default="ten", min=None, max=None), "status_history='ten' refused - status's argument spec"),
        ((dict(STATUS, extra_vars={"status_backups": "many"}), survey(STATUS["survey"])), "status_backups='many' refused"),
    ],
)
def test_a_survey_the_roles_would_refuse_is_reported(template_and_spec, says):
    template, spec = template_and_spec
    problems = survey_role_problems(template, spec, role_options())
    assert any(says in p for p in problems), problems


def test_a_free_text_question_for_a_variable_with_choices_is_reported():
    options = {"smart_deploy_db_mode": role_options()["smart_deploy_db_mode"]}
    template = {"name": "t", "playbook": "playbooks/deploy.yml", "extra_vars": {}}
    spec = {"spec": [{"variable": "smart_deploy_db_mode", "type": "text", "default": "container", "required": False}]}
    assert survey_role_problems(template, spec, options) == [
        "t: smart_deploy_db_mode takes one of ['container', 'external'] (smart_deploy), not free text"
    ]


# --- the awx.awx module calls of playbooks/awx_configure.yml -------------------------------------------------------


class Captured(Exception):
    pass


def module_spec(monkeypatch, name: str) -> dict:
    """The module's argument spec and its constraints, as it hands them to AnsibleModule."""
    from ansible.module_utils import basic

    def capture(self, argument_spec, **kwargs):
        raise Captured(argument_spec, kwargs)

    module = importlib.import_module("ansible_collections.awx.awx.plugins.modules." + name)
    with monkeypatch.context() as patch:
        patch.setattr(basic.AnsibleModule, "__init__", capture)
        with pytest.raises(Captured) as captured:
            module.main()
    argument_spec, kwargs = captured.value.args
    constraints = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")
    return dict(argument_spec=argument_spec, **{k: kwargs[k] for k in constraints if kwargs.get(k)})


def module_calls(extra_vars: dict) -> list:
    """(module, arguments) of every awx.awx task of awx_configure.yml, for each of its loop items, rendered by
    Ansible (its playbook loader, variable manager and templating: vars_files, play vars, -e, omit)."""
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.plugins.loader import init_plugin_loader

    if not getattr(module_calls, "plugins_loaded", False):
        init_plugin_loader()
        module_calls.plugins_loaded = True
    saved, context.CLIARGS = context.CLIARGS, ImmutableDict(check=False, extra_vars=())
    try:
        return _module_calls(extra_vars)
    finally:
        context.CLIARGS = saved


def _module_calls(extra_vars: dict) -> list:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook import Playbook
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    loader.set_basedir(str(ROOT / "playbooks"))
    inventory = InventoryManager(loader=loader, sources="localhost,")
    variables = VariableManager(loader=loader, inventory=inventory)
    variables._extra_vars = extra_vars
    play = Playbook.load(str(ROOT / "playbooks" / "awx_configure.yml"), variable_manager=variables, loader=loader).get_plays()[0]

    def walk(blocks):
        for block in blocks:
            for task in block.block + block.rescue + block.always:
                yield from walk([task]) if hasattr(task, "block") else [task]

    calls = []
    for task in walk(play.compile()):
        if not task.action.startswith("awx.awx."):
            continue
        task_vars = variables.get_vars(play=play, task=task, host=inventory.get_host("localhost"))
        items = Templar(loader=loader, variables=task_vars).template(task.loop) if task.loop else [None]
        for item in items:
            rendered = Templar(loader=loader, variables=dict(task_vars, item=item)).template(task.args)
            calls.append((task.action.rsplit(".", 1)[1], json.loads(json.dumps(rendered))))
    return calls


SECRETS_GIVEN = {
    "smart_deploy_awx_scm_url": "https://git.example.com/ops/smart-deploy.git",
    "smart_deploy_awx_db_password": "db-secret",
    "smart_deploy_awx_django_secret_key": "django-secret",
    "smart_deploy_awx_vault_password": "vault-secret",
    # what the playbook's first tasks find out (the credentials exist, or are made by this run)
    "awx_configure_credential_exists": True,
    "awx_configure_vault_credential_exists": True,
}


@pytest.fixture(scope="module")
def calls():
    return module_calls(SECRETS_GIVEN)


def call_problems(monkeypatch, module: str, arguments: dict) -> list:
    spec = module_spec(monkeypatch, module)
    validator = ArgumentSpecValidator(
        spec.pop("argument_spec"),
        **{
            k: v
            for k, v in spec.items()
            if k in ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")
        },
    )
    return validator.validate(arguments).error_messages


def test_every_object_is_applied_by_an_awx_module(calls):
    modules = [module for module, _ in calls]
    for module in ("execution_environment", "project", "credential_type", "credential", "inventory", "inventory_source", "job_template",
                   "workflow_job_template", "workflow_job_template_node"):  # fmt: skip
        assert module in modules, module
    assert modules.count("job_template") == len(TEMPLATES)
    surveys = {a["name"]: a.get("survey_spec") for m, a in calls if m == "job_template"}
    for template in TEMPLATES:
        assert surveys[template["name"]] == (survey(template["survey"]) if "survey" in template else None), template["name"]
    credentials = {a["name"]: a for m, a in calls if m == "credential"}
    assert credentials["smart-deploy app secrets"]["inputs"] == {"db_password": "db-secret", "django_secret_key": "django-secret"}
    assert credentials["smart-deploy app secrets"]["credential_type"] == CREDENTIAL_TYPE["name"]
    assert (credentials["smart-deploy vault"]["credential_type"], credentials["smart-deploy vault"]["inputs"]) == (
        "Vault",
        {"vault_password": "vault-secret"},
    )
    assert all(a["credentials"] == ["smart-deploy app secrets", "smart-deploy vault"] for m, a in calls if m == "job_template")
    (source,) = [a for m, a in calls if m == "inventory_source"]
    assert (source["source"], source["source_path"]) == ("scm", "inventories/production")


def test_every_awx_module_call_is_valid_for_the_module(monkeypatch, calls):
    problems = [
        (module, arguments.get("name") or arguments.get("identifier"), call_problems(monkeypatch, module, arguments))
        for module, arguments in calls
    ]
    assert [p for p in problems if p[2]] == []


def test_without_secrets_the_job_templates_leave_the_credential_as_it_is(monkeypatch):
    calls = module_calls(
        {
            "smart_deploy_awx_scm_url": "https://git.example.com/ops/smart-deploy.git",
            "awx_configure_credential_exists": False,
            "awx_configure_vault_credential_exists": False,
        }
    )
    assert all("credentials" not in a for m, a in calls if m == "job_template")
    assert [p for module, arguments in calls if (p := call_problems(monkeypatch, module, arguments))] == []


@pytest.mark.parametrize(
    "module, change, says",
    [
        ("job_template", {"survey": {}}, "survey. Supported parameters include"),
        ("job_template", {"ask_scm_branch_on_launch": "sometimes"}, "ask_scm_branch_on_launch"),
        ("project", {"scm_type": "mercurial"}, "value of scm_type must be one of"),
        ("inventory_source", {"source_dir": "inventories/production"}, "source_dir"),
        ("workflow_job_template_node", {"success_nodes": {"deploy": True}}, "success_nodes"),
    ],
)
def test_an_unknown_or_mistyped_module_option_is_reported(monkeypatch, calls, module, change, says):
    arguments = dict(next(a for m, a in calls if m == module), **change)
    problems = call_problems(monkeypatch, module, arguments)
    assert any(says in p for p in problems), problems


# --- the execution environment -------------------------------------------------------------------------------------


def used_collections() -> set:
    """Collections named by fully qualified names in what runs in a job (not awx_configure.yml: it runs where
    the controller is administered)."""
    found = set()
    for tree in ("roles", "playbooks", "plugins", "library", "module_utils"):
        for path in (ROOT / tree).rglob("*"):
            if path.suffix in (".yml", ".yaml", ".py") and path.name != "awx_configure.yml":
                found |= set(re.findall(r"\b((?:community|ansible|awx|containers|kubernetes)\.[a-z_]+)\.[a-z_]+\b", path.read_text()))
    return {c for c in found if c not in ("ansible.builtin", "ansible.module_utils", "ansible.plugins", "ansible.errors",
                                            "ansible.parsing", "ansible.utils", "ansible.template", "ansible.playbook",
                                            "ansible.vars", "ansible.executor", "ansible.inventory", "ansible.cli",
                                            "ansible.constants", "ansible.release", "ansible.config", "ansible.galaxy",
                                            "ansible.netcommon", "ansible.legacy")}  # fmt: skip


def test_the_execution_environment_holds_the_collections_the_playbooks_use_in_the_project_ranges():
    ee = yaml.safe_load((ROOT / "awx" / "ee" / "requirements.yml").read_text())["collections"]
    project = {c["name"]: c["version"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    assert {c["name"] for c in ee} == used_collections()
    for collection in ee:
        assert collection["version"] == project[collection["name"]], collection


def pip_ranges(path: Path) -> dict:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {re.split(r"[<>=!~\[]", line)[0].lower(): line for line in lines if line}


def test_the_execution_environment_python_packages_are_the_project_ones():
    ee, project = pip_ranges(ROOT / "awx" / "ee" / "requirements.txt"), pip_ranges(ROOT / "requirements.txt")
    assert {"docker", "psycopg2-binary"} <= set(ee)
    for name, line in ee.items():
        assert project.get(name) == line, name


def test_ansible_builder_writes_the_build_context_offline(tmp_path):
    context = tmp_path / "context"
    command = [str(VENV_BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context)]
    # no network: PIP_NO_INDEX would stop pip; create only writes files
    result = subprocess.run(
        command + ["--output-filename", "Containerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PIP_NO_INDEX="1"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == (ROOT / "awx" / "ee" / "requirements.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == yaml.safe_load(
        (ROOT / "awx" / "ee" / "requirements.yml").read_text()
    )
    assert "git-core" in (build / "bindep.txt").read_text()
    containerfile = (context / "Containerfile").read_text()
    refs = 'ANSIBLE_INSTALL_REFS="ansible-core>=2.19,<2.20 ansible-runner>=2.4.3,<2.5"'
    assert refs in containerfile, containerfile[:2000]
    assert 'EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile


def test_ansible_builder_refuses_a_broken_definition(tmp_path):
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    definition["dependencies"]["pyhton"] = definition["dependencies"].pop("python")
    (tmp_path / "ee.yml").write_text(yaml.safe_dump(definition))
    result = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "create", "-f", str(tmp_path / "ee.yml"), "-c", str(tmp_path / "context")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "pyhton" in result.stdout + result.stderr, result.stdout + result.stderr
