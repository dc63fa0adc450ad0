"""Names that reach SQL are quoted as identifiers (embedded double quotes doubled), values travel as
parameters or psql variables, never pasted into the SQL text."""

import pytest
import yaml
from ansible.module_utils.smart_deploy import django_driver as driver
from ansible.module_utils.smart_deploy.pgcatalog import dump_pattern, split_qualified

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "name, quoted",
    [
        ("catalog_product", '"catalog_product"'),
        ("Product", '"Product"'),  # unquoted, PostgreSQL would fold it to product
        ("odd name", '"odd name"'),
        ('say "hi"', '"say ""hi"""'),
        ('x"; DROP TABLE catalog_product; --', '"x""; DROP TABLE catalog_product; --"'),
        ("smart_deploy_reference", '"smart_deploy_reference"'),
    ],
)
def test_identifiers_are_quoted_with_embedded_quotes_doubled(name, quoted):
    assert driver.quote_ident(name) == quoted


@pytest.mark.parametrize("name", ['a"b', "a b", 'say "hi" again', "x.y", '"'])
def test_a_quoted_identifier_reads_back_as_one_name(name):
    # what PostgreSQL's parser does with it: one identifier, whatever the characters
    assert split_qualified(driver.quote_ident(name)) == [name]


@pytest.mark.parametrize("name", ["", None, "nul\x00byte", 42])
def test_what_cannot_be_an_identifier_is_refused(name):
    with pytest.raises(ValueError):
        driver.quote_ident(name)


@pytest.mark.parametrize(
    "regclass_text, parts",
    [
        ("catalog_product", ["catalog_product"]),
        ("public.catalog_product", ["public", "catalog_product"]),
        ('"Odd Name"', ["Odd Name"]),
        ('shop."a.b"', ["shop", "a.b"]),
        ('"my.schema".items', ["my.schema", "items"]),
        ('"a""b"', ['a"b']),
    ],
)
def test_names_as_regclass_prints_them_are_split_into_their_parts(regclass_text, parts):
    assert split_qualified(regclass_text) == parts


@pytest.mark.parametrize(
    "regclass_text, pattern",
    [
        ("catalog_product", "public.catalog_product"),
        ("shop.orders", "shop.orders"),
        ('"Odd Name"', 'public."Odd Name"'),
        ('"my.schema".items', '"my.schema".items'),
        ('"a""b"', 'public."a""b"'),  # was public."a""""b": the quote doubled twice
        ("price$eur", 'public."price$eur"'),  # unquoted, $ would be a regular expression anchor
    ],
)
def test_dump_patterns_match_exactly_one_table(regclass_text, pattern):
    assert dump_pattern(regclass_text) == pattern


def test_the_driver_pastes_no_name_into_sql_by_hand():
    source = (ROOT / "module_utils" / "smart_deploy" / "django_driver.py").read_text()
    quoting = "return '\"%s\"' % name.replace('\"', '\"\"')"  # quote_ident itself
    pasted = [line.strip() for line in source.splitlines() if '"%s"' in line and line.strip() != quoting]
    assert pasted == [], "names pasted into SQL between double quotes: %s" % pasted


def test_cleanup_passes_database_names_to_psql_as_variables_not_in_the_sql():
    tasks = yaml.safe_load((ROOT / "roles" / "cleanup" / "tasks" / "databases.yml").read_text())
    # psql in the database container or an external server's client container (smart_deploy_db_client_argv)
    psql_tasks = [t for t in tasks if "'psql'" in str(t.get("ansible.builtin.command", {}).get("argv", ""))]
    assert len(psql_tasks) == 2
    for task in psql_tasks:
        exec_args = task["ansible.builtin.command"]
        assert "'-c'" not in exec_args["argv"], "psql interpolates no variable in -c: the SQL goes through stdin"
        assert "{{" not in exec_args["stdin"], "nothing templated into the SQL: %s" % exec_args["stdin"]
        assert "ON_ERROR_STOP=1" in exec_args["argv"]
        assert exec_args["argv"].strip().startswith("{{ smart_deploy_db_client_argv + ['psql'")
    listing, drop = (t["ansible.builtin.command"]["stdin"] for t in psql_tasks)
    assert ":'prefix'" in listing and "starts_with" in listing and "LIKE" not in listing.upper()
    assert ':"name"' in drop
