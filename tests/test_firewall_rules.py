"""The generated firewall rules, evaluated the way UpCloud's stateless server firewall evaluates them.

UpCloud: inbound rules are checked in position order, the first rule whose every given field matches decides
(accept or drop); a field left empty matches anything; a rule with no fields at all is the catch-all.
"""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest

from orchestrator.providers.base import FirewallRule
from orchestrator.steps.firewall import EPHEMERAL, desired_rules

ALLOW = ["203.0.113.7/32", "2001:db8:7::/64"]
INSIDE = {"IPv4": "203.0.113.7", "IPv6": "2001:db8:7::42"}
OUTSIDE = {"IPv4": "198.51.100.9", "IPv6": "2001:db8:9::1"}


def verdict(rules: list[FirewallRule], src: str, proto: str, sport: int | None, dport: int | None) -> str:
    addr = ipaddress.ip_address(src)
    fam = f"IPv{addr.version}"
    for r in rules:
        if r.direction != "in":
            continue
        if r.family and r.family != fam:
            continue
        if r.protocol and r.protocol != proto:
            continue
        if r.source:
            net = ipaddress.ip_network(r.source, strict=False)
            if net.version != addr.version or addr not in net:
                continue
        if r.dest_ports and (dport is None or not r.dest_ports[0] <= dport <= r.dest_ports[1]):
            continue
        if r.source_ports and (sport is None or not r.source_ports[0] <= sport <= r.source_ports[1]):
            continue
        return r.action
    return "accept"  # UpCloud's default when no rule matches: our list must never get here


@pytest.mark.parametrize(
    "ssh_port, engine",
    [
        (22, [8000]),
        (22, [40000]),  # engine.port inside the ephemeral range 32768-60999
        (2222, [8000, 8001, 8002]),  # triton http/grpc/metrics
        (50022, [32768, 60999]),  # SSH itself and the range's edges
    ],
)
def test_protected_ports_only_from_allow(ssh_port: int, engine: list[int]) -> None:
    rules = desired_rules(ALLOW, ssh_port, engine)
    assert not (rules[-1].family or rules[-1].protocol or rules[-1].source) and rules[-1].action == "drop"
    protected = {ssh_port, *engine}
    sources = [("inside", INSIDE), ("outside", OUTSIDE)]
    sports = [None, 53, 123, 443, 40000, 65000]
    dports = sorted({*protected, 80, 1234, EPHEMERAL[0], 45000, EPHEMERAL[1], 61000, *(p + 1 for p in protected)})
    for (where, by_fam), fam, proto, sport, dport in itertools.product(
        sources, ("IPv4", "IPv6"), ("tcp", "udp"), sports, dports
    ):
        got = verdict(rules, by_fam[fam], proto, sport, dport)
        case = f"{where} {fam} {proto} sport={sport} dport={dport}"
        if dport in protected:
            want = "accept" if where == "inside" and proto == "tcp" else "drop"
            assert got == want, case
        elif proto == "tcp":  # replies to the server's own connections land in the ephemeral range
            want = "accept" if EPHEMERAL[0] <= dport <= EPHEMERAL[1] else "drop"
            assert got == want, case
        else:  # udp: only DNS and NTP replies
            assert got == ("accept" if sport in (53, 123) else "drop"), case
    for fam in ("IPv4", "IPv6"):  # ping and path-MTU messages stay possible
        assert verdict(rules, OUTSIDE[fam], "icmp", None, None) == "accept"


def test_protected_drops_merge_consecutive_ports_where_a_reply_rule_would_accept() -> None:
    rules = desired_rules(["203.0.113.7/32"], 22, [8000, 8001, 8002, 40000, 40001])
    drops = [(r.family, r.protocol, r.dest_ports) for r in rules if r.comment == "orchestrator: protected port"]
    assert drops == [  # TCP: only inside the ephemeral range (the rest falls to the default drop); UDP: all
        (fam, proto, ports)
        for fam in ("IPv4", "IPv6")
        for proto in ("tcp", "udp")
        for ports in (((40000, 40001),) if proto == "tcp" else ((22, 22), (8000, 8002), (40000, 40001)))
    ]


def test_more_rules_than_upcloud_takes_are_refused_before_any_change() -> None:
    from orchestrator.errors import ConfigError
    from orchestrator.steps.firewall import MAX_RULES

    many = [f"198.51.{i // 256}.{i % 256}/32" for i in range(500)]
    assert len(desired_rules(many[:300], 22, [8000, 8002])) <= MAX_RULES  # 300 x 3 accepts + the rest
    want = r"500 address\(es\) x 3 port\(s\) make 1\d{3} firewall rules; UpCloud takes at most 1000"
    with pytest.raises(ConfigError, match=want) as exc:
        desired_rules(many, 22, [8000, 8002])
    assert exc.value.hint is not None and "wider networks" in exc.value.hint


def test_deploy_refuses_too_many_rules_before_any_server_is_created(tmp_path: Path) -> None:
    """The rule limit is a preflight check: a deploy stops (exit 2) before upctl is ever called."""
    import os
    import stat

    from tests.conftest import run_cli
    from tests.test_dry_run import CONFIG, _env

    calls = tmp_path / "upctl-calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    upctl = bin_dir / "upctl"
    upctl.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    upctl.chmod(upctl.stat().st_mode | stat.S_IXUSR)
    allow = "\n".join(f"      - 198.51.{i // 256}.{i % 256}/32" for i in range(600))  # x (SSH + 8000)
    text = CONFIG.replace("provider:\n", f"provider:\n  firewall:\n    allow:\n{allow}\n", 1)
    assert text != CONFIG
    cfg = tmp_path / "many.yaml"
    cfg.write_text(text)
    env = _env(tmp_path) | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "600 address(es)" in proc.stderr and "UpCloud takes at most 1000 per server" in proc.stderr
    assert not calls.exists(), calls.read_text()  # nothing was asked of the cloud
    dry = run_cli("deploy", str(cfg), "--dry-run", env=env)  # the dry run shows the same refusal at its step
    assert dry.returncode == 2 and "UpCloud takes at most 1000 per server" in dry.stderr, dry.stdout + dry.stderr


@pytest.mark.parametrize(
    "engine, guard",
    [
        ("", "the API key guards the engine's /v1 routes, not its /metrics or the exporters"),
        ("triton", "the engine takes no API key: it answers anyone"),
    ],
)
def test_a_firewall_open_to_everyone_is_said_out_loud(tmp_path: Path, engine: str, guard: str) -> None:
    """allow: [0.0.0.0/0] is a choice the user may make; the plan (and a real run) says what it exposes."""
    from tests.conftest import REPO, run_cli
    from tests.test_dry_run import _env

    models = REPO / "examples" / "triton" / "model_repository"
    kind = f"  kind: triton\n  model_repository: {models}\n" if engine else "  model: m\n"
    cfg = tmp_path / "open.yaml"
    cfg.write_text(f"name: open\nprovider:\n  firewall:\n    allow: [0.0.0.0/0, '::/0']\nengine:\n{kind}")
    proc = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = "provider.firewall.allow has 0.0.0.0/0, ::/0: SSH (key-only) and the engine's ports"
    assert said in proc.stdout + proc.stderr and f"reachable from anywhere; {guard}" in proc.stdout + proc.stderr
    narrow = cfg.read_text().replace("[0.0.0.0/0, '::/0']", "[203.0.113.7/32]")
    cfg.write_text(narrow)
    quiet = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path))
    assert quiet.returncode == 0 and "reachable from anywhere" not in quiet.stdout + quiet.stderr


def test_dry_run_shows_rule_deletion_before_the_new_rules(tmp_path: Path) -> None:
    """A recorded server's rules are unknown to a dry run: it shows one deletion standing for each, after the read
    and before the new rules. The server a first deploy creates has none: nothing is shown deleted."""
    from tests.conftest import run_cli
    from tests.golden_cases import Case
    from tests.test_dry_run import CONFIG, _env

    cfg = tmp_path / "golden.yaml"
    cfg.write_text(CONFIG)
    proc = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    fresh = proc.stdout.splitlines()
    assert not [ln for ln in fresh if "upctl server firewall delete" in ln]
    show = next(n for n, ln in enumerate(fresh) if "upctl server firewall show" in ln)
    assert show < next(n for n, ln in enumerate(fresh) if "upctl server firewall create" in ln)
    lines = Case("ubuntu", "redeploy").golden.read_text().splitlines()  # the same config, its server recorded
    delete = [n for n, ln in enumerate(lines) if "upctl server firewall delete " in ln]
    assert len(delete) == 1
    assert "--position '<each existing rule, last first>'" in lines[delete[0]]
    shows = [n for n, ln in enumerate(lines) if "upctl server firewall show" in ln]
    first_create = next(n for n, ln in enumerate(lines) if "upctl server firewall create" in ln)
    assert shows[-1] < delete[0] < first_create


# ------------------------------------------------------------------ firewall-access, step by step

UUID = "00aa0000-0000-4000-8000-000000000001"


def _ctx(allow: list[str], notes: list[str]) -> object:
    from orchestrator.config import DeploymentConfig
    from orchestrator.context import StepContext
    from orchestrator.state import Deployment, ServerRecord

    cfg = DeploymentConfig.model_validate(
        {"name": "fa", "engine": {"model": "m"}, "provider": {"firewall": {"allow": allow}}}
    )
    dep = Deployment(name="fa", config_path="", server=ServerRecord(uuid=UUID, ip="203.0.113.50"))
    return StepContext(cfg=cfg, dep=dep, store=None, notify=notes.append)


def _shown(source: str | None) -> str:
    import json

    if source is None:
        return json.dumps({"firewall_rules": None})
    rule = {
        "action": "accept", "direction": "in", "family": "IPv4", "protocol": "tcp", "position": "1",
        "source_address_start": source, "source_address_end": source,
        "destination_port_start": "22", "destination_port_end": "22",
    }  # fmt: skip
    return json.dumps({"firewall_rules": [rule, {"action": "drop", "direction": "in", "position": "2"}]})


def _drive(ctx: object, shown: str, probe_error: str | None) -> tuple[list[object], str | None]:
    from orchestrator.actions import Connect, Local, Result
    from orchestrator.errors import SSHError
    from orchestrator.steps.firewall import firewall_access

    gen = firewall_access(ctx)  # type: ignore[arg-type]
    seen: list[object] = []
    try:
        action = next(gen)
        while True:
            seen.append(action)
            if isinstance(action, Local) and "show" in action.argv:
                action = gen.send(Result(stdout=shown))
            elif isinstance(action, Connect) and probe_error:
                action = gen.throw(SSHError(probe_error, transient=True))
            else:
                action = gen.send(Result(stdout="{}"))
    except StopIteration as stop:
        return seen, stop.value
    raise AssertionError("unreachable")


def test_firewall_access_leaves_new_servers_and_answering_ones_alone() -> None:
    from orchestrator.actions import Connect

    notes: list[str] = []
    seen, note = _drive(_ctx([], notes), _shown(None), None)
    assert len(seen) == 1 and note == "no SSH allow rule on the server yet: nothing to check"
    seen, note = _drive(_ctx([], notes), _shown("198.51.100.7"), None)
    probe = seen[1]
    assert isinstance(probe, Connect) and probe.deadline <= 5 and probe.auth_grace == 0
    assert note == "SSH answers through the firewall" and len(seen) == 2
    refused = "cannot reach 203.0.113.50:22: [Errno 111] Connection refused"
    seen, note = _drive(_ctx([], notes), _shown("198.51.100.7"), refused)
    assert len(seen) == 2 and note is not None and "reachable through the firewall" in note and not notes


def test_firewall_access_opens_ssh_for_a_moved_operator() -> None:
    from orchestrator.actions import Local

    notes: list[str] = []
    timeout = "cannot reach 203.0.113.50:22: timed out"
    seen, note = _drive(_ctx([], notes), _shown("198.51.100.7"), timeout)
    creates = [a.argv for a in seen if isinstance(a, Local) and "create" in a.argv]
    assert len(creates) == 2 and all(a[a.index("--position") + 1] == "1" for a in creates)
    assert all("--src-ipaddress-block" not in a and a[a.index("--destination-port-start") + 1] == "22" for a in creates)
    assert {a[a.index("--family") + 1] for a in creates} == {"IPv4", "IPv6"}
    assert any("TO ANY ADDRESS" in n and "198.51.100.7" in n for n in notes)
    assert note is not None and "opened to any address" in note


def test_firewall_access_with_configured_allow_never_opens_to_any() -> None:
    from orchestrator.actions import Local

    timeout = "cannot reach 203.0.113.50:22: timed out"
    notes: list[str] = []
    seen, note = _drive(_ctx(["198.51.100.7/32"], notes), _shown("198.51.100.7"), timeout)
    assert len(seen) == 2 and note is not None and "provider.firewall.allow already" in note
    seen, note = _drive(_ctx(["192.0.2.0/24"], notes), _shown("198.51.100.7"), timeout)
    creates = [a.argv for a in seen if isinstance(a, Local) and "create" in a.argv]
    assert creates and all("--position" not in a for a in creates)
    sources = {a[a.index("--src-ipaddress-block") + 1] for a in creates if "--src-ipaddress-block" in a}
    assert sources == {"192.0.2.0/24"}


def test_firewall_access_reads_nothing_on_the_server_this_run_created() -> None:
    """A server provision just created has no rules: no `firewall show` (one API round trip less per new server);
    any other server's rules are read as before."""
    from orchestrator.actions import Local
    from orchestrator.context import CREATED_FACT

    ctx = _ctx([], [])
    ctx.facts[CREATED_FACT] = UUID  # type: ignore[attr-defined]
    seen, note = _drive(ctx, _shown("198.51.100.7"), "cannot reach 203.0.113.50:22: timed out")
    assert seen == [] and note == "a server this run created has no firewall rules yet: nothing to check"
    ctx.facts[CREATED_FACT] = "00aa0000-0000-4000-8000-000000000002"  # type: ignore[attr-defined]
    seen, note = _drive(ctx, _shown(None), None)
    assert [tuple(a.argv[:4]) for a in seen if isinstance(a, Local)] == [("upctl", "server", "firewall", "show")]
    assert note == "no SSH allow rule on the server yet: nothing to check"


def test_plans_read_rules_before_connect_only_on_a_recorded_server() -> None:
    """The plans: a first deploy creates the server and reads no rules before connecting; a redeploy of the
    recorded server reads them (a real run's calls: tests/test_replicas.py)."""
    from tests.golden_cases import Case

    fresh = Case("vllm-l40s", "deploy").golden.read_text()
    assert "a server this run created has no firewall rules yet" in fresh
    again = Case("vllm-l40s", "redeploy").golden.read_text()  # a recorded server: its rules are read
    access = again.split("firewall-access", 1)[1].split("[", 1)[0]
    assert "upctl server firewall show" in access
