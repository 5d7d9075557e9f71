"""Is Ray of this cluster already running on a node? The probe (plan data) and the keep/start/restart decision.

`deploy` re-run on a cluster that is up (or whose last deploy failed after its servers were made) must converge:
`ray start --head` is refused where a head already runs, so bring_up (ray_cluster.py) first probes each node.

The probe is a script uploaded to the deployment's folder on the node and run with the venv's Python: it lists
the login user's ``gcs_server`` and ``raylet`` processes with their exact argv (``/proc/<pid>/cmdline``), and on
the head asks the dashboard for the running Ray version (``GET /api/version``) and the nodes it sees ALIVE
(``GET /nodes?view=summary``). It prints one JSON line. Ports the raylet was started with are compared too.
Only processes started for this node's private address count (``--node-ip-address`` / ``--node_ip_address``):
others are named in the note but left alone (mock hosts share one PID space; on a server they are a foreign Ray).

Decisions (pure, here):
- head: kept when its GCS listens on ``<private ip>:<gcs port>``, its raylet joined that GCS and the dashboard
  reports the configured Ray version; nothing running: start; anything else: ``ray stop`` then start;
- worker: kept when the head was kept, its raylet joined ``<head private ip>:<gcs port>`` and the head lists it
  ALIVE (Ray itself refuses a worker of another version at join); nothing running: start; else stop, start.
- a node whose Ray was (re)installed in this run is restarted (its running processes are the old version).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from orchestrator.actions import Remote, Result, Upload

if TYPE_CHECKING:
    from orchestrator.ray_cluster import RayCluster, RayNode

# The probe (run with the cluster venv's Python); its argument: the dashboard port on the head, 0 elsewhere.
PROBE_PY = """\
import json, os, sys, urllib.request
PORTS = @PORTS@
out = {"gcs": [], "raylets": [], "others": []}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.stat("/proc/" + pid).st_uid != os.getuid() or int(pid) == os.getpid():
            continue
        name = open("/proc/" + pid + "/comm").read().strip()
        argv = open("/proc/" + pid + "/cmdline", "rb").read().decode(errors="replace").split("\\0")
    except OSError:
        continue
    flags = {}
    for a in argv:
        if a.startswith("--") and "=" in a:
            k, _, v = a[2:].partition("=")
            flags.setdefault(k.replace("-", "_"), v)
    if name not in ("gcs_server", "raylet"):
        script = [a for a in argv[:3] if "/ray/" in a]  # python -u .../ray/dashboard/agent.py, log_monitor.py
        if script and "node_ip_address" in flags:
            out["others"].append({"ip": flags["node_ip_address"], "name": os.path.basename(script[0])})
        continue
    if name == "gcs_server":
        out["gcs"].append({"ip": flags.get("node_ip_address"), "port": flags.get("gcs_server_port")})
    else:
        ports = {k: flags.get(k) for k in PORTS}
        out["raylets"].append({"ip": flags.get("node_ip_address"), "gcs": flags.get("gcs_address"), "ports": ports})
dash = int(sys.argv[1])
if dash:
    get = urllib.request.build_opener(urllib.request.ProxyHandler({})).open
    base = "http://127.0.0.1:%d" % dash
    try:
        out["version"] = json.load(get(base + "/api/version", timeout=5)).get("ray_version")
        rows = json.load(get(base + "/nodes?view=summary", timeout=10))["data"]["summary"]
        out["alive"] = [r.get("ip") for r in rows if (r.get("raylet") or {}).get("state") == "ALIVE"]
    except Exception as exc:
        out["dashboard"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(out))
"""

# The raylet's port flags (argv spelling, dashes as underscores) and the cluster.ports field each pins.
RAYLET_PORTS = {
    "object_manager_port": "object_manager",
    "node_manager_port": "node_manager",
    "metrics_export_port": "metrics_export",
    "min_worker_port": "min_worker",
    "max_worker_port": "max_worker",
}
PLANNED = (
    "each node kept where Ray of this cluster runs as configured, else started (after `ray stop` if another Ray runs)"
)
Verdict = Literal["keep", "start", "restart"]


@dataclass(frozen=True)
class RayOnNode:
    """What the probe found on one node, for this node's private address."""

    gcs: tuple[str, ...] = ()  # "<ip>:<port>" of each GCS started for this node's address
    raylets: tuple[str, ...] = ()  # the GCS address each of this node's raylets joined
    ports: tuple[tuple[str, str], ...] = ()  # the first raylet's pinned ports (RAYLET_PORTS), as its argv has them
    version: str | None = None  # the running Ray's version (head only: the dashboard's answer)
    alive: frozenset[str] = frozenset()  # the node addresses the head sees ALIVE (head only)
    dashboard: str | None = None  # why the dashboard did not answer (head only)
    foreign: int = 0  # GCS/raylet processes of this user for another address (left alone)
    leftovers: tuple[str, ...] = ()  # Ray's other daemons for this address (agents, log monitor): names
    known: bool = True  # False: the probe gave no answer (dry-run, or it failed)
    planned: bool = False  # True: a dry run (the probe was not run at all)

    @property
    def running(self) -> bool:
        return bool(self.gcs or self.raylets)


@dataclass(frozen=True)
class Decision:
    node: str
    verdict: Verdict
    why: str = field(default="")


def probe_path(cluster: RayCluster) -> str:
    return f"{cluster.run_dir}/ray-probe.py"


def probe(cluster: RayCluster, node: RayNode) -> list[Remote | Upload]:
    """The run folder, the probe script in it, and its run (the last action's stdout is the JSON line)."""
    rd = shlex.quote(cluster.run_dir)
    dash = cluster.c.ports.dashboard if node is cluster.head else 0
    return [
        Remote(f"mkdir -p {rd} && chmod 700 {rd}", "the deployment's folder on the node", timeout=30),
        Upload(probe_path(cluster), PROBE_PY.replace("@PORTS@", repr(list(RAYLET_PORTS))), 0o644),
        Remote(
            f"{cluster.venv}/bin/python {shlex.quote(probe_path(cluster))} {dash}",
            "is Ray of this cluster already running here?",
            timeout=60,
        ),
    ]


def parse_probe(r: Result, node: RayNode) -> RayOnNode:
    """The probe's JSON line, filtered to this node's address; unknown when there is none."""
    if not r.known:
        return RayOnNode(known=False, planned=True)
    if r.rc != 0:
        return RayOnNode(known=False)
    try:
        doc = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return RayOnNode(known=False)
    mine = node.private_ip
    gcs = tuple(f"{g.get('ip')}:{g.get('port')}" for g in doc.get("gcs", []) if g.get("ip") == mine)
    own = [x for x in doc.get("raylets", []) if x.get("ip") == mine]
    raylets = tuple(str(x.get("gcs")) for x in own)
    ports = (
        tuple(sorted((str(k), str(v)) for k, v in (own[0].get("ports") or {}).items() if v is not None)) if own else ()
    )
    foreign = sum(1 for key in ("gcs", "raylets") for x in doc.get(key, []) if x.get("ip") != mine)
    leftovers = tuple(sorted(str(x.get("name")) for x in doc.get("others", []) if x.get("ip") == mine))
    return RayOnNode(
        leftovers=leftovers,
        gcs=gcs,
        raylets=raylets,
        ports=ports,
        version=doc.get("version"),
        alive=frozenset(str(ip) for ip in doc.get("alive") or []),
        dashboard=doc.get("dashboard"),
        foreign=foreign,
    )


def port_drift(cluster: RayCluster, found: RayOnNode) -> str | None:
    """The pinned ports the running raylet was started with that differ from cluster.ports, or None."""
    have = dict(found.ports)
    p = cluster.c.ports
    wrong = [
        f"{flag} {have[flag]} (config {getattr(p, field_)})"
        for flag, field_ in RAYLET_PORTS.items()
        if flag in have and have[flag] != str(getattr(p, field_))
    ]
    return ", ".join(wrong) or None


def _not_running(node: str, found: RayOnNode) -> Decision:
    """No GCS, no raylet: start; but Ray's other daemons left from an earlier start would hold its ports."""
    if found.leftovers:
        return Decision(node, "restart", f"no raylet, but Ray's {', '.join(found.leftovers)} left from a start before")
    return Decision(node, "start", "Ray not running")


def decide_head(cluster: RayCluster, found: RayOnNode, reinstalled: bool = False) -> Decision:
    head = cluster.head.name
    addr = f"{cluster.head.private_ip}:{cluster.c.ports.gcs}"
    want = cluster.c.ray_version
    if not found.known:
        return Decision(head, "start", "not probed" if found.planned else "the probe gave no answer")
    if not found.running:
        return _not_running(head, found)
    if reinstalled:
        return Decision(head, "restart", f"ray {want} was just installed; the running Ray is the old one")
    if found.gcs != (addr,):
        where = ", ".join(found.gcs) or "none"
        return Decision(head, "restart", f"a raylet runs but the head's GCS is not at {addr} (GCS: {where})")
    if found.raylets != (addr,):
        return Decision(
            head, "restart", f"the head's raylet has not joined {addr} ({', '.join(found.raylets) or 'none'})"
        )
    drift = port_drift(cluster, found)
    if drift:
        return Decision(head, "restart", f"Ray runs with other ports: {drift}")
    if found.dashboard is not None:
        return Decision(head, "restart", f"the dashboard does not answer ({found.dashboard})")
    if found.version != want:
        return Decision(head, "restart", f"ray {found.version} runs, the config pins {want}")
    return Decision(head, "keep", f"GCS at {addr}, ray {want}")


def decide_worker(
    cluster: RayCluster, node: RayNode, found: RayOnNode, head: Decision, seen: RayOnNode, reinstalled: bool = False
) -> Decision:
    """``head`` is the head's decision, ``seen`` what the head's probe found (the nodes it sees ALIVE)."""
    addr = f"{cluster.head.private_ip}:{cluster.c.ports.gcs}"
    if not found.known:
        return Decision(node.name, "start", "not probed" if found.planned else "the probe gave no answer")
    if not found.running:
        return _not_running(node.name, found)
    if reinstalled:
        return Decision(node.name, "restart", f"ray {cluster.c.ray_version} was just installed")
    if head.verdict != "keep":
        return Decision(node.name, "restart", "the head is (re)started: a new cluster")
    if found.gcs:
        return Decision(node.name, "restart", f"runs a Ray head of its own ({', '.join(found.gcs)})")
    if set(found.raylets) != {addr}:
        return Decision(node.name, "restart", f"its raylet joined {', '.join(found.raylets)}, not {addr}")
    drift = port_drift(cluster, found)
    if drift:
        return Decision(node.name, "restart", f"Ray runs with other ports: {drift}")
    if node.private_ip not in seen.alive:
        return Decision(node.name, "restart", "its raylet runs but the head does not list it ALIVE")
    return Decision(node.name, "keep", f"joined {addr}")


def summary(decisions: list[Decision]) -> str:
    """``already running: r1, r2; started: r3; restarted: r4 (why)`` (only the parts that happened)."""
    kept = [d.node for d in decisions if d.verdict == "keep"]
    started = [d.node for d in decisions if d.verdict == "start"]
    restarted = [f"{d.node} ({d.why})" for d in decisions if d.verdict == "restart"]
    parts = []
    if kept:
        parts.append(f"already running: {', '.join(kept)}")
    if started:
        parts.append(f"started: {', '.join(started)}")
    if restarted:
        parts.append(f"restarted: {', '.join(restarted)}")
    return "; ".join(parts)
