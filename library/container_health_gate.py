#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_health_gate
short_description: Wait until new containers run and answer their health URL, or fail at once with their last log lines
description:
  - Polls, every O(interval) seconds, the Docker engine's state of every container of O(containers) and, for
    those with a O(containers[].url), that URL; for those with a O(containers[].command), that command inside
    the container. Succeeds when every container runs, Docker does not call it unhealthy, its URL answers 200
    itself or its command exits 0, and one with neither kept running for its O(containers[].settle) seconds.
  - Never follows a redirect - the container is asked directly, and an app that sends HTTP to HTTPS
    (C(SECURE_SSL_REDIRECT)) answers C(301) to C(https://...) at once, and the same at the timeout. A
    redirect fails the gate at once, saying where it pointed. O(headers) are sent with every request
    (C(X-Forwarded-Proto), as smart-deploy's proxy sends it; C(Host), the name the app serves).
  - A C(400) fails the gate at once too - Django answers it to a C(Host) header that is not in C(ALLOWED_HOSTS)
    (the container's address, without a C(Host) in O(headers)), which waiting does not change; the message says so.
  - Fails as soon as a container exited or is dead, is being restarted by its restart policy, was restarted
    since the gate started, or is C(unhealthy) according to its image's C(HEALTHCHECK) - a container that
    cannot start fails the gate within a poll or two instead of after O(wait_timeout). Fails too when
    O(wait_timeout) seconds went by first.
  - A failure's message names the container, says what happened (state, exit code) and holds its last
    O(log_lines) log lines (stdout and stderr, from the engine's logs endpoint), with every value of
    O(mask_values) replaced by C(********). The container's inspect - its configuration and environment,
    secrets included - is never returned.
  - Docker's own health status C(starting) does not hold back a container whose URL answers 200 (the URL
    is the gate - Docker's first probe only comes after the image's C(HEALTHCHECK) interval, 30 s by default).
    A container without a URL waits for C(healthy) when its image has a C(HEALTHCHECK), and passes once
    running otherwise.
  - Talks to the Docker engine through community.docker's API client, so O(docker_host), TLS and the
    C(DOCKER_*) environment variables work as with the community.docker modules.
  - Changes nothing. In check mode, reports what it would wait for (and the containers' state now) without waiting.
extends_documentation_fragment:
  - community.docker.docker.api_documentation
options:
  containers:
    description: The containers to gate.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Container name (or id).
        type: str
        required: true
      url:
        description:
          - Health URL (C(http://) or C(https://)) that must answer 200; empty for no HTTP check.
          - Asked directly, never through a proxy of the environment (C(http_proxy)), and no redirect is followed.
        type: str
        default: ""
      command:
        description:
          - A health command (argv) run inside the container (C(docker exec)) until it exits 0 - a worker's, which
            has no URL. Empty for none. One run at a time; a run still going on at the next look is waited for.
        type: list
        elements: str
        default: []
      settle:
        description:
          - Seconds a container with neither a URL nor a command must keep running (no exit, no restart) to pass -
            a worker that dies at start-up is seen dying. V(0) passes it once it runs.
        type: float
        default: 0
  wait_timeout:
    description: Seconds the gate waits at most for every container to pass (O(timeout) is the Docker API's, per request).
    type: float
    default: 60
  interval:
    description: Seconds between two looks at the containers.
    type: float
    default: 0.5
  headers:
    description:
      - Headers of every request to a health URL, such as C(X-Forwarded-Proto - https) for an app that redirects plain
        HTTP (Django's C(SECURE_SSL_REDIRECT) behind C(SECURE_PROXY_SSL_HEADER)) when the proxy in front terminates HTTPS,
        or C(Host - app.example.com) for an app whose C(ALLOWED_HOSTS) holds only its own names.
    type: dict
    default: {}
  http_timeout:
    description: Seconds one request to a health URL may take (at most what is left of O(wait_timeout)).
    type: float
    default: 2
  log_lines:
    description: Log lines of a failed container shown in the failure message; V(0) shows none.
    type: int
    default: 30
  mask_values:
    description:
      - Secrets to mask out of everything the module returns, its log lines first (a crashing app may print
        its configuration). Each is also masked URL-quoted. Values shorter than 4 characters are ignored.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Reports what it would wait for and the containers' state now; does not wait or request the URLs.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Read-only.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Wait until the new containers run and answer their health path
  container_health_gate:
    containers:
      - name: shop-web-4f2a91c0d3e8-1a2b3c4d
        url: http://172.18.0.5:8000/api/health/
      - name: shop-frontend-4f2a91c0d3e8
        url: http://172.18.0.6:80/healthz
      - name: shop-worker-4f2a91c0d3e8-1a2b3c4d-1
        settle: 5
      - name: shop-celery-4f2a91c0d3e8-1a2b3c4d-1
        command: [celery, -A, shop, inspect, ping, -d, "celery@$HOSTNAME"]
    headers:
      X-Forwarded-Proto: https
      Host: app.example.com
    wait_timeout: 60
    interval: 0.5
    mask_values: "{{ smart_deploy_secret_values }}"
  register: gate
"""

RETURN = r"""
containers:
  description: Each gated container, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    url:
      description: Its health URL (empty when none).
      type: str
    state:
      description: Its state at the last look (C(running), C(restarting), C(exited), ... C(absent)).
      type: str
    health:
      description: Docker's health status (C(starting), C(healthy), C(unhealthy)), null when its image has no C(HEALTHCHECK).
      type: str
    seconds:
      description: Seconds from the start of the gate until it passed; null when it did not (or in check mode).
      type: float
    answer:
      description: >-
        What its health URL answered last (C(HTTP 200), C(HTTP 503), C(connection refused), C(answered 301 to https://...),
        C(answered 400 (Bad Request) to Host: ...)),
        or what its health command did (C(health command exited 1)).
      type: str
  sample:
    - {name: shop-web-4f2a91c0d3e8-1a2b3c4d, url: "http://172.18.0.5:8000/api/health/", state: running, health: starting,
       seconds: 2.1, answer: HTTP 200}
waited:
  description: Seconds from the start of the gate to its end (success or failure); 0 in check mode.
  returned: always
  type: float
  sample: 2.1
failed_containers:
  description: Names of the containers that failed the gate.
  returned: failure
  type: list
  elements: str
timed_out:
  description: Whether the gate gave up after O(wait_timeout) seconds (rather than seeing a container fail).
  returned: always
  type: bool
"""

import socket
import time
import traceback
import urllib.error
import urllib.request
from urllib.parse import quote, urljoin, urlsplit

from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.smart_deploy.health_gate import engine_state, failure_message, last_lines, run_gate
from ansible_collections.community.docker.plugins.module_utils._api.errors import DockerException, NotFound
from ansible_collections.community.docker.plugins.module_utils.common_api import AnsibleDockerClient, RequestException


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer of its own: never followed (off the container, to https://, it would only time out)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# health URLs are container addresses on the app's network: never through a proxy of the environment, no redirect followed
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def probe(url, seconds, headers=None):
    """(answered 200, what it answered, final) for a GET of ``url`` within ``seconds``; final: a redirect or a 400
    (Django's answer to a Host header it does not allow), which will not change by waiting. Nothing of the body is kept."""
    try:
        with _OPENER.open(urllib.request.Request(url, method="GET", headers=dict(headers or {})), timeout=seconds) as response:
            return response.status == 200, "HTTP %d" % response.status, False
    except urllib.error.HTTPError as exc:
        location = exc.headers.get("Location") if exc.headers is not None else None
        exc.close()
        if 300 <= exc.code < 400:
            return False, redirect_words(exc.code, location, url), True
        if exc.code == 400:
            return False, bad_request_words(url, headers), True
        return False, "HTTP %d" % exc.code
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            return False, "connection refused"
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return False, "no answer within %.1f s" % seconds
        return False, "cannot connect: %s" % to_native(reason)
    except (socket.timeout, TimeoutError):  # noqa: UP041 - two classes before Python 3.10 (the target's Python may be 3.8)
        return False, "no answer within %.1f s" % seconds
    except (OSError, ValueError) as exc:  # a reset connection, a malformed answer
        return False, "cannot connect: %s" % to_native(exc)


def redirect_words(code, location, url):
    """What a redirect of the health URL says, and what to do about it."""
    if not location:
        return "answered %d (a redirect without a Location)" % code
    target = urljoin(url, location)
    words = "answered %d to %s: the gate asks the container directly and follows no redirect - its health path must answer 200 itself" % (
        code,
        target,
    )
    if target.startswith("https://") and url.startswith("http://"):
        words += (
            " (an app that redirects HTTP to HTTPS, SECURE_SSL_REDIRECT, answers a request marked https: the gate sends the "
            "X-Forwarded-Proto of release_health_forwarded_proto, and Django trusts it with SECURE_PROXY_SSL_HEADER; or exempt "
            "the health path with SECURE_REDIRECT_EXEMPT)"
        )
    return words


def bad_request_words(url, headers=None):
    """What a 400 of the health URL says: with Django, the Host header is not in ALLOWED_HOSTS - it will not change by waiting."""
    given = {str(k).lower(): v for k, v in (headers or {}).items()}.get("host")
    if given:
        return (
            "answered 400 (Bad Request) to Host: %s: Django refuses a Host header that is not in ALLOWED_HOSTS (DisallowedHost) - "
            "is %s in the app's ALLOWED_HOSTS? The gate and the endpoint checks send smart_deploy_server_name as the Host header"
            % (given, given)
        )
    return (
        "answered 400 (Bad Request) to Host: %s: Django refuses the Host header when it is not in ALLOWED_HOSTS (DisallowedHost) - "
        "set smart_deploy_server_name to a name in the app's ALLOWED_HOSTS (the gate and the endpoint checks send it as the Host "
        "header)" % urlsplit(url).netloc
    )


class Engine:
    """Reads a container's state and logs from the Docker engine; keeps nothing of its inspect but engine_state."""

    def __init__(self, client):
        self.client = client
        self.tty = {}

    def look(self, name):
        try:
            inspect = self.client.get_json("/containers/{0}/json", name)
        except NotFound:
            return None
        except (DockerException, RequestException) as exc:
            self.client.fail("cannot read the state of container %s from the Docker engine: %s" % (name, to_native(exc)))
        state = engine_state(inspect)
        self.tty[name] = state["tty"]
        return state

    def logs(self, name, count):
        """(its last ``count`` log lines, why they cannot be read or '')."""
        if count <= 0:
            return [], ""
        try:
            # the engine's logs endpoint, as community.docker's docker_container reads a container's output
            params = {"stdout": 1, "stderr": 1, "timestamps": 0, "follow": 0, "tail": count}
            response = self.client._get(self.client._url("/containers/{0}/logs", name), params=params)
            raw = self.client._get_result_tty(False, response, self.tty.get(name, False))
        except NotFound:
            return [], "the container is gone"
        except (DockerException, RequestException) as exc:
            return [], to_native(exc)
        return last_lines(to_text(raw, errors="surrogate_or_replace"), count), ""


class Execs:
    """A worker's health command run inside its container (the engine's exec endpoints, as community.docker's
    docker_container_exec does), detached: the gate goes on looking at the others while it runs, and reads its
    exit code at the next look. One run at a time per container."""

    def __init__(self, client):
        self.client = client
        self.running = {}
        self.last = {}

    def __call__(self, name, command, seconds):
        """(exited 0, what it did) - starts a run when none is going on, else reads the one that is."""
        current = self.running.get(name)
        if current is not None:
            info = self.client.get_json("/exec/{0}/json", current)
            if info.get("Running"):
                return False, self.last.get(name, "health command running")
            del self.running[name]
            code = info.get("ExitCode")
            if code == 0:
                return True, "health command exited 0"
            self.last[name] = "health command exited %s" % code
            return False, self.last[name]
        try:
            created = self.client.post_json_to_json(
                "/containers/{0}/exec", name, data={"Cmd": list(command), "AttachStdout": False, "AttachStderr": False}
            )
            self.client.post_json_to_text("/exec/{0}/start", created["Id"], data={"Detach": True, "Tty": False})
        except NotFound:
            return False, "the container is gone"
        except (DockerException, RequestException) as exc:  # the command cannot start (not found in the image...)
            self.last[name] = "health command cannot run: %s" % to_native(exc)
            return False, self.last[name]
        self.running[name] = created["Id"]
        return False, self.last.get(name, "health command started")


def url_problem(url):
    """Why ``url`` cannot be a health URL, or None. An address-less URL (http://:8000/...) is allowed: a
    container that exited at once has no address, and the gate must still see it fail and show its logs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    return None


def main():
    client = AnsibleDockerClient(
        argument_spec=dict(
            containers=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    url=dict(type="str", default=""),
                    command=dict(type="list", elements="str", default=[]),
                    settle=dict(type="float", default=0),
                ),
            ),
            headers=dict(type="dict", default={}),
            wait_timeout=dict(type="float", default=60),
            interval=dict(type="float", default=0.5),
            http_timeout=dict(type="float", default=2),
            log_lines=dict(type="int", default=30),
            mask_values=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    module = client.module
    params = module.params
    # secrets are masked from everything returned, also as they appear inside a URL (AnsibleModule masks no_log values)
    for value in params["mask_values"]:
        if value and len(value) >= 4:
            module.no_log_values.update((value, quote(value, safe=""), quote(value)))
    containers = params["containers"]
    names = [c["name"] for c in containers]
    problems = []
    if not containers:
        problems.append("containers is empty: nothing to gate")
    if len(set(names)) != len(names):
        problems.append("containers names a container twice: %s" % ", ".join(sorted({n for n in names if names.count(n) > 1})))
    for container in containers:
        if not container["name"].strip():
            problems.append("containers[].name is empty")
        if container["url"] and url_problem(container["url"]):
            problems.append("url of %s %s, got %r" % (container["name"], url_problem(container["url"]), container["url"]))
        if container["url"] and container["command"]:
            problems.append("%s has both a url and a command: give one check" % container["name"])
        if container["settle"] < 0:
            problems.append("settle of %s must be 0 or more seconds, got %s" % (container["name"], container["settle"]))
    if params["wait_timeout"] <= 0:
        problems.append("wait_timeout must be above 0 seconds, got %s" % params["wait_timeout"])
    if not 0 < params["interval"] <= 60:
        problems.append("interval must be above 0 and at most 60 seconds, got %s" % params["interval"])
    if params["http_timeout"] <= 0:
        problems.append("http_timeout must be above 0 seconds, got %s" % params["http_timeout"])
    if params["log_lines"] < 0:
        problems.append("log_lines must be 0 or more, got %d" % params["log_lines"])
    if problems:
        module.fail_json(msg="; ".join(problems), containers=[], waited=0, timed_out=False)

    engine = Engine(client)
    if module.check_mode:
        report = []
        for container in containers:
            state = engine.look(container["name"])
            report.append({"name": container["name"], "url": container["url"], "state": state["status"] if state else "absent",
                           "health": state["health"] if state else None, "seconds": None, "answer": ""})  # fmt: skip
        module.exit_json(
            changed=False,
            containers=report,
            waited=0,
            timed_out=False,
            msg="check mode: would wait up to %s s for %s to run, answer %d health URL(s) and pass %d health command(s)"
            % (
                params["wait_timeout"],
                ", ".join(names),
                sum(1 for c in containers if c["url"]),
                sum(1 for c in containers if c["command"]),
            ),
        )

    try:
        headers = {str(k): str(v) for k, v in params["headers"].items()}
        gate = run_gate(containers, engine.look, lambda url, seconds: probe(url, seconds, headers), time.monotonic, time.sleep,
                        params["wait_timeout"], params["interval"], params["http_timeout"], execute=Execs(client))  # fmt: skip
    except (DockerException, RequestException) as exc:
        client.fail("health gate: the Docker engine failed: %s" % to_native(exc), exception=traceback.format_exc())
    if gate["ok"]:
        module.exit_json(changed=False, containers=gate["containers"], waited=gate["waited"], timed_out=False)
    messages = []
    for failed in gate["failed"]:
        logs, log_error = engine.logs(failed["name"], params["log_lines"])
        messages.append(failure_message(failed, gate["waited"], gate["timed_out"], params["wait_timeout"], logs, log_error))
    module.fail_json(
        msg="\n".join(messages),
        containers=gate["containers"],
        waited=gate["waited"],
        timed_out=gate["timed_out"],
        failed_containers=[f["name"] for f in gate["failed"]],
    )


if __name__ == "__main__":
    main()
