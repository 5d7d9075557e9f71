"""Our upctl parsers on RECORDED real data (tests/fixtures/recorded/README.md says where each file comes from).

Two kinds of input: upcloud-cli's own golden `-o json` output (verbatim), and recorded UpCloud API answers
(go-api's go-vcr cassettes) turned into what upctl prints by tests/upctl_go.py. The second half runs the
fake upctl for the same commands and checks it prints the same keys, in the same order, with the same types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.providers.base import PlanInfo
from orchestrator.providers.upctl_parse import (
    check_gpu_availability,
    parse_firewall_rules,
    parse_plans,
    parse_server,
    parse_server_list,
    parse_templates,
    parse_zone_devices,
    parse_zones,
    resolve_template,
    select_plan,
)
from tests import upctl_go

REPO = Path(__file__).resolve().parents[1]
RECORDED = Path(__file__).parent / "fixtures" / "recorded"
UPCTL = REPO / "mockcloud" / "bin" / "upctl"
L40S = "GPU-8xCPU-64GB-1xL40S"


def api(name: str) -> Any:
    return json.loads((RECORDED / "upcloud-go-api" / name).read_text())


def printed(value: Any) -> str:
    """What upctl writes: json.MarshalIndent with two spaces, one trailing newline."""
    return json.dumps(value, indent=2) + "\n"


# ------------------------------------------------------------------ upctl's own golden output, verbatim


GOLDEN_SERVER_LIST = RECORDED / "upcloud-cli" / "server_list_show_ip_addresses.golden.json"


def golden_server_list() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN_SERVER_LIST.read_text())
    return data


def test_parse_server_list_on_upctl_golden() -> None:
    text = GOLDEN_SERVER_LIST.read_text()
    [server] = parse_server_list(text)
    assert (server.uuid, server.hostname, server.plan, server.zone, server.state) == (
        "server-list-test-server-uuid",
        "server-list-test-server",
        "1xCPU-1GB",
        "pl-waw1",
        "started",
    )
    assert server.labels == {} and server.title == ""


def test_emulator_agrees_with_upctl_golden() -> None:
    """The Go-struct emulation prints the same server and IP keys, in order, as upctl's own golden file."""
    server = golden_server_list()["servers"][0]
    assert list(server)[:-1] == [name for name, _ in upctl_go.SERVER_FIELDS]
    assert list(server)[-1] == "ip_addresses"
    assert list(server["ip_addresses"][0]) == list(upctl_go.IP_ADDRESS({}))
    assert upctl_go.SERVER({"core_number": "0", "progress": "0", "plan": "1xCPU-1GB"})["core_number"] == "0"
    assert server["tags"] is None and upctl_go.SERVER({})["tags"] is None  # API without tags → nil slice → null
    assert [ip["floating"] for ip in server["ip_addresses"]] == ["yes", "no", "no", "no"]  # Boolean as yes/no


# ------------------------------------------------------------------ recorded API answers → upctl → our parsers


def test_plans_from_recorded_plan_list() -> None:
    out = upctl_go.server_plans(api("plan_list.json"))
    plans = parse_plans(printed(out))
    assert len(plans) == 10
    assert plans[0] == PlanInfo("1xCPU-1GB", 1, 1024, 25, 0, "")
    # upctl sorts by cores, then memory: 20xCPU-96GB comes before 20xCPU-128GB although the API sent it last
    assert [p.name for p in plans[-2:]] == ["20xCPU-96GB", "20xCPU-128GB"]
    assert not any(p.is_gpu for p in plans)


def test_gpu_plan_with_null_storage_tier() -> None:
    out = upctl_go.server_plans(api("plan_list_gpu.json"))
    assert out[-1]["storage_tier"] == ""  # the API's null becomes Go's zero string
    plans = parse_plans(printed(out))
    assert select_plan(plans, "^GPU-8xCPU-64GB-1xL40S$") == PlanInfo(L40S, 8, 65536, 0, 1, "NVIDIA L40S")
    assert select_plan(plans, L40S).is_gpu


def test_zones_from_recorded_zone_list() -> None:
    out = upctl_go.zone_list(api("zone_list.json"))
    assert list(out) == ["zone"]  # singular key: go-api's Zones struct tag
    zones = parse_zones(printed(out))
    assert zones[:3] == ["de-fra1", "fi-hel1", "fi-hel2"] and len(zones) == 10
    assert "uk-tst1" in zones and out["zone"][6]["public"] == "no"


def test_zone_devices_from_recorded_availability() -> None:
    out = upctl_go.zone_devices(api("device_availability.json"))
    devices = parse_zone_devices(printed(out))
    assert devices == {"fi-hel2": {L40S: 123}}
    check_gpu_availability(devices, "fi-hel2", L40S)


def test_templates_from_recorded_storage_list() -> None:
    raw = json.loads((RECORDED / "upcloud-python-api" / "storage_template.json").read_text())
    out = upctl_go.storage_list_public_templates(raw)
    templates = parse_templates(printed(out))
    assert len(templates) == 13  # the three private templates are filtered out by --public
    ubuntu = resolve_template(templates, "Ubuntu Server 20.04 LTS (Focal Fossa)")
    assert ubuntu.uuid == "01000000-0000-4000-8000-000030200200"
    assert resolve_template(templates, "focal").uuid == ubuntu.uuid
    assert out["storages"][0]["created"] == "0001-01-01T00:00:00Z"  # time.Time zero value when the API has none


def test_templates_from_recorded_private_storages_are_none() -> None:
    """`--public --template` on an account answer that has only private disks: no templates, not an error."""
    out = upctl_go.storage_list_public_templates(api("storage_private.json"))
    assert out == {"storages": []}
    assert parse_templates(printed(out)) == []


def test_server_show_from_recorded_details() -> None:
    out = upctl_go.server_show(api("server_details.json"))
    assert out["labels"] == {
        "label": [
            {"key": "managedBy", "value": "upcloud-sdk-integration-test"},
            {"key": "testName", "value": "getserverswithfilters"},
        ]
    }
    assert isinstance(out["networking"]["interfaces"], list)  # the API's {"interface": [...]} is unwrapped
    server = parse_server(printed(out))
    assert server.uuid == "00a47181-df7b-42c2-a6cc-107c9603e1e8"
    assert (server.state, server.plan, server.zone) == ("started", "custom", "fi-hel2")
    assert server.public_ipv4 == "94.237.105.105"  # the public interface's IPv4, not its IPv6 sibling
    assert server.labels == {"managedBy": "upcloud-sdk-integration-test", "testName": "getserverswithfilters"}
    assert server.gpu_models == ()


def test_server_create_response_from_recording() -> None:
    out = upctl_go.server_show(api("server_create_202.json"))
    server = parse_server(printed(out))
    assert server.state == "maintenance"  # create prints the 202 answer, not the state after --wait
    assert server.uuid == "00a47181-df7b-42c2-a6cc-107c9603e1e8"
    assert server.public_ipv4 is not None and server.public_ipv4.count(".") == 3


def test_server_stop_response_still_started() -> None:
    server = parse_server(printed(upctl_go.server_show(api("server_stop.json"))))
    assert server.state == "started"
    stopped = parse_server(printed(upctl_go.server_show(api("server_details_stopped.json"))))
    assert stopped.state == "stopped" and stopped.uuid == server.uuid


def test_server_list_from_recording_has_no_labels() -> None:
    out = upctl_go.server_list(api("server_list.json"))
    assert "labels" not in out["servers"][0]  # go-api's Server (the list element) has no labels field
    assert out["servers"][0]["tags"] == []  # {"tag": []} → an empty, non-nil slice
    servers = parse_server_list(printed(out))
    assert [s.uuid for s in servers] == ["009a78e4-5595-4551-8ba2-88eb0daaad29", "00a47181-df7b-42c2-a6cc-107c9603e1e8"]
    assert all(s.labels == {} and s.public_ipv4 is None for s in servers)


def test_firewall_rules_from_recording() -> None:
    out = upctl_go.firewall_show(api("firewall_rules.json"))
    rules = parse_firewall_rules(printed(out))
    assert [r["position"] for r in rules] == ["1", "2", "3"]
    assert rules[0] == {
        "action": "accept",
        "comment": "This is a new comment 0",
        "destination_port_start": "80",
        "destination_port_end": "80",
        "direction": "in",
        "family": "IPv4",
        "position": "1",
        "protocol": "tcp",
    }
    assert rules[2] == {"action": "drop", "comment": "This is a new comment 2", "direction": "in", "position": "3"}
    assert parse_firewall_rules(printed({"firewall_rules": None})) == []
    created = upctl_go.firewall_create(api("firewall_rule_create_201.json"))
    assert created == {
        "action": "accept",
        "comment": "This is the comment",
        "direction": "in",
        "family": "IPv4",
        "position": "1",
        "protocol": "tcp",
    }


# ------------------------------------------------------------------ the fake upctl prints the same shapes


def _shape(value: Any) -> Any:
    """Keys in order and value types, recursively (lists: the shape of the first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"  # JSON has one number type (Go prints float64 0 as `0`)
    return type(value).__name__


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = tmp_path_factory.mktemp("world")
    home = tmp_path_factory.mktemp("userhome")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    env = keep | {
        "HOME": str(home),
        "FAKE_UPCTL_HOME": str(world),
        "MOCKCLOUD_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        "UPCLOUD_TOKEN": "recorded-shape-test",
    }
    key = home / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3gZc3DjGJ0e1nG7pyx3rCq7I9nOr8Qf4w0i4v3y3mF shape@test\n")

    def run(*args: str) -> Any:
        proc = subprocess.run([str(UPCTL), *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    created = run(
        "server", "create", "--hostname", "shape", "--zone", "fi-hel2", "--plan", L40S,
        "--os-storage-size", "50", "--ssh-keys", str(key), "--label", "managed_by=orchestrator", "--wait",
    )  # fmt: skip
    return run, created


def test_fake_plans_shape_matches_recorded(fake: Any) -> None:
    run, _ = fake
    real = upctl_go.server_plans(api("plan_list_gpu.json"))
    mine = run("server", "plans")
    assert isinstance(mine, list) and _shape(mine[0]) == _shape(real[0])
    gpu = next(p for p in mine if p["name"] == L40S)
    assert _shape(gpu) == _shape(real[-1]) and gpu["storage_size"] == 0 and gpu["storage_tier"] == ""


def test_fake_zone_list_and_devices_shape_match_recorded(fake: Any) -> None:
    run, _ = fake
    assert _shape(run("zone", "list")) == _shape(upctl_go.zone_list(api("zone_list.json")))
    real = upctl_go.zone_devices(api("device_availability.json"))
    mine = run("zone", "devices")["fi-hel2"]
    assert list(mine) == list(real["fi-hel2"]) == ["gpu_plans"]
    assert _shape(mine["gpu_plans"][L40S]) == _shape(real["fi-hel2"]["gpu_plans"][L40S])


def test_fake_template_list_shape_matches_recorded(fake: Any) -> None:
    run, _ = fake
    raw = json.loads((RECORDED / "upcloud-python-api" / "storage_template.json").read_text())
    real = upctl_go.storage_list_public_templates(raw)["storages"][0]
    mine = run("storage", "list", "--public", "--template")["storages"]
    assert mine and all(s["access"] == "public" and s["type"] == "template" for s in mine)
    assert _shape(mine[0]) == _shape(real)


def test_fake_server_show_and_create_shape_match_recorded(fake: Any) -> None:
    run, created = fake
    real = upctl_go.server_show(api("server_details.json"))
    shown = run("server", "show", created["uuid"])
    for mine in (created, shown):
        assert list(mine) == list(real)
        for key in ("labels", "networking"):
            assert _shape(mine[key]) == _shape(real[key]), key
        assert _shape(mine["ip_addresses"][0]) == _shape(real["ip_addresses"][0])
        assert _shape(mine["storage_devices"][0]) == _shape(real["storage_devices"][0])
        assert _shape(mine["devices"][0]) == _shape(upctl_go.DEVICE({"metadata": {}}))
        scalars = {k: v for k, v in _shape(real).items() if isinstance(v, str) and real[k] is not None}
        assert {k: _shape(mine[k]) for k in scalars} == scalars


def test_fake_server_list_shape_matches_recorded(fake: Any) -> None:
    run, _ = fake
    real = upctl_go.server_list(api("server_list.json"))["servers"][0]
    mine = run("server", "list")["servers"][0]
    assert list(mine) == list(real)
    assert {k: _shape(mine[k]) for k in real if real[k] is not None} == {
        k: v for k, v in _shape(real).items() if real[k] is not None
    }


def test_fake_server_stop_shape_matches_recorded(fake: Any) -> None:
    run, created = fake
    real = upctl_go.server_show(api("server_stop.json"))
    mine = run("server", "stop", created["uuid"], "--wait")
    assert list(mine) == list(real) and mine["state"] == real["state"] == "started"
    run("server", "start", created["uuid"])


def test_fake_firewall_shapes_match_recorded(fake: Any) -> None:
    run, created = fake
    rule = run(
        "server", "firewall", "create", created["uuid"], "--direction", "in", "--action", "accept",
        "--family", "IPv4", "--protocol", "tcp", "--comment", "This is the comment",
    )  # fmt: skip
    real = upctl_go.firewall_create(api("firewall_rule_create_201.json"))
    assert list(rule) == list(real) and _shape(rule) == _shape(real)
    shown = run("server", "firewall", "show", created["uuid"])
    real_rules = upctl_go.firewall_show(api("firewall_rules.json"))
    assert list(shown) == list(real_rules)
    assert _shape(shown["firewall_rules"][0]) == _shape(real)
