"""change_detection on real git repositories made by the tests, and the classification rules."""

import subprocess

import pytest
from ansible.module_utils.smart_deploy.changes import classify, decide, derive_rules, matches, resolve_rules

RULES = {
    "migrations": ["backend/src/*/migrations/**"],
    "backend": ["backend/**"],
    "frontend": ["frontend/**"],
    "infra": ["infra/**"],
}
TRIGGERS = {"backend": ["backend", "migrations"], "frontend": ["frontend"], "proxy": ["infra"]}
DATABASE = ["backend", "migrations"]


def test_globs_stay_within_folders_unless_double_starred():
    assert matches("backend/src/cart/migrations/0002_x.py", RULES["migrations"])
    assert not matches("backend/src/cart/models.py", RULES["migrations"])
    assert not matches("backend/src/a/b/migrations/x.py", RULES["migrations"])
    assert matches("frontend/public/app.js", ["frontend/**"])
    assert matches("README.md", ["*.md"]) and not matches("docs/README.md", ["*.md"])
    assert matches("docs/README.md", ["**/*.md"])


def test_a_migration_is_backend_code_too_and_docs_are_nothing():
    classified = classify(["backend/src/cart/migrations/0002_x.py", "README.md"], RULES)
    assert classified["migrations"] == classified["backend"] == ["backend/src/cart/migrations/0002_x.py"]
    assert classified["frontend"] == [] and classified["infra"] == []


def test_decisions():
    frontend_only = decide(classify(["frontend/public/app.js"], RULES), TRIGGERS, DATABASE, first_deploy=False)
    assert frontend_only["rebuild"] == ["frontend"] and frontend_only["database"] is False and not frontend_only["nothing"]
    assert frontend_only["reuse"] == ["backend", "proxy"]
    docs_only = decide(classify(["README.md"], RULES), TRIGGERS, DATABASE, first_deploy=False)
    assert docs_only["nothing"] is True
    first = decide(classify([], RULES), TRIGGERS, DATABASE, first_deploy=True)
    assert first["rebuild"] == ["backend", "frontend", "proxy"] and first["database"] is True


def git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A repository whose app lives in a subfolder, as examples/shop does."""
    repo = tmp_path / "repo"
    app = repo / "apps" / "shop"
    for path, text in {
        "backend/src/cart/models.py": "a = 1\n",
        "backend/src/cart/migrations/0001_initial.py": "# initial\n",
        "frontend/public/app.js": "load()\n",
        "infra/proxy/nginx.conf": "server {}\n",
        "README.md": "shop\n",
    }.items():
        (app / path).parent.mkdir(parents=True, exist_ok=True)
        (app / path).write_text(text)
    (repo / "elsewhere.txt").write_text("not the app\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    return app


def detect(run_module, app, **args):
    base = {"path": str(app), "rules": RULES, "component_triggers": TRIGGERS, "database_triggers": DATABASE}
    base.update(args)
    return run_module("change_detection", base)


def commit(app, message):
    git(app, "add", "-A")
    git(app, "commit", "-qm", message)
    return git(app, "rev-parse", "HEAD")


def test_first_deploy_is_everything(repo, run_module):
    result = detect(run_module, repo)
    assert result["first_deploy"] is True and result["rebuild"] == ["backend", "frontend", "proxy"] and result["database"]


def test_frontend_change_only_rebuilds_the_frontend(repo, run_module):
    base = git(repo, "rev-parse", "HEAD")
    (repo / "frontend" / "public" / "app.js").write_text("load(); render()\n")
    (repo.parent.parent / "elsewhere.txt").write_text("changed outside the app\n")
    commit(repo, "frontend")
    result = detect(run_module, repo, base=base)
    assert result["files"] == ["frontend/public/app.js"]
    assert result["rebuild"] == ["frontend"] and result["database"] is False


def test_renames_count_both_paths_and_deletions_count(repo, run_module):
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "infra/proxy/nginx.conf", "frontend/nginx.conf")
    git(repo, "rm", "-q", "backend/src/cart/migrations/0001_initial.py")
    commit(repo, "move and delete")
    result = detect(run_module, repo, base=base)
    assert result["files"] == ["backend/src/cart/migrations/0001_initial.py", "frontend/nginx.conf", "infra/proxy/nginx.conf"]
    assert result["categories_changed"] == ["backend", "frontend", "infra", "migrations"]


def test_a_merge_is_compared_as_trees(repo, run_module):
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "feature")
    (repo / "backend" / "src" / "cart" / "models.py").write_text("a = 2\n")
    commit(repo, "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("shop, documented\n")
    commit(repo, "docs")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    result = detect(run_module, repo, base=base)
    assert result["files"] == ["README.md", "backend/src/cart/models.py"]
    assert result["rebuild"] == ["backend"] and result["database"] is True


def test_uncommitted_and_untracked_changes_count_with_the_worktree(repo, run_module):
    base = git(repo, "rev-parse", "HEAD")
    (repo / "infra" / "proxy" / "extra.conf").write_text("# new\n")
    assert detect(run_module, repo, base=base)["nothing"] is True
    result = detect(run_module, repo, base=base, include_worktree=True)
    assert result["files"] == ["infra/proxy/extra.conf"] and result["rebuild"] == ["proxy"]


def test_a_sha_that_does_not_exist_is_a_clear_error(repo, run_module):
    result = detect(run_module, repo, base="0123456789abcdef0123456789abcdef01234567")
    assert result["failed"] is True
    assert "does not exist" in result["msg"] and "shallow clone" in result["msg"]


def test_same_commit_is_nothing(repo, run_module):
    head = git(repo, "rev-parse", "HEAD")
    result = detect(run_module, repo, base=head)
    assert result["nothing"] is True and result["files"] == []


# --- rules derived from the app's components ---------------------------------------------------------
SHOP = {"backend": {"context": "backend", "port": 8000}, "frontend": {"context": "frontend", "port": 80}}
NOTES = {"backend": {"context": ".", "port": 8081}}


def test_rules_come_from_the_build_contexts():
    derived = derive_rules(SHOP)
    assert derived["rules"] == {"backend": ["backend/**"], "frontend": ["frontend/**"], "migrations": ["backend/**/migrations/*.py"]}
    assert derived["component_triggers"] == {"backend": ["backend", "migrations"], "frontend": ["frontend"]}
    assert derived["database_triggers"] == ["backend", "migrations"]


def test_a_backend_at_the_root_of_the_source_owns_every_file_and_its_migrations_are_anywhere_below():
    derived = derive_rules(NOTES)
    assert derived["rules"] == {"backend": ["**"], "migrations": ["**/migrations/*.py"]}
    classified = classify(["app/notes/migrations/0002_tag.py", "app/notes/migrations/__pycache__/x.pyc", "README.md"], derived["rules"])
    assert classified["migrations"] == ["app/notes/migrations/0002_tag.py"]
    assert classified["backend"] == ["README.md", "app/notes/migrations/0002_tag.py", "app/notes/migrations/__pycache__/x.pyc"]
    readme = decide(classify(["README.md"], derived["rules"]), derived["component_triggers"], derived["database_triggers"], False)
    assert readme["rebuild"] == ["backend"] and readme["reuse"] == []


def test_the_django_component_is_named_by_the_inventory_and_contexts_may_be_written_with_dot_slash():
    derived = derive_rules({"api": {"context": "./services/api/"}, "web": {"context": "web"}}, django="api")
    assert derived["rules"]["api"] == ["services/api/**"] and derived["rules"]["migrations"] == ["services/api/**/migrations/*.py"]
    assert derived["component_triggers"] == {"api": ["api", "migrations"], "web": ["web"]}
    assert derived["database_triggers"] == ["api", "migrations"]


def test_migration_paths_replace_the_default_glob():
    derived = derive_rules(NOTES, migration_paths=["app/*/migrations/*.py", "app/legacy/schema/*.sql"])
    assert derived["rules"]["migrations"] == ["app/*/migrations/*.py", "app/legacy/schema/*.sql"]
    assert classify(["app/legacy/schema/1.sql"], derived["rules"])["migrations"] == ["app/legacy/schema/1.sql"]


def test_given_rules_replace_the_derived_ones_and_components_the_app_lacks_are_never_named():
    resolved, problems = resolve_rules(NOTES, rules=RULES, component_triggers=TRIGGERS, database_triggers=DATABASE)
    assert problems == [] and resolved["rules"] == RULES
    assert resolved["component_triggers"] == {"backend": ["backend", "migrations"]}  # no frontend, no proxy
    first = decide(classify([], resolved["rules"]), resolved["component_triggers"], resolved["database_triggers"], first_deploy=True)
    assert first["rebuild"] == ["backend"] and first["reuse"] == []


def test_only_the_triggers_may_be_given_and_an_empty_database_list_means_never():
    resolved, problems = resolve_rules(SHOP, database_triggers=[])
    assert problems == [] and resolved["database_triggers"] == [] and resolved["rules"] == derive_rules(SHOP)["rules"]


@pytest.mark.parametrize(
    "args, named",
    [
        ({}, "no rules: give rules, or components to derive them from"),
        (
            {"components": NOTES, "component_triggers": {"backend": ["api"]}},
            "component_triggers.backend names categories with no rule: api",
        ),
        ({"components": NOTES, "database_triggers": ["schema"]}, "database_triggers names categories with no rule: schema"),
        ({"rules": {"backend": "backend/**"}}, "rules.backend must be a list of glob patterns"),
        ({"rules": {"backend": []}}, "rules.backend must be a list of glob patterns"),
    ],
)
def test_rules_that_cannot_work_are_named(args, named):
    _resolved, problems = resolve_rules(**args)
    assert any(named in problem for problem in problems), problems


def test_the_module_derives_the_rules_from_components(repo, run_module):
    result = run_module("change_detection", {"path": str(repo), "components": {"backend": {"context": "backend"}}})
    assert result["rules"]["rules"] == {"backend": ["backend/**"], "migrations": ["backend/**/migrations/*.py"]}
    assert result["first_deploy"] is True and result["rebuild"] == ["backend"] and result["database"] is True
    base = git(repo, "rev-parse", "HEAD")
    (repo / "backend" / "src" / "cart" / "migrations" / "0002_more.py").write_text("# more\n")
    (repo / "frontend" / "public" / "app.js").write_text("changed()\n")
    commit(repo, "a migration and the frontend the app does not declare")
    result = run_module("change_detection", {"path": str(repo), "base": base, "components": {"backend": {"context": "backend"}}})
    assert result["categories_changed"] == ["backend", "migrations"] and result["rebuild"] == ["backend"] and result["database"]
    assert "frontend" not in result["rebuild"] + result["reuse"]


def test_the_module_names_bad_overrides(repo, run_module):
    result = run_module("change_detection", {"path": str(repo), "components": NOTES, "database_triggers": ["schema"]})
    assert result["failed"] is True and "database_triggers names categories with no rule: schema" in result["msg"]
