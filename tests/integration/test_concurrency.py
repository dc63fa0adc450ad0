"""Deploys that overlap: two started together, and one killed with SIGKILL while it migrates."""

import json
import os
import signal
import subprocess
import time

from tests.conftest import ROOT
from tests.integration.conftest import VENV_BIN, assert_ok, run


def start_deploy(shop, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]),
               SMART_DEPLOY_LOG_DIR=str(shop.workdir / "logs"), ANSIBLE_NOCOLOR="1")  # fmt: skip
    cmd = [str(VENV_BIN / "ansible-playbook"), "playbooks/deploy.yml", "-e", "@%s" % shop.vars_file, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_deploys_started_together_exactly_one_proceeds(shop):
    first, second = start_deploy(shop), start_deploy(shop)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert not shop.leaks("".join(outputs))
    codes = [p.returncode for p in (first, second)]
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, codes
    loser = outputs[codes.index(max(codes))]
    assert "another deploy is running" in loser and "held by pytest" in loser
    assert not (shop.state_dir / "deploy.lock").exists()


def test_a_deploy_killed_while_migrating_is_recovered_by_the_next_one(shop):
    shop.write(
        "backend/src/catalog/migrations/0003_slow_backfill.py",
        """import time

from django.db import migrations


def backfill(apps, schema_editor):
    time.sleep(3)
    apps.get_model("catalog", "Product").objects.update(name=models_upper())


def models_upper():
    from django.db.models.functions import Upper

    return Upper("name")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_products")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
""",
    )
    release = shop.commit("slow backfill")[:12]
    before = shop.snapshot()
    deploy = start_deploy(shop)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until the migration runs in production
        running = run(["docker", "ps", "-q", "--filter", "label=smart-deploy.app=%s" % shop.name,
                       "--filter", "label=smart-deploy.oneoff=apply"]).stdout.split()  # fmt: skip
        if running:
            break
        assert deploy.poll() is None, deploy.stdout.read()[-4000:]
        time.sleep(0.2)
    assert running, "the migration never started"
    time.sleep(1)
    os.kill(deploy.pid, signal.SIGKILL)
    deploy.wait()
    assert json.loads((shop.state_dir / "deploy.lock").read_text())["pid"] == deploy.pid, "the dead run's lock is left"
    assert shop.releases()["releases"][-1]["status"] == "deploying"

    result = shop.deploy()
    assert_ok(result)
    assert "took over a stale deploy lock" in result.stdout + result.stderr
    assert "Recovered from an interrupted deploy" in result.stdout
    history = shop.releases()["releases"]
    assert [(e["id"], e["status"]) for e in history[-2:]] == [(release, "failed"), (release, "live")]
    assert "interrupted" in history[-2]["reason"] and "recovered" in history[-2]["reason"]
    applied = shop.psql("SELECT count(*) FROM django_migrations WHERE name = '0003_slow_backfill'")
    assert applied == "1", "applied exactly once"
    assert shop.psql("SELECT name FROM catalog_product WHERE sku = 'TEA-001'") == "GREEN TEA, 100 G"
    assert before["rows"]["django_migrations"] != shop.snapshot()["rows"]["django_migrations"]
    status, health = shop.get_json("/api/health/")
    assert status == 200 and health["release"] == release
    assert shop.scratch_leftovers() == []
    leftovers = run(["docker", "ps", "-aq", "--filter", "label=smart-deploy.app=%s" % shop.name, "--filter", "label=smart-deploy.oneoff"])
    assert leftovers.stdout.split() == []
    shop.base = shop.git("rev-parse", "HEAD")
