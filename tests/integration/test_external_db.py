"""smart_deploy_db_mode external: the notes sample (examples/notes, through inventories/notes) deployed
against a real PostgreSQL server smart-deploy does not start or own (a plain postgres container started by
the fixture on the host's network, on a port of its own, reached by the app's containers as
host.docker.internal - tests/integration/conftest.py ExternalPostgres). Two deploys: release 1 (database
and roles created on that server, migrations applied over the network), release 2 with a migration - a
backup by a pg_dump of the server's major version (in a client container), the migration applied over the
network, then a failure in the after-migrate hook: the rollback restores the backup into a fresh database on
that server and swaps it in. The app connects as a role without superuser rights, and smart-deploy started
no database container of its own."""

import json

import pytest

from tests.integration import notes_releases as releases
from tests.integration.conftest import assert_failed, assert_ok, run
from tests.integration.notes import Notes

FAILING_HOOK = """- name: Fail after the migration (the test's forced failure), saying what was migrated
  ansible.builtin.fail:
    msg: forced failure after migrating {{ migrate_applied }}
"""


@pytest.fixture(scope="module")
def deployment_kind():
    return Notes


@pytest.fixture(scope="module")
def external_shop(module_deployment, external_postgres):
    """Release 1 of the notes app deployed on the external server (the name says what it is for: an app)."""
    module_deployment.base = module_deployment.commit("release 1")
    assert_ok(module_deployment.deploy())
    return module_deployment


def roles_of(server, name):
    return dict(
        line.split("|", 1)
        for line in server.psql("SELECT rolname, rolsuper::text || ',' || rolcreatedb::text || ',' || rolcreaterole::text "
                                "FROM pg_roles WHERE rolname LIKE '%s\\_%%'" % name).splitlines()
    )  # fmt: skip


def test_release_1_runs_on_the_external_server_as_a_role_without_superuser_rights(external_shop, external_postgres):
    shop, server = external_shop, external_postgres
    name = shop.name.replace("-", "_")
    status, body = shop.http("/api/notes/", method="POST", body={"title": "on the external server"})
    assert status == 201, body
    assert roles_of(server, name) == {name + "_owner": "false,false,false", name + "_app": "false,false,false"}
    assert server.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'" % name) == name + "_owner"
    # the live app connects as the app role (the notes app opens a connection per request): without that
    # role's login it cannot reach its database, with it back it can
    server.psql("ALTER ROLE %s_app NOLOGIN" % name)
    try:
        assert shop.http("/healthz")[0] == 503
    finally:
        server.psql("ALTER ROLE %s_app LOGIN" % name)
    assert shop.http("/healthz")[0] == 200
    assert run(["docker", "inspect", "%s-db" % shop.name]).returncode != 0, "smart-deploy started no database container"
    assert server.psql("SELECT count(*) FROM django_migrations WHERE app = 'notes'", database=name) != "0", "migrated over the network"
    # issue 24: the live containers reach the server as host.docker.internal, smart-deploy's client another way - the same
    # server and database, as the server says it
    database = shop.releases()["releases"][-1]["database"]
    assert database["same_as_migrated"] and database["host"] == "host.docker.internal" and database["name"] == name, database


def test_a_migration_applied_over_the_network_then_a_failure_restores_the_backup_into_a_fresh_database(external_shop, external_postgres):
    """Release 2 has a migration: a backup first (pg_dump of the server's major version, in a client container),
    the migration applied over the network (the after-migrate hook sees it applied), then the hook fails: the
    rollback restores the backup into a fresh database on that server and swaps it in."""
    shop, server = external_shop, external_postgres
    name = shop.name.replace("-", "_")
    server.psql("INSERT INTO notes_note (title, body, created_at) VALUES ('external-canary', '', now())", database=name)
    before = shop.snapshot()
    live = shop.releases()["current"]
    releases.add_note_pinned(shop)
    shop.commit("release 2 (pinned notes), fails after migrating")
    hook = shop.workdir / "fail-after-migrate.yml"
    hook.write_text(FAILING_HOOK)
    result = shop.deploy("-e", "migrate_after_tasks_file=%s" % hook, "-e", "rollback_reverse_migrations=false")
    assert_failed(result)
    assert "forced failure after migrating ['notes.0002_note_pinned']" in result.stdout, result.stdout[-4000:]
    assert "Rolled back" in result.stdout
    metadata = json.loads(sorted((shop.state_dir / "backups").glob("*.json"))[-1].read_text())
    assert metadata["verified"] and metadata["db_mode"] == "external", metadata
    assert metadata["pg_dump_version"].startswith("pg_dump (PostgreSQL) %d." % (int(server.psql("SHOW server_version_num")) // 10000))
    last = shop.releases()["releases"][-1]
    assert last["status"] == "failed" and "restored from" in last["rollback"]["database"], last["rollback"]
    assert shop.releases()["current"] == live
    after = shop.snapshot()
    assert after["schema"] == before["schema"] and after["rows"] == before["rows"], "the database is back as it was before release 2"
    assert "%s__replaced_" % name in after["databases"], "the replaced database is kept on the server"
    assert server.psql("SELECT count(*) FROM django_migrations WHERE name = '0002_note_pinned'", database=name) == "0"
    # the restored database is the owner role's, the app role still has rows only, and the app answers from it
    assert server.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'" % name) == name + "_owner"
    assert roles_of(server, name)[name + "_app"] == "false,false,false"
    status, body = shop.http("/api/notes/")
    assert status == 200 and "external-canary" in body, body
    shop.reset_to(shop.base)


def test_cleanup_drops_the_replaced_database_on_the_external_server(external_shop, external_postgres):
    """Retention as in container mode: ./deploy cleanup drops replaced databases older than cleanup_replaced_db_days
    (0 here) on that server, through a client container; the live database stays and the app answers."""
    shop, server = external_shop, external_postgres
    name = shop.name.replace("-", "_")
    assert "%s__replaced_" % name in shop.snapshot()["databases"]
    assert_ok(shop.playbook("cleanup", "-e", "cleanup_build_cache=false", "-e", "cleanup_replaced_db_days=0"))
    databases = server.psql("SELECT datname FROM pg_database").split()
    assert not [d for d in databases if d.startswith(name + "__replaced_")], databases
    assert name in databases and shop.http("/healthz")[0] == 200
