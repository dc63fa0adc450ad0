"""smart-deploy-proxy (roles/proxy/files), the script that switches HAProxy's servers at run time: its
decisions, from HAProxy's own answers to the commands it sends. No HAProxy needed (the integration
tests switch a real one under load)."""

import importlib.machinery
import importlib.util

import pytest

from tests.conftest import ROOT

_loader = importlib.machinery.SourceFileLoader("smart_deploy_proxy", str(ROOT / "roles" / "proxy" / "files" / "smart-deploy-proxy"))
_spec = importlib.util.spec_from_loader("smart_deploy_proxy", _loader)
proxy = importlib.util.module_from_spec(_spec)
_loader.exec_module(proxy)


def slot(addr, port, maint):
    return {"addr": addr, "port": port, "maint": maint}


def test_a_switch_fills_the_slot_in_maintenance_then_retires_the_live_one():
    state = {"backend": {"a": slot("172.18.0.5", 8000, False), "b": slot("127.0.0.1", 9, True)}}
    assert proxy.plan_switch(state, {"backend": "172.18.0.9:8000"}) == [
        "set server backend/b addr 172.18.0.9 port 8000",
        "set server backend/b state ready",
        "set server backend/a state maint",
    ]


def test_a_switch_names_the_container_first_so_the_resolver_follows_it_not_the_slots_previous_one():
    state = {"backend": {"a": slot("172.18.0.5", 8000, True), "b": slot("172.18.0.9", 8000, False)}}
    assert proxy.plan_switch(state, {"backend": "172.18.0.12:8000,shop-web-abc"}) == [
        "set server backend/a fqdn shop-web-abc",
        "set server backend/a addr 172.18.0.12 port 8000",
        "set server backend/a state ready",
        "set server backend/b state maint",
    ]


def test_the_next_switch_goes_back_to_the_other_slot():
    state = {"backend": {"a": slot("172.18.0.5", 8000, True), "b": slot("172.18.0.9", 8000, False)}}
    assert proxy.plan_switch(state, {"backend": "172.18.0.12:8000"})[0] == "set server backend/a addr 172.18.0.12 port 8000"


def test_a_backend_already_served_by_its_target_needs_nothing():
    state = {"backend": {"a": slot("172.18.0.5", 8000, False), "b": slot("127.0.0.1", 9, True)}}
    assert proxy.plan_switch(state, {"backend": "172.18.0.5:8000"}) == []


def test_a_second_live_slot_is_retired_when_the_target_already_serves():
    state = {"backend": {"a": slot("172.18.0.5", 8000, False), "b": slot("172.18.0.9", 8000, False)}}
    assert proxy.plan_switch(state, {"backend": "172.18.0.9:8000"}) == ["set server backend/a state maint"]


def test_backends_switch_in_a_stable_order():
    state = {name: {"a": slot("10.0.0.%d" % i, 80, False), "b": slot("127.0.0.1", 9, True)} for i, name in enumerate(("web", "frontend"))}
    plan = proxy.plan_switch(state, {"web": "10.0.0.7:8000", "frontend": "10.0.0.8:80"})
    assert [line.split()[2] for line in plan] == ["frontend/b", "frontend/b", "frontend/a", "web/b", "web/b", "web/a"]


@pytest.mark.parametrize(
    "state, targets, says",
    [
        ({}, {"backend": "10.0.0.1:80"}, "the proxy has no backend 'backend'"),
        ({"backend": {"a": slot("1.1.1.1", 80, False)}}, {"backend": "10.0.0.1"}, "must be address:port"),
        (
            {"backend": {"a": slot("1.1.1.1", 80, False), "b": slot("1.1.1.2", 80, False)}},
            {"backend": "10.0.0.1:80"},
            "no slot in maintenance to switch into",
        ),
    ],
)
def test_impossible_switches_are_refused_before_any_command(state, targets, says):
    with pytest.raises(proxy.ProxyError, match=says):
        proxy.plan_switch(state, targets)


def test_maintenance_is_what_haproxy_counts_as_maintenance():
    # 0x04 ("disabled" in the configuration) stays set after a runtime "state ready": not maintenance
    assert [bool(bits & proxy.MAINT_BITS) for bits in (0, 1, 2, 4, 8, 0x20, 0x40)] == [False, True, True, False, False, True, False]


def test_old_workers_of_a_reload_are_read_from_the_masters_show_proc():
    show_proc = (
        "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
        "1               master          2 [failed: 0]   0d00h01m08s     2.6.12\n"
        "# workers\n"
        "94              worker          0               0d00h00m03s     2.6.12\n"
        "# old workers\n"
        "72              worker          [was: 1]        0d00h00m40s     2.6.12\n"
        "49              worker          [was: 2]        0d00h01m00s     2.6.12\n"
        "# programs\n"
    )
    assert proxy.old_workers(show_proc) == [72, 49]
    assert proxy.old_workers(show_proc.replace("# old workers\n", "")) == []


MAP = "/etc/haproxy/smart-deploy/maintenance.map"


def test_the_maintenance_map_file_and_the_running_map_are_read_alike():
    assert proxy.map_entries("on 1\n# a comment\n\nTOKEN bypass\n") == [("on", "1"), ("TOKEN", "bypass")]
    shown = "0x55d1c8a0 on 1\n0x55d1c8b0 TOKEN bypass\n\n"  # HAProxy's `show map <file>`
    assert proxy.runtime_entries(shown) == [("on", "1"), ("TOKEN", "bypass")]


def test_maintenance_on_replaces_the_running_map_in_one_committed_version():
    commands = proxy.plan_map_sync(MAP, [("TOKEN", "bypass")], [("on", "1"), ("TOKEN", "bypass")], "3")
    assert commands == ["add map @3 %s on 1" % MAP, "add map @3 %s TOKEN bypass" % MAP, "commit map @3 %s" % MAP]


def test_maintenance_off_commits_the_map_without_on_and_a_map_as_wanted_needs_nothing():
    assert proxy.plan_map_sync(MAP, [("on", "1"), ("T", "bypass")], [("T", "bypass")], "4") == [
        "add map @4 %s T bypass" % MAP,
        "commit map @4 %s" % MAP,
    ]
    assert proxy.plan_map_sync(MAP, [("T", "bypass"), ("on", "1")], [("on", "1"), ("T", "bypass")], "5") == []
