"""The ports a deployment's server listens on, and what listens there: one home for the numbers that the config's
validation (no two listeners on one port), the firewall (what the allowed addresses reach) and the exporters use.

Light on purpose (no imports): config.py validates with it on every command that reads a config.
"""

from __future__ import annotations

from typing import Any

DCGM_PORT = 9400  # NVIDIA's DCGM exporter (monitoring.dcgm_exporter)
NODE_PORT = 9100  # prometheus-node-exporter (monitoring.node_exporter)
# The engine config fields that are ports (vLLM: port; Triton: http/grpc/metrics; TF Serving: rest/grpc).
ENGINE_PORT_FIELDS = ("port", "http_port", "grpc_port", "metrics_port", "rest_port")


def engine_listeners(engine: Any) -> dict[str, int]:
    """``engine.<field>`` → port, for the engine config's port fields."""
    return {f"engine.{f}": int(getattr(engine, f)) for f in ENGINE_PORT_FIELDS if getattr(engine, f, None)}


def listeners(cfg: Any) -> list[tuple[str, int]]:
    """(what, port) for everything the config has listen on the server: sshd, the engine (a Ray cluster's Serve,
    dashboard and metrics instead), the exporters. ``cfg``: a DeploymentConfig (duck-typed: used while validating)."""
    out = [("ssh.port", int(cfg.ssh.port))]
    cluster = cfg.cluster
    if cluster is not None:
        out += [(f"cluster.ports.{k}", int(v)) for k, v in cluster.ports.singles().items()]
    else:
        out += list(engine_listeners(cfg.engine).items())
    if cfg.monitoring.dcgm_exporter:
        out.append(("monitoring.dcgm_exporter", DCGM_PORT))
    if cfg.monitoring.node_exporter:
        out.append(("monitoring.node_exporter", NODE_PORT))
    return out


def clash(cfg: Any) -> tuple[str, str] | None:
    """(the config field, what clashes in words) for the first listener that would share a port with an earlier
    one; None when every port is its own. config.py's load_config refuses such a config (exit 2)."""
    seen: dict[int, str] = {}
    for what, port in listeners(cfg):
        if port in seen:
            return what, f"{what} and {seen[port]} would both listen on port {port}"
        seen[port] = what
    return None
