"""Cost: provider.price_per_hour in the dry-run plan and in status; billed per started hour; never invented."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from orchestrator.cost import billed_hours, cost_so_far, price_of
from orchestrator.state import Deployment, ServerRecord, StateStore
from tests.conftest import run_cli
from tests.golden_cases import UBUNTU_CONFIG

PRICED = UBUNTU_CONFIG.replace('  plan: "^GPU-8xCPU-64GB-1xL40S$"\n', '  plan: "^GPU-8xCPU-64GB-1xL40S$"\n'
                               "  price_per_hour: 1.92\n  currency: EUR\n")


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin", "HOME": str(tmp_path / "home")}


def test_started_hours_are_billed() -> None:
    assert [billed_hours(s) for s in (0, 1, 3600, 3601, 7200)] == [1, 1, 1, 2, 2]
    assert cost_so_far(1.92, created_at=1000.0, now=1000.0 + 3 * 3600 + 5) == 1.92 * 4
    assert price_of({"provider": {"price_per_hour": 2, "currency": "USD"}}) == (2.0, "USD")
    assert price_of({"provider": {}}) == (None, "EUR") and price_of({}) == (None, "EUR")


def test_dry_run_shows_the_configured_price_and_none_without_one(tmp_path: Path) -> None:
    assert PRICED != UBUNTU_CONFIG
    cfg = tmp_path / "priced.yaml"
    cfg.write_text(PRICED)
    priced = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path))
    assert priced.returncode == 0, priced.stderr
    assert "Price: ≈ 1.92 EUR per hour (provider.price_per_hour), billed per started hour." in priced.stdout
    cfg.write_text(PRICED + "replicas: 3\n")  # a fleet: every server's hour
    fleet = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path))
    assert fleet.returncode == 0, fleet.stderr
    assert "Price: ≈ 5.76 EUR per hour for 3 servers at 1.92 each (provider.price_per_hour)," in fleet.stdout
    cfg.write_text(UBUNTU_CONFIG)
    plain = run_cli("deploy", str(cfg), "--dry-run", env=_env(tmp_path))
    assert plain.returncode == 0 and "per hour" not in plain.stdout


def test_status_shows_price_and_cost_so_far(tmp_path: Path) -> None:
    home = tmp_path / "orch"
    env = {"ORCHESTRATOR_HOME": str(home), "ORCHESTRATOR_UPCTL": str(tmp_path / "no-upctl")}
    store = StateStore(home)
    now = time.time()
    server = ServerRecord(uuid="00aa", plan="GPU-8xCPU-64GB-1xL40S", zone="fi-hel2", ip="10.0.0.2", state="started")
    store.save(
        Deployment(
            name="priced",
            config_path="/x.yaml",
            created_at=now - 2.5 * 3600,
            status="deployed",
            server=server,
            config={"provider": {"price_per_hour": 1.92, "currency": "EUR"}},
        )
    )
    store.save(Deployment(name="free", config_path="/y.yaml", status="deployed", server=server, config={}))
    table = run_cli("status", env=env)
    assert table.returncode == 0, table.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines()}
    assert lines["NAME"].rstrip().endswith("COST")
    assert lines["priced"].endswith("1.92 EUR/h, 5.76 so far")  # 3 started hours
    assert lines["free"].rstrip().endswith("-")
    docs = {d["name"]: d for d in json.loads(run_cli("status", "--json", env=env).stdout)}
    assert docs["priced"]["cost"] == {"price_per_hour": 1.92, "currency": "EUR", "so_far": 5.76}
    assert docs["free"]["cost"] == {"price_per_hour": None, "currency": None, "so_far": None}
    # Live by default: what could not be checked says why, and the cost is there all the same.
    live = docs["priced"]["live"]
    assert live["server"] == {"checked": False, "state": None, "error": f"{tmp_path / 'no-upctl'}: command not found"}
    assert live["engine_health"] == {"checked": False, "ok": None, "detail": "no engine recorded"}
    assert (live["price_per_hour"], live["currency"], live["cost_so_far"]) == (1.92, "EUR", 5.76)
    assert docs["free"]["live"]["price_per_hour"] is None and docs["free"]["live"]["cost_so_far"] is None
    assert "live" not in json.loads(run_cli("status", "--json", "--local", env=env).stdout)[0]
