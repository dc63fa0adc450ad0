"""The health gate's request to a container's health URL (library/container_health_gate.py, ``probe``), against a
real HTTP server on 127.0.0.1: it follows no redirect - an app that sends HTTP to HTTPS (SECURE_SSL_REDIRECT) answers
301 to https://... at once, and the gate says so at once instead of "no answer" after its timeout - and it sends the
X-Forwarded-Proto it is given, as smart-deploy's proxy does."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import load_module

gate = load_module("container_health_gate")


class App(BaseHTTPRequestHandler):
    """Django with SECURE_SSL_REDIRECT and SECURE_PROXY_SSL_HEADER, in a few lines: /health redirects a request that did
    not come over https (by X-Forwarded-Proto) to https://; /moved redirects to another path of its own."""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/health" and self.headers.get("X-Forwarded-Proto") != "https":
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
