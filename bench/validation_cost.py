#!/usr/bin/env python3
"""What migration validation costs against the size of the database and of what the migrations touch.

    .venv/bin/python bench/validation_cost.py                 # 10 MB, 100 MB and 1 GB of shop data
    .venv/bin/python bench/validation_cost.py --sizes 10,100  # megabytes

Deploys the sample shop under a name of its own, fills it with generated shop data (products, carts,
cart items) up to each size, then runs `playbooks/validate.yml` (the real thing, as a user would) for
three releases:

- small:  a migration on a small table (cart_cart gets a column): the copy carries that table's rows
          and the schema of the rest;
- big:    a migration on the biggest table (an index on catalog_product.name): its rows are copied;
- python: a RunPython data migration, which may read anything: the whole database is copied.

Prints wall time of the playbook, the copy and rehearsal times from the report, the bytes copied with
their rows, and the peak disk of the scratch database. Removes everything it created.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT as _ROOT  # noqa: E402,F401  (puts module_utils on the import path)
from tests.integration import shop_releases as releases  # noqa: E402
from tests.integration.conftest import Deployment  # noqa: E402


def fill(deployment: Deployment, megabytes: int) -> int:
    """Grow the shop's database to about ``megabytes`` with products (70 %) and cart items (30 %)."""
    target = megabytes * 1024 * 1024
    carts = 2000
    deployment.psql("INSERT INTO cart_cart (created_at) SELECT now() FROM generate_series(1, %d)" % carts)
    start = int(deployment.psql("SELECT coalesce(max(id), 0) FROM catalog_product"))
    batch = 20_000
    while int(deployment.psql("SELECT pg_database_size(current_database())")) < target:
        deployment.psql(
            "INSERT INTO catalog_product (sku, name, price, created_at) "
            "SELECT 'GEN-' || g, 'Generated product ' || g || ' ' || md5(g::text), (g %% 997) / 10.0, now() "
            "FROM generate_series(%d, %d) g" % (start + 1, start + batch)
        )
        deployment.psql(
            "INSERT INTO cart_item (cart_id, product_id, quantity) "
            "SELECT 1 + (g %% %d), %d + (g %% %d), 1 + g %% 5 FROM generate_series(1, %d) g" % (carts, start + 1, batch, batch // 2)
        )
        start += batch
    deployment.psql("VACUUM ANALYZE")
    return int(deployment.psql("SELECT pg_database_size(current_database())"))


def add_cart_column(deployment):
    releases.edit(deployment, "cart/models.py", "class Cart(models.Model):\n",
                  "class Cart(models.Model):\n    channel = models.CharField(max_length=20, blank=True, default=\"web\")\n")  # fmt: skip
    releases.add_migration(
        deployment,
        "cart",
        "0002_cart_channel",
        """class Migration(migrations.Migration):
    dependencies = [("cart", "0001_initial")]

    operations = [
        migrations.AddField(model_name="cart", name="channel", field=models.CharField(blank=True, default="web", max_length=20)),
    ]
""",
    )


def add_data_migration(deployment):
    deployment.write(
        "backend/src/catalog/migrations/0003_touch_prices.py",
        """from django.db import migrations


def count(apps, schema_editor):
    apps.get_model("catalog", "Product").objects.filter(price__lt=0).count()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]
    operations = [migrations.RunPython(count, migrations.RunPython.noop)]
""",
    )


SCENARIOS = {
    "small": add_cart_column,
    "big": releases.add_concurrent_index,
    "python": add_data_migration,
}


def measure(deployment, scenario):
    SCENARIOS[scenario](deployment)
    deployment.commit("bench: %s" % scenario)
    started = time.monotonic()
    # small tables copied whole only up to 1 MB, so "small" shows what the touched-table copy costs
    result = deployment.playbook("validate", "-e", "migration_validation_small_table_bytes=1048576", timeout=3600)
    wall = time.monotonic() - started
    if result.returncode != 0:
        print(result.stdout[-3000:])
        raise SystemExit("validation failed in scenario %s" % scenario)
    report = deployment.validation_reports()[-1]["report"]
    deployment.reset_to(deployment.base)
    copy, timings = report["copy"], report["timings"]
    return {
        "scenario": scenario,
        "strategy": deployment.validation_reports()[-1]["verdict"]["strategy"],
        "wall_s": round(wall, 1),
        "copy_s": timings.get("copy"),
        "rehearse_s": timings.get("rehearse"),
        "module_total_s": timings.get("total"),
        "copied_with_rows_mb": round(copy.get("bytes_with_data", 0) / 2**20, 1),
        "database_mb": round(copy.get("bytes_total", 0) / 2**20, 1),
        "peak_disk_mb": round((copy.get("peak_disk_bytes") or 0) / 2**20, 1),
        "mode": copy.get("mode"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="database sizes in MB, comma separated")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="smart-deploy-bench-") as workdir:
        deployment = Deployment(Path(workdir))
        try:
            deployment.base = deployment.commit("bench base")
            result = deployment.deploy()
            if result.returncode != 0:
                print(result.stdout[-3000:])
                raise SystemExit("deploy failed")
            for size in sizes:
                t0 = time.monotonic()
                actual = fill(deployment, size)
                print("filled to %.0f MB in %.0f s" % (actual / 2**20, time.monotonic() - t0), flush=True)
                for scenario in SCENARIOS:
                    row = measure(deployment, scenario)
                    row["target_mb"] = size
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            deployment.destroy()
    columns = ["target_mb", "database_mb", "scenario", "mode", "copied_with_rows_mb", "copy_s", "rehearse_s",
               "module_total_s", "wall_s", "peak_disk_mb", "strategy"]  # fmt: skip
    print()
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))


if __name__ == "__main__":
    main()
