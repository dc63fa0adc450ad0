# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What disk cleanup may remove: images and stopped containers of releases no longer kept. Pure logic.

Kept: the live release, the previous good one, and the newest ``keep_releases`` releases that went live;
a running container, and an image a kept or running container uses, always stay. Volumes are never
touched: the app's named volumes (uploads) live across every release.
"""

from __future__ import annotations

SERVICE_COMPONENTS_EXCLUDED = ("database", "proxy")


def kept_releases(history: dict, keep_releases: int) -> list:
    """Ids of the releases whose images and containers stay, newest first."""
    good = [e for e in history.get("releases", []) if e.get("status") in ("live", "superseded", "rolled-back") and e.get("images")]
    ordered = []
    for entry in reversed(good):
        if entry["id"] not in ordered:
            ordered.append(entry["id"])
    kept = ordered[: max(keep_releases, 0)]
    live = history.get("current")
    previous = next((e["id"] for e in reversed(good) if e["id"] != live and e.get("status") in ("live", "superseded")), None)
    for must in (live, previous):
        if must and must not in kept:
            kept.append(must)
    return kept


def plan_cleanup(history: dict, containers: list, images: list, keep_releases: int) -> dict:
    """``containers``: [{name, image, running, component}]; ``images``: [{id, tags}] (the app's)."""
    kept = kept_releases(history, keep_releases)
    keep_images, keep_containers = set(), set()
    for entry in history.get("releases", []):
        if entry.get("id") in kept:
            keep_images.update((entry.get("images") or {}).values())
            keep_containers.update((entry.get("containers") or {}).values())
            # every replica of a kept release's workers (entry.replicas: component -> [names])
            for names in (entry.get("replicas") or {}).values():
                keep_containers.update(names if isinstance(names, list) else [names])
    remove_containers, reasons = [], {}
    for container in containers:
        name = container["name"]
        if container.get("running"):
            reasons[name] = "running"
        elif container.get("accessory"):
            reasons[name] = "an accessory (%s): kept, like its data" % container["accessory"]
        elif container.get("component") in SERVICE_COMPONENTS_EXCLUDED or not container.get("component"):
            reasons[name] = "not a release container"
        elif name in keep_containers:
            reasons[name] = "belongs to a kept release"
        else:
            remove_containers.append(name)
            reasons[name] = "stopped, of a release no longer kept"
    in_use = {c["image"] for c in containers if c["name"] not in remove_containers}
    remove_images = []
    for image in images:
        tags = image.get("tags") or []
        label = tags[0] if tags else image["id"]
        if any(tag in keep_images for tag in tags):
            reasons[label] = "image of a kept release"
        elif any(tag in in_use for tag in tags) or image["id"] in in_use:
            reasons[label] = "used by a container that stays"
        else:
            remove_images.append(image["id"])
            reasons[label] = "image of a release no longer kept"
    return {"kept_releases": kept, "remove_containers": remove_containers, "remove_images": remove_images, "reasons": reasons}
