"""The optional node exporter: its stand-in speaks the recorded real output's names, its alerts and dashboard
pass promtool, a real Prometheus scrapes it, the mock host's apt/systemctl run it, and the plan with it on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockcloud.hostbase import tool_argv
from orchestrator.alerts import AlertSettings, host_rules, rules_document
from orchestrator.grafana import HOST_DASHBOARD, dashboard_document
from tests.conftest import REPO

RECORDED = REPO / "tests" / "fixtures" / "recorded" / "node-exporter"
DEP = "demo"
JOB = "orchestrator-demo"
INSTANCE = "203.0.113.7:9100"
promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def _families(text: str) -> dict[str, tuple[str, str, set[frozenset[str]]]]:
    """name -> (HELP, TYPE, the label-name sets of its samples), as the text format states them."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        lines = [ln for ln in text.splitlines() if ln.startswith((f"# HELP {fam.name} ", f"# HELP {fam.name}_total "))]
        name = lines[0].split()[2] if lines else fam.name
        out[name] = (fam.documentation, fam.type, {frozenset(s.labels) for s in fam.samples})
    return out


def test_stand_in_serves_the_recorded_names_help_types_and_labels() -> None:
    from mockcloud.engine_node import collect

    recorded: dict[str, tuple[str, str, set[frozenset[str]]]] = {}
    for path in sorted(RECORDED.glob("*.txt")):
        recorded |= _families(path.read_text())
    served = _families(collect().render().decode())
    assert set(served) <= set(recorded), set(served) - set(recorded)
    for name, (help_text, kind, labels) in served.items():
        rec_help, rec_kind, rec_labels = recorded[name]
        assert (help_text, kind) == (rec_help, rec_kind), name
        if rec_labels and name != "node_exporter_build_info":
            assert labels <= rec_labels, (name, labels, rec_labels)
    build = served["node_exporter_build_info"][2]
    assert build == recorded["node_exporter_build_info"][2]
    # every name the host alerts and dashboard read is served
    used = {"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
            "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_network_receive_bytes_total",
            "node_network_transmit_bytes_total", "node_disk_read_bytes_total", "node_load1"}  # fmt: skip
    assert used <= set(served)


def _host_exprs() -> list[tuple[str, str]]:
    doc = json.loads(dashboard_document(HOST_DASHBOARD, DEP, JOB))
    subst = {"$__rate_interval": "1m", "$deployment": DEP}
    out = []
    for panel in doc["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for k, v in subst.items():
                expr = expr.replace(k, v)
            out.append((panel["title"], expr))
    return out


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)


@promtool
def test_host_dashboard_queries_and_host_rules_pass_promtool_check(tmp_path: Path) -> None:
    panels = [{"record": f"panel:host_{n}", "expr": e} for n, (_t, e) in enumerate(_host_exprs())]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "p", "rules": panels}]}))
    r = _promtool("check", "rules", str(tmp_path / "panels.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "alerts.yml").write_text(rules_document(DEP, JOB, "vllm", AlertSettings(), host=True))
    r = _promtool("check", "rules", str(tmp_path / "alerts.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NodeExporterDown" not in rules_document(DEP, JOB, "vllm", AlertSettings())  # off: no host alerts


def _series(metric: str, labels: dict[str, str], values: str, job: str = JOB + "-node") -> dict[str, str]:
    full = {"deployment": DEP, "job": job, "instance": INSTANCE, "exporter": "node", **labels}
    return {"series": metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(full.items())) + "}", "values": values}


def _unit(tmp_path: Path, series: list[dict[str, str]], alerts: dict[str, list[dict[str, Any]]],
          exprs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:  # fmt: skip
    rules = tmp_path / "host.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "h", "rules": host_rules(DEP, JOB, AlertSettings())}]}))
    panels = [{"record": f"panel:host_{n}", "expr": e} for n, (_t, e) in enumerate(_host_exprs())]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "p", "rules": panels}]}))
    unit = {
        "rule_files": [str(rules), str(tmp_path / "panels.yml")],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "15s", "input_series": series,
            "alert_rule_test": [{"eval_time": "15m", "alertname": a, "exp_alerts": e} for a, e in alerts.items()],
            "promql_expr_test": exprs,
        }],
    }  # fmt: skip
    (tmp_path / "unit.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    return _promtool("test", "rules", str(tmp_path / "unit.yml"))


ROOT_FS = {"device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/"}
RUN_FS = {"device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}


@promtool
def test_every_host_alert_fires_and_a_panel_reads_the_series(tmp_path: Path) -> None:
    series = [
        _series("up", {}, "0x60"),
        _series("node_filesystem_avail_bytes", ROOT_FS, "5x60"),
        _series("node_filesystem_size_bytes", ROOT_FS, "100x60"),
        _series("node_memory_MemAvailable_bytes", {}, "4x60"),
        _series("node_memory_MemTotal_bytes", {}, "100x60"),
        _series("node_cpu_seconds_total", {"cpu": "0", "mode": "idle"}, "0+3.75x60"),  # 25 % idle
    ]
    node = {"severity": "warning", "deployment": DEP, "instance": INSTANCE}
    summary = {
        r["alert"]: r["annotations"]["summary"].replace("{{ $labels.instance }}", INSTANCE)
        .replace("{{ $labels.mountpoint }}", "/")
        for r in host_rules(DEP, JOB, AlertSettings())
    }
    expected = {
        "NodeExporterDown": {**node, "job": JOB + "-node", "exporter": "node"},
        "FilesystemAlmostFull": {**node, "mountpoint": "/"},
        "HostMemoryPressure": node,
    }
    alerts = {a: [{"exp_labels": labels, "exp_annotations": {"summary": summary[a]}}] for a, labels in expected.items()}
    assert set(alerts) == set(summary)
    assert _host_exprs()[0][0] == "CPU busy"
    exprs = [{"expr": "panel:host_0", "eval_time": "15m",
              "exp_samples": [{"labels": f'panel:host_0{{instance="{INSTANCE}"}}', "value": 0.75}]}]  # fmt: skip
    r = _unit(tmp_path, series, alerts, exprs)
    assert r.returncode == 0, r.stdout + r.stderr


@promtool
def test_host_alerts_stay_quiet_on_a_healthy_host_and_ignore_tmpfs(tmp_path: Path) -> None:
    series = [
        _series("up", {}, "1x60"),
        _series("node_filesystem_avail_bytes", ROOT_FS, "50x60"),
        _series("node_filesystem_size_bytes", ROOT_FS, "100x60"),
        _series("node_filesystem_avail_bytes", RUN_FS, "0x60"),  # a full tmpfs is not a full disk
        _series("node_filesystem_size_bytes", RUN_FS, "100x60"),
        _series("node_memory_MemAvailable_bytes", {}, "60x60"),
        _series("node_memory_MemTotal_bytes", {}, "100x60"),
    ]
    alerts: dict[str, list[dict[str, Any]]] = {
        "NodeExporterDown": [], "FilesystemAlmostFull": [], "HostMemoryPressure": []
    }
    r = _unit(tmp_path, series, alerts, [])
    assert r.returncode == 0, r.stdout + r.stderr


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_real_prometheus_scrapes_the_stand_in_and_the_host_panels_read_it(tmp_path: Path) -> None:
    import dataclasses

    from mockcloud.prometheus import Prometheus, free_port
    from orchestrator import node_exporter
    from orchestrator.prometheus_yml import merge_scrape_job

    if shutil.which("promtool") is None or not Prometheus.available():
        pytest.skip("prometheus not installed")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), MOCKNODE_LISTEN=f"127.0.0.1:{port}")
    env.pop("MOCKHOST_HOME", None)
    exporter = subprocess.Popen([sys.executable, "-m", "mockcloud.engine_node"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    prom = Prometheus(tmp_path / "prom")
    try:
        target = node_exporter.scrape_target(DEP, "127.0.0.1", "1s")
        assert target.job == f"{JOB}-node"
        target = dataclasses.replace(target, targets=(f"127.0.0.1:{port}",))
        prom.root.mkdir(parents=True)
        prom.config.write_text(merge_scrape_job("global:\n  scrape_interval: 1s\nscrape_configs: []\n", target))
        prom.start()
        import urllib.parse

        memory = dict(_host_exprs())["Memory used"]
        result: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not result and time.monotonic() < deadline:
            q = urllib.parse.urlencode({"query": memory})
            result = json.loads(_get(f"{prom.url}/api/v1/query?{q}"))["data"]["result"]
            time.sleep(0.2)
        assert result and 0.0 < float(result[0]["value"][1]) < 1.0
        q = urllib.parse.urlencode({"query": f'node_filesystem_size_bytes{{deployment="{DEP}"}}'})
        labels = json.loads(_get(f"{prom.url}/api/v1/query?{q}"))["data"]["result"][0]["metric"]
        assert (labels["job"], labels["exporter"], labels["mountpoint"]) == (f"{JOB}-node", "node", "/")
    finally:
        prom.stop()
        exporter.terminate()
        exporter.wait(timeout=10)


def test_mock_host_apt_installs_and_systemd_runs_the_package(tmp_path: Path) -> None:
    from mockcloud.prometheus import free_port

    home = tmp_path / "h1"
    (home / "run").mkdir(parents=True)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), MOCKHOST_HOME=str(home), SUDO_USER="ubuntu",
               MOCKNODE_LISTEN=f"127.0.0.1:{port}")  # fmt: skip
    hostsys = tool_argv("hostsys")

    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*hostsys, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    r = tool("systemctl", "enable", "--now", "prometheus-node-exporter")
    assert r.returncode == 5 and "prometheus-node-exporter.service not found" in r.stderr
    try:
        r = tool("apt-get", "install", "-y", "prometheus-node-exporter")
        assert r.returncode == 0, r.stderr
        assert "Setting up prometheus-node-exporter" in r.stdout
        text = ""
        deadline = time.monotonic() + 20
        while not text and time.monotonic() < deadline:
            try:
                text = _get(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                time.sleep(0.1)
        assert "node_memory_MemAvailable_bytes" in text
        assert tool("systemctl", "enable", "--now", "prometheus-node-exporter").returncode == 0
        assert tool("systemctl", "is-active", "prometheus-node-exporter").stdout.strip() == "active"
        assert tool("systemctl", "stop", "prometheus-node-exporter").returncode == 0
        r = tool("systemctl", "is-active", "prometheus-node-exporter")
        assert (r.returncode, r.stdout.strip()) == (3, "inactive")
    finally:
        tool("systemctl", "stop", "prometheus-node-exporter")


def test_plan_with_the_node_exporter_on(tmp_path: Path) -> None:
    """Golden plans are for the default (off); this is the one plan with it on."""
    from tests.golden_cases import UBUNTU_CONFIG, _env, normalise

    cfg = tmp_path / "node.yaml"
    cfg.write_text(UBUNTU_CONFIG + "  node_exporter: true\n")
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "deploy", str(cfg), "--dry-run"], env=_env(tmp_path),
                          cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = normalise(proc.stdout, tmp_path)
    assert (
        "remote: sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "
        "prometheus-node-exporter && sudo -n systemctl enable --now prometheus-node-exporter" in plan
    )
    assert "--destination-port-start 9100 --destination-port-end 9100 --comment 'orchestrator: engine'" in plan
    assert "--action drop --family IPv4 --protocol udp --destination-port-start 9100" in plan  # a protected port
    # TCP from elsewhere: the default drop (9100 lies outside the ephemeral range the reply rule accepts)
    tcp_drop = "--protocol tcp --destination-port-start 9100 --destination-port-end 9100 --comment 'orchestrator: prot"
    assert tcp_drop not in plan
