"""Watch it: alerting rules and Grafana provisioning, checked with the real promtool and a real Prometheus.

Grafana cannot be installed here, so every dashboard panel's PromQL goes through ``promtool check rules`` (as a
recording rule, dashboard variables substituted), and ``promtool test rules`` proves one panel per dashboard and
every alert on synthetic series named as the mock engines export them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.alerts import AlertSettings, alert_rules, rules_document, rules_path
from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext
from orchestrator.grafana import (
    DATASOURCE_UID,
    ENGINE_DASHBOARDS,
    GPU_DASHBOARD,
    dashboard_document,
    datasource_path,
    provider_path,
)
from orchestrator.playbook import Playbook, PlaybookStep
from orchestrator.prometheus_yml import add_rule_file, remove_rule_file
from orchestrator.runner import Runner
from orchestrator.state import Deployment, MonitoringRecord, ServerRecord
from orchestrator.transports.live import LiveExecutor

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

DEP = "demo"
JOB = "orchestrator-demo"
INSTANCE = "203.0.113.7:8000"
ENGINES = ("vllm", "triton", "tfserving")
ALL_DASHBOARDS = (*ENGINE_DASHBOARDS, GPU_DASHBOARD)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)


def _substitute(expr: str) -> str:
    """What Grafana does before it sends a query: its variables become literals."""
    return expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$deployment", DEP)


def _panels(name: str) -> list[dict[str, Any]]:
    doc = json.loads(dashboard_document(name, DEP, JOB))
    return list(doc["panels"])


def _exprs(name: str) -> list[str]:
    return [_substitute(t["expr"]) for p in _panels(name) for t in p["targets"]]


def test_dashboards_name_the_provisioned_datasource_and_nothing_import_time() -> None:
    for name in ALL_DASHBOARDS:
        text = dashboard_document(name, DEP, JOB)
        assert "${DS_" not in text and "__DEPLOYMENT__" not in text, name
        doc = json.loads(text)
        assert doc["uid"] == f"{JOB}-{name}" and DEP in doc["title"]
        assert doc["templating"]["list"][0] == {"name": "deployment", "type": "constant", "query": DEP, "hide": 2}
        for panel in doc["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID
                assert 'deployment="$deployment"' in target["expr"], target["expr"]


def test_vllm_dashboard_has_the_panels_the_field_uses() -> None:
    exprs = " ".join(_exprs("vllm"))
    for metric in (
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:generation_tokens_total",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
    ):
        assert metric in exprs, metric
    assert exprs.count("histogram_quantile(0.99") == 3


def _recording_rules(exprs: list[str]) -> str:
    rules = [{"record": f"panel:query_{n}", "expr": e} for n, e in enumerate(exprs)]
    return yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}, sort_keys=False)


@pytest.mark.parametrize("name", ALL_DASHBOARDS)
def test_every_panel_query_passes_promtool_check_rules(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.rules.yml"
    exprs = _exprs(name)
    path.write_text(_recording_rules(exprs))
    r = _promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in r.stdout + r.stderr


def test_unsubstituted_rate_interval_is_what_promtool_would_reject(tmp_path: Path) -> None:
    """The check above is not vacuous: the raw panel queries do not parse until the variables are substituted."""
    path = tmp_path / "raw.rules.yml"
    raw = [t["expr"] for p in _panels("vllm") for t in p["targets"] if "$__rate_interval" in t["expr"]]
    path.write_text(_recording_rules(raw[:1]))
    r = _promtool("check", "rules", str(path))
    assert r.returncode != 0 and "duration" in r.stdout + r.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_rules_file_passes_promtool_check_rules(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "alerts.rules.yml"
    path.write_text(rules_document(DEP, JOB, engine, AlertSettings()))
    r = _promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    names = {rule["alert"] for rule in alert_rules(DEP, JOB, engine, AlertSettings())}
    assert {"EngineDown", "EngineHealthProbeFailing", "GPUTemperatureHigh", "GPUMemoryNearlyFull"} <= names
    if engine == "vllm":
        assert {"KVCacheNearlyFull", "RequestsWaiting"} <= names


# Synthetic series, named and labelled as the mock engines (and NVIDIA's DCGM exporter) export them, plus the
# target labels the deployment's scrape job adds. 15 s apart, 41 samples = 10 minutes.
def _series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    full = {"deployment": DEP, "job": JOB, "instance": INSTANCE, **labels}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(full.items()))
    return {"series": f"{metric}{{{inner}}}", "values": values}


COMMON_SERIES = [
    _series("up", {}, "0x40"),
    _series("orchestrator_run_success", {"command": "deploy", "job": "node", "instance": "localhost:9100"}, "0x40"),
    _series("DCGM_FI_DEV_GPU_TEMP", {"gpu": "0", "modelName": "NVIDIA L40S"}, "90x40"),
    _series("DCGM_FI_DEV_FB_USED", {"gpu": "0", "modelName": "NVIDIA L40S"}, "47000x40"),
    _series("DCGM_FI_DEV_FB_FREE", {"gpu": "0", "modelName": "NVIDIA L40S"}, "1000x40"),
    _series("DCGM_FI_DEV_XID_ERRORS", {"gpu": "0", "modelName": "NVIDIA L40S"}, "0 0 0 0 79x36"),
]
ENGINE_SERIES = {
    "vllm": [
        _series("vllm:kv_cache_usage_perc", {"model_name": "m", "exported_engine": "0"}, "0.95x40"),
        _series("vllm:num_requests_waiting", {"model_name": "m", "exported_engine": "0"}, "12x40"),
        _series("vllm:e2e_request_latency_seconds_bucket", {"model_name": "m", "le": "0.5"}, "0x40"),
        _series("vllm:e2e_request_latency_seconds_bucket", {"model_name": "m", "le": "1.0"}, "0+10x40"),
        _series("vllm:e2e_request_latency_seconds_bucket", {"model_name": "m", "le": "+Inf"}, "0+10x40"),
    ],
    "triton": [
        _series("nv_inference_pending_request_count", {"model": "simple", "version": "1"}, "12x40"),
        _series("nv_inference_count", {"model": "simple", "version": "1"}, "0+30x40"),
        _series("nv_gpu_memory_used_bytes", {"gpu_uuid": "GPU-1"}, "970x40"),
        _series("nv_gpu_memory_total_bytes", {"gpu_uuid": "GPU-1"}, "1000x40"),
    ],
    "tfserving": [
        _series(":tensorflow:serving:request_count", {"model_name": "half_plus_two", "status": "OK"}, "0+15x40"),
        _series(
            ":tensorflow:serving:request_count", {"model_name": "half_plus_two", "status": "INVALID_ARGUMENT"}, "0+3x40"
        ),
    ],
}
# The alert's labels: what its expression keeps, plus the rule's own severity and deployment.
_GPU = {"instance": INSTANCE, "gpu": "0", "deployment": DEP}
EXPECTED_ALERTS: dict[str, dict[str, str]] = {
    "EngineDown": {"severity": "critical", "deployment": DEP, "job": JOB, "instance": INSTANCE},
    "EngineHealthProbeFailing": {
        "severity": "critical", "deployment": DEP, "job": "node", "instance": "localhost:9100", "command": "deploy"
    },
    "GPUTemperatureHigh": {"severity": "warning", **_GPU},
    "GPUMemoryNearlyFull": {"severity": "warning", **_GPU},
    "GPUXidErrors": {"severity": "critical", **_GPU},
    "KVCacheNearlyFull": {"severity": "warning", "deployment": DEP, "instance": INSTANCE},
    "RequestsWaiting": {"severity": "warning", "deployment": DEP, "instance": INSTANCE},
    "TritonGPUMemoryNearlyFull": {"severity": "warning", "deployment": DEP, "instance": INSTANCE, "gpu_uuid": "GPU-1"},
    "RequestErrors": {"severity": "warning", "deployment": DEP, "instance": INSTANCE},
}
# One panel per dashboard as a recording rule, and what it must show on the series above.
PANEL_PROOFS: dict[str, tuple[str, int, list[tuple[str, float]]]] = {
    "vllm": ("End-to-end request latency", 2, [("{}", 0.975)]),  # P95 in bucket (0.5, 1.0]: 0.5 + 0.5 * 0.95
    "triton": ("Inferences per second", 0, [('{model="simple"}', 2.0)]),  # 30 per 15 s
    "tfserving": ("Requests per second", 0, [('{status="INVALID_ARGUMENT"}', 0.2), ('{status="OK"}', 1.0)]),
    GPU_DASHBOARD: ("GPU temperature", 0, [('{gpu="0"}', 90.0)]),
}


def _render(summary: str) -> str:
    """The annotation as Prometheus renders it for the synthetic series."""
    for template, value in (("{{ $labels.instance }}", INSTANCE), ("{{ $labels.gpu }}", "0"), ("{{ $value }}", "79")):
        summary = summary.replace(template, value)
    return summary


def _panel_expr(dashboard: str, title: str, target: int) -> str:
    panel = next(p for p in _panels(dashboard) if p["title"] == title)
    return _substitute(panel["targets"][target]["expr"])


@pytest.mark.parametrize("engine", ENGINES)
def test_promtool_unit_tests_prove_a_panel_per_dashboard_and_every_alert_fires(engine: str, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.rules.yml"
    rules.write_text(rules_document(DEP, JOB, engine, AlertSettings()))
    all_rules = alert_rules(DEP, JOB, engine, AlertSettings())
    summaries = {rule["alert"]: rule["annotations"]["summary"] for rule in all_rules}
    names = list(summaries)
    proofs = {engine: PANEL_PROOFS[engine], GPU_DASHBOARD: PANEL_PROOFS[GPU_DASHBOARD]}
    panels = tmp_path / "panels.rules.yml"
    recording = [
        {"record": f"panel:{dash}", "expr": _panel_expr(dash, title, target)}
        for dash, (title, target, _samples) in proofs.items()
    ]
    panels.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recording}]}, sort_keys=False))
    unit = {
        "rule_files": [str(rules), str(panels)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": COMMON_SERIES + ENGINE_SERIES[engine],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": name,
                        "exp_alerts": [
                            {
                                "exp_labels": EXPECTED_ALERTS[name],
                                "exp_annotations": {"summary": _render(summaries[name])},
                            }
                        ],
                    }
                    for name in names
                ],
                "promql_expr_test": [
                    {
                        "expr": f"panel:{dash}",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": f"panel:{dash}{lab}", "value": v} for lab, v in samples],
                    }
                    for dash, (_title, _target, samples) in proofs.items()
                ],
            }
        ],
    }
    test_file = tmp_path / "unit.yml"
    test_file.write_text(yaml.safe_dump(unit, sort_keys=False))
    r = _promtool("test", "rules", str(test_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_alerts_stay_quiet_on_healthy_series(tmp_path: Path) -> None:
    """The unit test above is not vacuous: on a healthy engine the same rules fire nothing."""
    rules = tmp_path / "alerts.rules.yml"
    rules.write_text(rules_document(DEP, JOB, "vllm", AlertSettings()))
    healthy = [
        _series("up", {}, "1x40"),
        _series("orchestrator_run_success", {"command": "deploy"}, "1x40"),
        _series("vllm:kv_cache_usage_perc", {"model_name": "m"}, "0.3x40"),
        _series("vllm:num_requests_waiting", {"model_name": "m"}, "2x40"),
        _series("DCGM_FI_DEV_GPU_TEMP", {"gpu": "0"}, "60x40"),
        _series("DCGM_FI_DEV_FB_USED", {"gpu": "0"}, "20000x40"),
        _series("DCGM_FI_DEV_FB_FREE", {"gpu": "0"}, "28000x40"),
        _series("DCGM_FI_DEV_XID_ERRORS", {"gpu": "0"}, "0x40"),
    ]
    names = [rule["alert"] for rule in alert_rules(DEP, JOB, "vllm", AlertSettings())]
    unit = {
        "rule_files": [str(rules)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": healthy,
                "alert_rule_test": [{"eval_time": "10m", "alertname": n, "exp_alerts": []} for n in names],
            }
        ],
    }
    (tmp_path / "unit.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    r = _promtool("test", "rules", str(tmp_path / "unit.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_file_reference_is_added_once_and_removed_byte_identical() -> None:
    original = "# team config\nglobal:\n  scrape_interval: 15s  # keep me\nrule_files:\n  - 'team.rules.yml'\n" \
               "scrape_configs:\n  - job_name: node\n    static_configs: [{targets: ['localhost:9100']}]\n"
    once = add_rule_file(original, "/p/orchestrator-a.rules.yml")
    assert add_rule_file(once, "/p/orchestrator-a.rules.yml") == once
    assert once.startswith("# team config\n") and "# keep me" in once
    assert yaml.safe_load(once)["rule_files"] == ["team.rules.yml", "/p/orchestrator-a.rules.yml"]
    back, removed = remove_rule_file(once, "/p/orchestrator-a.rules.yml")
    assert removed and back == original
    assert remove_rule_file(original, "/p/other.rules.yml") == (original, False)


def test_rule_files_key_is_created_and_dropped_again() -> None:
    original = "# mine\nglobal:\n  scrape_interval: 15s\nscrape_configs: []\n"
    added = add_rule_file(original, "/p/x.rules.yml")
    assert yaml.safe_load(added)["rule_files"] == ["/p/x.rules.yml"] and added.startswith(original)
    assert remove_rule_file(added, "/p/x.rules.yml") == (original, True)


# -- the real monitoring/unmonitor steps, through the Runner and the LiveExecutor --------------------------------


class _Quiet:
    def step_started(self, *a: object) -> None: ...
    def action(self, *a: object) -> None: ...
    def step_finished(self, *a: object) -> None: ...
    def info(self, *a: object) -> None: ...


def _run_step(step: str, cfg: DeploymentConfig, dep: Deployment) -> None:
    executor = LiveExecutor({})
    try:
        book = Playbook(name="t", steps=[PlaybookStep(kind=step)])
        Runner(executor, _Quiet()).run(book, StepContext(cfg=cfg, dep=dep, store=None))  # type: ignore[arg-type]
    finally:
        executor.close()


def _cfg(prom: Path, grafana: Path, engine: dict[str, Any] | None = None) -> DeploymentConfig:
    monitoring = {
        "prometheus_config": str(prom),
        "run_metrics": False,
        "grafana_dir": str(grafana),
        "prometheus_url": "http://127.0.0.1:19090",
    }
    return DeploymentConfig.model_validate({"name": DEP, "engine": engine or {"model": "m"}, "monitoring": monitoring})


def _dep() -> Deployment:
    dep = Deployment(name=DEP, config_path="c", server=ServerRecord(uuid="00demo", ip="127.0.0.1"))
    dep.monitoring = MonitoringRecord()
    return dep


ORIGINAL = "# shared\nglobal:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n" \
           "    static_configs: [{targets: ['localhost:9100']}]\n"


def test_monitoring_step_writes_rules_and_grafana_and_unmonitor_removes_them(tmp_path: Path) -> None:
    prom, grafana = tmp_path / "prom" / "prometheus.yml", tmp_path / "grafana"
    prom.parent.mkdir()
    prom.write_text(ORIGINAL)
    cfg, dep = _cfg(prom, grafana), _dep()
    _run_step("monitoring", cfg, dep)
    rules = rules_path(prom, JOB)
    # relative: Prometheus and promtool resolve it beside prometheus.yml, and the dry-run transcript stays stable
    assert yaml.safe_load(prom.read_text())["rule_files"] == [rules.name]
    assert prom.read_text().startswith(ORIGINAL.split("scrape_configs")[0])
    groups = yaml.safe_load(rules.read_text())["groups"]
    assert "KVCacheNearlyFull" in [r["alert"] for r in groups[0]["rules"]]
    ds = yaml.safe_load(datasource_path(grafana).read_text())["datasources"][0]
    assert (ds["uid"], ds["url"], ds["type"]) == (DATASOURCE_UID, "http://127.0.0.1:19090", "prometheus")
    provider = yaml.safe_load(provider_path(grafana).read_text())["providers"][0]
    folder = Path(provider["options"]["path"])
    assert sorted(p.name for p in folder.iterdir()) == [f"{JOB}-gpu.json", f"{JOB}-vllm.json"]
    for board in folder.iterdir():
        assert "${DS_" not in board.read_text()

    _run_step("unmonitor", cfg, dep)
    assert prom.read_text() == ORIGINAL
    assert not rules.exists()
    assert list(folder.iterdir()) == []
    assert datasource_path(grafana).exists()  # shared by every deployment: it stays


def test_triton_deployment_gets_the_triton_dashboard(tmp_path: Path) -> None:
    prom, grafana = tmp_path / "prometheus.yml", tmp_path / "grafana"
    triton = {"kind": "triton", "model_repository": str(tmp_path)}
    cfg = _cfg(prom, grafana, triton)
    _run_step("monitoring", cfg, _dep())
    names = sorted(p.name for p in (grafana / "dashboards" / "orchestrator").iterdir())
    assert names == [f"{JOB}-gpu.json", f"{JOB}-triton.json"]
    assert "RequestsWaiting" in rules_path(prom, JOB).read_text()
    assert "vllm:" not in rules_path(prom, JOB).read_text()


def test_alerts_turned_off_removes_the_rules_file_and_reference(tmp_path: Path) -> None:
    prom = tmp_path / "prometheus.yml"
    prom.write_text(ORIGINAL)
    monitoring = {"prometheus_config": str(prom), "run_metrics": False, "alerts": False}
    cfg = DeploymentConfig.model_validate({"name": DEP, "engine": {"model": "m"}, "monitoring": monitoring})
    on = DeploymentConfig.model_validate(
        {"name": DEP, "engine": {"model": "m"}, "monitoring": {**monitoring, "alerts": True}}
    )
    _run_step("monitoring", on, _dep())
    assert rules_path(prom, JOB).exists()
    _run_step("monitoring", cfg, _dep())  # a redeploy with alerts turned off takes them away again
    assert "rule_files" not in yaml.safe_load(prom.read_text())
    assert not rules_path(prom, JOB).exists()


def test_promtool_rejection_puts_config_and_rules_back(tmp_path: Path) -> None:
    prom = tmp_path / "prometheus.yml"
    broken = ORIGINAL.replace("15s", "15 seconds")  # promtool refuses the global section
    prom.write_text(broken)
    monitoring = {"prometheus_config": str(prom), "run_metrics": False, "promtool": "always"}
    cfg = DeploymentConfig.model_validate({"name": DEP, "engine": {"model": "m"}, "monitoring": monitoring})
    with pytest.raises(Exception, match="promtool rejected"):
        _run_step("monitoring", cfg, _dep())
    assert prom.read_text() == broken
    assert not rules_path(prom, JOB).exists()


def test_real_prometheus_loads_the_rules(tmp_path: Path) -> None:
    from mockcloud.prometheus import Prometheus

    if not Prometheus.available():
        pytest.skip("prometheus not installed")
    prom = Prometheus(tmp_path / "prom")
    prom.root.mkdir(parents=True)
    prom.config.write_text(ORIGINAL)
    cfg = DeploymentConfig.model_validate(
        {
            "name": DEP,
            "engine": {"model": "m"},
            "monitoring": {"prometheus_config": str(prom.config), "run_metrics": False},
        }
    )
    _run_step("monitoring", cfg, _dep())
    prom.start()
    try:
        with urllib.request.urlopen(f"{prom.url}/api/v1/rules?type=alert", timeout=5) as resp:
            body = json.loads(resp.read())
    finally:
        prom.stop()
    groups = {g["name"]: g for g in body["data"]["groups"]}
    assert JOB in groups, body
    loaded = {r["name"] for r in groups[JOB]["rules"]}
    assert loaded == {r["alert"] for r in alert_rules(DEP, JOB, "vllm", AlertSettings())}
    assert groups[JOB]["file"] == str(rules_path(prom.config, JOB))


# -- GPU metrics the field's way: NVIDIA's DCGM exporter (its stand-in on loopback here) ---------------------------


def test_dcgm_exporter_start_command_and_firewall_port() -> None:
    from orchestrator.dcgm import DCGM_CONTAINER, DEFAULT_IMAGE, start
    from orchestrator.ports import DCGM_PORT
    from orchestrator.steps.firewall import engine_ports

    command = start(DEFAULT_IMAGE).command
    assert command.startswith(f"docker rm -f {DCGM_CONTAINER} >/dev/null 2>&1; docker run -d ")
    for part in ("--restart unless-stopped", "--gpus all", "--cap-add SYS_ADMIN", "-p 9400:9400", DEFAULT_IMAGE):
        assert part in command, part
    on = DeploymentConfig.model_validate({"name": DEP, "engine": {"model": "m"}, "monitoring": {"dcgm_exporter": True}})
    off = DeploymentConfig.model_validate({"name": DEP, "engine": {"model": "m"}})
    assert DCGM_PORT in engine_ports(on)
    assert DCGM_PORT not in engine_ports(off)


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    import urllib.parse

    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=5) as resp:
        return list(json.loads(resp.read())["data"]["result"])


def test_real_prometheus_scrapes_the_dcgm_stand_in_and_the_gpu_panels_read_it(tmp_path: Path) -> None:
    import dataclasses
    import os
    import sys
    import time

    from mockcloud.prometheus import Prometheus, free_port
    from orchestrator import dcgm
    from orchestrator.prometheus_yml import merge_scrape_job
    from tests.conftest import REPO

    if not Prometheus.available():
        pytest.skip("prometheus not installed")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), MOCKENGINE_PORTS=json.dumps({"9400": ["127.0.0.1", str(port)]}))
    env.pop("MOCKHOST_HOME", None)
    exporter = subprocess.Popen(
        [sys.executable, "-m", "mockcloud.engine_dcgm"], env=env, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    prom = Prometheus(tmp_path / "prom")
    try:
        target = dataclasses.replace(dcgm.scrape_target(DEP, "127.0.0.1", "1s"), targets=(f"127.0.0.1:{port}",))
        assert target.job == f"{JOB}-gpu"
        prom.root.mkdir(parents=True)
        prom.config.write_text(merge_scrape_job("global:\n  scrape_interval: 1s\nscrape_configs: []\n", target))
        prom.start()
        memory = _substitute(_panel_expr(GPU_DASHBOARD, "GPU memory used", 0))
        result: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not result and time.monotonic() < deadline:
            result = _query(prom.url, memory)
            time.sleep(0.2)
        assert [r["metric"] for r in result] == [{"gpu": "0"}]
        assert float(result[0]["value"][1]) == pytest.approx(1200 / 46068)
        temp = _query(prom.url, f'DCGM_FI_DEV_GPU_TEMP{{deployment="{DEP}"}}')
        labels = temp[0]["metric"]
        assert (labels["job"], labels["exporter"], labels["modelName"]) == (f"{JOB}-gpu", "dcgm", "NVIDIA L40S")
        assert labels["UUID"].startswith("GPU-") and labels["device"] == "nvidia0"
    finally:
        prom.stop()
        exporter.terminate()
        exporter.wait(timeout=10)


def test_dcgm_job_is_merged_beside_the_engine_job_and_removed_with_it(tmp_path: Path) -> None:
    from orchestrator.actions import Action, Remote, Result

    remote: list[str] = []

    class NoRemote(LiveExecutor):
        """The step's one remote action (docker run on the server) answered as the server would."""

        def execute(self, action: Action) -> Result:
            if isinstance(action, Remote):
                remote.append(action.command)
                return Result(stdout="0123abcd\n")
            return super().execute(action)

    prom = tmp_path / "prometheus.yml"
    prom.write_text(ORIGINAL)
    monitoring = {"prometheus_config": str(prom), "run_metrics": False, "dcgm_exporter": True}
    cfg = DeploymentConfig.model_validate({"name": DEP, "engine": {"model": "m"}, "monitoring": monitoring})
    dep = _dep()
    executor = NoRemote({})
    try:
        Runner(executor, _Quiet()).run(
            Playbook(name="t", steps=[PlaybookStep(kind="monitoring")]),
            StepContext(cfg=cfg, dep=dep, store=None),  # type: ignore[arg-type]
        )
    finally:
        executor.close()
    assert len(remote) == 1 and "nvcr.io/nvidia/k8s/dcgm-exporter:" in remote[0]
    jobs = {j["job_name"]: j for j in yaml.safe_load(prom.read_text())["scrape_configs"]}
    assert jobs[f"{JOB}-gpu"]["static_configs"] == [
        {"targets": ["127.0.0.1:9400"], "labels": {"deployment": DEP, "exporter": "dcgm"}}
    ]
    _run_step("unmonitor", cfg, dep)
    assert prom.read_text() == ORIGINAL


def test_dcgm_exporter_that_cannot_start_fails_the_step_before_any_config_change(tmp_path: Path) -> None:
    from orchestrator.actions import Action, Remote, Result
    from orchestrator.errors import MonitoringError

    class NoDocker(LiveExecutor):
        def execute(self, action: Action) -> Result:
            if isinstance(action, Remote):
                return Result(rc=127, stderr="bash: line 1: docker: command not found\n")
            return super().execute(action)

    prom = tmp_path / "prometheus.yml"
    prom.write_text(ORIGINAL)
    monitoring = {"prometheus_config": str(prom), "run_metrics": False, "dcgm_exporter": True}
    cfg = DeploymentConfig.model_validate({"name": DEP, "engine": {"model": "m"}, "monitoring": monitoring})
    executor = NoDocker({})
    with pytest.raises(MonitoringError, match="DCGM exporter failed") as caught:
        try:
            Runner(executor, _Quiet()).run(
                Playbook(name="t", steps=[PlaybookStep(kind="monitoring")]),
                StepContext(cfg=cfg, dep=_dep(), store=None),  # type: ignore[arg-type]
            )
        finally:
            executor.close()
    assert "docker: command not found" in (caught.value.details or "")
    assert prom.read_text() == ORIGINAL and not rules_path(prom, JOB).exists()


def test_flow_style_rule_files_is_edited_in_place() -> None:
    original = "# hand-written\nglobal:\n  scrape_interval: 30s  # slow\nrule_files: ['alerts.yml', team/*.yml]\n" \
               "scrape_configs: []\n"
    added = add_rule_file(original, "orchestrator-demo.rules.yml")
    assert added == original.replace("team/*.yml]", 'team/*.yml, "orchestrator-demo.rules.yml"]')
    assert remove_rule_file(added, "orchestrator-demo.rules.yml") == (original, True)
    only = "rule_files: []\nscrape_configs: []\n"
    assert add_rule_file(only, "x.yml") == 'rule_files: ["x.yml"]\nscrape_configs: []\n'

