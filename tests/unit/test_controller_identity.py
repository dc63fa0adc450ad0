"""The controller's identity (plugins/lookup/smart_deploy_controller.py): the same machine, boot and pid
namespace the deploy lock computes on a Linux target, and no /proc read on a controller that is not Linux
(a macOS laptop)."""

import importlib.util

from ansible.module_utils.smart_deploy import lock

from tests.conftest import ROOT


def load_plugin():
    spec = importlib.util.spec_from_file_location("smart_deploy_controller", ROOT / "plugins" / "lookup" / "smart_deploy_controller.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_on_linux_the_identity_is_the_one_the_lock_computes():
    plugin = load_plugin()
    identity = plugin.controller(platform="linux")["identity"]
    assert identity == lock.local_identity()
    assert identity["boot_id"] and identity["pid_ns"].startswith("pid:[")


def test_a_macos_controller_reads_nothing_under_proc_and_leaves_boot_and_namespace_unknown():
    plugin = load_plugin()
    paths = []

    def recording_read(path):
        paths.append(path)
        return plugin.read(path)

    def recording_namespace(pid):
        paths.append("/proc/%d/ns/pid" % pid)
        return plugin.pid_namespace(pid)

    found = plugin.controller(platform="darwin", read=recording_read, pid_namespace=recording_namespace)
    assert paths == []
    assert found["identity"]["boot_id"] == "" and found["identity"]["pid_ns"] == ""
    assert found["identity"]["machine_id"] and found["host"]
    # a lock held with an unknown boot or namespace is never judged by its pid: only its expiry frees it
    held = lock.new_lock("l", "me", found["host"], found["pid"], "r", "deploy", lock.utc_now(), 60, found["identity"])
    assert lock.checkable_pid(held, lock.local_identity()) is None
