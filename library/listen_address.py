#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: listen_address
short_description: Check that the app's proxy can be published on an address and port of the target
description:
  - Before anything changes, checks that O(bind) is an address of this host and that O(port) on it is free,
    or already published by the app's own proxy container (O(owner)), which is then replaced in place.
  - A port held by another process or another container, or an address the host does not have, fails with
    a message that says which - instead of a deploy that removes the old proxy and cannot start the new one.
  - Changes nothing.
options:
  bind:
    description: Address the proxy is to be published on (C(127.0.0.1), C(0.0.0.0), C(::1) ...).
    type: str
    required: true
  port:
    description: Port the proxy is to be published on.
    type: int
    required: true
  owner:
    description: Name of the app's proxy container; the port may be held by it.
    type: str
  docker_cli:
    description: Docker command line client.
    type: str
    default: docker
  bind_var:
    description: Name of the setting O(bind) comes from, as failures name it.
    type: str
    default: smart_deploy_http_bind
  port_var:
    description: Name of the setting O(port) comes from, as failures name it.
    type: str
    default: smart_deploy_http_port
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Read-only.
author:
  - smart-deploy contributors
"""

EXAMPLES = r"""
- name: Check that the proxy can listen on 127.0.0.1:8080
  listen_address:
    bind: 127.0.0.1
    port: 8080
    owner: shop-proxy
"""

RETURN = r"""
state:
  description: V(free), or V(ours) when the app's own proxy publishes it.
  returned: success
  type: str
holders:
  description: Containers that publish the port.
  returned: always
  type: list
  elements: str
"""

import errno
import ipaddress
import socket
import subprocess

from ansible.module_utils.basic import AnsibleModule


def try_bind(bind, port):
    """None when (bind, port) could be bound now, else the errno that refused it."""
    family = socket.AF_INET6 if ipaddress.ip_address(bind).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
        return None
    except OSError as exc:
        return exc.errno
    finally:
        sock.close()


WILDCARDS = ("0.0.0.0", "::", "")


def overlaps(one, other):
    """Whether two listening addresses take the same port: the same address, or either of them every address."""
    return one in WILDCARDS or other in WILDCARDS or ipaddress.ip_address(one) == ipaddress.ip_address(other)


def published_on(ports, port):
    """The host addresses a container's ``docker ps`` Ports column publishes ``port`` on
    ("127.0.0.11:8080->80/tcp, [::1]:8080->80/tcp, :::8080->80/tcp" -> ['127.0.0.11', '::1', '::'])."""
    found = []
    for item in ports.split(","):
        host = item.strip().split("->", 1)[0]
        address, _, published = host.rpartition(":")
        if published == str(port) and "->" in item:
            found.append(address.strip("[]"))
    return found


def publishers(docker, port, bind="0.0.0.0"):
    """Names of the running containers that publish ``port`` on ``bind`` (or on every address) of the host:
    several hosts that share one engine each publish on an address of their own."""
    result = subprocess.run([docker, "ps", "--filter", "publish=%d" % port, "--format", "{{.Names}}\t{{.Ports}}"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        return []
    found = []
    for line in result.stdout.splitlines():
        name, _, ports = line.partition("\t")
        addresses = published_on(ports, port)
        if name and (not addresses or any(overlaps(bind, address) for address in addresses)):
            found.append(name)
    return sorted(found)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bind=dict(type="str", required=True),
            port=dict(type="int", required=True),
            owner=dict(type="str"),
            docker_cli=dict(type="str", default="docker"),
            bind_var=dict(type="str", default="smart_deploy_http_bind"),
            port_var=dict(type="str", default="smart_deploy_http_port"),
        ),
        supports_check_mode=True,
    )
    bind, port, owner = module.params["bind"], module.params["port"], module.params["owner"]
    bind_var, port_var = module.params["bind_var"], module.params["port_var"]
    where = "%s:%d" % (bind if ":" not in bind else "[%s]" % bind, port)
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        module.fail_json(msg="%s '%s' is not an IP address" % (bind_var, bind), holders=[])
    if not 1 <= port <= 65535:
        module.fail_json(msg="%s %d is not a port number (1-65535)" % (port_var, port), holders=[])
    docker = module.get_bin_path(module.params["docker_cli"]) or module.params["docker_cli"]
    holders = publishers(docker, port, bind)
    others = [name for name in holders if name != owner]
    if others:
        module.fail_json(msg="%s: %s is already published by the container(s) %s: choose another "
                         "%s or stop them" % (port_var, where, ", ".join(others), port_var), holders=holders)  # fmt: skip
    refused = try_bind(bind, port)
    if refused == errno.EADDRNOTAVAIL:
        module.fail_json(msg="%s: %s is not an address of this host (%s): use one of its own addresses, "
                         "127.0.0.1 or 0.0.0.0" % (bind_var, bind, socket.gethostname()), holders=holders)  # fmt: skip
    if refused == errno.EADDRINUSE and owner not in holders:
        module.fail_json(msg="%s: %s is already in use by another program on this host: choose another "
                         "%s or stop that program" % (port_var, where, port_var), holders=holders)  # fmt: skip
    if refused not in (None, errno.EADDRINUSE):
        module.fail_json(msg="cannot listen on %s: %s" % (where, errno.errorcode.get(refused, refused)), holders=holders)
    module.exit_json(changed=False, state="ours" if owner in holders else "free", holders=holders)


if __name__ == "__main__":
    main()
