"""The health gate's request to a container's health URL (library/container_health_gate.py, ``probe``), against a
real HTTP server on 127.0.0.1: it follows no redirect - an app that sends HTTP to HTTPS (SECURE_SSL_REDIRECT) answers
301 to https://... at once, and the gate says so at once instead of "no answer" after its timeout - and it sends the
X-Forwarded-Proto it is given, as smart-deploy's proxy does. An app whose ALLOWED_HOSTS holds only its domain answers
400 to the container's address: said at once too, naming smart_deploy_server_name, whose value the gate sends as Host."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import load_module

gate = load_module("container_health_gate")


class App(BaseHTTPRequestHandler):
    """Django with SECURE_SSL_REDIRECT and SECURE_PROXY_SSL_HEADER, in a few lines: /health redirects a request that did
    not come over https (by X-Forwarded-Proto) to https://; /moved redirects to another path of its own; /strict is an
    app with ALLOWED_HOSTS = ["app.example.com"] (DisallowedHost: 400 to any other Host, port or not)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/strict":
            self.send_response(200 if self.headers.get("Host", "").split(":")[0] == "app.example.com" else 400)
        elif self.path == "/health" and self.headers.get("X-Forwarded-Proto") != "https":
            self.send_response(301)
            self.send_header("Location", "https://%s/health" % self.headers["Host"])
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/health/")
        else:
            self.send_response({"/health": 200, "/down": 503}.get(self.path, 404))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_redirect_to_https_is_said_at_once_and_is_final(app):
    started = time.monotonic()
    ok, answer, final = gate.probe(app + "/health", 1.1)
    assert time.monotonic() - started < 0.5
    assert (ok, final) == (False, True)
    assert answer.startswith("answered 301 to https://%s/health: the gate asks the container directly" % app[len("http://") :])
    assert "SECURE_SSL_REDIRECT" in answer and "release_health_forwarded_proto" in answer


def test_a_request_marked_https_by_x_forwarded_proto_is_answered(app):
    assert gate.probe(app + "/health", 1.1, {"X-Forwarded-Proto": "https"}) == (True, "HTTP 200", False)


def test_a_redirect_elsewhere_on_the_app_names_where_without_the_https_advice(app):
    ok, answer, final = gate.probe(app + "/moved", 1.1, {"X-Forwarded-Proto": "https"})
    assert (ok, final) == (False, True) and answer.startswith("answered 302 to %s/health/: " % app)
    assert "SECURE_SSL_REDIRECT" not in answer


def test_other_answers_are_not_final(app):
    assert gate.probe(app + "/down", 1.1) == (False, "HTTP 503")
    closed = app.rsplit(":", 1)[0] + ":1"
    assert gate.probe(closed + "/health", 1.1) == (False, "connection refused")


def test_a_host_the_app_does_not_allow_is_said_at_once_naming_the_setting(app):
    started = time.monotonic()
    ok, answer, final = gate.probe(app + "/strict", 1.1, {"X-Forwarded-Proto": "http"})
    assert time.monotonic() - started < 0.5
    assert (ok, final) == (False, True)
    assert answer.startswith("answered 400 (Bad Request) to Host: %s: Django refuses the Host header" % app[len("http://") :])
    assert "set smart_deploy_server_name to a name in the app's ALLOWED_HOSTS" in answer


def test_the_server_name_is_sent_as_host_and_named_when_the_app_refuses_it_too(app):
    assert gate.probe(app + "/strict", 1.1, {"Host": "app.example.com"}) == (True, "HTTP 200", False)
    ok, answer, final = gate.probe(app + "/strict", 1.1, {"Host": "www.example.com"})
    assert (ok, final) == (False, True)
    assert answer.startswith("answered 400 (Bad Request) to Host: www.example.com: ")
    assert "is www.example.com in the app's ALLOWED_HOSTS" in answer
