"""The dry-run golden cases: `deploy`, `redeploy` and `teardown --dry-run` of every config in configs/ (and one
non-root config), run as a user runs them; shared by tests/test_dry_run.py (compares) and
scripts/update-golden.py (the only writer of tests/golden/).

Only machine-specific paths are normalised: the temporary directory (HOME, ORCHESTRATOR_HOME) becomes <tmp>, the
checkout becomes <repo>. PATH holds only Python's directory and a `promtool` stub (never run in a dry run), so
the plan does not depend on what this machine has installed; there is no upctl and no credential.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
COMMANDS = ("deploy", "redeploy", "teardown")

# A login user that is not root: every privileged command goes through `sudo -n`, and no systemd unit is used.
UBUNTU_CONFIG = """\
name: golden
provider:
  plan: "^GPU-8xCPU-64GB-1xL40S$"
  storage_gb: 150
ssh:
  user: ubuntu
  private_key: /keys/id_ed25519
engine:
  kind: vllm
  model: Qwen/Qwen2.5-7B-Instruct
  served_name: qwen-7b
  max_model_len: 32768
monitoring:
  prometheus_config: /prom/prometheus.yml
  promtool: always
"""


@dataclass(frozen=True)
class Case:
    config: str  # the config's file stem (configs/<stem>.yaml), or "ubuntu" for UBUNTU_CONFIG
    command: str

    @property
    def golden(self) -> Path:
        return GOLDEN / f"{self.config}-{self.command}.txt"


def plannable(path: Path) -> bool:
    """A single-server (or `replicas`) config; a `cluster:` config (a Ray cluster) is planned by its own golden
    cases here and by tests/test_ray_plan.py."""
    import yaml

    return "cluster" not in yaml.safe_load(path.read_text())


def configs() -> list[str]:
    return sorted(p.stem for p in (REPO / "configs").glob("*.yaml")) + ["ubuntu"]


def commands(config: str) -> tuple[str, ...]:
    """Every command of every config."""
    return COMMANDS


def cases() -> list[Case]:
    return [Case(c, cmd) for c in configs() for cmd in commands(c)]


def _config_path(case: Case, tmp: Path) -> tuple[str, str]:
    """(the path given on the command line, the deployment name)."""
    import yaml

    if case.config == "ubuntu":
        path = tmp / "ubuntu.yaml"
        path.write_text(UBUNTU_CONFIG)
        return str(path), "golden"
    rel = f"configs/{case.config}.yaml"
    return rel, str(yaml.safe_load((REPO / rel).read_text())["name"])


def _env(tmp: Path) -> dict[str, str]:
    stub = tmp / "bin"
    stub.mkdir(exist_ok=True)
    promtool = stub / "promtool"
    promtool.write_text("#!/bin/sh\necho 'promtool stub: a dry run never runs it' >&2\nexit 1\n")
    promtool.chmod(0o755)
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT")}
    return keep | {
        "PATH": f"{Path(sys.executable).parent}:{stub}",
        "HOME": str(tmp / "home"),
        "ORCHESTRATOR_HOME": str(tmp / "orchestrator-home"),
        "COLUMNS": "200",
    }


def _state_record(config_path: str, name: str, env: dict[str, str]) -> None:
    """What a finished deploy leaves in $ORCHESTRATOR_HOME: redeploy and teardown start from it."""
    code = f"""
import json, sys
from pathlib import Path
from orchestrator.config import load_config
from orchestrator.state import (
    Deployment, EngineRecord, MonitoringRecord, NetworkRecord, ReplicaRecord, ServerRecord, StateStore,
)
from orchestrator.engines import engine_for
cfg = load_config({config_path!r})
ip = "203.0.113.10"
engine = engine_for(cfg)
target = engine.scrape_target(ip)
dep = Deployment(
    name=cfg.name,
    config_path=str(Path({config_path!r}).resolve()),
    created_at=1764000000.0,
    status="deployed",
    server=ServerRecord(
        uuid="00d8c7a2-0b7e-4c5e-9d3b-6f1a2b3c4d5e", hostname=cfg.name, plan="GPU-8xCPU-64GB-1xL40S",
        zone="fi-hel2", ip=ip, state="started", gpu_amount=1, gpu_model="NVIDIA L40S",
        host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoldenGoldenGoldenGoldenGoldenGoldenGolden01",
    ),
    engine=EngineRecord(
        kind=engine.kind, model=cfg.engine.model, served_name=cfg.engine.served, endpoint=engine.endpoint(ip),
        metrics_url=f"http://{{target.targets[0]}}{{target.metrics_path}}", method=engine.method,
    ),
    monitoring=MonitoringRecord(
        prometheus_config=str(cfg.monitoring.prometheus_config) if cfg.monitoring.prometheus_config else None,
        job=target.job,
    ),
    config=cfg.model_dump(mode="json"),
)
if cfg.cluster is not None:  # a Ray cluster's deploy leaves a record per node and the private network
    dep.replicas = [
        ReplicaRecord(
            index=i,
            status="deployed",
            server=dep.server.model_copy(update={{
                "uuid": f"00d8c7a2-0b7e-4c5e-9d3b-6f1a2b3c4d{{i:02d}}",
                "hostname": cfg.name if i == 1 else f"{{cfg.name}}-{{i}}",
                "ip": f"203.0.113.{{9 + i}}",
                "private_ip": f"10.60.0.{{9 + i}}",
            }}),
        )
        for i in range(1, cfg.cluster.nodes + 1)
    ]
    dep.server = dep.engine = None
    dep.network = NetworkRecord(
        uuid="03a98be3-7daa-443f-bb25-4bc6854b396c", name=f"{{cfg.name}}-ray", zone="fi-hel2", cidr="10.60.0.0/24"
    )
    dep.monitoring = MonitoringRecord(
        prometheus_config=dep.monitoring.prometheus_config, job=f"{{target.job}}-ray",
        file_sd=str(
            Path(str(cfg.monitoring.prometheus_config)).expanduser().parent / "file_sd" / f"{{target.job}}-ray.json"
        ),
    )
StateStore().save(dep)
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, capture_output=True, text=True)


def run_case(case: Case, tmp: Path) -> str:
    """The normalised stdout of the case's dry run; raises when the command fails."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = _env(tmp)
    config_path, name = _config_path(case, tmp)
    if case.command != "deploy":
        _state_record(config_path, name, env)
    target = name if case.command == "teardown" else config_path
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", case.command, target, "--dry-run"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{case.command} {target} --dry-run exited {proc.returncode}:\n{proc.stderr}")
    return normalise(proc.stdout, tmp)


def normalise(text: str, tmp: Path) -> str:
    for path, name in ((tmp.resolve(), "<tmp>"), (tmp, "<tmp>"), (REPO, "<repo>")):
        text = text.replace(str(path), name)
    return text


def state_json(tmp: Path, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((tmp / "orchestrator-home" / "deployments" / f"{name}.json").read_text())
    return data
