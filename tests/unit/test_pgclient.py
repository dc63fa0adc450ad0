"""module_utils/smart_deploy/pgclient.py builds every PostgreSQL client command line: in the database
container (docker exec) or, for an external server, in a throwaway client container of the server's
major version - the password only in the docker client's environment, never on the command line.
Pure command-line building here; tests/integration/test_external_db.py runs them against a real server."""

from ansible.module_utils.smart_deploy.pgclient import HOST_GATEWAY, PgServer, client_image_pattern, database_problem


def test_a_container_server_runs_the_tool_in_its_container():
    server = PgServer("docker", container="shop-db", user="shop", password="s3cret-pw")
    assert server.command(["pg_dump", "-Fc"]) == ["docker", "exec", "-i", "shop-db", "pg_dump", "-Fc"]
    assert server.environ().get("PGPASSWORD") != "s3cret-pw", "a container's tools use its local socket"


def test_an_external_server_runs_the_tool_in_a_client_container_with_the_password_in_the_environment_only():
    server = PgServer("docker", mode="external", host="db.example.internal", port=6432, sslmode="require", user="shop_owner",
                      password="s3cret-pw", client_image="postgres:15-bookworm", network="shop-net",
                      labels={"smart-deploy.app": "shop"})  # fmt: skip
    argv = server.command(["pg_dump", "-Fc", "-U", "shop_owner", "-d", "shop"], mounts={"/srv/b.dump": "/smart-deploy/backup.dump"})
    assert argv[:4] == ["docker", "run", "--rm", "-i"]
    assert argv[-7:] == ["postgres:15-bookworm", "pg_dump", "-Fc", "-U", "shop_owner", "-d", "shop"]
    for expected in (["--add-host", HOST_GATEWAY], ["--network", "shop-net"], ["-e", "PGHOST=db.example.internal"], ["-e", "PGPORT=6432"],
                     ["-e", "PGSSLMODE=require"], ["-e", "PGPASSWORD"], ["-v", "/srv/b.dump:/smart-deploy/backup.dump:ro"],
                     ["--label", "smart-deploy.app=shop"]):  # fmt: skip
        assert any(argv[i : i + 2] == expected for i in range(len(argv))), expected
    assert not [a for a in argv if "s3cret-pw" in a], "the password is never on the command line"
    assert server.environ()["PGPASSWORD"] == "s3cret-pw"


def test_another_login_on_the_same_server():
    admin = PgServer("docker", mode="external", host="db", user="postgres", password="a", client_image="postgres:16-bookworm")
    owner = admin.with_login("shop_owner", "o")
    assert (owner.host, owner.user, owner.environ()["PGPASSWORD"], admin.user) == ("db", "shop_owner", "o", "postgres")


def test_the_driver_gets_the_server_as_the_login():
    external = PgServer("docker", mode="external", host="host.docker.internal", port=55432, sslmode="require", user="o", password="p",
                        database="shop")  # fmt: skip
    assert external.driver_env() == {"SMART_DEPLOY_DB_HOST": "host.docker.internal", "SMART_DEPLOY_DB_PORT": "55432",
                                     "SMART_DEPLOY_DB_NAME": "shop", "SMART_DEPLOY_DB_USER": "o", "SMART_DEPLOY_DB_PASSWORD": "p",
                                     "SMART_DEPLOY_DB_SSLMODE": "require"}  # fmt: skip
    container = PgServer("docker", container="shop-db", user="o", password="p", database="shop")
    assert container.driver_env()["SMART_DEPLOY_DB_HOST"] == "shop-db" and "SMART_DEPLOY_DB_SSLMODE" not in container.driver_env()


def test_the_client_image_template_matches_every_major_version():
    pattern = client_image_pattern("postgres:{major}-bookworm")
    assert pattern.match("postgres:15-bookworm").group(1) == "15"
    assert pattern.match("postgres:9-bookworm") and not pattern.match("postgres:15-alpine") and not pattern.match("xpostgres:15-bookworm")
    assert client_image_pattern("registry.example/pg-client:16") is None


def test_what_each_mode_needs():
    assert database_problem({"db_mode": "container", "db_container": "shop-db"}) is None
    assert "db_container is required" in database_problem({"db_mode": "container"})
    assert "db_host and db_password required with db_mode=external" in database_problem({"db_mode": "external", "db_port": 5432})
    assert "db_port must be between 1 and 65535" in database_problem({"db_mode": "external", "db_host": "h", "db_password": "p",
                                                                      "db_port": 0})  # fmt: skip
    assert database_problem({"db_mode": "external", "db_host": "h", "db_password": "p", "db_port": 5432}) is None
