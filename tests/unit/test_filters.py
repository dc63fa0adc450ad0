"""Jinja filters: URL parts quoted whole, secrets masked, row values hidden."""

import importlib.util
from urllib.parse import unquote, urlsplit

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("smart_deploy_filters", ROOT / "plugins" / "filter" / "smart_deploy.py")
filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filters)


def test_a_password_with_slash_at_and_colon_survives_a_database_url():
    password, user = "p/ss@wo:rd%?#", "us@er:x"
    url = "postgres://%s:%s@db:5432/%s" % (filters.smart_deploy_urlquote(user), filters.smart_deploy_urlquote(password), "shop")
    parts = urlsplit(url)
    assert (unquote(parts.username), unquote(parts.password), parts.hostname, parts.port, parts.path) == (
        user,
        password,
        "db",
        5432,
        "/shop",
    )


def test_jinja_urlencode_alone_would_break_it():
    assert "/" not in filters.smart_deploy_urlquote("a/b")


def test_mask_hides_every_secret_in_text_and_structures():
    secrets = {"POSTGRES_PASSWORD": "Canary/pw@1:2", "KEY": "sk-123456"}
    text = "failed: connect postgres://u:Canary%2Fpw%401%3A2@db (key sk-123456, pw Canary/pw@1:2)"
    masked = filters.smart_deploy_mask(text, secrets)
    assert "Canary" not in masked and "sk-123456" not in masked and masked.count("********") == 3
    nested = filters.smart_deploy_mask({"msg": ["sk-123456 here"], "n": 3}, ["sk-123456"])
    assert nested == {"msg": ["******** here"], "n": 3}


def test_mask_leaves_text_alone_without_secrets_and_ignores_tiny_ones():
    assert filters.smart_deploy_mask("nothing secret", ["", None, "ab", True]) == "nothing secret"


def test_redact_hides_row_values_of_a_failure_and_is_a_filter_of_the_module():
    """reason.yml: a failed task's message and stderr, secrets masked, then row values hidden."""
    failure = "Apply the migrations: IntegrityError (DETAIL:  Key (sku)=(TEA-001) already exists.)"
    assert filters.smart_deploy_redact(filters.smart_deploy_mask(failure, "s3cret-pw")) == (
        "Apply the migrations: IntegrityError (DETAIL:  Key (sku)=(\u2026) already exists.)"
    )
    assert filters.FilterModule().filters()["smart_deploy_redact"] is filters.smart_deploy_redact
