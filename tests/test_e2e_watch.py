"""End to end for "Watch it" and "Measure it" on the mock cloud: a Triton deployment with the node exporter and
the DCGM exporter; a real Prometheus scrapes both stand-ins through the firewall rules, `bench --json` measures
the mock Triton's configured delay, and teardown leaves no job behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.prometheus import Prometheus
from tests.conftest import run_cli
from tests.test_e2e import cloud, engine_processes, env, prom, write_config  # noqa: F401 - shared fixtures
from tests.test_e2e_engines import TRITON_REPO, engine_config, scrape_job, status_of, teardown_clean

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")

INFER_DELAY = 0.4  # large enough that request overhead on a busy 2-core machine stays well inside 10 %


def test_triton_with_node_exporter_scraped_benched_and_torn_down(
    cloud: MockCloud, prom: Prometheus | None, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = engine_config(cloud, tmp_path, prom, "wtrt", {"kind": "triton", "model_repository": str(TRITON_REPO)})
    data = yaml.safe_load(cfg.read_text())
    data["monitoring"] |= {"node_exporter": True, "dcgm_exporter": True}
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "monitoring: ok" in proc.stderr
    status = status_of("wtrt", env)
    ip = status["server"]["ip"]
    host = next(h for h in cloud.hosts if h.ipv4 == ip)
    assert "apt-get install prometheus-node-exporter" in (host.home / "installed.log").read_text()
    prom_cfg = Path(status["monitoring"]["prometheus_config"])
    node = scrape_job(prom_cfg, "orchestrator-wtrt-node")
    labels = {"deployment": "wtrt", "exporter": "node"}
    assert node["static_configs"][0] == {"targets": [f"{ip}:9100"], "labels": labels}
    assert scrape_job(prom_cfg, "orchestrator-wtrt-gpu")["static_configs"][0]["targets"] == [f"{ip}:9400"]
    if prom is not None:
        prom.wait_up("orchestrator-wtrt-node", timeout=30)
        assert prom.query('node_memory_MemAvailable_bytes{deployment="wtrt",exporter="node"}')
        prom.wait_up("orchestrator-wtrt-gpu", timeout=30)
        rules = prom.query('ALERTS{deployment="wtrt"}')  # loaded rules: nothing fires on a healthy host
        assert all(r["metric"]["alertname"] not in ("NodeExporterDown", "FilesystemAlmostFull")  # type: ignore[index]
                   for r in rules)  # fmt: skip

    host.set_knobs(engine_infer_delay=INFER_DELAY)
    out = run_cli("bench", "wtrt", "--concurrency", "1,2", "--requests", "8", "--json", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["engine"] == "triton" and doc["model"] == "identity_fp32"
    for lv in doc["levels"]:
        assert (lv["completed"], lv["failed"]) == (8, 0), lv
        assert abs(lv["latency_s"]["p50"] - INFER_DELAY) <= 0.1 * INFER_DELAY, lv
        assert abs(lv["inferences_per_s"] - lv["concurrency"] / INFER_DELAY) <= 0.1 * lv["concurrency"] / INFER_DELAY
    teardown_clean(cloud, "wtrt", env, prom_cfg)
    assert engine_processes(cloud) == []
