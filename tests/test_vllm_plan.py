"""vLLM plans: the engine's start line, the systemd unit vs setsid/nohup, docker, and secrets kept out of argv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.actions import Remote, Upload
from orchestrator.config import DeploymentConfig
from orchestrator.engines.vllm import VllmEngine
from orchestrator.secrets import API_KEY, HF_TOKEN

SECRETS = {API_KEY: "sk-plan-secret", HF_TOKEN: "hf_plansecret"}


def engine(**install: object) -> VllmEngine:
    cfg = DeploymentConfig.model_validate(
        {
            "name": "plan",
            "ssh": {"user": "root"},
            "engine": {
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "served_name": "qwen",
                "max_model_len": 8192,
                "install": install or {"method": "pip"},
            },
        }
    )
    return VllmEngine(cfg)


def test_start_line_and_env_file() -> None:
    e = engine()
    script = e.start_script(SECRETS)
    assert (
        'exec "$HOME"/vllm-venv/bin/vllm serve Qwen/Qwen2.5-7B-Instruct --host 0.0.0.0 --port 8000 '
        "--served-model-name qwen --gpu-memory-utilization 0.9 --max-model-len 8192"
    ) in script
    assert "sk-plan-secret" not in script and "--api-key" not in script
    env = e.env_file(SECRETS)
    assert "VLLM_API_KEY=sk-plan-secret" in env and "HF_TOKEN=hf_plansecret" in env


def test_systemd_unit_where_systemd_runs() -> None:
    e = engine()
    e.use_supervisor("systemd", "/root")
    actions = e.start(SECRETS)
    uploads = {a.dest: a for a in actions if isinstance(a, Upload)}
    unit = uploads["/etc/systemd/system/orchestrator-plan.service"].content
    assert "ExecStart=/bin/sh /root/.orchestrator/plan/start.sh" in unit
    assert "Environment=HOME=/root" in unit and "Restart=on-failure" in unit
    assert "StandardOutput=append:/root/.orchestrator/plan/engine.log" in unit
    assert uploads[".orchestrator/plan/engine.env"].secret and uploads[".orchestrator/plan/engine.env"].mode == 0o600
    last = actions[-1]
    assert isinstance(last, Remote) and "systemctl restart orchestrator-plan.service" in last.command
    for a in actions:
        assert "sk-plan-secret" not in a.describe() and "hf_plansecret" not in a.describe()


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as systemd itself reads it: no unknown keys, a valid ExecStart, sections where they belong."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian/Ubuntu package systemd; scripts/system-deps.sh installs it)"
    home = tmp_path / "home"
    (home / ".orchestrator" / "plan").mkdir(parents=True)
    e = engine()
    e.use_supervisor("systemd", str(home))
    unit = tmp_path / e.unit
    unit.write_text(e.unit_file())
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    # the check is real: a key systemd does not know is reported
    unit.write_text(e.unit_file().replace("Restart=on-failure", "Restart=on-failure\nRestartEvery=10"))
    bad = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "Unknown key" in bad.stderr and "RestartEvery" in bad.stderr


def test_tensor_parallel_size_follows_the_gpu_count() -> None:
    one = engine()
    assert "--tensor-parallel-size" not in one.engine_args()  # vLLM's own default is 1
    four = engine()
    four.use_gpus(4)
    assert four.engine_args()[-2:] == ["--tensor-parallel-size", "4"]
    assert "--tensor-parallel-size 4" in four.start_script(SECRETS)
    cfg = DeploymentConfig.model_validate(
        {
            "name": "plan",
            "engine": {"model": "m", "extra_args": ["--tensor-parallel-size", "2"], "install": {"method": "docker"}},
        }
    )
    explicit = VllmEngine(cfg)
    explicit.use_gpus(4)
    assert explicit.engine_args().count("--tensor-parallel-size") == 1 and explicit.engine_args()[-1] == "2"
    assert "--tensor-parallel-size 2" in explicit.start_script(SECRETS)
    short = DeploymentConfig.model_validate({"name": "plan", "engine": {"model": "m", "extra_args": ["-tp=2"]}})
    e = VllmEngine(short)
    e.use_gpus(8)
    assert "--tensor-parallel-size" not in e.engine_args()


def test_tensor_parallel_size_from_state_or_verify_gpu() -> None:
    from orchestrator.context import StepContext
    from orchestrator.state import Deployment, ServerRecord
    from orchestrator.steps.engine import gpu_count

    cfg = DeploymentConfig.model_validate({"name": "plan", "engine": {"model": "m"}})
    dep = Deployment(name="plan", config_path="/x.yaml", server=ServerRecord(uuid="u", gpu_amount=2))
    ctx = StepContext(cfg=cfg, dep=dep, store=None)
    assert gpu_count(ctx) == 2  # the plan's gpu_amount recorded at provision
    ctx.facts["gpu_count"] = 4  # what verify-gpu counted wins
    assert gpu_count(ctx) == 4
    bare = StepContext(cfg=cfg, dep=Deployment(name="plan", config_path="/x.yaml"), store=None)
    assert gpu_count(bare) == 1
    counted = DeploymentConfig.model_validate({"name": "plan", "gpu": {"count": 2}, "engine": {"model": "m"}})
    assert gpu_count(StepContext(cfg=counted, dep=Deployment(name="plan", config_path="/x.yaml"), store=None)) == 2


def test_docker_method_is_the_docker_engine_with_a_restart_policy() -> None:
    from orchestrator.engines.docker import DockerEngine

    e = engine(method="docker", image="vllm/vllm-openai:v0.11.0")
    assert isinstance(e.docker, DockerEngine)
    script = e.start_script(SECRETS)
    assert script.splitlines()[-1] == (
        "docker run -d --name orchestrator-plan --restart unless-stopped --gpus=all --ipc=host -p 8000:8000 "
        '-e HF_TOKEN -e VLLM_API_KEY -v "$HOME/.cache/huggingface:/root/.cache/huggingface" '
        "vllm/vllm-openai:v0.11.0 --model Qwen/Qwen2.5-7B-Instruct --host 0.0.0.0 --port 8000 "
        "--served-model-name qwen --gpu-memory-utilization 0.9 --max-model-len 8192"
    )
    assert "set -a; . ./engine.env; set +a" in script
    actions = e.start(SECRETS)
    assert [type(a).__name__ for a in actions] == ["Remote", "Remote", "Upload", "Upload", "Remote"]
    env = actions[2]
    assert isinstance(env, Upload) and env.secret and env.mode == 0o600 and "VLLM_API_KEY=sk-plan-secret" in env.content
    assert e.stop().command == "docker rm -f orchestrator-plan >/dev/null 2>&1; true"
    assert e.log_tail().command == "docker logs --tail 80 orchestrator-plan 2>&1"


def test_setsid_nohup_without_systemd() -> None:
    e = engine()
    e.use_supervisor("nohup", "/home/u")
    last = e.start(SECRETS)[-1]
    assert isinstance(last, Remote)
    assert "setsid nohup sh ./start.sh > engine.log 2>&1 < /dev/null &" in last.command
    assert not any(isinstance(a, Upload) and a.dest.startswith("/etc/") for a in e.start(SECRETS))


def test_docker_passes_secrets_by_name_only() -> None:
    e = engine(method="docker", image="vllm/vllm-openai:v0.11.0")
    script = e.start_script(SECRETS)
    assert "-e HF_TOKEN" in script and "-e VLLM_API_KEY" in script and "hf_plansecret" not in script
    assert "vllm/vllm-openai:v0.11.0 --model Qwen/Qwen2.5-7B-Instruct" in script
    assert "--gpus=all" in script and "-p 8000:8000" in script


def test_firewall_rules_order_and_stateless_replies() -> None:
    from orchestrator.steps.firewall import desired_rules

    rules = desired_rules(["203.0.113.7/32", "2001:db8::/64"], 22, [8000, 8002])
    accepts = [(r.family, r.source, r.dest_ports) for r in rules[:6]]
    assert accepts == [
        ("IPv4", "203.0.113.7/32", (22, 22)),
        ("IPv4", "203.0.113.7/32", (8000, 8000)),
        ("IPv4", "203.0.113.7/32", (8002, 8002)),
        ("IPv6", "2001:db8::/64", (22, 22)),
        ("IPv6", "2001:db8::/64", (8000, 8000)),
        ("IPv6", "2001:db8::/64", (8002, 8002)),
    ]
    replies = {(r.family, r.protocol) for r in rules if "replies" in r.comment}
    assert replies == {(f, p) for f in ("IPv4", "IPv6") for p in ("tcp", "udp")}
    last = rules[-1]
    assert (last.direction, last.action, last.family, last.protocol) == ("in", "drop", "", "")
