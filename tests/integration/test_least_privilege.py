"""Least privilege, on a deployment made by the previous version of smart-deploy (the app connected as the
database's superuser, which owned everything): the next deploy upgrades it in place, a backup the previous
version took restores into a database the app can use - an owner role owns
the objects and runs the migrations, the app connects as a role that reads and writes rows and nothing
more, through a DATABASE_URL whose password holds '/', '@' and ':' - and a password changed in the vault
is applied with ALTER ROLE, the database container kept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration import shop_releases as releases
from tests.integration.conftest import VENV_BIN, assert_ok, release_id, run

# main as it landed before least privilege (and this test) existed
PREVIOUS_VERSION = "0cc9efb"


def previous_version(workdir: Path) -> Path:
    """The previous smart-deploy, from this repository's history (git archive: the checkout is not touched)."""
    folder = workdir / "smart-deploy-previous"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_VERSION], capture_output=True)
    assert archive.returncode == 0, "commit %s is not in this clone's history: %s" % (PREVIOUS_VERSION, archive.stderr.decode())
    folder.mkdir()
    tar = workdir / "previous.tar"
    tar.write_bytes(archive.stdout)
    with tarfile.open(tar) as handle:
        handle.extractall(folder)
    return folder


def deploy_with_previous_version(shop, folder: Path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(folder / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]),
               SMART_DEPLOY_LOG_DIR=str(shop.workdir / "logs-previous"), ANSIBLE_NOCOLOR="1")  # fmt: skip
    # the previous version injected the shop's POSTGRES_*/DATABASE_URL itself and had no smart_deploy_db_host
    dropped = ("smart_deploy_app_env", "smart_deploy_app_secret_env")
    old_vars = {k: v for k, v in json.loads(shop.vars_file.read_text()).items() if k not in dropped}
    old_vars_file = shop.workdir / "vars-previous.json"
    old_vars_file.write_text(json.dumps(old_vars))
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), "playbooks/deploy.yml", "-e", "@%s" % old_vars_file],
                            cwd=folder, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert_ok(result)


def in_web(shop, code: str) -> subprocess.CompletedProcess:
    """Python in the live backend container, with the environment the app runs with."""
    history = shop.releases()
    web = next(e for e in reversed(history["releases"]) if e["id"] == history["current"])["containers"]["backend"]
    return run(["docker", "exec", web, "python", "-c", code])


def container_env(shop) -> dict:
    history = shop.releases()
    web = next(e for e in reversed(history["releases"]) if e["id"] == history["current"])["containers"]["backend"]
    inspect = json.loads(run(["docker", "inspect", web]).stdout)[0]
    return dict(item.split("=", 1) for item in inspect["Config"]["Env"])


def ansible_module(shop, folder: Path, name: str, args: dict) -> dict:
    """One module of the smart-deploy in ``folder`` run ad hoc on this machine, as an operator would."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(folder / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_NOCOLOR="1")  # fmt: skip
    result = subprocess.run([str(VENV_BIN / "ansible"), "localhost", "-m", name, "-a", json.dumps(args)], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert not shop.leaks(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture(scope="module")
def upgraded(module_deployment):
    """Release 1 deployed by the previous version, a backup taken by its pg_backup (every object owned by
    the superuser), then the same code deployed by this version."""
    shop = module_deployment
    shop.previous = previous_version(shop.workdir)
    # the shop as it was then, with the nginx proxy of its own that the previous version built and ran
    shutil.copytree(shop.previous / "examples" / "shop" / "infra", shop.source / "infra")
    shop.base = shop.commit("release 1")
    shop.live = release_id(shop.base)
    deploy_with_previous_version(shop, shop.previous)
    status, cart = shop.http("/api/cart/", method="POST", body={})
    assert status == 201
    shop.cart = json.loads(cart)["id"]
    name = shop.name.replace("-", "_")
    backup = {"container": "%s-db" % shop.name, "database": name, "user": name, "dest": str(shop.workdir / "old-backups"),
              "app": shop.name, "release": shop.live}  # fmt: skip
    shop.old_backup = ansible_module(shop, shop.previous, "pg_backup", backup)["path"]
    shop.run_superuser_app = container_env(shop)["POSTGRES_USER"]
    shop.db_id = run(["docker", "inspect", "-f", "{{.Id}}", "%s-db" % shop.name]).stdout.strip()
    result = shop.deploy()  # the same code, with this version
    assert_ok(result)
    return shop


def test_the_upgrade_replaced_the_apps_own_nginx_proxy_by_smart_deploys(upgraded):
    image = run(["docker", "inspect", "-f", "{{.Config.Image}}", "%s-proxy" % upgraded.name]).stdout.strip()
    assert image.startswith("smart-deploy-proxy:"), image
    assert upgraded.http("/proxy-health")[0] == 200 and upgraded.get_json("/api/health/")[0] == 200


def test_the_previous_version_connected_as_the_superuser(upgraded):
    name = upgraded.name.replace("-", "_")
    assert upgraded.run_superuser_app == name
    assert upgraded.psql("SELECT rolsuper FROM pg_roles WHERE rolname = '%s'" % name) == "t"


def test_the_next_deploy_connects_the_app_as_a_role_without_privileges(upgraded):
    name = upgraded.name.replace("-", "_")
    assert "configuration changed" in upgraded.summary()["steps"]["changes"], upgraded.summary()
    env = container_env(upgraded)
    assert env["POSTGRES_USER"] == name + "_app"
    assert upgraded.psql("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '%s_app'" % name) == "f|f|f"
    assert upgraded.psql("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '%s_owner'" % name) == "f|f|f"
    owners = upgraded.psql("SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'")
    assert owners == name + "_owner", "every table belongs to the owner role"
    assert upgraded.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'" % name) == name + "_owner"
    status, health = upgraded.get_json("/api/health/")
    assert status == 200 and health["database"] == "reachable"
    status, _cart = upgraded.get_json("/api/cart/%d/" % upgraded.cart)
    assert status == 200, "data written under the previous version is still there"
    assert upgraded.db_id == run(["docker", "inspect", "-f", "{{.Id}}", "%s-db" % upgraded.name]).stdout.strip()


def test_the_database_url_holds_the_app_roles_password_quoted_and_the_app_cannot_change_the_schema(upgraded):
    assert "/" in upgraded.db_password and "@" in upgraded.db_password and ":" in upgraded.db_password
    probe = in_web(upgraded, "import os, psycopg2\n"
                             "c = psycopg2.connect(os.environ['DATABASE_URL'])\n"
                             "cur = c.cursor()\n"
                             "cur.execute('SELECT current_user, count(*) FROM catalog_product GROUP BY 1')\n"
                             "print(cur.fetchone())\n"
                             "try:\n"
                             "    cur.execute('CREATE TABLE intruder (id int)')\n"
                             "    print('CREATED')\n"
                             "except psycopg2.Error as exc:\n"
                             "    print('REFUSED', exc.pgcode)\n")  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    name = upgraded.name.replace("-", "_")
    assert "('%s_app', 3)" % name in probe.stdout, "DATABASE_URL connects as the app role"
    assert "REFUSED 42501" in probe.stdout, "the app role may not create tables: %s" % probe.stdout


def test_a_backup_from_before_the_upgrade_restores_into_a_database_the_app_can_use(upgraded):
    name = upgraded.name.replace("-", "_")
    upgraded.psql("DELETE FROM cart_item")  # written since the backup: the restore brings it back
    restored = ansible_module(upgraded, ROOT, "pg_restore", {"backup": upgraded.old_backup, "container": "%s-db" % upgraded.name,
                              "database": name, "user": name, "roles": {"owner": name + "_owner", "app": name + "_app"}})  # fmt: skip
    assert restored["changed"] and restored["replaced_database"]
    assert upgraded.psql("SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'") == name + "_owner"
    status, products = upgraded.get_json("/api/products/")
    assert status == 200 and products["count"] == 3, "the app reads the restored tables as its own role"
    status, _cart = upgraded.get_json("/api/cart/%d/" % upgraded.cart)
    assert status == 200


def test_migrations_run_as_the_owner_and_the_app_reads_what_they_create(upgraded):
    releases.add_wishlist(upgraded)
    upgraded.base = upgraded.commit("release 2: wishlists")
    assert_ok(upgraded.deploy())
    name = upgraded.name.replace("-", "_")
    assert upgraded.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'cart_wishlist'") == name + "_owner"
    probe = in_web(upgraded, "import os, psycopg2\nc = psycopg2.connect(os.environ['DATABASE_URL'])\ncur = c.cursor()\n"
                             "cur.execute(\"INSERT INTO cart_wishlist (name, created_at) VALUES ('x', now()) RETURNING id\")\n"
                             "c.commit()\nprint('WROTE', cur.fetchone()[0])\n")  # fmt: skip
    assert probe.returncode == 0 and "WROTE" in probe.stdout, probe.stdout + probe.stderr


def test_a_password_changed_in_the_vault_is_set_with_alter_role_and_the_app_restarts_with_it(upgraded):
    before_web = container_env(upgraded)
    vars_ = json.loads(upgraded.vars_file.read_text())
    upgraded.db_password = "Canary/new@%s:pw" % upgraded.secret_key[-8:]
    vars_["smart_deploy_db_password"] = upgraded.db_password
    upgraded.vars_file.write_text(json.dumps(vars_))
    result = upgraded.deploy()
    assert_ok(result)
    assert "configuration changed" in upgraded.summary()["steps"]["changes"]
    assert upgraded.db_id == run(["docker", "inspect", "-f", "{{.Id}}", "%s-db" % upgraded.name]).stdout.strip(), (
        "the database container was kept"
    )
    after_web = container_env(upgraded)
    assert after_web["POSTGRES_PASSWORD"] != before_web["POSTGRES_PASSWORD"]
    status, health = upgraded.get_json("/api/health/")
    assert status == 200 and health["database"] == "reachable", "the app connects with the new password"
    name = upgraded.name.replace("-", "_")
    login = run(["docker", "exec", "-e", "PGPASSWORD=%s" % upgraded.db_password, "%s-db" % upgraded.name, "psql", "-h", "127.0.0.1",
                 "-U", name, "-d", name, "-XAtc", "SELECT 1"])  # fmt: skip
    assert login.stdout.strip() == "1", "the superuser's password is the new one: %s" % login.stderr
    again = upgraded.deploy()
    assert_ok(again)
    assert upgraded.summary()["steps"]["changes"].startswith("nothing to deploy"), "applied once"
