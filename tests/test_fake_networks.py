"""The fake upctl's private networks, checked against the recorded shapes (tests/upctl_go.py) and our parsers."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.providers.base import CreateSpec, NetworkNotEmpty, NetworkSpec
from orchestrator.providers.upctl import UpctlCommands
from orchestrator.providers.upctl_errors import map_failure
from orchestrator.providers.upctl_parse import parse_network, parse_network_list, parse_server
from orchestrator.providers.upctl_provider import UpctlProvider
from tests import upctl_go

REPO = Path(__file__).resolve().parents[1]
UPCTL = REPO / "mockcloud" / "bin" / "upctl"
RECORDED = Path(__file__).parent / "fixtures" / "recorded" / "upcloud-go-api"


def _shape(value: Any) -> Any:
    """Keys in order and value types, recursively (lists: their first item)."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", _shape(value[0]) if value else None]
    return type(value).__name__


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fakenet")
    (root / "world").mkdir()
    (root / "home").mkdir()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    return {**keep, "HOME": str(root / "home"), "FAKE_UPCTL_HOME": str(root / "world"),
            "MOCKCLOUD_PYTHON": sys.executable, "PYTHONPATH": str(REPO), "NO_COLOR": "1",
            "UPCLOUD_TOKEN": "test-token"}  # fmt: skip


def run(env: dict[str, str], argv: list[str] | tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UPCTL), *argv[1:]], env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def test_network_lifecycle_on_the_fake(env: dict[str, str], tmp_path: Path) -> None:
    prov = UpctlProvider()
    create = prov.network_create(NetworkSpec("ray", "fi-hel2", "10.20.0.0/24"))
    r = run(env, create.action.argv)
    assert r.returncode == 0, r.stderr
    recorded = upctl_go.network_show(json.loads((RECORDED / "network_create_201.json").read_text()))
    printed = json.loads(r.stdout)
    for ipn in recorded["ip_networks"]["ip_network"]:
        ipn.pop("dhcp_dns")  # omitempty; the recorded request set DNS servers, ours sets none
    assert _shape(printed) == _shape({**recorded, "servers": None, "labels": None})
    net = parse_network(r.stdout)
    assert (net.name, net.zone, net.cidr, net.dhcp, net.network_type) == (
        "ray",
        "fi-hel2",
        "10.20.0.0/24",
        True,
        "private",
    )

    listed = run(env, prov.network_list().action.argv)
    assert [n.uuid for n in parse_network_list(listed.stdout)] == [net.uuid]
    public_only = run(env, ["upctl", "network", "list", "--public", "-o", "json"])
    assert json.loads(public_only.stdout) == {"networks": None}

    key = tmp_path / "k.pub"
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + os.urandom(32)
    key.write_text(f"ssh-ed25519 {base64.b64encode(blob).decode()} t@x\n")
    ours = UpctlCommands().create(_spec(net.uuid))  # the orchestrator's own --network flags
    flags = [x for i, a in enumerate(ours) if a == "--network" for x in ours[i : i + 2]]
    argv = [
        "upctl", "server", "create", "--hostname", "n1", "--zone", "fi-hel2", "--plan", "1xCPU-2GB",
        "--os-storage-size", "25", "--ssh-keys", str(key), *flags, "-o", "json",
    ]  # fmt: skip
    made = run(env, argv)
    assert made.returncode == 0, made.stderr
    srv = parse_server(made.stdout)
    assert srv.private_ipv4 == "10.20.0.2" and srv.public_ipv4
    # --network replaced the defaults: the flags named the public IPv6 interface again, in the recorded order
    assert _families(json.loads(made.stdout)) == _families(_recorded_server("server_create_private_202.json"))
    shown_doc = json.loads(run(env, prov.show(srv.uuid).action.argv).stdout)
    recorded = _recorded_server("server_details_private.json")
    assert _families(shown_doc) == _families(recorded)
    assert [(ip["access"], ip["family"]) for ip in shown_doc["ip_addresses"]] == [
        (ip["access"], ip["family"]) for ip in recorded["ip_addresses"]
    ]  # utility, public IPv6, public IPv4; the private address only under networking
    v6 = [ip["address"] for ip in shown_doc["ip_addresses"] if ip["family"] == "IPv6"]
    assert len(v6) == 1 and ipaddress.ip_address(v6[0]).version == 6 and ipaddress.ip_address(v6[0]).is_global
    shown = parse_server(json.dumps(shown_doc))
    assert shown.private_ipv4 == "10.20.0.2"
    assert parse_network(run(env, prov.network_show(net.uuid).action.argv).stdout).servers == (srv.uuid,)

    delete = prov.network_delete(net.uuid)
    refused = run(env, delete.action.argv)
    assert refused.returncode == 1
    assert "NETWORK_NOT_EMPTY" in json.loads(refused.stdout)["error"] and "status=409" in refused.stdout
    err = map_failure(delete.action.argv, refused.returncode, refused.stdout, refused.stderr)
    assert isinstance(err, NetworkNotEmpty)

    for _ in range(10):  # the fake settles after a poll or two
        if parse_server(run(env, prov.show(srv.uuid).action.argv).stdout).state == "started":
            break
    for step in (["server", "stop", srv.uuid, "--type", "hard", "--wait"], ["server", "delete", srv.uuid]):
        assert run(env, ["upctl", *step]).returncode == 0
    gone = run(env, delete.action.argv)
    assert gone.returncode == 0 and gone.stdout == "", gone.stderr
    missing = run(env, prov.network_show(net.uuid).action.argv)
    assert missing.returncode == 1 and "nothing found matching" in missing.stdout + missing.stderr


def _spec(network: str) -> CreateSpec:
    return CreateSpec(
        hostname="n1", title="n1", zone="fi-hel2", plan="1xCPU-2GB", os="tmpl", os_storage_size=25,
        ssh_keys=(), labels=(), private_networks=(network,),
    )  # fmt: skip


def _recorded_server(name: str) -> dict[str, Any]:
    """A recorded API answer as upctl prints it (tests/upctl_go.py)."""
    doc: dict[str, Any] = upctl_go.server_show(json.loads((RECORDED / name).read_text()))
    return doc


def _families(server: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each interface's type and its addresses' families, in interface order."""
    return [(i["type"], [a["family"] for a in i["ip_addresses"]]) for i in server["networking"]["interfaces"]]


def test_private_interface_needs_a_known_network(env: dict[str, str]) -> None:
    argv = ["upctl", "server", "create", "--hostname", "n2", "--zone", "fi-hel2", "--plan", "1xCPU-2GB",
            "--password-delivery", "email",
            "--network", "type=private,network=03000000-dead-4000-8000-000000000000", "-o", "json"]  # fmt: skip
    r = run(env, argv)
    assert r.returncode == 1 and "NETWORK_NOT_FOUND" in r.stdout


def test_network_flag_family_follows_the_address_as_in_upctl(env: dict[str, str]) -> None:
    """upcloud-cli's server/create.go handleNetwork: an `ip-address` sets the family (a given family must agree);
    the error texts are those its create_test.go expects."""
    base = ["upctl", "server", "create", "--hostname", "n3", "--zone", "fi-hel2", "--plan", "1xCPU-2GB",
            "--password-delivery", "email"]  # fmt: skip
    bad = run(env, [*base, "--network", "type=public,ip-address=10.0.0.300", "-o", "json"])
    assert bad.returncode == 1 and "10.0.0.300 is an invalid ip address" in bad.stdout + bad.stderr
    clash = run(env, [*base, "--network", "family=IPv4,type=public,ip-address=2a04:3540:1000:310::1", "-o", "json"])
    assert clash.returncode == 1 and "ip family mismatch: IPv4 != IPv6" in clash.stdout + clash.stderr
    v6 = "2a04:3540:1000:310:ab:cdff:fe12:3456"
    made = run(env, [*base, "--network", "type=utility", "--network", f"type=public,ip-address={v6}", "-o", "json"])
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert _families(doc) == [("utility", ["IPv4"]), ("public", ["IPv6"])]
    assert [ip["address"] for ip in doc["ip_addresses"] if ip["family"] == "IPv6"] == [v6]
    assert parse_server(made.stdout).public_ipv4 is None  # no public IPv4 interface was asked for
    for _ in range(10):  # the fake settles after a poll or two
        if json.loads(run(env, ["upctl", "server", "show", doc["uuid"], "-o", "json"]).stdout)["state"] == "started":
            break
    assert run(env, ["upctl", "server", "stop", doc["uuid"], "--type", "hard", "--wait"]).returncode == 0
    assert run(env, ["upctl", "server", "delete", doc["uuid"]]).returncode == 0
