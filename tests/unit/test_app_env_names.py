"""smart-deploy injects no variable names of an app into the app's containers: the shop's names
(POSTGRES_*, DATABASE_URL, DJANGO_SECRET_KEY) live in the shop's inventories, expressed with smart-deploy's
variables, so that an app reading other names (examples/notes: NOTES_DB_*) is deployed by an inventory
that sets only its own. The dev role (a local stack of its own) is not a deploy's."""

import re

import yaml

from tests.conftest import ROOT

SHOP_NAMES = re.compile(r"\b(POSTGRES_(HOST|PORT|DB|USER|PASSWORD)|DATABASE_URL|DJANGO_SECRET_KEY)\b")


def test_no_role_default_of_a_deploy_names_the_shops_environment_variables():
    found = []
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        if path.parts[-3] == "dev":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SHOP_NAMES.search(line) and not line.lstrip().startswith("#"):
                found.append("%s:%d: %s" % (path.relative_to(ROOT), number, line.strip()))
    assert found == []


def test_the_shops_inventories_give_it_its_names_from_smart_deploys_variables():
    for inventory in ("inventories/local/group_vars/all/app.yml", "inventories/production/group_vars/app_servers/app.yml"):
        values = yaml.safe_load((ROOT / inventory).read_text())
        env, secret = values["smart_deploy_app_env"], values["smart_deploy_app_secret_env"]
        assert env["POSTGRES_HOST"] == "{{ smart_deploy_db_host }}" and env["POSTGRES_USER"] == "{{ smart_deploy_db_app_user }}", inventory
        assert secret["POSTGRES_PASSWORD"] == "{{ smart_deploy_db_app_password }}", inventory
        assert secret["DJANGO_SECRET_KEY"] == "{{ smart_deploy_django_secret_key }}", inventory
        assert "{{ smart_deploy_db_host }}" in secret["DATABASE_URL"], inventory


def test_the_offline_placeholders_cover_every_app_secret_name_and_nothing_else():
    defaults = (ROOT / "roles/smart_deploy/defaults/main.yml").read_text()
    offline = yaml.safe_load(defaults)["smart_deploy_offline_secret_env"]
    assert offline == "{{ smart_deploy_app_secret_env | smart_deploy_placeholders }}" and not SHOP_NAMES.search(offline)
