"""The genuine fake case and its near miss: an app that had no migrations got its table from
`migrate --run-syncdb` long ago; the newer release gives the app its 0001_initial."""

import pytest

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed, assert_ok


@pytest.fixture(scope="module")
def shop(module_deployment):
    """The older release (reviews app without migrations) deployed, then --run-syncdb run by hand."""
    releases.add_reviews_app_without_migrations(module_deployment, title_length=60, slug_unique=False)
    module_deployment.base = module_deployment.commit("reviews, before migrations existed")
    # that old release's own tests could not run (Django's test database cannot syncdb an app whose
    # table points at a migrated one): it was deployed without them
    assert_ok(module_deployment.deploy("-e", "smart_deploy_app_tests=false"))
    web = module_deployment.releases()["releases"][-1]["containers"]["backend"]
    # by hand, as whoever may change the schema (the app's own role may not)
    synced = module_deployment.run_in(web, "python", "manage.py", "migrate", "--run-syncdb", "--noinput", as_owner=True)
    assert "Creating table reviews_review" in synced, synced
    module_deployment.psql("INSERT INTO reviews_review (product_id, title, slug, stars) VALUES (1, 'Lovely', 'lovely', 5)")
    return module_deployment


def last_report(shop):
    return shop.validation_reports()[-1]


def test_existing_table_that_differs_from_the_migration_aborts_naming_the_difference(shop):
    releases.give_reviews_migrations(shop, title_length=100, slug_unique=True, then_add_verified=False)
    shop.commit("reviews get migrations (longer titles, unique slugs)")
    before = shop.snapshot()
    result = shop.playbook("validate")
    assert_failed(result)
    assert shop.snapshot() == before
    assert shop.scratch_leftovers() == []
    report = last_report(shop)
    assert report["verdict"]["strategy"] == "abort"
    entry = report["report"]["migrations"][0]
    assert entry["migration"] == "reviews.0001_initial" and entry["outcome"] == "failed"
    assert entry["error"]["sqlstate"] == "42P07"
    differences = " ".join(entry["fake_proof"]["differences"])
    assert "column title differs: database has character varying(60) NOT NULL" in differences
    assert "character varying(100) NOT NULL" in differences
    assert "reviews_review_slug" in differences and "missing on the database" in differences
    assert "column title differs" in result.stdout
    shop.reset_to(shop.base)


def test_existing_table_equal_to_the_migration_is_faked_and_later_migrations_apply(shop):
    releases.give_reviews_migrations(shop, title_length=60, slug_unique=False, then_add_verified=True)
    shop.commit("reviews get migrations, then a verified flag")
    result = shop.playbook("validate")
    assert_ok(result)
    report = last_report(shop)
    assert report["verdict"]["strategy"] == "fake"
    assert report["verdict"]["fake"] == ["reviews.0001_initial"]
    assert report["verdict"]["apply"] == ["reviews.0002_review_verified"]
    entry = report["report"]["migrations"][0]
    assert entry["fake_proof"]["found"] is True and entry["fake_proof"]["compared_equal"] is True
    assert entry["fake_proof"]["tables"] == ["reviews_review"]

    result = shop.deploy()
    assert_ok(result)
    assert "faked reviews.0001_initial" in result.stdout
    applied = shop.psql("SELECT string_agg(name, ',' ORDER BY id) FROM django_migrations WHERE app = 'reviews'")
    assert applied == "0001_initial,0002_review_verified"
    assert shop.psql("SELECT title || ':' || verified FROM reviews_review") == "Lovely:false", "the old rows are kept"
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["migrations"]["pending"] == 0
