"""HTTPS, X-Forwarded-Proto and maintenance mode at smart-deploy's proxy, proven with the proxy role on its own
(tests/integration/playbooks/proxy_echo.yml: the proxy in front of an echo that answers with the headers it got, what
the app would see) and the notes sample's inventory for the names: real HAProxy, real TLS with certificates made here
by the test's own CA (tests/integration/tls.py), real requests to 127.0.0.1 verified against that CA.

One proxy for the module, in order: HTTPS with a redirect and HSTS, trusted load balancers, a certificate rotated
under steady load (a hitless reload: not one failed request), then maintenance mode on and off - through a restart
and a reload of the proxy, with the app's own page."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.integration.conftest import assert_failed, assert_ok, free_port, run
from tests.integration.notes import Notes
from tests.integration.tls import LocalCA, request, served_serial


@pytest.fixture(scope="module")
def deployment_kind():
    return Notes


@pytest.fixture(scope="module")
def ca():
    return LocalCA()


class Proxy:
    """The module's proxy: the notes deployment's names, HTTPS on a port of its own, settings given as a vars file."""

    def __init__(self, notes, ca):
        self.notes = notes
        self.ca = ca
        self.https_port = free_port()
        self.pair = ca.issue()
        self.settings = {
            "smart_deploy_https_port": self.https_port,
            "smart_deploy_https_redirect": True,
            "smart_deploy_hsts_max_age": 600,
        }
        self.vars_file = notes.workdir / "tls-vars.json"

    @property
    def container(self) -> str:
        return "%s-proxy" % self.notes.name

    def container_id(self) -> str:
        return run(["docker", "inspect", "-f", "{{.Id}}", self.container]).stdout.strip()

    def play(self, *args: str, **settings):
        """The proxy role on its own, with the TLS pair and the settings (the key never on a command line)."""
        self.settings.update(settings)
        values = {"smart_deploy_tls_certificate": self.pair.certificate, "smart_deploy_tls_key": self.pair.key, **self.settings}
        self.vars_file.write_text(json.dumps(values))
        self.vars_file.chmod(0o600)
        result = self.notes.playbook("../tests/integration/playbooks/proxy_echo", "-e", "@%s" % self.vars_file, *args)
        assert self.pair.key.splitlines()[1] not in result.stdout + result.stderr, "the private key was printed"
        return result

    def maintenance(self, state: str, *args: str):
        return self.notes.playbook("maintenance", "-e", "@%s" % self.vars_file, "-e", "maintenance=%s" % state, *args)

    def https(self, path="/", **kwargs):
        return request(self.https_port, path, https=True, ca=self.ca, **kwargs)

    def http(self, path="/", **kwargs):
        return request(self.notes.port, path, **kwargs)

    def map_lines(self) -> list:
        return (self.notes.state_dir / "proxy" / "conf" / "maintenance.map").read_text().splitlines()

    def echoed(self, answer) -> dict:
        assert answer.status == 200, (answer.status, answer.body[:300])
        return {k.lower(): v for k, v in json.loads(answer.body)["headers"].items()}


@pytest.fixture(scope="module")
def proxy(module_deployment, ca):
    proxy = Proxy(module_deployment, ca)
    result = proxy.play()
    assert_ok(result)
    proxy.first_output = result.stdout
    return proxy


def test_https_is_served_with_the_inventorys_certificate(proxy):
    answer = proxy.https("/api/notes/?page=2")
    assert answer.peer_serial == proxy.pair.serial
    seen = proxy.echoed(answer)
    # the app sees https, whatever the client claimed
    assert seen["x-forwarded-proto"] == "https"
    assert proxy.echoed(proxy.https("/", headers={"X-Forwarded-Proto": "http"}))["x-forwarded-proto"] == "https"
    assert answer.headers["strict-transport-security"] == "max-age=600"
    # the certificate and its key: 0600, in a file of their own named after what they hold; the configuration names only the file
    files = sorted((proxy.notes.state_dir / "proxy" / "conf" / "tls").glob("site-*.pem"))
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" in files[0].read_text()
    config = (proxy.notes.state_dir / "proxy" / "conf" / "haproxy.cfg").read_text()
    assert "ssl crt /etc/haproxy/smart-deploy/tls/%s" % files[0].name in config and "PRIVATE" not in config


def test_plain_http_is_redirected_but_the_health_path_and_acme(proxy):
    answer = proxy.http("/api/notes/?page=2")
    assert answer.status == 301, answer
    assert answer.headers["location"] == "https://127.0.0.1:%d/api/notes/?page=2" % proxy.https_port
    assert "strict-transport-security" not in answer.headers  # HSTS only over HTTPS
    assert proxy.http("/proxy-health").status == 200
    seen = proxy.echoed(proxy.http("/.well-known/acme-challenge/token-1"))
    assert seen["x-forwarded-proto"] == "http"
    # a client cannot talk its way past the redirect
    assert proxy.http("/", headers={"X-Forwarded-Proto": "https"}).status == 301


def test_a_trusted_load_balancers_x_forwarded_proto_is_passed_on_and_nobody_elses(proxy):
    # where this test's requests come from, as the proxy sees them (Docker's gateway for the published port)
    source = proxy.echoed(proxy.http("/.well-known/acme-challenge/x"))["x-forwarded-for"].split(",")[-1].strip()
    before = proxy.container_id()
    assert_ok(proxy.play(smart_deploy_trusted_proxies=["%s/32" % source]))
    assert proxy.container_id() == before, "a changed setting must reload the proxy, not recreate it"
    # the load balancer terminated TLS and says so: no redirect, the app sees https
    assert proxy.echoed(proxy.http("/", headers={"X-Forwarded-Proto": "https"}))["x-forwarded-proto"] == "https"
    # it says http: redirected like any plain request; it says nonsense: the proxy says what it saw
    assert proxy.http("/", headers={"X-Forwarded-Proto": "http"}).status == 301
    assert proxy.http("/", headers={"X-Forwarded-Proto": "gopher"}).status == 301
    # from anywhere else (another container on the app's network) the header is overwritten
    script = (
        "import json, urllib.request as u; "
        "r = u.Request('http://%s:80/.well-known/acme-challenge/y', headers={'X-Forwarded-Proto': 'https'}); "
        "print({k.lower(): v for k, v in json.loads(u.urlopen(r, timeout=5).read())['headers'].items()}['x-forwarded-proto'])"
        % proxy.container
    )
    inside = run(["docker", "exec", "%s-echo" % proxy.notes.name, "python", "-c", script])
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip() == "http"
    assert_ok(proxy.play(smart_deploy_trusted_proxies=[]))
    assert proxy.http("/", headers={"X-Forwarded-Proto": "https"}).status == 301


def test_a_new_certificate_is_served_after_a_hitless_reload_under_steady_load(proxy, ca):
    before = proxy.container_id()
    old = proxy.pair
    proxy.pair = ca.issue()
    failures, served, stop = [], [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                answer = proxy.https("/steady")
                served.append(answer.peer_serial)
                if answer.status != 200:
                    failures.append(answer.status)
            except Exception as exc:  # every failure counts, whatever it is
                failures.append(repr(exc))
            time.sleep(0.02)

    workers = [threading.Thread(target=load) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1)
        assert_ok(proxy.play())
        time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    print("certificate rotation: %d requests over HTTPS, %d failed" % (len(served), len(failures)))
    assert not failures, failures[:5]
    assert served_serial(proxy.https_port, ca) == proxy.pair.serial != old.serial
    assert old.serial in served and served[-1] == proxy.pair.serial
    assert proxy.container_id() == before, "a new certificate must reload the proxy, not recreate it"
    files = list((proxy.notes.state_dir / "proxy" / "conf" / "tls").glob("site-*.pem"))
    assert len(files) == 1, "the old certificate's file stays: %s" % files


def test_maintenance_mode_answers_503_with_the_page_but_the_health_path(proxy):
    result = proxy.maintenance("on", "-e", json.dumps({"message": "Back at 14:00 <UTC>"}))
    assert_ok(result)
    assert "Maintenance mode ON" in result.stdout
    for answer in (proxy.https("/api/notes/"), proxy.http("/")):
        assert answer.status == 503, answer
        assert "Back at 14:00 &lt;UTC&gt;" in answer.body and answer.headers["retry-after"] == "300"
    assert proxy.http("/proxy-health").status == 200
    # smart-deploy's own checks go past it with the map's token, which the app never sees
    tokens = [line.split()[0] for line in proxy.map_lines() if line.endswith(" bypass")]
    assert len(tokens) == 1 and "on 1" in proxy.map_lines(), len(proxy.map_lines())
    token = tokens[0]
    seen = proxy.echoed(proxy.https("/", headers={"X-Smart-Deploy-Bypass": token}))
    assert "x-smart-deploy-bypass" not in seen
    assert proxy.https("/", headers={"X-Smart-Deploy-Bypass": "guess"}).status == 503
    again = proxy.maintenance("on", "-e", json.dumps({"message": "Back at 14:00 <UTC>"}))
    assert_ok(again)
    assert "(already)" in again.stdout
    status = proxy.notes.playbook("status", "-e", "@%s" % proxy.vars_file)
    assert_ok(status)
    said = " ".join(status.stdout.split())
    assert "maintenance: ON since " in said and " by pytest: Back at 14:00 <UTC>" in said
    assert "https: on 127.0.0.1:%d, certificate CN=localhost, valid until " % proxy.https_port in said
    assert "maintenance on by pytest" in said  # the history's newest events


def test_maintenance_mode_survives_a_restart_and_a_reload_of_the_proxy(proxy):
    assert run(["docker", "restart", proxy.container]).returncode == 0
    for _ in range(100):  # the proxy starts again: connections are refused or reset for a moment
        try:
            if proxy.http("/proxy-health", timeout=2).status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert proxy.https("/").status == 503
    before = proxy.container_id()
    assert_ok(proxy.play(smart_deploy_hsts_max_age=900))  # a changed setting: a hitless reload
    assert proxy.container_id() == before
    answer = proxy.https("/")
    assert answer.status == 503 and answer.headers["strict-transport-security"] == "max-age=900"


def test_maintenance_mode_serves_the_apps_own_page_then_ends(proxy):
    page = proxy.notes.workdir / "maintenance.html"
    page.write_text("<!DOCTYPE html><title>notes</title><p>Notes are being moved.</p>\n")
    assert_ok(proxy.maintenance("on", "-e", "proxy_maintenance_page=%s" % page))
    assert "Notes are being moved." in proxy.https("/").body
    result = proxy.maintenance("off")
    assert_ok(result)
    assert "Maintenance mode OFF" in result.stdout
    assert proxy.echoed(proxy.https("/"))["x-forwarded-proto"] == "https"
    events = [e for e in proxy.notes.releases().get("events", []) if e["kind"] == "maintenance"]
    assert [e["state"] for e in events] == ["on", "on", "off"], events
    assert events[0]["by"] == "pytest" and events[0]["message"] == "Back at 14:00 <UTC>" and events[0]["at"]


def test_maintenance_needs_on_or_off(proxy):
    result = proxy.notes.playbook("maintenance", "-e", "@%s" % proxy.vars_file, "-e", "maintenance=maybe")
    assert_failed(result)
    assert "maintenance must be on or off, got 'maybe'" in result.stdout
