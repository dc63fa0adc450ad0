"""The input rules of issue 20's accessories (smart_deploy_accessories), HTTPS at the proxy (smart_deploy_tls_*), one-off
commands (manage_*) and maintenance mode: each bad input is named, with what is expected; the private key never shows.
Certificates are made here by a CA of the test's own (tests/integration/tls.py) and read by community.crypto's filters,
as on the controller - nothing mocked."""

import datetime

import pytest
from ansible.module_utils.smart_deploy.inputs import (
    accessory_problems,
    logs_problems,
    maintenance_problems,
    manage_problems,
    problems_of,
    tls_problems,
    unknown_key_problems,
)

from tests.integration.tls import LocalCA, other_key_pem

CA = LocalCA()
GOOD_PAIR = CA.issue()
EXPIRED = CA.issue(valid_from_days=-20, valid_days=10)
NOT_YET = CA.issue(valid_from_days=3, valid_days=10)


def pem(kind: str, body: str) -> str:
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, body, kind)


def tls(pair=GOOD_PAIR, **change):
    values = {
        "smart_deploy_tls_certificate": pair.certificate,
        "smart_deploy_tls_key": pair.key,
        "smart_deploy_http_bind": "127.0.0.1",
        "smart_deploy_http_port": 8080,
        "smart_deploy_https_port": 8443,
        "smart_deploy_https_redirect": True,
        "smart_deploy_hsts_max_age": 31536000,
        "smart_deploy_trusted_proxies": ["10.0.0.0/8", "192.0.2.7"],
    }
    values.update(change)
    return values


# --- accessories --------------------------------------------------------------------------------------------------
REDIS_ALL_KEYS = {
    "maxmemory": "256mb",
    "maxmemory_policy": "allkeys-lru",
    "appendonly": "false",
    "image": "registry.example.com/redis:7.2",
    "password": "A-long-p@ss:word/42",
}


@pytest.mark.parametrize("wanted", [{}, None, {"redis": {}}, {"redis": None}, {"redis": REDIS_ALL_KEYS}])
def test_good_accessories_pass(wanted):
    assert accessory_problems(wanted, {"app_servers": ["app1"]}) == []


@pytest.mark.parametrize(
    "wanted, named",
    [
        ("redis", "smart_deploy_accessories must be a mapping of accessory -> settings, such as {redis: {}}, got 'redis' (a string)"),
        ({"rdis": {}}, "unknown accessory `rdis` in smart_deploy_accessories; did you mean `redis`? (known: redis)"),
        ({"memcached": {}}, "unknown accessory `memcached` in smart_deploy_accessories (known: redis)"),
        ({"redis": {"max_memory": "1gb"}}, "unknown key `max_memory` in smart_deploy_accessories.redis; did you mean `maxmemory`?"),
        ({"redis": {"volume": "x"}}, "unknown key `volume` in smart_deploy_accessories.redis (known: appendonly, image, maxmemory,"),
        ({"redis": []}, "smart_deploy_accessories.redis must be a mapping of settings ({} for the defaults), got [] (a list)"),
        ({"redis": {"image": "--privileged"}}, "smart_deploy_accessories.redis.image must be an image name"),
        ({"redis": {"maxmemory": "lots"}}, "smart_deploy_accessories.redis.maxmemory must be a size such as 256mb or 1gb"),
        ({"redis": {"maxmemory": True}}, "smart_deploy_accessories.redis.maxmemory must be a size"),
        ({"redis": {"maxmemory_policy": "lru"}}, "smart_deploy_accessories.redis.maxmemory_policy must be one of noeviction, allkeys-lru"),
        ({"redis": {"appendonly": "sometimes"}}, "smart_deploy_accessories.redis.appendonly must be true or false"),
        ({"redis": {"password": "short"}}, "smart_deploy_accessories.redis.password must be 16-512 printable characters"),
        ({"redis": {"password": 'with "quotes" in it, long enough'}}, "smart_deploy_accessories.redis.password must be"),
        (
            {"redis": {"password": 123456789012345678}},
            "smart_deploy_accessories.redis.password must be a string (quote it in YAML), got a number",
        ),
    ],
)
def test_each_bad_accessory_setting_is_named(wanted, named):
    problems = accessory_problems(wanted)
    assert len(problems) == 1 and named in problems[0], problems


def test_a_bad_password_is_never_shown():
    problems = accessory_problems({"redis": {"password": "secret with space"}})
    assert problems and not any("secret with space" in p for p in problems)


def test_a_fleet_cannot_have_an_accessory_on_one_of_its_hosts_yet():
    problems = accessory_problems({"redis": {}}, {"app_servers": ["app1", "app2"], "lb": ["lb1"]})
    assert len(problems) == 1 and "a fleet's app hosts cannot share an accessory" in problems[0]
    assert accessory_problems({"redis": {}}, {"app_servers": ["app1"], "lb": []}) == []


def test_the_nearest_known_key_is_named():
    assert unknown_key_problems("x.web", {"volume": 1, "port": 2}, ["volumes", "port", "command"]) == [
        "unknown key `volume` in x.web; did you mean `volumes`? (known: command, port, volumes)"
    ]


def test_logs_know_the_accessories_of_the_inventory():
    values = {"component": "redis", "smart_deploy_components": {"backend": {}}}
    assert "component must be one of backend, database, proxy, got 'redis'" in logs_problems(values)[0]
    assert logs_problems(dict(values, smart_deploy_accessories={"redis": {}})) == []


# --- HTTPS ----------------------------------------------------------------------------------------------------------
def test_a_good_certificate_and_its_key_pass():
    assert tls_problems(tls()) == []
    # a chain: the server's own certificate first, then the CA's
    assert tls_problems(tls(smart_deploy_tls_certificate=GOOD_PAIR.certificate + CA.pem)) == []


def test_no_certificate_is_no_https_and_needs_nothing_else():
    assert tls_problems({"smart_deploy_tls_certificate": "", "smart_deploy_tls_key": "", "smart_deploy_https_port": 8080}) == []


@pytest.mark.parametrize(
    "change, named",
    [
        ({"smart_deploy_tls_key": other_key_pem()}, "smart_deploy_tls_key does not match smart_deploy_tls_certificate (CN=localhost"),
        ({"smart_deploy_tls_certificate": "/etc/ssl/site.pem"}, "smart_deploy_tls_certificate is not PEM text (-----BEGIN CERTIFICATE"),
        ({"smart_deploy_tls_certificate": pem("CERTIFICATE", "bm90IGEgY2VydA==")}, "smart_deploy_tls_certificate is not a valid PEM"),
        ({"smart_deploy_tls_key": "not a key"}, "smart_deploy_tls_key is not PEM text (-----BEGIN PRIVATE KEY----- ...); the value is not"),
        ({"smart_deploy_tls_key": pem("PRIVATE KEY", "bm90IGEga2V5")}, "smart_deploy_tls_key is not a PEM private key that can be read"),
        ({"smart_deploy_tls_key": pem("ENCRYPTED PRIVATE KEY", "eHg=")}, "smart_deploy_tls_key is encrypted"),
        ({"smart_deploy_tls_key": ""}, "smart_deploy_tls_key is empty"),
        ({"smart_deploy_tls_certificate": GOOD_PAIR.certificate + GOOD_PAIR.key}, "holds a private key: the key goes into"),
        ({"smart_deploy_https_port": 8080}, "smart_deploy_https_port is 8080, the same port as smart_deploy_http_port on the same address"),
        ({"smart_deploy_https_port": 8080, "smart_deploy_https_bind": "0.0.0.0"}, "the same port as smart_deploy_http_port"),
        ({"smart_deploy_https_port": 70000}, "smart_deploy_https_port must be a port number 1-65535, got 70000"),
        ({"smart_deploy_https_bind": "example.com"}, "smart_deploy_https_bind must be an IP address"),
        ({"smart_deploy_https_redirect": "sometimes"}, "smart_deploy_https_redirect must be true or false"),
        ({"smart_deploy_hsts_max_age": -1}, "smart_deploy_hsts_max_age must be a whole number of seconds >= 0"),
        ({"smart_deploy_trusted_proxies": ["10.0.0.0/33"]}, "smart_deploy_trusted_proxies[0] must be a network such as 10.0.0.0/8"),
        ({"smart_deploy_trusted_proxies": "10.0.0.0/8"}, "smart_deploy_trusted_proxies must be a list of networks"),
    ],
)  # fmt: skip
def test_each_bad_https_setting_is_named(change, named):
    problems = tls_problems(tls(**change))
    assert len(problems) == 1 and named in problems[0], problems


def test_the_key_is_never_shown():
    key = other_key_pem()
    problems = tls_problems(tls(smart_deploy_tls_key=key)) + tls_problems(tls(smart_deploy_tls_key=key[:200]))
    body = key.splitlines()[1]
    assert problems and not any(body[:20] in p for p in problems)


def test_the_key_of_the_chains_second_certificate_says_to_put_the_servers_own_first():
    problems = tls_problems(tls(smart_deploy_tls_certificate=EXPIRED.certificate + GOOD_PAIR.certificate), dates=False)
    assert len(problems) == 1 and "it is the key of certificate 2 of the chain - put the server's own certificate first" in problems[0]


def test_an_expired_certificate_and_one_not_yet_valid_are_refused_with_their_dates():
    expired = tls_problems(tls(EXPIRED))
    assert len(expired) == 1 and expired[0].startswith("smart_deploy_tls_certificate expired on ") and "CN=localhost" in expired[0]
    not_yet = tls_problems(tls(NOT_YET))
    assert len(not_yet) == 1 and "smart_deploy_tls_certificate is not valid before " in not_yet[0]
    # a rollback's checks leave the dates out (tls_rollback): a rollback must go through with an expired certificate
    assert problems_of(tls(EXPIRED), ["tls_rollback"]) == [] and problems_of(tls(EXPIRED), ["tls"]) == expired
    # the dates are the certificate's, against the clock given
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    assert "expired on" in tls_problems(tls(), now=later)[0]


def test_all_problems_at_once():
    problems = tls_problems(tls(EXPIRED, smart_deploy_tls_key=other_key_pem(), smart_deploy_https_port=8080))
    assert [p.split(" ")[0] for p in problems] == ["smart_deploy_https_port", "smart_deploy_tls_key", "smart_deploy_tls_certificate"]


def test_https_settings_without_a_certificate_are_refused():
    problems = tls_problems({"smart_deploy_tls_certificate": "", "smart_deploy_tls_key": GOOD_PAIR.key, "smart_deploy_https_redirect": True,
                             "smart_deploy_hsts_max_age": 60})  # fmt: skip
    assert len(problems) == 3 and "smart_deploy_tls_key is set but smart_deploy_tls_certificate is empty" in problems[0]
    assert "smart_deploy_https_redirect needs HTTPS" in problems[1] and "smart_deploy_hsts_max_age needs HTTPS" in problems[2]


# --- manage and maintenance ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, named",
    [
        ({"manage_args": ["migrate", "--check"]}, None),
        ({"manage_args": ["shell", "-c", "print('{{ not templated }}')"], "manage_env": {"DJANGO_SUPERUSER_PASSWORD": "x"}}, None),
        ({}, "manage_args must be the arguments of manage.py as a list of strings"),
        ({"manage_args": []}, "manage_args must be the arguments of manage.py"),
        ({"manage_args": "migrate --check"}, "manage_args must be the arguments of manage.py as a list of strings"),
        ({"manage_args": ["migrate", 1]}, "manage_args must be the arguments of manage.py"),
        ({"manage_args": [" "]}, "manage_args must start with the name of a management command"),
        ({"manage_args": ["a\x00b"]}, "manage_args holds a NUL character"),
        ({"manage_args": ["check"], "manage_env": {"PIN": 1234}}, "manage_env.PIN is a number"),
        ({"manage_args": ["check"], "manage_lock": "perhaps"}, "manage_lock must be true or false"),
    ],
)
def test_manage_inputs(values, named):
    problems = manage_problems(values)
    assert problems == [] if named is None else (len(problems) == 1 and named in problems[0]), problems


@pytest.mark.parametrize(
    "values, named",
    [
        ({"maintenance": "on"}, None),
        ({"maintenance": "off", "message": "Back soon"}, None),
        ({"maintenance": True}, None),
        ({"proxy_maintenance_state": "on", "proxy_maintenance_page": "PAGE"}, None),
        ({}, "maintenance must be on or off (./deploy maintenance on|off), got nothing"),
        ({"maintenance": "maybe"}, "maintenance must be on or off, got 'maybe'"),
        ({"maintenance": "on", "message": "x" * 1001}, "message (the text of the maintenance page) must be a text of at most 1000"),
        ({"maintenance": "on", "proxy_maintenance_page": "page.html"}, "proxy_maintenance_page must be the absolute path of an HTML file"),
        ({"maintenance": "on", "proxy_maintenance_page": "/nowhere.html"}, "proxy_maintenance_page '/nowhere.html' is not a file on the"),
        ({"maintenance": "on", "proxy_maintenance_page": "BIG"}, "is 20000 bytes: the proxy serves at most 15000"),
        ({"maintenance": "on", "proxy_maintenance_retry_after": -1}, "proxy_maintenance_retry_after (seconds, the Retry-After header)"),
    ],
)  # fmt: skip
def test_maintenance_inputs(values, named, tmp_path):
    (tmp_path / "page.html").write_text("<p>down</p>" * 70)
    (tmp_path / "big.html").write_text("x" * 20000)
    page = {"PAGE": str(tmp_path / "page.html"), "BIG": str(tmp_path / "big.html")}
    values = {key: page.get(value, value) if isinstance(value, str) else value for key, value in values.items()}
    problems = maintenance_problems(values)
    assert problems == [] if named is None else (len(problems) == 1 and named in problems[0]), problems
