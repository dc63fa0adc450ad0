"""The SSH fleet the fleet deploy tests run against (tests/integration/fleet.py), checked on its own, with no deploy:
every host answers over SSH with its host key checked, through Mitogen (the project's strategy) and through
Ansible's own ssh connection; a wrong host key and a password are refused; app hosts drive the machine's Docker
engine and share their state folder with the containers they start; the database host's PostgreSQL answers as the
app's containers will reach it; the load balancer host has HAProxy; a stopped host is UNREACHABLE."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.integration.fleet import IMAGE, SSH_PORT, fleet_fixture, run

fleet = fleet_fixture(app_hosts=3)

STRATEGIES = ["smart_deploy", "linear"]  # Mitogen (ansible.cfg), Ansible's own ssh connection


def recap_hosts(output: str, status: str) -> set:
    """The hosts an ad-hoc run reported as ``status`` (SUCCESS, CHANGED, FAILED!, UNREACHABLE!)."""
    return set(re.findall(r"^(\w+) \| %s" % re.escape(status), output, re.MULTILINE))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_host_answers_over_ssh_with_its_host_key_checked(fleet, strategy):
    result = fleet.ansible("all", "ansible.builtin.ping", strategy=strategy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert recap_hosts(result.stdout, "SUCCESS") == set(fleet.hosts) == {"app1", "app2", "app3", "db1", "lb1"}
    # the hosts the inventory names, in the groups the fleet playbooks use, each on its own loopback address
    assert fleet.known_hosts.read_text().count("ssh-ed25519") == 5
    assert "[%s]:%d ssh-ed25519 " % (fleet.hosts["db1"], SSH_PORT) in fleet.known_hosts.read_text()


def test_the_project_strategy_runs_modules_through_mitogen(fleet):
    """ansible.cfg's smart_deploy strategy: the module's parent is Mitogen's interpreter, logged in as deploy; become
    goes through sudo without a password."""
    result = fleet.ansible("app1", "ansible.builtin.shell", "id -un; ps -o args= -p $PPID")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deploy\n" in result.stdout
    assert "/usr/bin/python3(mitogen:" in result.stdout
    # become (sudo, no password) for what needs root on a host: the lb host's HAProxy, the db host's postgres user
    became = fleet.ansible("lb1:db1", "ansible.builtin.command", "id -un", "--become")
    assert became.returncode == 0, became.stdout + became.stderr
    assert recap_hosts(became.stdout, "CHANGED") == {"lb1", "db1"}
    assert became.stdout.count("\nroot") == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_wrong_host_key_is_refused(fleet, strategy, tmp_path):
    """app1 presents its own key; the known_hosts file says app2's: nothing runs there. An empty known_hosts
    (a host never seen) is refused too, not trusted on first use."""
    right = fleet.host_public_key("app1")
    wrong = tmp_path / "known_hosts_wrong"
    wrong.write_text(fleet.known_hosts.read_text().replace(right, fleet.host_public_key("app2")))
    unknown = tmp_path / "known_hosts_empty"
    unknown.write_text("")
    marker = "/tmp/reached-%s" % secrets.token_hex(4)
    for known_hosts in (wrong, unknown):
        inventory = fleet.write_inventory(tmp_path / ("inventory-" + known_hosts.name), known_hosts=known_hosts)
        result = fleet.ansible("app1", "ansible.builtin.file", "path=%s state=touch" % marker, inventory=inventory, strategy=strategy)
        assert result.returncode != 0, result.stdout
        assert recap_hosts(result.stdout, "UNREACHABLE!") == {"app1"}, result.stdout
        assert "host key" in (result.stdout + result.stderr).lower()
    assert fleet.ssh("app1", "test ! -e %s && echo absent" % marker).stdout.strip() == "absent"
    # refused, not learnt: the empty known_hosts is still empty
    assert unknown.read_text() == ""


def test_password_and_root_logins_are_refused(fleet):
    """sshd offers public keys only (a password is never even asked for), and root cannot log in at all."""
    password_only = ("-v", "-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no")
    as_password = run([*fleet.ssh_command("app1", *password_only), "true"], timeout=60)
    assert as_password.returncode == 255
    assert "Permission denied (publickey)" in as_password.stderr
    assert re.findall(r"Authentications that can continue: (\S+)", as_password.stderr) == ["publickey"]
    as_root = run([*fleet.ssh_command("app1")[:-1], "root@%s" % fleet.hosts["app1"], "true"], timeout=60)
    assert as_root.returncode == 255
    assert "Permission denied" in as_root.stderr
    # what sshd itself enforces (sshd -T: the configuration in effect)
    effective = fleet.ssh("app1", "sudo /usr/sbin/sshd -T -C user=deploy,host=x,addr=127.0.0.1").stdout
    for line in ("passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no", "authenticationmethods publickey"):
        assert line in effective


def test_app_hosts_drive_the_machine_engine_and_share_their_state_folder(fleet):
    info = fleet.ansible("app_servers", "community.docker.docker_host_info")
    assert info.returncode == 0, info.stdout + info.stderr
    assert recap_hosts(info.stdout, "SUCCESS") == {"app1", "app2", "app3"}
    machine_engine = run(["docker", "info", "-f", "{{.ID}}"]).stdout.strip()
    assert machine_engine and info.stdout.count(machine_engine) == 3
    # a file written over SSH in app2's state folder is what a container app2 starts sees at the same path
    state = fleet.state_dir("app2")
    token = secrets.token_hex(8)
    fleet.ssh("app2", "echo %s > %s/written-over-ssh" % (token, state))
    name = "%s-probe" % fleet.scope("app2")
    seen = fleet.ssh(
        "app2", "docker run --rm --name %s -v %s:%s:ro --entrypoint cat %s %s/written-over-ssh" % (name, state, state, IMAGE, state)
    )
    assert seen.stdout.strip() == token
    # the engine's own view: the folder is the machine's (the bind mount named a machine path)
    assert (state / "written-over-ssh").read_text().strip() == token


def test_the_database_host_answers_as_the_app_will_reach_it(fleet):
    sql = "SELECT current_user || ' ' || current_setting('server_version_num')::int / 10000"
    # from a throwaway container, as host.docker.internal (Docker's host-gateway), like the app's containers
    from_container = fleet.db_query(sql, as_app=True)
    assert from_container.returncode == 0, from_container.stderr
    assert from_container.stdout.strip() == "%s 15" % fleet.pg_user
    # from the machine, on the database host's own address (the host network: no port publishing)
    from_machine = fleet.db_query(sql)
    assert from_machine.returncode == 0, from_machine.stderr
    assert from_machine.stdout.strip() == "%s 15" % fleet.pg_user
    # a wrong password is refused (scram-sha-256, not trust), from both
    for as_app in (True, False):
        refused = fleet.db_query("SELECT 1", as_app=as_app, password="not-" + fleet.pg_password)
        assert refused.returncode != 0
        assert "password authentication failed" in refused.stderr


def test_the_load_balancer_host_has_haproxy(fleet):
    result = fleet.ansible("lb", "ansible.builtin.command", "/usr/sbin/haproxy -v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert recap_hosts(result.stdout, "CHANGED") == {"lb1"}
    assert "HAProxy version 2.6" in result.stdout


def test_a_stopped_host_is_unreachable_and_comes_back(fleet):
    """SSH dropped (what the fault tests do mid-roll): the host's container stops; Ansible reports it UNREACHABLE
    and the others answer. Started again, it answers with the same host key."""
    fleet.stop_host("app2")
    try:
        result = fleet.ansible("all", "ansible.builtin.ping")
        assert result.returncode != 0
        assert recap_hosts(result.stdout, "UNREACHABLE!") == {"app2"}, result.stdout
        assert recap_hosts(result.stdout, "SUCCESS") == {"app1", "app3", "db1", "lb1"}
    finally:
        fleet.start_host("app2")
    again = fleet.ansible("app2", "ansible.builtin.ping")
    assert again.returncode == 0, again.stdout + again.stderr
