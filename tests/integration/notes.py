"""A private copy of the notes sample (examples/notes: Django 4.2, backend only, project under app/, its own
settings module, database variable names and health endpoint), deployed through its own inventory
(inventories/notes) - used by test_components.py and test_notes.py."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import urllib.parse

from tests.conftest import ROOT
from tests.integration.conftest import Deployment, free_port, run


class Notes(Deployment):
    """A private copy of examples/notes in its own git repository, deployed through inventories/notes with
    names, ports and folders of its own (the only extra variables: what makes the copy private)."""

    def __init__(self, workdir, app_tests=False):
        self.name = "sdn" + secrets.token_hex(3)
        self.workdir = workdir
        self.source = workdir / "notes"
        self.state_dir = workdir / "state"
        self.port = free_port()
        token = secrets.token_hex(6)
        self.db_password = "Canary/pw@%s:%s" % (token, secrets.token_hex(4))
        self.secret_key = "CanarySK-%s-%s" % (token, secrets.token_hex(16))
        self.app_secret = "CanaryAS-%s" % token
        self.external_db = None
        shutil.copytree(ROOT / "examples" / "notes", self.source, ignore=shutil.ignore_patterns("__pycache__", "wheels"))
        self.git("init", "-q")
        self.report = workdir / "components.json"
        self.vars_file = workdir / "vars.json"
        self.vars_file.write_text(
            json.dumps(
                {
                    "smart_deploy_app_name": self.name,
                    "smart_deploy_app_source": str(self.source),
                    "smart_deploy_state_dir": str(self.state_dir),
                    "smart_deploy_http_port": self.port,
                    "smart_deploy_db_password": self.db_password,
                    "smart_deploy_django_secret_key": self.secret_key,
                    "smart_deploy_actor": "pytest",
                    "components_report": str(self.report),
                }
                # the app's own tests run where a test is about them (the inventory's default is to run them)
                | ({} if app_tests else {"smart_deploy_app_tests": False})
            )
        )

    def canaries(self) -> list:
        """The database password and the secret key as given and quoted for a URL, and the owner's and the app
        role's passwords derived from the database password (the notes inventory has no other secret)."""
        derived = [
            hashlib.sha256(("%s:%s:%s_%s" % (self.db_password, kind, self.name, kind)).encode()).hexdigest() for kind in ("owner", "app")
        ]
        found = [self.db_password, self.secret_key, *derived]
        return found + [urllib.parse.quote(s, safe="") for s in found] + [self.db_password.split("@")[1]]

    def playbook(self, name: str, *args: str, timeout: int = 900):
        return super().playbook(name, "-i", "inventories/notes", *args, timeout=timeout)

    def components(self, *args: str):
        return self.playbook("../tests/integration/playbooks/components", *args)

    def run_in(self, container: str, *command: str, as_owner: bool = False) -> str:
        """A command in one of the app's containers; ``as_owner``: with the owner role's credentials under the
        names the notes app reads (NOTES_DB_USER, NOTES_DB_PASSWORD)."""
        owner = ["-e", "NOTES_DB_USER=%s_owner" % self.name, "-e", "NOTES_DB_PASSWORD=%s" % self.owner_password()]
        result = run(["docker", "exec", *(owner if as_owner else []), container, *command])
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def reset_to(self, commit: str) -> None:
        self.git("reset", "-q", "--hard", commit)
        self.git("clean", "-qfd", "--exclude=wheels")
