"""Private networks: our parsers and argv on RECORDED UpCloud answers (go-api cassettes, see
tests/fixtures/recorded/README.md), turned into what upctl prints by tests/upctl_go.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.actions import Result
from orchestrator.errors import ConfigError
from orchestrator.providers.base import CreateSpec, NetworkNotEmpty, NetworkNotFound, NetworkSpec, ServerNotFound
from orchestrator.providers.upctl import UpctlCommands
from orchestrator.providers.upctl_errors import map_failure
from orchestrator.providers.upctl_parse import parse_network, parse_network_list, parse_server
from orchestrator.providers.upctl_provider import UpctlProvider
from tests import upctl_go

RECORDED = Path(__file__).parent / "fixtures" / "recorded" / "upcloud-go-api"
CMD = UpctlCommands()


def api(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def printed(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def test_parse_network_create_on_recorded_answer() -> None:
    out = printed(upctl_go.network_show(api("network_create_201.json")))
    assert '"ip_network"' in out and '"dhcp": "yes"' in out  # wrapped list, Boolean as yes/no
    net = parse_network(out)
    assert (net.uuid, net.name, net.zone, net.network_type) == (
        "037e40d7-399a-4575-a1af-b688836bff80",
        "test_network_tcns (test)",
        "fi-hel2",
        "private",
    )
    assert (net.cidr, net.dhcp, net.servers) == ("172.16.0.0/22", True, ())
    labelled = parse_network(printed(upctl_go.network_show(api("network_create_labels_201.json"))))
    assert (labelled.cidr, labelled.uuid) == ("172.17.0.0/22", "038de4ca-f2dd-48b3-a383-a7483a04d714")


def test_parse_network_list_on_recorded_answer() -> None:
    body = api("network_list_zone.json")
    assert parse_network_list(printed(upctl_go.network_list(body))) == []  # no private network: null
    every = parse_network_list(printed(upctl_go.network_list(body, all_types=True)))
    assert len(every) == len(body["networks"]["network"])
    attached = {n.uuid: n.servers for n in every if n.servers}
    assert attached["0343ede2-9890-4470-b680-0dcda6d9f7e3"] == ("00e0d611-a133-4fc4-8f1c-9d017ad77ad4",)
    assert {n.network_type for n in every} == {"public", "utility"}


def test_private_ipv4_from_interfaces_on_recorded_server() -> None:
    for name in ("server_create_private_202.json", "server_details_private.json"):
        srv = parse_server(printed(upctl_go.server_show(api(name))))
        assert srv.private_ipv4 == "172.16.0.2"  # only under networking.interfaces, not ip_addresses
        assert srv.public_ipv4 == "94.237.106.28"
        assert srv.storages == ("0163ee97-abdd-4e0a-a53a-92f772a1aa10",)


def test_no_private_ipv4_on_a_server_without_a_private_network() -> None:
    srv = parse_server(printed(upctl_go.server_show(api("server_details.json"))))
    assert srv.private_ipv4 is None


def _spec(**kw: Any) -> CreateSpec:
    base: dict[str, Any] = dict(
        hostname="n1", title="n1", zone="fi-hel2", plan="GPU-8xCPU-64GB-1xL40S", os="tmpl",
        os_storage_size=50, ssh_keys=(), labels=(),
    )  # fmt: skip
    return CreateSpec(**{**base, **kw})


def test_create_argv_keeps_default_interfaces_when_adding_a_private_network() -> None:
    assert "--network" not in CMD.create(_spec())  # no private network: upctl's default interfaces
    argv = CMD.create(_spec(private_networks=("037e40d7-399a-4575-a1af-b688836bff80",)))
    flags = [argv[i + 1] for i, a in enumerate(argv) if a == "--network"]
    assert flags == [
        "type=utility",
        "type=public",
        "family=IPv6,type=public",  # upctl's family defaults to IPv4: the public IPv6 interface must be named
        "type=private,network=037e40d7-399a-4575-a1af-b688836bff80",
    ]
    with pytest.raises(ConfigError):
        CMD.create(_spec(private_networks=("a,type=public",)))


def test_network_argv() -> None:
    assert CMD.network_create(NetworkSpec("ray", "fi-hel2", "10.0.0.0/24")) == [
        "upctl", "network", "create", "--name", "ray", "--zone", "fi-hel2",
        "--ip-network", "address=10.0.0.0/24,dhcp=true", "-o", "json",
    ]  # fmt: skip
    assert CMD.network_create(NetworkSpec("r", "fi-hel2", "10.1.0.0/16", dhcp=False))[-3] == (
        "address=10.1.0.0/16,dhcp=false"
    )
    assert CMD.network_list() == ["upctl", "network", "list", "-o", "json"]
    assert CMD.network_list("fi-hel2") == ["upctl", "network", "list", "--zone", "fi-hel2", "-o", "json"]
    assert CMD.network_show("n") == ["upctl", "network", "show", "n", "-o", "json"]
    assert CMD.network_delete("n") == ["upctl", "network", "delete", "n", "-o", "json"]
    for bad in ("10.0.0.1/24", "2a04::/64", "10.0.0.0", "nope"):
        with pytest.raises(ConfigError):
            CMD.network_create(NetworkSpec("r", "fi-hel2", bad))


def test_network_failures_map_to_network_errors() -> None:
    msg = "Network is not empty (NETWORK_NOT_EMPTY)"
    err = map_failure(CMD.network_delete("n"), 1, json.dumps({"error": msg}), f"  Error: {msg}\n")
    assert isinstance(err, NetworkNotEmpty)
    gone = "cannot resolve argument: nothing found matching 'n'"
    assert isinstance(map_failure(CMD.network_show("n"), 1, "", f"  Error: {gone}\n"), NetworkNotFound)
    assert isinstance(map_failure(CMD.show("n"), 1, "", f"  Error: {gone}\n"), ServerNotFound)


def test_provider_call_maps_failures_and_parses() -> None:
    prov = UpctlProvider()
    call = prov.network_delete("n")
    assert call.action.mutates and call.action.argv == tuple(CMD.network_delete("n"))
    with pytest.raises(NetworkNotEmpty):
        call.check(Result(1, json.dumps({"error": "NETWORK_NOT_EMPTY"}), ""))
    assert call.error(Result.unknown()) is None
    show = prov.network_show("n")
    assert not show.action.mutates
    out = printed(upctl_go.network_show(api("network_create_201.json")))
    assert show.parse(Result(0, out, "")).cidr == "172.16.0.0/22"
