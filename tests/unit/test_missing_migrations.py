"""Model changes without a migration, decided the way Django would: the driver generates the migrations
makemigrations would write (in memory, never in the app's folders) and asks for the SQL sqlmigrate would
print, offline (no database: the analysis container has no network). Real Django 4.2 LTS and 5.2 in venvs
of their own (tests/unit/test_driver_database_override.py builds and caches them); no mocks, no database.
Then the strategy's decision on what the driver found: a state-only change is a warning, a change of the
schema an abort naming the SQL, which smart_deploy_accept lets through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.module_utils.smart_deploy import django_driver as driver
from ansible.module_utils.smart_deploy.strategy import ABORT, NORMAL, decide

from tests.unit.test_driver_database_override import DRIVER, PASSWORD, django_python, postgres_in_docker, run  # noqa: F401 (fixture)

SETTINGS = """\
SECRET_KEY = "not-a-secret"
USE_TZ = True
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# a host nobody answers for: the analysis must never need it
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "db.invalid", "PORT": 5432}}
"""
MIGRATION = """\
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
        ),
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("category", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to="shop.category")),
            ],
            options={"ordering": ["name"]},
        ),
    ]
"""
MODELS = """\
from django.db import models


class Category(models.Model):
    pass


class Product(models.Model):
    name = models.CharField(max_length=100{name_options})
{extra}
    class Meta:
{meta}
"""
SAME = dict(
    name_options="",
    extra="    category = models.ForeignKey(Category, null=True, on_delete=models.SET_NULL)\n",
    meta='        ordering = ["name"]',
)
CATEGORY = SAME["extra"]


def project(tmp_path: Path, **models) -> Path:
    root = tmp_path / "project"
    files = {
        "site_cfg/__init__.py": "",
        "site_cfg/settings.py": SETTINGS,
        "shop/__init__.py": "",
        "shop/models.py": MODELS.format(**dict(SAME, **models)),
        "shop/migrations/__init__.py": "",
        "shop/migrations/0001_initial.py": MIGRATION,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def analyze(version: str, tmp_path: Path, **models) -> list:
    """`driver.py analyze` as the offline analysis runs it (the override points at a database with no host:
    nothing to connect to); returns its missing_migrations, and checks nothing was written to the app."""
    python = django_python(version, tmp_path)
    root = project(tmp_path, **models)
    before = sorted(p.relative_to(root) for p in root.rglob("*") if "__pycache__" not in p.parts)
    (tmp_path / "input.json").write_text(json.dumps({"applied": ["shop.0001_initial"]}))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "site_cfg.settings",
           "SMART_DEPLOY_PROJECT_DIR": str(root), "SMART_DEPLOY_INPUT": str(tmp_path / "input.json"),
           "SMART_DEPLOY_DB_NAME": "shop", "SMART_DEPLOY_DB_HOST": "db.invalid"}  # fmt: skip
    done = run([str(python), str(DRIVER), "analyze"], cwd=root, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
    after = sorted(p.relative_to(root) for p in root.rglob("*") if "__pycache__" not in p.parts)
    assert after == before, "the analysis wrote into the project: %s" % sorted(set(after) - set(before))
    assert result["errors"] == [] and result["pending"] == []
    return result["missing_migrations"]


def verdict(missing, accept=(), require_rehearsal=True):
    report = {"pending": [], "migrations": [], "errors": [], "warnings": [], "prechecks": {"errors": [], "missing_migrations": missing},
              "copy": {"skipped": True, "why": "nothing pending"}, "post_check": {"ok": True}}  # fmt: skip
    return decide(report, accept=accept, require_rehearsal=require_rehearsal)


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_models_in_step_with_their_migrations_have_nothing_missing(version, tmp_path):
    assert analyze(version, tmp_path) == []


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_a_dropped_ordering_changes_no_sql_and_is_a_warning(version, tmp_path):
    """Meta ordering dropped, verbose names, help texts and choices changed: state only."""
    missing = analyze(version, tmp_path, meta='        verbose_name = "article"',
                      name_options=', help_text="shown in the list", choices=[("a", "A")]')  # fmt: skip
    assert [(m["migration"], m["kind"], m["sql"]) for m in missing] == [(missing[0]["migration"], "state-only", [])]
    assert missing[0]["migration"].startswith("shop.0002_")
    assert {op["type"] for op in missing[0]["operations"]} == {"AlterModelOptions", "AlterField"}
    for emergency in (False, True):
        result = verdict(missing, require_rehearsal=not emergency)
        assert result["strategy"] == NORMAL and result["abort_reasons"] == []
        warnings = [w for w in result["warnings"] if w["rule"] == "missing-migration-state-only"]
        assert len(warnings) == 1
        assert "change no SQL" in warnings[0]["message"] and "Change Meta options on product" in warnings[0]["message"]


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_an_added_field_changes_the_schema_and_aborts_naming_the_column(version, tmp_path):
    missing = analyze(version, tmp_path, extra=CATEGORY + '    sku = models.CharField(max_length=20, default="n\'a")\n')
    assert [m["kind"] for m in missing] == ["sql"]
    # the SQL sqlmigrate prints, the default quoted without a database
    assert missing[0]["sql"][0] == """ALTER TABLE "shop_product" ADD COLUMN "sku" varchar(20) DEFAULT 'n''a' NOT NULL;"""
    result = verdict(missing)
    assert result["strategy"] == ABORT
    assert [r["code"] for r in result["abort_reasons"]] == ["missing-migration-sql"]
    assert 'ALTER TABLE "shop_product" ADD COLUMN "sku" varchar(20)' in result["reasons"][0]
    assert "Add field sku to product" in result["reasons"][0]

    accepted = verdict(missing, accept=["missing-migration-sql"])
    assert accepted["strategy"] == NORMAL and accepted["reasons"] == []
    assert accepted["accepted"] == [{"code": "missing-migration-sql", "reason": result["reasons"][0]}]
    # an emergency deploy (no rehearsal) decides the same: the SQL was generated offline
    assert verdict(missing, require_rehearsal=False)["abort_reasons"] == result["abort_reasons"]


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_sql_that_needs_the_live_schema_is_unknown_and_aborts_naming_the_operation(version, tmp_path):
    """Dropping a foreign key reads its constraint's name from the database: offline that SQL cannot be
    written, so the abort names the operation (overridable with its own code), never a guess."""
    missing = analyze(version, tmp_path, extra="")
    assert [m["kind"] for m in missing] == ["unknown"]
    (operation,) = missing[0]["operations"]
    assert operation["type"] == "RemoveField" and operation["sql"] is None
    assert "needs a database connection" in operation["error"]
    result = verdict(missing)
    assert [r["code"] for r in result["abort_reasons"]] == ["missing-migration-unknown"]
    assert "Remove field category from product" in result["reasons"][0]
    assert verdict(missing, accept="missing-migration-unknown".split(","))["strategy"] == NORMAL


@pytest.mark.parametrize("version", ["4.2", "5.2"])
def test_the_rehearsal_writes_what_the_offline_analysis_could_not(version, tmp_path, postgres_in_docker):  # noqa: F811 (the fixture)
    """Needs Docker. When migrations are pending there is a copy: after applying them there the driver generates
    the missing migrations again on it, where the live schema answers, and the foreign key's drop is SQL."""
    port, psql = postgres_in_docker
    database, role = "rehearsal_%s" % version.replace(".", ""), "rehearser_%s" % version.replace(".", "")
    psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, PASSWORD.replace("'", "''")))
    psql("CREATE DATABASE %s OWNER %s" % (database, role))
    python = django_python(version, tmp_path)
    root = project(tmp_path, extra="")
    (tmp_path / "input.json").write_text(
        json.dumps({"expected_plan": ["shop.0001_initial"], "descriptions": [], "missing_migrations": True})
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "site_cfg.settings",
           "SMART_DEPLOY_PROJECT_DIR": str(root), "SMART_DEPLOY_INPUT": str(tmp_path / "input.json"),
           "SMART_DEPLOY_DB_HOST": "127.0.0.1", "SMART_DEPLOY_DB_PORT": str(port), "SMART_DEPLOY_DB_NAME": database,
           "SMART_DEPLOY_DB_USER": role, "SMART_DEPLOY_DB_PASSWORD": PASSWORD}  # fmt: skip
    done = run([str(python), str(DRIVER), "rehearse"], cwd=root, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split(driver.RESULT_MARK, 1)[1].splitlines()[0])
    assert [m["outcome"] for m in result["migrations"]] == ["applied"] and result["post_check"]["ok"]
    (entry,) = result["missing_migrations"]
    assert entry["kind"] == "sql", entry
    constraint = psql("SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'shop_product'::regclass", database)
    assert entry["sql"][0].endswith('ALTER TABLE "shop_product" DROP CONSTRAINT "%s";' % constraint)
    assert entry["sql"][-1] == 'ALTER TABLE "shop_product" DROP COLUMN "category_id" CASCADE;'
    assert psql("SELECT count(*) FROM pg_constraint WHERE conname = '%s'" % constraint, database) == "1"  # written, never run
    reasons = verdict(result["missing_migrations"])["abort_reasons"]
    assert [r["code"] for r in reasons] == ["missing-migration-sql"] and constraint in reasons[0]["reason"]
