"""vLLM plans: the engine's start line, the systemd unit vs setsid/nohup, docker, and secrets kept out of argv."""

from __future__ import annotations

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
