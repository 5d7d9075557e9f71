"""A mock host's private-network addresses: what UpCloud's DHCP gives a server's private interface.

A server created with a private interface gets that address inside its mock host's network namespace (as a second
address on the host's eth0: the namespaces share one bridge, so every host reaches the others' private
addresses), and loses it when the server is deleted. Hosts without a namespace (loopback mode) get nothing: the
private addresses are then recorded only.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

    from mockcloud.upctl_world import HostEntry


def private_ipv4(server: dict[str, Any]) -> list[tuple[str, str]]:
    """(network uuid, address) of each IPv4 address on the private interfaces of ``server``."""
    return [
        (str(iface.get("network", "")), str(a["address"]))
        for iface in server.get("interfaces") or []
        if iface.get("type") == "private"
        for a in iface.get("addresses") or []
        if a.get("family") == "IPv4" and a.get("address")
    ]


def _private(state: dict[str, Any], server: dict[str, Any]) -> list[str]:
    """``address/prefix`` of each private interface of ``server`` (the prefix from its network's range)."""
    import ipaddress

    nets = {n["uuid"]: n for n in state.get("networks", [])}
    return [
        f"{address}/{ipaddress.ip_network(nets[net]['ip_networks'][0]['address'], strict=False).prefixlen}"
        for net, address in private_ipv4(server)
        if net in nets
    ]


def _ip(host: HostEntry | None, verb: str, addresses: list[str]) -> None:
    if host is None or host.netns is None or not addresses:
        return
    import shutil
    import subprocess

    if shutil.which("ip") is None:
        return
    for address in addresses:
        subprocess.run(["ip", "-n", host.netns, "addr", verb, address, "dev", "eth0"], capture_output=True, check=False)


def attach(host: HostEntry | None, state: dict[str, Any], server: dict[str, Any]) -> None:
    _ip(host, "add", _private(state, server))


def detach(host: HostEntry | None, state: dict[str, Any], server: dict[str, Any]) -> None:
    _ip(host, "del", _private(state, server))
