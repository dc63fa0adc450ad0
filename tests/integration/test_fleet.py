"""A fleet over SSH (tests/integration/fleet.py): three app hosts behind smart-deploy's load balancer, one database
host, all reached by ansible_connection ssh with host keys checked. One fleet and one deployment for the module;
the tests run in order, each leaving the fleet as the next expects."""

from __future__ import annotations

import pytest

from tests.integration.conftest import assert_ok
from tests.integration.fleet_deploy import fleet_deployment


@pytest.fixture(scope="module")
def fleet_shop(tmp_path_factory):
    with fleet_deployment(tmp_path_factory.mktemp("fleet-shop"), app_hosts=3) as deployment:
        deployment.base = deployment.commit("release 1")
        yield deployment


def test_first_deploy_reaches_every_host_behind_the_load_balancer(fleet_shop):
    result = fleet_shop.deploy()
    assert_ok(result)
    release = fleet_shop.base[:12]
    assert [fleet_shop.live(h) for h in fleet_shop.hosts] == [release] * 3
    status, body = fleet_shop.http("/api/health/")
    assert status == 200 and '"database": "reachable"' in body, body
    assert {h: s["status"] for h, s in fleet_shop.lb_state().items()} == {h: "UP" for h in fleet_shop.hosts}
