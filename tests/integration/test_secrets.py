"""Secrets never reach what smart-deploy prints or records.

Every test deployment (tests/integration/conftest.py) has canary secrets: a database password with '/',
'@' and ':', a Django secret key and an app secret. Every playbook run of the whole suite is searched for
them (Deployment.playbook), and so are, when a deployment is removed, releases.json, the validation
reports, the backup metadata, the JSON run logs and the GitHub step summary (Deployment.destroy). The
fault tests (test_safety_net.py) run each injected fault with -v, the validation tests a failed rehearsal,
test_safety_net a failed rollback. Here: a failure whose own message holds the secrets, -v on a container
that cannot start (the gate printed its whole `docker inspect` before), and a check that the search
itself finds a planted canary.
"""

import hashlib
import json

import pytest

from tests.integration import shop_releases as releases
from tests.integration.conftest import assert_failed

LEAKY_MIGRATION = """import os

from django.conf import settings
from django.db import migrations


def leak(apps, schema_editor):
    raise RuntimeError("cannot migrate with key %s, password %s, payment key %s, url %s" % (
        settings.SECRET_KEY, os.environ["POSTGRES_PASSWORD"], os.environ["SHOP_PAYMENT_KEY"], os.environ["DATABASE_URL"]))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]
    operations = [migrations.RunPython(leak, migrations.RunPython.noop)]
"""


def test_the_search_finds_a_planted_canary(shop):
    planted = shop.state_dir / "validations" / "planted.json"
    planted.parent.mkdir(exist_ok=True)
    for canary in (shop.db_password, shop.secret_key, shop.app_secret):
        planted.write_text(json.dumps({"oops": "x%sx" % canary}))
        with pytest.raises(AssertionError, match="secrets leaked"):
            shop.assert_no_secret_leaks()
    planted.unlink()
    with pytest.raises(AssertionError):
        shop.assert_no_secret_leaks("a line with %s in it" % shop.app_secret)
    shop.assert_no_secret_leaks()


def test_a_failure_whose_message_holds_the_secrets_is_recorded_masked(shop):
    """An emergency deploy (no rehearsal) whose migration fails with the secrets in its error: the rescue
    copies the failure into releases.json and the summary - masked."""
    shop.write("backend/src/catalog/migrations/0003_leak.py", LEAKY_MIGRATION)
    shop.commit("a migration that fails with secrets in its message")
    result = shop.deploy("-v", "-e", "smart_deploy_emergency=true")  # Deployment.playbook: nothing printed holds a canary
    assert_failed(result)
    assert "Rolled back" in result.stdout
    last = shop.releases()["releases"][-1]
    assert last["status"] == "failed" and "cannot migrate with key ********, password ********, payment key ********" in last["reason"]
    assert "********" in shop.summary()["failure"]
    shop.assert_no_secret_leaks()
    shop.reset_to(shop.base)


def test_a_container_that_cannot_start_fails_its_gate_without_printing_its_environment(shop):
    shop.write("backend/src/shop/touched.py", "TOUCHED = True\n")
    releases.break_backend_start_command(shop)
    shop.commit("backend code change, and a start command that exits")
    result = shop.deploy("-vv")
    assert_failed(result)
    assert "Rolled back" in result.stdout
    assert releases.BROKEN_START_ERROR in result.stdout, "the gate shows the container's last log lines"
    assert "POSTGRES_PASSWORD" not in result.stdout, "the container's environment is not printed"
    shop.assert_no_secret_leaks()
    shop.reset_to(shop.base)


def test_the_analysis_the_rehearsal_and_the_app_tests_never_get_production_secrets(shop):
    """They run the release's code away from production: the same variable names (every name of the
    inventory's smart_deploy_app_secret_env), throwaway values - the database's names (POSTGRES_PASSWORD,
    DATABASE_URL) hold the throwaway database's - and no production secret under any name (the database
    superuser's, owner's and app role's passwords included)."""
    # the secrets' digests, not the secrets, go into the test's source (it is built into an image)
    digests = sorted(hashlib.sha256(c.encode()).hexdigest() for c in (shop.db_password, shop.secret_key, shop.app_secret,
                                                                       shop.owner_password(), shop.app_password()))  # fmt: skip
    shop.write("backend/src/catalog/tests_env.py", "import hashlib\nimport os\n\nfrom django.test import SimpleTestCase\n\n\n"
               "class Env(SimpleTestCase):\n    def test_secrets_are_placeholders(self):\n"
               "        for name in ('DJANGO_SECRET_KEY', 'SHOP_PAYMENT_KEY'):\n"
               "            self.assertTrue(os.environ[name].startswith('smart-deploy-placeholder'), name)\n"
               "        found = [n for n, v in os.environ.items() if hashlib.sha256(v.encode()).hexdigest() in %r]\n"
               "        self.assertEqual(found, [], 'production secrets')\n" % (digests,))  # fmt: skip
    shop.commit("a test that looks at its environment")
    result = shop.playbook("build", "-v")
    assert result.returncode == 0, "the app's test saw a production secret:\n" + result.stdout[-4000:]
    assert "tests passed" in shop.summary()["outcome"]
    shop.reset_to(shop.base)
