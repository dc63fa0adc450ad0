"""listen_address: the proxy's address and port are checked before the old proxy is replaced."""

import socket


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_free_port_on_loopback_is_free(run_module):
    result = run_module("listen_address", {"bind": "127.0.0.1", "port": free_port()})
    assert not result.get("failed") and result["state"] == "free"


def test_a_port_held_by_another_program_is_refused(run_module):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_module("listen_address", {"bind": "127.0.0.1", "port": port, "owner": "shop-proxy"})
    assert result["failed"] and "127.0.0.1:%d is already in use by another program" % port in result["msg"]
    assert "smart_deploy_http_port" in result["msg"]


def test_an_address_the_host_does_not_have_is_refused(run_module):
    result = run_module("listen_address", {"bind": "192.0.2.77", "port": free_port()})
    assert result["failed"] and "192.0.2.77 is not an address of this host" in result["msg"]
    assert result["msg"].startswith("smart_deploy_http_bind")


def test_not_an_address_at_all_is_refused(run_module):
    result = run_module("listen_address", {"bind": "localhost:80", "port": 8080})
    assert result["failed"] and "is not an IP address" in result["msg"]


def test_a_port_published_on_another_address_is_no_conflict():
    from library.listen_address import overlaps, published_on  # noqa: PLC0415 - the module's pure helpers

    ports = "127.0.0.11:8080->80/tcp, 127.0.0.12:9000->80/tcp"
    assert published_on(ports, 8080) == ["127.0.0.11"]
    assert published_on("0.0.0.0:8080->80/tcp, :::8080->80/tcp", 8080) == ["0.0.0.0", "::"]
    assert published_on("[::1]:8080->80/tcp", 8080) == ["::1"]
    # two hosts sharing one engine, each on its own loopback address: no conflict; the same address, or every address: one
    assert not overlaps("127.0.0.12", "127.0.0.11")
    assert overlaps("127.0.0.11", "127.0.0.11") and overlaps("0.0.0.0", "127.0.0.11") and overlaps("127.0.0.11", "::")
