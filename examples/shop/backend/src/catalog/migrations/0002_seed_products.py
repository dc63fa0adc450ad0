from decimal import Decimal

from django.db import migrations

PRODUCTS = [
    ("TEA-001", "Green tea, 100 g", Decimal("4.50")),
    ("MUG-001", "Stoneware mug", Decimal("12.00")),
    ("POT-001", "Cast-iron teapot", Decimal("39.90")),
]


def add_products(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    for sku, name, price in PRODUCTS:
        Product.objects.get_or_create(sku=sku, defaults={"name": name, "price": price})


def remove_products(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    Product.objects.filter(sku__in=[sku for sku, _name, _price in PRODUCTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(add_products, remove_products)]
