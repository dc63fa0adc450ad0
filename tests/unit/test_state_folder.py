"""state_folder: one app per state folder, never a system or shared folder, modes set."""

import json


def run(run_module, path, app="shop", check_mode=False):
    return run_module("state_folder", {"path": str(path), "app": app}, check_mode=check_mode)


def test_a_new_folder_is_created_claimed_and_private(run_module, tmp_path):
    path = tmp_path / "srv" / "shop"
    result = run(run_module, path)
    assert result["changed"] and result["created"] and result["claimed"]
    assert json.loads((path / ".smart-deploy.json").read_text())["app"] == "shop"
    assert path.stat().st_mode & 0o777 == 0o750 and (path / "backups").stat().st_mode & 0o777 == 0o700
    again = run(run_module, path)
    assert not again["changed"] and not again["claimed"]


def test_check_mode_creates_nothing(run_module, tmp_path):
    result = run(run_module, tmp_path / "shop", check_mode=True)
    assert result["changed"] and not (tmp_path / "shop").exists()


def test_another_apps_folder_is_refused(run_module, tmp_path):
    run(run_module, tmp_path / "shared")
    result = run(run_module, tmp_path / "shared", app="blog")
    assert result["failed"] and "belongs to the app 'shop', not 'blog'" in result["msg"]


def test_a_folder_with_other_files_is_refused_and_left_alone(run_module, tmp_path):
    folder = tmp_path / "home"
    folder.mkdir(mode=0o755)
    (folder / "notes.txt").write_text("mine")
    result = run(run_module, folder)
    assert result["failed"] and "holds files that are not smart-deploy's (notes.txt)" in result["msg"]
    assert folder.stat().st_mode & 0o777 == 0o755 and not (folder / ".smart-deploy.json").exists()


def test_a_folder_of_this_app_from_before_claim_files_is_claimed(run_module, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "releases.json").write_text(json.dumps({"app": "shop", "releases": []}))
    (folder / "backups").mkdir()
    result = run(run_module, folder)
    assert result["changed"] and result["claimed"] and not result["created"]
    other = run(run_module, folder, app="blog")
    assert other["failed"] and "belongs to the app 'shop'" in other["msg"]


def test_system_folders_are_refused_before_anything(run_module):
    for path in ("/", "/tmp", "/srv", "/var/lib", "/etc/shop"):
        result = run(run_module, path)
        assert result["failed"] and "smart_deploy_state_dir" in result["msg"], path
