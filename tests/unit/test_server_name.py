"""The host name the app serves (smart_deploy_server_name, README "Health gate and ALLOWED_HOSTS"): a name as a Host
header carries it, or empty, checked before anything changes (module_utils/smart_deploy/inputs.py)."""

import pytest
from ansible.module_utils.smart_deploy.inputs import app_problems, server_name_problems

from tests.unit.test_inputs import GOOD


@pytest.mark.parametrize("name", ["", None, "app.example.com", "localhost", "www.shop-1.example.co.uk", "192.0.2.7", "APP.example.com"])
def test_a_host_name_or_nothing_is_fine(name):
    assert server_name_problems({"smart_deploy_server_name": name}) == []
    assert app_problems(dict(GOOD, smart_deploy_server_name=name)) == []


@pytest.mark.parametrize(
    "name",
    [
        "https://app.example.com",
        "app.example.com:443",
        "app.example.com/",
        ".example.com",
        "*.example.com",
        "app example.com",
        "-app.example.com",
        "app..example.com",
        "a" * 64 + ".example.com",
        42,
        ["app.example.com"],
    ],  # fmt: skip
)
def test_anything_else_is_named_with_what_is_expected(name):
    (problem,) = server_name_problems({"smart_deploy_server_name": name})
    assert problem.startswith("smart_deploy_server_name (the Host header of the health gate and the endpoint checks) must be a host name")
    assert "no scheme, no port, no path, no wildcard" in problem
    assert problem in app_problems(dict(GOOD, smart_deploy_server_name=name))
