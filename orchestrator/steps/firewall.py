"""firewall: only the allowed addresses reach SSH and the engine's ports; everything else inbound is dropped.

UpCloud's server firewall is stateless, so replies to the server's own outbound traffic (package mirrors,
model downloads, DNS) need accept rules of their own: TCP to the ephemeral port range, UDP from port 53/123,
ICMP. Those reply rules match any source, so explicit drops for the protected ports (SSH and every engine
port, TCP and UDP, both families) come before them: a reply rule never opens a protected port to outside
``allow``, even when engine.port lies in the ephemeral range. Rules are replaced accept-first/drop-last, and
deleted drop-first, so SSH is never cut off midway.
"""

from __future__ import annotations

import ipaddress

from orchestrator.actions import Local, Remote
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import ProviderError
from orchestrator.providers.base import FirewallRule
from orchestrator.providers.upctl_parse import parse_firewall_rules
from orchestrator.steps.provision import checked

EPHEMERAL = (32768, 60999)  # Linux net.ipv4.ip_local_port_range default
PORT_FIELDS = ("port", "http_port", "grpc_port", "metrics_port", "rest_port")


def engine_ports(ctx: StepContext) -> list[int]:
    return sorted({int(getattr(ctx.cfg.engine, f)) for f in PORT_FIELDS if getattr(ctx.cfg.engine, f, None)})


def desired_rules(allow: list[str], ssh_port: int, ports: list[int]) -> list[FirewallRule]:
    rules: list[FirewallRule] = []
    for cidr in allow:
        if cidr.startswith("<"):  # dry-run placeholder for the operator's address
            fam, net = "IPv4", cidr
        else:
            parsed = ipaddress.ip_network(cidr, strict=False)
            fam, net = f"IPv{parsed.version}", str(parsed)
        for port in [ssh_port, *ports]:
            what = "ssh" if port == ssh_port else "engine"
            rules.append(FirewallRule("in", "accept", fam, "tcp", net, (port, port), comment=f"orchestrator: {what}"))
    for fam in ("IPv4", "IPv6"):
        for proto in ("tcp", "udp"):
            for lo, hi in _ranges([ssh_port, *ports]):
                rules.append(
                    FirewallRule("in", "drop", fam, proto, dest_ports=(lo, hi), comment="orchestrator: protected port")
                )
    for fam in ("IPv4", "IPv6"):
        rules += [
            FirewallRule("in", "accept", fam, "tcp", dest_ports=EPHEMERAL, comment="orchestrator: replies (tcp)"),
            FirewallRule("in", "accept", fam, "udp", source_ports=(53, 53), comment="orchestrator: dns replies"),
            FirewallRule("in", "accept", fam, "udp", source_ports=(123, 123), comment="orchestrator: ntp replies"),
            FirewallRule("in", "accept", fam, "icmp", comment="orchestrator: icmp"),
        ]
    return [*rules, FirewallRule("in", "drop", comment="orchestrator: default drop")]


def _ranges(ports: list[int]) -> list[tuple[int, int]]:
    """Sorted, merged runs of consecutive ports: [22, 8000, 8001] -> [(22, 22), (8000, 8001)]."""
    runs: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if runs and port == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], port)
        else:
            runs.append((port, port))
    return runs


def _key(rule: FirewallRule) -> tuple[str, ...]:
    start = end = ""
    if rule.source:
        net = ipaddress.ip_network(rule.source, strict=False)
        start, end = str(net.network_address), str(net.broadcast_address)
    dp = rule.dest_ports or ("", "")
    sp = rule.source_ports or ("", "")
    return (
        rule.direction,
        rule.action,
        rule.family,
        rule.protocol,
        start,
        end,
        str(dp[0]),
        str(dp[1]),
        str(sp[0]),
        str(sp[1]),
    )


def _existing_key(r: dict[str, str]) -> tuple[str, ...]:
    return (
        r.get("direction", ""),
        r.get("action", ""),
        r.get("family", ""),
        r.get("protocol", ""),
        r.get("source_address_start", ""),
        r.get("source_address_end", ""),
        r.get("destination_port_start", ""),
        r.get("destination_port_end", ""),
        r.get("source_port_start", ""),
        r.get("source_port_end", ""),
    )


def firewall(ctx: StepContext) -> StepGen:
    fw = ctx.cfg.provider.firewall
    if not fw.enabled:
        return "disabled (provider.firewall.enabled: false): every port is reachable from anywhere"
    srv = ctx.server_ref
    allow = list(fw.allow)
    if not allow:
        # The operator's address as the server sees it (what SSH came from).
        r = yield Remote('printf "%s" "${SSH_CLIENT%% *}"', "the operator's address, as the server sees it")
        if r.known:
            try:
                addr = ipaddress.ip_address(r.stdout.strip())
            except ValueError:
                raise ProviderError(
                    f"cannot tell the operator's address from SSH_CLIENT ({r.stdout.strip()!r})",
                    "set provider.firewall.allow to the CIDRs that may reach SSH and the engine",
                ) from None
            allow = [f"{addr}/{addr.max_prefixlen}"]
        else:
            allow = ["<operator address>/32"]
    wanted = desired_rules(allow, ctx.cfg.ssh.port, engine_ports(ctx))
    show = Local(tuple(ctx.upctl.firewall_rules(srv)), "current firewall rules")
    r = checked(ctx, show, (yield show))
    existing = parse_firewall_rules(r.stdout) if r.known else []
    if r.known and [_existing_key(x) for x in existing] == [_key(w) for w in wanted]:
        return f"already configured: SSH and engine ports open to {', '.join(allow)} only"
    # Last position first (the default drop goes first); a dry-run does not know the rules, so it shows one
    # deletion with a placeholder standing for each rule the server has then.
    positions: list[int | str] = (
        sorted((int(x.get("position") or 0) for x in existing), reverse=True)
        if r.known
        else ["<each existing rule, last first>"]
    )
    for position in positions:
        delete = Local(tuple(ctx.upctl.firewall_delete(srv, position)), "remove an old rule", mutates=True)
        checked(ctx, delete, (yield delete))
    for new in wanted:
        create = Local(tuple(ctx.upctl.firewall_create(srv, new)), "add a firewall rule", mutates=True)
        checked(ctx, create, (yield create))
    enable = Local(tuple(ctx.upctl.enable_firewall(srv)), "turn the firewall on", mutates=True)
    checked(ctx, enable, (yield enable))
    return f"SSH and engine ports ({', '.join(map(str, engine_ports(ctx)))}) open to {', '.join(allow)} only"
