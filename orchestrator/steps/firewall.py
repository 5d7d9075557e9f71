"""firewall: only the allowed addresses reach SSH and the engine's ports; everything else inbound is dropped.

UpCloud's server firewall is stateless, so replies to the server's own outbound traffic (package mirrors,
model downloads, DNS) need accept rules of their own: TCP to the ephemeral port range, UDP from port 53/123,
ICMP. Those reply rules match any source, so explicit drops for the protected ports come before them wherever a
reply rule would otherwise let a packet through: UDP on every protected port (a DNS/NTP reply rule matches any
destination port), TCP on the protected ports inside the ephemeral range (engine.port may lie there); a protected
TCP port outside it falls through to the default drop. So a reply rule never opens a protected port to outside
``allow``. Rules are replaced accept-first/drop-last, and deleted drop-first, so SSH is never cut off midway.

The firewall filters the server's public and utility interfaces only (UpCloud: "The firewall is enabled on public
and utility network interfaces", terraform-provider-upcloud's firewall_rules resource); a Ray cluster's private
network is not behind it. So the rules open no Ray port at all: the nodes reach each other on the deployment's own
private network (only its nodes are attached), and Ray's ports are protected ports on the public side. UpCloud
takes at most 1000 rules per server (the same resource's documentation): deploy's preflight refuses a longer list
before any server exists (check_rule_limit).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from orchestrator.actions import Remote
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import ConfigError, HostKeyMismatch, ProviderError, SSHError
from orchestrator.ports import DCGM_PORT, NODE_PORT, engine_listeners
from orchestrator.providers.base import FirewallRule
from orchestrator.steps.host import connect_action

if TYPE_CHECKING:
    from orchestrator.config import DeploymentConfig

EPHEMERAL = (32768, 60999)  # Linux net.ipv4.ip_local_port_range default
MAX_RULES = 1000  # per server (UpCloud)


def engine_ports(cfg: DeploymentConfig) -> list[int]:
    """The ports the allowed addresses reach besides SSH (a cluster's: Serve, dashboard, metrics)."""
    c = cfg.cluster
    if c is not None:
        p = c.ports
        ports = {p.serve_http, p.dashboard, p.metrics_export, p.autoscaler_metrics, p.dashboard_metrics}
    else:
        ports = set(engine_listeners(cfg.engine).values())
    if cfg.monitoring.dcgm_exporter:
        ports.add(DCGM_PORT)
    if cfg.monitoring.node_exporter:
        ports.add(NODE_PORT)
    return sorted(ports)


def cluster_ports(cfg: DeploymentConfig) -> list[int]:
    """Every port a Ray node listens on: protected on the public side (the private network is not filtered)."""
    c = cfg.cluster
    if c is None:
        return []
    return sorted({*c.ports.singles().values(), *range(c.ports.min_worker, c.ports.max_worker + 1)})


def rules_for(cfg: DeploymentConfig, allow: list[str]) -> list[FirewallRule]:
    """The rules a server of this config gets for ``allow``."""
    return desired_rules(allow, cfg.ssh.port, engine_ports(cfg), cluster_ports(cfg))


def check_rule_limit(cfg: DeploymentConfig) -> None:
    """Refuse (ConfigError) a config whose firewall needs more rules than UpCloud takes, before any server exists;
    without ``allow`` the firewall step uses one address (the operator's)."""
    fw = cfg.provider.firewall
    if fw.enabled:
        rules_for(cfg, list(fw.allow) or ["192.0.2.1/32"])


def desired_rules(
    allow: list[str], ssh_port: int, ports: list[int], ray_ports: list[int] | None = None
) -> list[FirewallRule]:
    """Accept ``allow`` on SSH and ``ports``; drop every protected port (those and a cluster's ``ray_ports``) from
    anyone else where a reply rule would accept it; replies, DNS, NTP, ICMP; drop the rest."""
    rules: list[FirewallRule] = []
    protected = [ssh_port, *ports, *(ray_ports or [])]
    for cidr in allow:
        if cidr.startswith("<"):  # dry-run placeholder for the operator's address
            fam, net = "IPv4", cidr
        else:
            parsed = ipaddress.ip_network(cidr, strict=False)
            fam, net = f"IPv{parsed.version}", str(parsed)
        for port in [ssh_port, *ports]:
            what = "ssh" if port == ssh_port else "engine"
            rules.append(FirewallRule("in", "accept", fam, "tcp", net, (port, port), comment=f"orchestrator: {what}"))
    drops = {"tcp": _clip(_ranges(protected), EPHEMERAL), "udp": _ranges(protected)}
    for fam in ("IPv4", "IPv6"):
        for proto in ("tcp", "udp"):
            for lo, hi in drops[proto]:
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
    rules.append(FirewallRule("in", "drop", comment="orchestrator: default drop"))
    if len(rules) > MAX_RULES:
        raise ConfigError(
            f"provider.firewall.allow: {len(allow)} address(es) x {1 + len(ports)} port(s) make {len(rules)} "
            f"firewall rules; UpCloud takes at most {MAX_RULES} per server",
            "allow fewer, wider networks (CIDRs) in provider.firewall.allow",
            field="provider.firewall.allow",
        )
    return rules


def _clip(runs: list[tuple[int, int]], window: tuple[int, int]) -> list[tuple[int, int]]:
    """The parts of ``runs`` inside ``window``."""
    return [(max(lo, window[0]), min(hi, window[1])) for lo, hi in runs if hi >= window[0] and lo <= window[1]]


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
    world = fw.everyone  # the operator's own address (allow unset) is never everyone
    if world:
        guard = (
            "the API key guards the engine's /v1 routes, not its /metrics or the exporters"
            if ctx.cfg.engine.api_key_env
            else "the engine takes no API key: it answers anyone"
        )
        ctx.notify(
            f"provider.firewall.allow has {', '.join(world)}: SSH (key-only) and the engine's ports "
            f"({', '.join(map(str, engine_ports(ctx.cfg)))}) are reachable from anywhere; {guard}"
        )
    wanted = rules_for(ctx.cfg, allow)
    # Read even on a server this run created: a retried step must see the rules its first attempt added. A dry
    # run cannot read them; for the server it creates, it knows there are none (nothing to delete).
    show = ctx.provider.firewall_rules(srv, "current firewall rules")
    r = show.check((yield show.action))
    existing = show.parse(r) if r.known else []
    if r.known and [_existing_key(x) for x in existing] == [_key(w) for w in wanted]:
        return f"already configured: SSH and engine ports open to {', '.join(allow)} only"
    yield from _replace(ctx, r.known or ctx.created_this_run, existing, wanted)
    ray = "; Ray's ports closed (the nodes talk on the private network)" if ctx.cfg.cluster else ""
    return f"SSH and engine ports ({', '.join(map(str, engine_ports(ctx.cfg)))}) open to {', '.join(allow)} only{ray}"


def _replace(ctx: StepContext, known: bool, existing: list[dict[str, str]], wanted: list[FirewallRule]) -> StepGen:
    """Delete the server's rules (last first), create ``wanted`` in order, turn the firewall on."""
    srv = ctx.server_ref
    # Last position first (the default drop goes first); a dry-run does not know the rules, so it shows one
    # deletion with a placeholder standing for each rule the server has then.
    positions: list[int | str] = (
        sorted((int(x.get("position") or 0) for x in existing), reverse=True)
        if known
        else ["<each existing rule, last first>"]
    )
    for position in positions:
        delete = ctx.provider.firewall_delete(srv, position, "remove an old rule")
        delete.check((yield delete.action))
    for new in wanted:
        create = ctx.provider.firewall_create(srv, new, "add a firewall rule")
        create.check((yield create.action))
    enable = ctx.provider.enable_firewall(srv, "turn the firewall on")
    enable.check((yield enable.action))
    return None


PROBE_SECONDS = 5.0  # how long SSH may stay silent before the allow rule is taken to be stale
TEMPORARY = "orchestrator: temporary ssh (address changed)"


def _ssh_allow_sources(existing: list[dict[str, str]], ssh_port: int) -> set[str]:
    """The source ranges our SSH accept rules admit (start-end as UpCloud stores them)."""
    return {
        f"{x.get('source_address_start', '')}-{x.get('source_address_end', '')}"
        for x in existing
        if x.get("direction") == "in"
        and x.get("action") == "accept"
        and x.get("protocol") == "tcp"
        and x.get("destination_port_start") == str(ssh_port)
        and x.get("source_address_start")
    }


def _as_range(cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    return f"{net.network_address}-{net.broadcast_address}"


def firewall_access(ctx: StepContext) -> StepGen:
    """Before SSH: when our firewall admits SSH only from some addresses and SSH does not answer, the
    operator's address has probably changed. Repair the allow rule through the API instead of letting
    `connect` retry for minutes: with provider.firewall.allow, put those rules in place; by default (the
    operator's address), open SSH to any address for now — key-only login, pinned host key — and say so;
    the firewall step then narrows it to the address the server sees SSH come from.
    """
    fw = ctx.cfg.provider.firewall
    if not fw.enabled:
        return "firewall disabled (provider.firewall.enabled: false)"
    ssh = ctx.cfg.ssh
    if ctx.created_this_run:
        return "a server this run created has no firewall rules yet: nothing to check"
    show = ctx.provider.firewall_rules(ctx.server_ref, "current firewall rules")
    r = show.check((yield show.action))
    if not r.known:
        return None
    existing = show.parse(r)
    sources = _ssh_allow_sources(existing, ssh.port)
    if not sources:
        return "no SSH allow rule on the server yet: nothing to check"
    probe = connect_action(ctx, PROBE_SECONDS, auth_grace=0.0)
    try:
        yield probe
        return "SSH answers through the firewall"
    except HostKeyMismatch:
        raise
    except SSHError as exc:
        reason = exc.message
    if "Connection refused" in reason or "authentication failed" in reason:
        # Packets get through (a dropping firewall makes connects time out): sshd is still booting, or the
        # key is wrong. Not a firewall problem, so nothing is opened; connect reports the rest.
        return f"SSH is reachable through the firewall ({reason}); connect takes it from here"
    if fw.allow:
        if sources == {_as_range(c) for c in fw.allow}:
            return f"SSH does not answer ({reason}); the allow rules are provider.firewall.allow already"
        ctx.notify(f"firewall: SSH does not answer ({reason}); putting provider.firewall.allow in place first")
        wanted = rules_for(ctx.cfg, list(fw.allow))
        yield from _replace(ctx, True, existing, wanted)
        return f"allow rules replaced with provider.firewall.allow ({', '.join(fw.allow)})"
    ctx.notify(
        f"firewall: SSH does not answer ({reason}) and SSH is allowed only from {', '.join(sorted(sources))}: "
        "your address has probably changed. OPENING SSH (port "
        f"{ssh.port}) TO ANY ADDRESS for now (key-only login, pinned host key); the firewall step narrows it to "
        "your current address in a moment. Set provider.firewall.allow to avoid this."
    )
    for fam in ("IPv6", "IPv4"):  # both at position 1: checked before every other rule
        rule = FirewallRule("in", "accept", fam, "tcp", dest_ports=(ssh.port, ssh.port), comment=TEMPORARY)
        create = ctx.provider.firewall_create(
            ctx.server_ref, rule, "open SSH to any address until the firewall step narrows it", position=1
        )
        create.check((yield create.action))
    return "SSH opened to any address (key-only, pinned host key) until the firewall step narrows it"
