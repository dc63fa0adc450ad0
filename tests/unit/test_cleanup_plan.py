"""What disk cleanup may remove, on plain data."""

from ansible.module_utils.smart_deploy.cleanup import kept_releases, plan_cleanup


def entry(release, status, images=None, containers=None):
    images = images or {"backend": "shop-backend:%s" % release, "frontend": "shop-frontend:%s" % release}
    containers = containers or {"backend": "shop-web-%s" % release, "frontend": "shop-frontend-%s" % release}
    return {"id": release, "status": status, "images": images, "containers": containers}


HISTORY = {
    "current": "r5",
    "releases": [
        entry("r1", "superseded"),
        entry("r2", "superseded"),
        entry("r3", "failed"),
        entry("r4", "superseded"),
        entry("r5", "live", images={"backend": "shop-backend:r5", "frontend": "shop-frontend:r2"},
              containers={"backend": "shop-web-r5", "frontend": "shop-frontend-r2"}),
    ],
}  # fmt: skip


def container(name, running=False, component="backend", image=None):
    return {"name": name, "running": running, "component": component, "image": image or "x"}


def test_live_and_previous_are_always_kept():
    assert kept_releases(HISTORY, 0) == ["r5", "r4"]
    assert kept_releases(HISTORY, 3) == ["r5", "r4", "r2"]


def test_failed_releases_are_never_kept():
    assert "r3" not in kept_releases(HISTORY, 10)


def test_stopped_containers_of_old_releases_go_running_ones_stay():
    containers = [
        container("shop-web-r1"),
        container("shop-web-r3"),
        container("shop-web-r4"),
        container("shop-web-r5", running=True, image="shop-backend:r5"),
        container("shop-web-r2", running=True),  # someone started it by hand: it stays
        container("shop-db", component="database"),
        container("shop-proxy", component="proxy"),
    ]
    plan = plan_cleanup(HISTORY, containers, [], keep_releases=0)
    assert sorted(plan["remove_containers"]) == ["shop-web-r1", "shop-web-r3"]
    assert plan["reasons"]["shop-db"] == "not a release container"


def test_images_of_kept_releases_and_of_remaining_containers_stay():
    images = [
        {"id": "i1", "tags": ["shop-backend:r1"]},
        {"id": "i2", "tags": ["shop-frontend:r2"]},  # the live release still serves this frontend
        {"id": "i3", "tags": ["shop-backend:r3"]},
        {"id": "i4", "tags": ["shop-backend:r4"]},
        {"id": "i5", "tags": ["shop-backend:r9"]},  # not in the history, but a container that stays uses it
    ]
    containers = [container("shop-debug", running=True, image="shop-backend:r9")]
    plan = plan_cleanup(HISTORY, containers, images, keep_releases=0)
    assert sorted(plan["remove_images"]) == ["i1", "i3"]


def test_a_stopped_accessory_stays_with_its_data():
    # Redis stopped by hand (roles/accessories labels it smart-deploy.accessory): cleanup never removes it
    redis = dict(container("shop-redis", component="redis"), accessory="redis")
    plan = plan_cleanup(HISTORY, [redis, container("shop-web-r1")], [], keep_releases=0)
    assert plan["remove_containers"] == ["shop-web-r1"]
    assert plan["reasons"]["shop-redis"] == "an accessory (redis): kept, like its data"
