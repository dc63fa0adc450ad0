"""A private copy of the notes sample (examples/notes: Django 4.2, backend only, project under app/, its own
settings module, database variable names and health endpoint), deployed through its own inventory
(inventories/notes) - used by test_components.py and test_notes.py."""

from __future__ import annotations

import hashlib
import urllib.parse

from tests.integration.conftest import Deployment, run


class Notes(Deployment):
    """A private copy of examples/notes in its own git repository, deployed through inventories/notes with
    names, ports and folders of its own (the only extra variables: what makes the copy private)."""

    EXAMPLE = "notes"
    SRC = "app"
    PREFIX = "sdn"
    COPY_IGNORE = ("__pycache__", "wheels")

    def __init__(self, workdir, app_tests=False):
        self.report = workdir / "components.json"
        super().__init__(workdir, app_tests=app_tests)

    def app_vars(self) -> dict:
        """inventories/notes says the rest; the components test playbook writes its report here."""
        return {"components_report": str(self.report)}

    def canaries(self) -> list:
        """The database password and the secret key as given and quoted for a URL, and the owner's, the app
        role's and Redis's passwords derived from the database password (the notes inventory has no other secret)."""
        derived = [
            hashlib.sha256(("%s:%s:%s_%s" % (self.db_password, kind, self.name, kind)).encode()).hexdigest() for kind in ("owner", "app")
        ]
        found = [self.db_password, self.secret_key, *derived, self.redis_password()]
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
