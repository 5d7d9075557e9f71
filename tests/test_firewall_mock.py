"""The fake UpCloud firewall's translation to nftables: the orchestrator's rules, stateless, first match wins."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from mockcloud import upctl_firewall
from mockcloud.upctl_firewall import TABLE, nft_rule, ruleset
from orchestrator.steps.firewall import desired_rules


def as_upcloud(rules: list[object]) -> list[dict[str, str]]:
    """FirewallRule -> the rule dicts the fake keeps (what `upctl server firewall create` stores)."""
    import ipaddress

    out = []
    for pos, r in enumerate(rules, start=1):
        d = {"direction": r.direction, "action": r.action, "family": r.family, "protocol": r.protocol}  # type: ignore[attr-defined]
        if r.source:  # type: ignore[attr-defined]
            net = ipaddress.ip_network(r.source, strict=False)  # type: ignore[attr-defined]
            d["source_address_start"], d["source_address_end"] = str(net[0]), str(net[-1])
        for side, ports in (("destination", r.dest_ports), ("source", r.source_ports)):  # type: ignore[attr-defined]
            if ports:
                d[f"{side}_port_start"], d[f"{side}_port_end"] = str(ports[0]), str(ports[1])
        d["position"] = str(pos)
        out.append(d)
    return out


def test_translation_keeps_order_and_fields() -> None:
    rules = as_upcloud(desired_rules(["203.0.113.7/32", "2001:db8::/64"], 22, [8000]))
    text = ruleset({"firewall": "on", "firewall_rules": rules})
    body = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("iifname")]
    assert len(body) == len(rules)
    assert body[0] == 'iifname "eth0" meta nfproto ipv4 meta l4proto tcp ip saddr 203.0.113.7 th dport 22 accept'
    assert body[2] == (
        'iifname "eth0" meta nfproto ipv6 meta l4proto tcp ip6 saddr 2001:db8::-2001:db8::ffff:ffff:ffff:ffff '
        "th dport 22 accept"
    )
    assert 'iifname "eth0" meta nfproto ipv4 meta l4proto udp th dport 8000 drop' in body
    assert 'iifname "eth0" meta nfproto ipv4 meta l4proto udp th sport 53 accept' in body
    assert body[-1] == 'iifname "eth0" drop'
    assert "policy accept" in text and "ct state" not in text  # stateless, like UpCloud's
    off = ruleset({"firewall": "off", "firewall_rules": rules})
    assert "iifname" not in off and f"delete table inet {TABLE}" in off
    assert nft_rule({"direction": "out", "action": "drop"}) is None


PRIVATE = [  # a server on a private network, as the fake records it (public first, then the private interface)
    {"type": "public", "addresses": [{"address": "10.200.0.5", "family": "IPv4"}]},
    {"type": "private", "network": "03aa", "addresses": [{"address": "10.60.0.3", "family": "IPv4"}]},
]


def test_the_private_interface_is_not_behind_the_firewall() -> None:
    """UpCloud filters the public and utility interfaces only: packets to the private address skip the rules."""
    rules = as_upcloud(desired_rules(["203.0.113.7/32"], 22, [8000]))
    text = ruleset({"firewall": "on", "firewall_rules": rules, "interfaces": PRIVATE})
    body = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("iifname")]
    assert body[0] == 'iifname "eth0" ip daddr { 10.60.0.3 } accept'
    assert len(body) == len(rules) + 1 and "10.200.0.5" not in text
    public_only = ruleset({"firewall": "on", "firewall_rules": rules, "interfaces": PRIVATE[:1]})
    assert "daddr" not in public_only


@pytest.mark.skipif(os.geteuid() != 0 or upctl_firewall.nft() is None, reason="needs root and nft")
def test_the_ruleset_loads_into_a_namespace() -> None:
    ns = f"sshfw-nft-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        rules = as_upcloud(desired_rules(["203.0.113.7/32", "2001:db8::/64"], 22, [8000, 40000]))
        text = ruleset({"firewall": "on", "firewall_rules": rules, "interfaces": PRIVATE})
        for _ in range(2):  # replacing is idempotent
            argv = ["ip", "netns", "exec", ns, str(upctl_firewall.nft()), "-f", "-"]
            loaded = subprocess.run(argv, input=text, capture_output=True, text=True)
            assert loaded.returncode == 0, loaded.stderr
        listed = subprocess.run(
            ["ip", "netns", "exec", ns, str(upctl_firewall.nft()), "list", "table", "inet", TABLE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert sum(ln.strip().startswith('iifname "eth0"') for ln in listed.splitlines()) == len(rules) + 1
        assert "ip daddr 10.60.0.3 accept" in listed  # the private address: accepted before every rule
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
