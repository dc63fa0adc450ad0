"""Changes that make "release N+1" of the sample shop, the way a developer would write them: a model
change and the migration makemigrations gives for it (models and migrations stay consistent, so
`makemigrations --check` is clean unless a test wants otherwise)."""

import re

from tests.integration.conftest import Deployment

SRC = Deployment.SRC


def edit(deployment, relative, old, new):
    deployment.edit(relative, old, new)


def add_migration(deployment, app, name, body):
    deployment.add_migration(app, name, body)


# --- a new model: cart.0002_wishlist (table cart_wishlist) -----------------------------------------
def add_wishlist(deployment, after="0001_initial", with_states=False):
    """``with_states``: a status column (varchar) and a partial unique index with an ``__in`` condition on it (a
    ``UniqueConstraint(condition=Q(status__in=[...]))``, as Wagtail's workflow states have): PostgreSQL prints its
    predicate differently once dumped and restored (a rehearsal copy, a restored backup)."""
    states = (
        '    status = models.CharField(max_length=20, default="draft")\n'
        "\n"
        "    class Meta:\n"
        "        constraints = [\n"
        '            models.UniqueConstraint(fields=["name"], condition=models.Q(status__in=["draft", "shared"]),\n'
        '                                    name="cart_wishlist_open_name_uniq"),\n'
        "        ]\n"
    )
    edit(
        deployment,
        "cart/models.py",
        "class CartItem(models.Model):",
        "class Wishlist(models.Model):\n"
        "    name = models.CharField(max_length=100)\n"
        "    created_at = models.DateTimeField(auto_now_add=True)\n" + (states if with_states else "") + "\n\n"
        "class CartItem(models.Model):",
    )
    status_field = '                ("status", models.CharField(default="draft", max_length=20)),\n'
    options = """            options={
                "constraints": [
                    models.UniqueConstraint(condition=models.Q(("status__in", ["draft", "shared"])), fields=("name",),
                                            name="cart_wishlist_open_name_uniq"),
                ],
            },
"""
    add_migration(
        deployment,
        "cart",
        "%04d_wishlist" % (int(after[:4]) + 1),
        """class Migration(migrations.Migration):
    dependencies = [("cart", "%s")]

    operations = [
        migrations.CreateModel(
            name="Wishlist",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
%s            ],
%s        ),
    ]
"""
        % (after, status_field if with_states else "", options if with_states else ""),
    )


# --- a field on cart_item: cart.0002_cartitem_note -------------------------------------------------
def add_cart_item_note(deployment, after="0001_initial", name="0002_cartitem_note"):
    quantity = "    quantity = models.PositiveIntegerField(default=1)\n"
    note = '    note = models.CharField(max_length=200, blank=True, default="")\n'
    edit(deployment, "cart/models.py", quantity, quantity + note)
    add_migration(
        deployment,
        "cart",
        name,
        """class Migration(migrations.Migration):
    dependencies = [("cart", "%s")]

    operations = [
        migrations.AddField(
            model_name="cartitem",
            name="note",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
    ]
"""
        % after,
    )


# --- unique product names: catalog.0003_product_name_unique -----------------------------------------
def make_product_name_unique(deployment, also_after=()):
    """``also_after``: more (app, migration) dependencies, e.g. to make it the second migration of a release."""
    edit(deployment, "catalog/models.py", "name = models.CharField(max_length=100)", "name = models.CharField(max_length=100, unique=True)")
    add_migration(
        deployment,
        "catalog",
        "0003_product_name_unique",
        """class Migration(migrations.Migration):
    dependencies = %r
"""
        % [("catalog", "0002_seed_products"), *also_after]
        + """

    operations = [
        migrations.AlterField(
            model_name="product",
            name="name",
            field=models.CharField(max_length=100, unique=True),
        ),
    ]
""",
    )


# --- a bug in a view: /api/products/ answers 500 (a field that does not exist) ---------------------------
def break_products_endpoint(deployment):
    edit(deployment, "catalog/views.py", "Product.objects.all()", 'Product.objects.order_by("popularity")')


# --- a start command with a typo: the backend container exits at start ------------------------------------
BROKEN_START_ERROR = "argument -w/--workers: invalid int value: 'two'"


def break_backend_start_command(deployment):
    """The release's image builds and its code imports (the rehearsal passes); gunicorn refuses its command
    line and the container exits with BROKEN_START_ERROR in its log."""
    path = deployment.source / "backend" / "Dockerfile"
    text = path.read_text()
    assert '"--workers", "2"' in text
    path.write_text(text.replace('"--workers", "2"', '"--workers", "two"', 1))


# --- a data migration that raises: catalog.0003_check_prices ----------------------------------------
def add_failing_data_migration(deployment):
    deployment.write(
        "%s/catalog/migrations/0003_check_prices.py" % SRC,
        """from django.db import migrations


def check_prices(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    free = Product.objects.filter(price__lte=0).count()
    if free:
        raise ValueError("%d products have no price: fix them before this release" % free)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]

    operations = [migrations.RunPython(check_prices, migrations.RunPython.noop)]
""",
    )


# --- a data migration with a no-op reverse: catalog.0003_normalise_names -------------------------------
def add_noop_data_migration(deployment):
    deployment.write(
        "%s/catalog/migrations/0003_normalise_names.py" % SRC,
        """from django.db import migrations


def normalise(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    for product in Product.objects.all():
        product.name = " ".join(product.name.split())
        product.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
""",
    )


# --- a concurrent index (non-atomic): catalog.0003_product_name_idx ----------------------------------
def add_concurrent_index(deployment):
    edit(deployment, "catalog/models.py", '        ordering = ["id"]\n',
         '        ordering = ["id"]\n        indexes = [models.Index(fields=["name"], name="catalog_product_name_idx")]\n')  # fmt: skip
    path = "%s/catalog/migrations/0003_product_name_idx.py" % SRC
    deployment.write(
        path,
        """from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("catalog", "0002_seed_products")]

    operations = [
        AddIndexConcurrently(model_name="product", index=models.Index(fields=["name"], name="catalog_product_name_idx")),
    ]
""",
    )


# --- a unique index built concurrently with raw SQL (non-atomic): catalog.0003_unique_name_sql ------
def add_unique_index_concurrently(deployment):
    deployment.write(
        "%s/catalog/migrations/0003_unique_name_sql.py" % SRC,
        """from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("catalog", "0002_seed_products")]

    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX CONCURRENTLY catalog_product_name_uniq ON catalog_product (name)",
            "DROP INDEX CONCURRENTLY IF EXISTS catalog_product_name_uniq",
        ),
    ]
""",
    )


# --- an app that had no migrations (its table made by migrate --run-syncdb) --------------------------
REVIEW_MODEL = """from django.db import models


class Review(models.Model):
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="reviews")
    title = models.CharField(max_length=%(title_length)d)
    slug = models.SlugField(max_length=80%(slug_unique)s)
    stars = models.PositiveSmallIntegerField(default=5)
%(verified)s"""

REVIEW_INITIAL = """import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("catalog", "0002_seed_products")]

    operations = [
        migrations.CreateModel(
            name="Review",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=%(title_length)d)),
                ("slug", models.SlugField(max_length=80%(slug_unique)s)),
                ("stars", models.PositiveSmallIntegerField(default=5)),
                (
                    "product",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="reviews", to="catalog.product"
                    ),
                ),
            ],
        ),
    ]
"""

REVIEW_VERIFIED = """class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [
        migrations.AddField(model_name="review", name="verified", field=models.BooleanField(default=False)),
    ]
"""


def review_values(title_length, slug_unique, verified=False):
    return {
        "title_length": title_length,
        "slug_unique": ", unique=True" if slug_unique else "",
        "verified": "    verified = models.BooleanField(default=False)\n" if verified else "",
    }


def add_reviews_app_without_migrations(deployment, title_length=60, slug_unique=False):
    """An older release: app `reviews` with a model and no migrations package."""
    deployment.write("%s/reviews/__init__.py" % SRC, "")
    deployment.write("%s/reviews/models.py" % SRC, REVIEW_MODEL % review_values(title_length, slug_unique))
    edit(deployment, "shop/settings.py", '    "cart",\n]', '    "cart",\n    "reviews",\n]')


def give_reviews_migrations(deployment, title_length=60, slug_unique=False, then_add_verified=True):
    """The newer release: reviews gets its 0001_initial (and a later 0002 adding a field)."""
    values = review_values(title_length, slug_unique, verified=then_add_verified)
    deployment.write("%s/reviews/models.py" % SRC, REVIEW_MODEL % values)
    deployment.write("%s/reviews/migrations/__init__.py" % SRC, "")
    deployment.write("%s/reviews/migrations/0001_initial.py" % SRC, REVIEW_INITIAL % values)
    if then_add_verified:
        add_migration(deployment, "reviews", "0002_review_verified", REVIEW_VERIFIED)


def migration_names(text):
    return re.findall(r"\b[a-z_]+\.\d{4}_\w+", text)
