"""The fake UpCloud firewall really filters: a server's rules become nftables rules in its mock host's netns.

UpCloud's server firewall is stateless and sits in front of the public and utility interfaces (not the private
one: "The firewall is enabled on public and utility network interfaces", terraform-provider-upcloud): inbound
packets are checked against the rules in position order, the first match decides, and a packet no rule matches is
accepted. The translation keeps exactly that (no conntrack, ``iifname eth0`` only, policy accept); a mock host's
private addresses sit on that same eth0 (mockcloud/upctl_private.py), so packets to them are accepted first.
Only hosts that live in a network namespace (mock hosts started as root) can be filtered; elsewhere this does
nothing, and ``filtering(host)`` says so.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

    from mockcloud.upctl_world import HostEntry

TABLE = "mockcloud_upcloud_fw"


def nft() -> str | None:
    import shutil  # only hosts in a network namespace get here (see filtering)

    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)


def filtering(host: HostEntry | None) -> bool:
    return host is not None and host.netns is not None and nft() is not None


def _ports(rule: dict[str, Any], side: str) -> str:
    start, end = str(rule.get(f"{side}_port_start") or ""), str(rule.get(f"{side}_port_end") or "")
    if not start:
        return ""
    word = "dport" if side == "destination" else "sport"
    return f" th {word} {start}" + (f"-{end}" if end and end != start else "")


def nft_rule(rule: dict[str, Any]) -> str | None:
    """One UpCloud rule as an nft statement; None for rules that never see inbound packets."""
    if rule.get("direction") != "in" or rule.get("action") not in ("accept", "drop"):
        return None
    family, proto = rule.get("family") or "", rule.get("protocol") or ""
    parts = ['iifname "eth0"']
    if family:
        parts.append(f"meta nfproto {'ipv4' if family == 'IPv4' else 'ipv6'}")
    if proto == "icmp":
        icmp = {"IPv4": "icmp", "IPv6": "ipv6-icmp"}.get(family, "{ icmp, ipv6-icmp }")
        parts.append(f"meta l4proto {icmp}")
    elif proto in ("tcp", "udp"):
        parts.append(f"meta l4proto {proto}")
    src_start, src_end = rule.get("source_address_start") or "", rule.get("source_address_end") or ""
    if src_start:
        ip = "ip6" if ":" in src_start else "ip"
        parts.append(f"{ip} saddr {src_start}" + (f"-{src_end}" if src_end and src_end != src_start else ""))
    if proto in ("tcp", "udp"):
        parts[-1] += _ports(rule, "destination") + _ports(rule, "source")
    return " ".join(parts) + f" {rule['action']}"


def ruleset(server: dict[str, Any]) -> str:
    """The nft script that replaces our table with the server's current firewall (none when it is off)."""
    script = [f"table inet {TABLE}", f"delete table inet {TABLE}"]
    if server.get("firewall") == "on" and server.get("state") != "deleted":
        body = [r for r in (nft_rule(x) for x in server.get("firewall_rules") or []) if r]
        from mockcloud.upctl_private import private_ipv4

        private = [address for _net, address in private_ipv4(server)]
        if private:  # the private interface is not behind the firewall
            body.insert(0, f'iifname "eth0" ip daddr {{ {", ".join(private)} }} accept')
        script.append(f"table inet {TABLE} {{")
        script.append("  chain input {")
        script.append("    type filter hook input priority 0; policy accept;")
        script += [f"    {line}" for line in body]
        script += ["  }", "}"]
    return "\n".join(script) + "\n"


def apply(host: HostEntry | None, server: dict[str, Any] | None) -> None:
    """Make the host's netns filter as the server's firewall says; a failure is an error of the fake."""
    if not filtering(host) or server is None:
        return
    assert host is not None and host.netns is not None
    binary = nft()
    assert binary is not None
    import subprocess

    proc = subprocess.run(
        ["ip", "netns", "exec", host.netns, binary, "-f", "-"],
        input=ruleset(server),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"fake firewall: nft failed in {host.netns}: {proc.stderr.strip()}\n{ruleset(server)}")


def rules_changed(host: HostEntry | None, server: dict[str, Any]) -> None:
    """A rule was added or removed: it filters only while the firewall is on. Off, the netns has no table of ours
    (every change of the firewall's state goes through apply), so there is nothing to redo: the orchestrator adds
    its rules before it turns the firewall on, and each nft run was most of such a call's cost."""
    if server.get("firewall") == "on":
        apply(host, server)


def remove(host: HostEntry | None) -> None:
    apply(host, {"firewall": "off"})
