"""Steady HTTP load on a deployment, recording every request that failed.

Used by the zero-downtime test (a short run during one deploy) and by bench/zero_downtime.py (long
runs, several scenarios). Loopback only: the base URL must be http://127.x.y.z:<port> (the test fleet's load
balancer listens on a loopback address of its own).

The mix is what a shop's users send while a release switches under them:

- ``keepalive``: GET /api/products/ on one persistent connection per worker, reused without checking
  (http.client, like most HTTP client libraries): a proxy that closes an idle connection as the next
  request is written shows up as RemoteDisconnected or ConnectionResetError;
- ``fresh``: GET /api/products/ on a new connection per request (requests queued in an accept backlog);
- ``post``: POST /api/cart/<id>/items/ (a write, never retried: retrying a POST could add twice);
- ``slow``: GET /api/slow/?seconds=S, a request still in flight when the switch happens.

Nothing retries. A request fails when it raises (connection refused, reset, closed, timeout) or answers
a status other than the one expected.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

KINDS = ("keepalive", "fresh", "post", "slow")


@dataclass
class Failure:
    at: float  # seconds since the load started
    kind: str
    error: str


@dataclass
class Result:
    seconds: float = 0.0
    sent: dict = field(default_factory=lambda: {kind: 0 for kind in KINDS})
    failures: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def failed(self) -> int:
        return len(self.failures)

    def describe(self) -> str:
        head = "%d requests in %.1f s (%s), %d failed" % (
            self.total,
            self.seconds,
            ", ".join("%s %d" % (kind, self.sent[kind]) for kind in KINDS),
            self.failed,
        )
        details = ["  %.2f s %s: %s" % (f.at, f.kind, f.error) for f in self.failures[:20]]
        return "\n".join([head, *details])


class Load:
    """Sends ``rate`` requests per second, spread over ``workers`` threads, until stop()."""

    def __init__(self, base_url: str, rate: float = 60, workers: int = 8, slow_seconds: float = 3.0, timeout: float = 30.0):
        parts = urllib.parse.urlsplit(base_url)
        if parts.hostname != "localhost" and not ipaddress.ip_address(parts.hostname or "0.0.0.0").is_loopback:
            raise ValueError("load is sent to loopback addresses only (127.0.0.0/8, ::1), not %r" % base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.rate, self.workers, self.slow_seconds, self.timeout = rate, workers, slow_seconds, timeout
        self.result = Result()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._cart = None

    # --- one request of each kind ---------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    @staticmethod
    def _exchange(conn, method, path, body=None, expect=200):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != expect:
            raise RuntimeError("HTTP %d %s" % (response.status, payload[:120].decode("utf-8", "replace").strip()))
        return payload

    def _new_cart(self) -> int:
        conn = self._connection()
        try:
            return json.loads(self._exchange(conn, "POST", "/api/cart/", body="{}", expect=201))["id"]
        finally:
            conn.close()

    def _request(self, kind, conn):
        """One request of ``kind``; returns the connection to use next (None: open a new one)."""
        if kind == "keepalive":
            conn = conn or self._connection()
            self._exchange(conn, "GET", "/api/products/")
            return conn
        fresh = self._connection()
        try:
            if kind == "fresh":
                self._exchange(fresh, "GET", "/api/products/")
            elif kind == "post":
                item = json.dumps({"sku": "TEA-001", "quantity": 1})
                self._exchange(fresh, "POST", "/api/cart/%d/items/" % self._cart, body=item, expect=201)
            else:
                self._exchange(fresh, "GET", "/api/slow/?seconds=%s" % self.slow_seconds)
        finally:
            fresh.close()
        return None

    # --- workers ----------------------------------------------------------------------------------
    def _worker(self, index: int):
        # half the workers keep their connection alive, the others open one per request; one in
        # eight sends POSTs, and each worker sends a slow request now and then
        kinds = ["keepalive" if index % 2 == 0 else "fresh"]
        if index % 8 == 1:
            kinds = ["post"]
        interval = self.workers / self.rate
        due = self._started + interval * index / self.workers
        conn = None
        count = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if due > now:
                if self._stop.wait(due - now):
                    break
            due += interval
            count += 1
            kind = "slow" if count % 40 == index % 40 and index % 8 == 3 else kinds[0]
            with self._lock:
                self.result.sent[kind] += 1
            try:
                if kind == "keepalive":
                    conn = self._request(kind, conn)
                else:
                    self._request(kind, None)
            except Exception as exc:  # noqa: BLE001 - every failure is what the load measures
                with self._lock:
                    self.result.failures.append(Failure(time.monotonic() - self._started, kind, "%s: %s" % (type(exc).__name__, exc)))
                if kind == "keepalive" and conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    def start(self) -> Load:
        self._cart = self._new_cart()
        self._started = time.monotonic()
        for index in range(self.workers):
            thread = threading.Thread(target=self._worker, args=(index,), daemon=True, name="load-%d" % index)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> Result:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
