"""Changes that make "release N+1" of the sample shop, the way a developer would write them."""

WISHLIST_MODEL = """

class Wishlist(models.Model):
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
"""

WISHLIST_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cart", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Wishlist",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
"""


def add_wishlist(deployment) -> None:
    """A new model in the cart app and its migration cart.0002_wishlist (table cart_wishlist)."""
    models = deployment.source / "backend" / "src" / "cart" / "models.py"
    models.write_text(models.read_text() + WISHLIST_MODEL)
    deployment.write("backend/src/cart/migrations/0002_wishlist.py", WISHLIST_MIGRATION)
