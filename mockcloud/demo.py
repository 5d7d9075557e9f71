"""`make demo`: deploy configs/demo.yaml to the local mock GPU cloud, prove it serves and is scraped, tear down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from mockcloud.cloud import MockCloud
from mockcloud.host_runtime import usable_by_others
from mockcloud.hosts import new_root
from mockcloud.prometheus import Prometheus

REPO = Path(__file__).resolve().parent.parent
# Where the demo keeps its files (state, Prometheus, the mock cloud where it can): .demo in the checkout, or the
# folder MOCKCLOUD_DEMO_DIR names (tests/test_demo.py runs the demo in its own temporary folder).
DEMO = Path(os.environ.get("MOCKCLOUD_DEMO_DIR") or REPO / ".demo")
CONFIG = REPO / "configs" / "demo.yaml"
PROM_PORT = 19090


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def orchestrator(args: list[str], env: dict[str, str], *, show: bool = True) -> subprocess.CompletedProcess[str]:
    if show:
        print(f"$ orchestrator {' '.join(args)}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=None,
        cwd=REPO,
    )
    if show:
        print(proc.stdout, end="", flush=True)
    return proc


def cloud_root() -> Path:
    """.demo/cloud, unless the mock hosts' login user (gpuops, when root) cannot enter the checkout (a clone in a
    0700 dir such as /root or `mktemp -d`): then a new world-traversable dir in /tmp, removed at the end."""
    if os.geteuid() != 0 or usable_by_others(DEMO):
        return DEMO / "cloud"
    return new_root("orchestrator-demo-")


def demo_config(cloud: MockCloud, prom: Prometheus | None) -> Path:
    """configs/demo.yaml as is when the mock cloud matches it; otherwise a copy with the local differences."""
    data = yaml.safe_load(CONFIG.read_text())
    changes: dict[str, object] = {}
    if cloud.client_key != (CONFIG.parent / data["ssh"]["private_key"]).resolve():
        changes["ssh.private_key"] = data["ssh"]["private_key"] = str(cloud.client_key)
    if cloud.user != data["ssh"]["user"]:
        changes["ssh.user"] = data["ssh"]["user"] = cloud.user
    if cloud.ssh_port != data["ssh"].get("port", 22):
        changes["ssh.port"] = data["ssh"]["port"] = cloud.ssh_port
    if prom is None:
        changes["monitoring.reload_url"] = data["monitoring"]["reload_url"] = None
    elif prom.port != PROM_PORT:
        changes["monitoring.reload_url"] = data["monitoring"]["reload_url"] = f"{prom.url}/-/reload"
    if not changes:
        return CONFIG
    data["ssh"]["private_key"] = str(cloud.client_key)
    data["monitoring"]["prometheus_config"] = str(DEMO / "prometheus" / "prometheus.yml")
    path = DEMO / "demo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"(this machine's mock cloud differs from configs/demo.yaml in {', '.join(changes)}; using {path})")
    return path


def ask_model(endpoint: str, model: str, api_key: str) -> str:
    body = json.dumps({"model": model, "prompt": "Say hello", "max_tokens": 8}).encode()
    req = urllib.request.Request(
        f"{endpoint}/completions",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = json.loads(resp.read())
    return str(answer["choices"][0]["text"])


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    env = dict(os.environ)
    env["ORCHESTRATOR_HOME"] = str(DEMO / "home")
    env["VLLM_API_KEY"] = "demo-key-" + os.urandom(6).hex()
    failures: list[str] = []
    banner("starting the local mock GPU cloud (fake upctl + a real sshd per mock host)")
    root = cloud_root()
    try:
        return _run(root, env, failures)
    finally:
        if not root.is_relative_to(DEMO):
            shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, env: dict[str, str], failures: list[str]) -> int:
    with MockCloud(root, hosts=1) as cloud:
        env.update(cloud.env())
        prom: Prometheus | None = None
        if Prometheus.available():
            port = PROM_PORT
            try:
                prom = Prometheus(DEMO / "prometheus", port=port).start()
            except RuntimeError:
                prom = Prometheus(DEMO / "prometheus").start()
            print(f"Prometheus {prom.url} (config {prom.config})")
        else:
            print("prometheus not installed: the scrape config is written and checked, not scraped")
        try:
            config = demo_config(cloud, prom)
            rel = os.path.relpath(config, REPO)
            banner(f"deploy {rel}")
            if orchestrator(["deploy", rel], env).returncode != 0:
                failures.append("deploy failed")
            else:
                orchestrator(["status"], env)
                state = json.loads(orchestrator(["status", "demo", "--json"], env, show=False).stdout)[0]
                endpoint = state["engine"]["endpoint"]
                banner("a real request to the engine")
                print(f"completion: {ask_model(endpoint, state['engine']['served_name'], env['VLLM_API_KEY'])!r}")
                if prom is not None:
                    banner("Prometheus scraping the engine through the written config")
                    up = prom.wait_up("orchestrator-demo", timeout=30)
                    print(f'up{{job="orchestrator-demo"}} = 1 for {[r["metric"]["instance"] for r in up]}')
                    series = prom.query('vllm:num_requests_running{job="orchestrator-demo"}')
                    print(f"vllm:num_requests_running series scraped: {len(series)}")
            banner("teardown demo")
            if orchestrator(["teardown", "demo", "--yes"], env).returncode != 0:
                failures.append("teardown failed")
            left = subprocess.run(
                ["upctl", "server", "list", "-o", "json"], env=env, capture_output=True, text=True, check=True
            )
            servers = json.loads(left.stdout)["servers"]
            print(f"servers left in the mock cloud: {len(servers)}")
            if servers:
                failures.append(f"{len(servers)} server(s) left")
        finally:
            if prom is not None:
                prom.stop()
    banner("demo " + ("FAILED: " + "; ".join(failures) if failures else "finished: nothing left running"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
