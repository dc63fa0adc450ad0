"""Least-privilege roles: SCRAM verifiers as PostgreSQL makes them, and what the plan changes."""

import base64

from ansible.module_utils.smart_deploy.pgroles import ownership_plan, plan, psql_set, scram_verifier, script, verifier_matches

# made by PostgreSQL 15 itself (CREATE ROLE r LOGIN PASSWORD '...'; SELECT rolpassword FROM pg_authid)
PG_VERIFIER = (
    "SCRAM-SHA-256$4096:oDpRu17NHA+gMIOmI8WwCw==$a9OuZuQWJ0x8Icr/lFzpLzxJVsAkC5Q3yqiK/2eqwlM=:ivdsdtesxqKktby9TtUDcZSJuIdwuvJxnXOPPtOmptM="
)
PG_VERIFIER_UNICODE = (
    "SCRAM-SHA-256$4096:bScjxeOLgPeww2/8PGxNlA==$fl8A7TeAK6Pyoj3y9B28xKAo+vJBhlsNZIFqqWuktXw=:UevALvD7+uVY47yYDIyDQoQalg0uUGtzLV9YJsdfet4="
)
NAMES = {"admin": "shop", "owner": "shop_owner", "app": "shop_app", "database": "shop"}
PASSWORDS = {"admin": "a-pw", "owner": "o-pw", "app": "p-pw"}


def test_a_verifier_made_by_postgresql_matches_its_password_only():
    assert verifier_matches(PG_VERIFIER, "Canary/pw@x:y")
    assert not verifier_matches(PG_VERIFIER, "Canary/pw@x:z")
    assert verifier_matches(PG_VERIFIER_UNICODE, "pässwörd")


def test_our_verifier_is_the_one_postgresql_would_store():
    salt = base64.b64decode("oDpRu17NHA+gMIOmI8WwCw==")
    assert scram_verifier("Canary/pw@x:y", salt=salt) == PG_VERIFIER


def test_md5_empty_and_garbage_verifiers_never_match():
    for verifier in (None, "", "md5abcdef", "SCRAM-SHA-256$x", "SCRAM-SHA-256$4096:!!$a:b"):
        assert not verifier_matches(verifier, "anything")


def good_state():
    roles = {
        "shop": {"superuser": True, "verifier": scram_verifier("a-pw")},
        "shop_owner": {"superuser": False, "createdb": False, "createrole": False, "login": True, "verifier": scram_verifier("o-pw")},
        "shop_app": {"superuser": False, "createdb": False, "createrole": False, "login": True, "verifier": scram_verifier("p-pw")},
    }
    return {"roles": roles, "database_owner": "shop_owner", "schema_owner": "pg_database_owner", "foreign_objects": [], "app_missing": [],
            "app_connect": True, "app_usage": True, "app_create": False,
            "default_acl": {"r": ["DELETE", "INSERT", "SELECT", "UPDATE"], "S": ["SELECT", "UPDATE", "USAGE"]}}  # fmt: skip


def test_nothing_to_do_when_all_is_in_place():
    assert plan(good_state(), NAMES, PASSWORDS) == []


def test_a_database_from_before_the_roles_is_upgraded():
    state = good_state()
    del state["roles"]["shop_owner"], state["roles"]["shop_app"]
    state.update(
        database_owner="shop", foreign_objects=[{"kind": "r", "name": "cart_item"}], app_connect=None, app_usage=None, default_acl={}
    )
    why = [c["why"] for c in plan(state, NAMES, PASSWORDS)]
    assert why[0].startswith("create the owner role shop_owner") and why[1].startswith("create the app role shop_app")
    assert any("owner of the database shop" in w for w in why) and any("1 objects" in w and "cart_item" in w for w in why)
    assert why[-1].startswith("grant shop_app reading and writing rows")


def test_a_changed_password_is_set_with_alter_role_as_a_verifier_never_in_clear():
    changes = plan(good_state(), NAMES, dict(PASSWORDS, admin="new-admin", app="new-app"))
    assert [c["why"] for c in changes] == [
        "set the new password of shop (the database server's superuser)",
        "set the new password of the app role shop_app",
    ]
    sql = script(changes, NAMES)
    assert "new-admin" not in sql and "new-app" not in sql
    assert "ALTER ROLE :\"admin\" PASSWORD :'verifier'" in sql and sql.count("SCRAM-SHA-256$4096:") == 2
    assert sql.startswith(psql_set("admin", "shop")) and "BEGIN;" in sql and sql.endswith("COMMIT;\n")


def test_roles_with_too_much_power_are_limited():
    state = good_state()
    state["roles"]["shop_app"].update(superuser=True, createdb=True)
    why = [c["why"] for c in plan(state, NAMES, PASSWORDS)]
    assert why == ["limit the app role shop_app (was: superuser, createdb)"]


def test_missing_grants_and_create_on_public_are_fixed():
    state = good_state()
    state.update(app_missing=["catalog_product"], app_create=True)
    assert [c["why"] for c in ownership_plan(state, NAMES)] == [
        "grant shop_app reading and writing rows (and nothing more) on 1 tables and sequences"
    ]


def test_psql_variables_double_single_quotes():
    assert psql_set("name", "it's") == "\\set name 'it''s'\n"
