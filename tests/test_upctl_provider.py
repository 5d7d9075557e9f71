"""Tests for the UpCloud provider layer: upctl argv builders, JSON parsers and failure mapping."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from orchestrator.errors import CapacityError, ConfigError, CredentialsError, ProviderError
from orchestrator.providers.base import (
    DEPLOYMENT_LABEL_KEY,
    OUR_LABEL,
    CreateSpec,
    FirewallRule,
    NetworkSpec,
    PlanInfo,
    ServerInfo,
    TemplateInfo,
    labels_for,
)
from orchestrator.providers.upctl import UpctlCommands
from orchestrator.providers.upctl_errors import ServerNotFound, map_failure, wait_warning
from orchestrator.providers.upctl_parse import (
    check_gpu_availability,
    check_zone,
    parse_plans,
    parse_server,
    parse_server_list,
    parse_templates,
    parse_zone_devices,
    parse_zones,
    public_ipv4,
    resolve_template,
    select_plan,
)
from orchestrator.retry import is_transient
from orchestrator.transports.local import run_local

FIXTURES = Path(__file__).parent / "fixtures" / "upctl"
SERVER_UUID = "00a1b2c3-4d5e-4f60-8a7b-9c0d1e2f3a4b"
UBUNTU = "01000000-0000-4000-8000-000030240200"
NVIDIA = "01000000-0000-4000-8000-000030700200"
L40S = "GPU-8xCPU-64GB-1xL40S"
CMD = UpctlCommands()


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def progress(indicator: str, message: str, elapsed: str = "") -> str:
    """A non-TTY progress line: padded to 100 columns, elapsed time right-aligned."""
    line = f"{indicator} {message}"
    return line.ljust(100 - len(elapsed)) + elapsed


def spec(**overrides: object) -> CreateSpec:
    values: dict[str, object] = {
        "hostname": "orch-demo-gpu",
        "title": "orch demo gpu",
        "zone": "fi-hel2",
        "plan": L40S,
        "os": NVIDIA,
        "os_storage_size": 100,
        "ssh_keys": ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@laptop", "/home/me/.ssh/id_rsa.pub"),
        "labels": labels_for("demo"),
    }
    values.update(overrides)
    return CreateSpec(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- base


def test_labels_for_and_constants() -> None:
    assert OUR_LABEL == ("managed_by", "orchestrator")
    assert DEPLOYMENT_LABEL_KEY == "orchestrator_deployment"
    assert labels_for("demo") == (("managed_by", "orchestrator"), ("orchestrator_deployment", "demo"))
    with pytest.raises(ConfigError):
        labels_for("")
    with pytest.raises(ConfigError):
        labels_for("a=b")


def test_server_info_is_frozen_and_hashable() -> None:
    info = ServerInfo("u", "h", "t", "started", "p", "z", None, {"managed_by": "orchestrator"}, ())
    assert hash(info) == hash(ServerInfo("u", "h", "t", "started", "p", "z", None, {}, ()))
    assert info != ServerInfo("u", "h", "t", "started", "p", "z", None, {}, ())
    assert info.is_ours and info.deployment is None
    with pytest.raises(AttributeError):
        info.state = "stopped"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------- argv


def test_simple_command_goldens() -> None:
    assert CMD.version() == ["upctl", "version", "-o", "json"]
    assert CMD.account() == ["upctl", "account", "show", "-o", "json"]
    assert CMD.plans() == ["upctl", "server", "plans", "-o", "json"]
    assert CMD.zones() == ["upctl", "zone", "list", "-o", "json"]
    assert CMD.zone_devices() == ["upctl", "zone", "devices", "-o", "json"]
    assert CMD.templates() == ["upctl", "storage", "list", "--public", "--template", "-o", "json"]
    assert CMD.list_servers() == ["upctl", "server", "list", "-o", "json"]
    assert CMD.show(SERVER_UUID) == ["upctl", "server", "show", SERVER_UUID, "-o", "json"]
    assert CMD.start("web1") == ["upctl", "server", "start", "web1", "-o", "json"]
    assert UpctlCommands(binary="/opt/bin/upctl").version()[0] == "/opt/bin/upctl"


def test_stop_and_delete_goldens() -> None:
    assert CMD.stop(SERVER_UUID) == [
        "upctl", "server", "stop", SERVER_UUID, "--type", "soft", "--wait", "-o", "json",
    ]  # fmt: skip
    assert CMD.stop("web1", wait=False) == ["upctl", "server", "stop", "web1", "--type", "soft", "-o", "json"]
    assert CMD.delete(SERVER_UUID) == [
        "upctl", "server", "delete", SERVER_UUID, "--delete-storages", "-o", "json",
    ]  # fmt: skip
    assert CMD.delete("web1", delete_storages=False) == ["upctl", "server", "delete", "web1", "-o", "json"]


def test_create_golden() -> None:
    assert CMD.create(spec()) == [
        "upctl", "server", "create",
        "--hostname", "orch-demo-gpu",
        "--title", "orch demo gpu",
        "--zone", "fi-hel2",
        "--plan", L40S,
        "--os", NVIDIA,
        "--os-storage-size", "100",
        "--ssh-keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@laptop,/home/me/.ssh/id_rsa.pub",
        "--label", "managed_by=orchestrator",
        "--label", "orchestrator_deployment=demo",
        "--wait",
        "-o", "json",
    ]  # fmt: skip


def test_create_user_data_no_wait_and_quoting() -> None:
    argv = CMD.create(spec(wait=False, user_data="#!/bin/sh\necho hi\n", ssh_keys=("ssh-rsa AAAAB3 a,b",)))
    assert "--wait" not in argv
    assert argv[-4:] == ["--user-data", "#!/bin/sh\necho hi\n", "-o", "json"]
    # a comma inside a key is CSV-quoted so upctl's string-slice flag keeps it as one key
    assert argv[argv.index("--ssh-keys") + 1] == '"ssh-rsa AAAAB3 a,b"'
    assert "--ssh-keys" not in CMD.create(spec(ssh_keys=()))


@pytest.mark.parametrize(
    "overrides",
    [
        {"os_storage_size": 0},
        {"hostname": ""},
        {"zone": "--wait"},
        {"ssh_keys": ("ecdsa-sha2-nistp256 AAAAE2VjZHNh me@x",)},
        {"labels": (("a=b", "c"),)},
    ],
)
def test_create_rejects_bad_specs(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CMD.create(spec(**overrides))


CREDENTIALS = {
    "UPCLOUD_TOKEN": "planted-upcloud-token-0secret0",
    "UPCLOUD_USERNAME": "planted-api-user",
    "UPCLOUD_PASSWORD": "planted-Passw0rd",
}


def every_argv(cmd: UpctlCommands) -> list[list[str]]:
    """One argv from each builder (the create with every optional part set)."""
    rule = FirewallRule("in", "accept", "IPv4", "tcp", "198.51.100.7/32", (22, 22), None, "ssh from me")
    return [
        cmd.version(), cmd.account(), cmd.plans(), cmd.zones(), cmd.zone_devices(), cmd.templates(),
        cmd.create(spec(user_data="#cloud-config\n")), cmd.show("x"), cmd.list_servers(), cmd.stop("x"),
        cmd.delete("x"), cmd.start("x"), cmd.firewall_rules("x"), cmd.firewall_create("x", rule),
        cmd.firewall_delete("x", 1), cmd.enable_firewall("x"),
        cmd.create(spec(private_networks=("03aa0000-0000-4000-8000-000000000001",))),
        cmd.network_create(NetworkSpec("net", "fi-hel2", "10.0.0.0/24")), cmd.network_list("fi-hel2"),
        cmd.network_show("x"), cmd.network_delete("x"),
    ]  # fmt: skip


def test_credentials_reach_upctl_only_through_its_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With credentials set, no argv carries them (nor a credential flag), and upctl receives them in its env."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    log = tmp_path / "calls.jsonl"
    recorder = tmp_path / "upctl"
    script = (
        "import json, os, sys\n"
        "record = {'argv': sys.argv[1:], 'env': {k: os.environ.get(k) for k in KEYS}}\n"
        "with open(LOG, 'a') as f:\n"
        "    f.write(json.dumps(record) + '\\n')\n"
    )
    script = script.replace("KEYS", repr(sorted(CREDENTIALS))).replace("LOG", repr(str(log)))
    recorder.write_text(f"#!{sys.executable}\n{script}")
    recorder.chmod(0o755)
    argvs = every_argv(UpctlCommands(str(recorder)))
    words = [a for argv in argvs for a in argv]
    for secret in CREDENTIALS.values():
        assert not any(secret in a for a in words), secret
    assert not any(a.lstrip("-").startswith(("token", "username", "password")) for a in words)
    for argv in argvs:
        assert run_local(argv, 30).rc == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["argv"] for c in calls] == [argv[1:] for argv in argvs]
    assert all(c["env"] == CREDENTIALS for c in calls)


# ------------------------------------------------------------------------------------------ plans


def test_parse_plans_bare_and_wrapped() -> None:
    plans = parse_plans(fixture("server_plans.json"))
    assert len(plans) == 8
    assert plans[3] == PlanInfo(L40S, 8, 65536, 0, 1, "NVIDIA L40S")
    assert plans[0] == PlanInfo("1xCPU-2GB", 1, 2048, 50, 0, "")
    wrapped = parse_plans(fixture("server_plans_pre_v3_9.json"))
    assert [p.name for p in wrapped] == [p.name for p in plans[:4]]


def test_parse_plans_malformed_json_quotes_output() -> None:
    with pytest.raises(ProviderError, match="malformed JSON.*Usage: upctl"):
        parse_plans("Usage: upctl server plans [flags]")
    with pytest.raises(ProviderError, match="no JSON"):
        parse_plans("")
    with pytest.raises(ProviderError, match="unexpected JSON shape"):
        parse_plans('{"zone": []}')


def test_select_plan_exact_and_regex() -> None:
    plans = parse_plans(fixture("server_plans.json"))
    assert select_plan(plans, L40S).gpu_amount == 1
    assert select_plan(plans, r"^GPU-8xCPU-64GB-1xL40S$").name == L40S
    assert select_plan(plans, r"GPU-12xCPU-\d+GB-2xL40S").name == "GPU-12xCPU-128GB-2xL40S"
    # full match: "GPU-8xCPU-64GB-1xL4" must not pick the L40S plan
    assert select_plan(plans, "GPU-8xCPU-64GB-1xL4").gpu_model == "NVIDIA L4"


def test_select_plan_no_match_lists_gpu_plans() -> None:
    plans = parse_plans(fixture("server_plans.json"))
    with pytest.raises(ProviderError) as info:
        select_plan(plans, "GPU-8xCPU-64GB-1xL40")
    assert not isinstance(info.value, CapacityError)
    assert info.value.hint is not None and L40S in info.value.hint
    assert "1xCPU-2GB" not in info.value.hint


def test_select_plan_ambiguous_regex() -> None:
    plans = parse_plans(fixture("server_plans.json"))
    with pytest.raises(ProviderError, match="matches 4 plans") as info:
        select_plan(plans, r"GPU-.*L40S")
    assert "GPU-16xCPU-192GB-2xL40S" in info.value.message
    assert info.value.hint is not None and "exact name" in info.value.hint


# --------------------------------------------------------------------------------- zones, devices


def test_zones_and_check_zone() -> None:
    zones = parse_zones(fixture("zone_list.json"))
    assert zones == ["de-fra1", "fi-hel1", "fi-hel2", "private-zone-1"]
    check_zone(zones, "fi-hel2")
    with pytest.raises(ProviderError, match="no zone 'fi-hel3'") as info:
        check_zone(zones, "fi-hel3")
    assert info.value.hint is not None and "fi-hel2" in info.value.hint


def test_zone_devices_and_gpu_availability() -> None:
    devices = parse_zone_devices(fixture("zone_devices.json"))
    assert devices == {
        "de-fra1": {},
        "fi-hel2": {"GPU-12xCPU-128GB-2xL40S": 0, "GPU-8xCPU-64GB-1xL4": 5, L40S: 3},
        "se-sto1": {"GPU-12xCPU-128GB-2xL40S": 2},
    }
    check_gpu_availability(devices, "fi-hel2", L40S)
    with pytest.raises(CapacityError, match="no free capacity") as info:
        check_gpu_availability(devices, "fi-hel2", "GPU-12xCPU-128GB-2xL40S")
    assert info.value.hint == "GPU-12xCPU-128GB-2xL40S is available in: se-sto1"
    with pytest.raises(CapacityError, match="not offered") as info:
        check_gpu_availability(devices, "de-fra1", L40S)
    assert info.value.hint is not None and "fi-hel2" in info.value.hint
    with pytest.raises(CapacityError) as info:
        check_gpu_availability(devices, "fi-hel2", "GPU-16xCPU-192GB-2xL40S")
    assert info.value.hint is not None and L40S in info.value.hint


# -------------------------------------------------------------------------------------- templates


def test_parse_and_resolve_templates() -> None:
    templates = parse_templates(fixture("storage_list_public_templates.json"))
    assert len(templates) == 5
    nvidia = TemplateInfo(NVIDIA, "Ubuntu Server 24.04 LTS (with NVIDIA drivers & CUDA)", "cloud-init")
    assert nvidia in templates
    assert resolve_template(templates, UBUNTU).title == "Ubuntu Server 24.04 LTS (Noble Numbat)"
    assert resolve_template(templates, "Ubuntu Server 24.04 LTS (Noble Numbat)").uuid == UBUNTU
    assert resolve_template(templates, "NVIDIA") == nvidia
    assert resolve_template(templates, "nvidia drivers") == nvidia
    assert resolve_template(templates, r"ubuntu.*cuda") == nvidia
    assert resolve_template(templates, "windows").template_type == "native"
    assert parse_templates('{"storages": []}') == []


def test_resolve_template_ambiguous_and_missing() -> None:
    templates = parse_templates(fixture("storage_list_public_templates.json"))
    with pytest.raises(ProviderError, match="matches 3 templates") as info:
        resolve_template(templates, "ubuntu")
    assert UBUNTU in info.value.message and NVIDIA in info.value.message
    with pytest.raises(ProviderError, match="no public OS template") as info:
        resolve_template(templates, "Rocky Linux")
    assert info.value.hint is not None and "Debian" in info.value.hint


# ---------------------------------------------------------------------------------------- servers


def test_parse_server_show() -> None:
    info = parse_server(fixture("server_show.json"))
    assert info == ServerInfo(
        uuid=SERVER_UUID,
        hostname="orch-demo-gpu",
        title="orch demo gpu",
        state="started",
        plan=L40S,
        zone="fi-hel2",
        public_ipv4="94.237.9.138",
        labels={"managed_by": "orchestrator", "orchestrator_deployment": "demo"},
        gpu_models=("NVIDIA L40S",),
    )
    assert info.is_ours and info.deployment == "demo"


def test_public_ipv4_prefers_interfaces_then_top_level() -> None:
    show = json.loads(fixture("server_show.json"))
    show["ip_addresses"] = [{"access": "public", "address": "198.51.100.7", "family": "IPv4"}]
    assert public_ipv4(show) == "94.237.9.138"
    created = parse_server(fixture("server_create.json"))
    assert created.state == "maintenance"
    assert created.public_ipv4 == "94.237.9.139"
    assert created.gpu_models == ()


def test_public_ipv4_absent() -> None:
    show = json.loads(fixture("server_show.json"))
    only_v6 = [i for i in show["networking"]["interfaces"] if i["type"] != "public" or i["index"] == 3]
    assert public_ipv4({"networking": {"interfaces": only_v6}, "ip_addresses": []}) is None
    assert public_ipv4({"networking": None, "ip_addresses": None}) is None
    assert public_ipv4({}) is None


def test_parse_server_array_and_error_object() -> None:
    one = json.loads(fixture("server_show.json"))
    assert parse_server(json.dumps([one, {"error": "x"}])).uuid == SERVER_UUID
    with pytest.raises(ProviderError, match="nothing found matching"):
        parse_server('{"error": "cannot resolve argument: nothing found matching \'x\'"}')


def test_parse_server_list_summaries() -> None:
    servers = parse_server_list(fixture("server_list.json"))
    assert [s.hostname for s in servers] == ["orch-demo-gpu", "web1"]
    assert servers[1] == ServerInfo(
        "00f0e1d2-c3b4-4a59-8687-786950a4b3c2",
        "web1",
        "web1",
        "stopped",
        "1xCPU-2GB",
        "de-fra1",
        None,
        {},
        (),
    )
    assert all(s.public_ipv4 is None and s.labels == {} for s in servers)
    assert parse_server_list('{"servers": []}') == []


# --------------------------------------------------------------------------------------- failures

NO_CREDS = (
    "Error: user credentials not found, these must be set in config file (default location "
    "/root/.config/upctl.yaml) or via environment variables or in a keyring (UpCloud)\n"
)
BAD_CREDS = "Error: invalid user credentials, authentication failed using the given username and password\n"
NOT_FOUND_MSG = "cannot resolve argument: nothing found matching 'nope'"


def failure_stderr(target: str, message: str, count: int = 1) -> str:
    return (
        progress("✗", f"Command execution failed for {target}")
        + f"\n  Error: {message}\nError: Command execution failed for {count} resource(s)\n"
    )


def test_exit_102_no_credentials() -> None:
    err = map_failure(CMD.list_servers(), 102, "", NO_CREDS)
    assert type(err) is CredentialsError
    assert err.message == "upctl found no UpCloud credentials"
    assert err.hint == (
        "export UPCLOUD_TOKEN=... (or UPCLOUD_USERNAME and UPCLOUD_PASSWORD), or put them in ~/.config/upctl.yaml"
    )
    assert (err.returncode, err.stderr, err.argv, err.exit_code) == (102, NO_CREDS, CMD.list_servers(), 4)


def test_exit_103_bad_credentials() -> None:
    err = map_failure(CMD.list_servers(), 103, "", BAD_CREDS)
    assert type(err) is CredentialsError
    assert err.message == "UpCloud rejected the credentials"
    assert err.hint is not None and "UPCLOUD_TOKEN" in err.hint and "UPCLOUD_PASSWORD" in err.hint
    assert not err.transient


def test_old_upctl_auth_failure_on_no_arg_command_is_credentials() -> None:
    msg = "Authentication failed. (type=AUTHENTICATION_FAILED, status=401)"
    err = map_failure(CMD.list_servers(), 1, json.dumps({"error": msg}), failure_stderr("", msg))
    assert isinstance(err, CredentialsError)


def test_exit_100_usage_error() -> None:
    stderr = (
        'Error: required flag(s) "hostname", "zone" not set\nUsage:\n  upctl server create [flags]\n\n'
        "Flags:\n  -h, --help   help for create\n"
    )
    err = map_failure(["upctl", "server", "create", "-o", "json"], 100, "", stderr)
    assert type(err) is ProviderError
    assert err.message == (
        'upctl rejected its arguments (upctl server create): required flag(s) "hostname", "zone" not set'
    )
    assert err.hint is not None and "3.21" in err.hint
    assert not err.transient


def test_exit_100_api_unreachable_is_transient() -> None:
    stderr = (
        'Error: cannot resolve command line arguments: Get "https://api.upcloud.com/1.3/server": '
        "dial tcp 94.237.0.1:443: connect: connection refused\n"
    )
    err = map_failure(CMD.show("web1"), 100, "", stderr)
    assert err.transient and "could not reach the UpCloud API" in err.message
    assert is_transient(err)


def test_exit_101_interrupted() -> None:
    err = map_failure(CMD.create(spec()), 101, "", "")
    assert "interrupted" in err.message and not err.transient


def test_unknown_server_is_server_not_found() -> None:
    stdout = json.dumps({"error": NOT_FOUND_MSG}, indent=2) + "\n"
    err = map_failure(CMD.show("nope"), 1, stdout, failure_stderr("nope", NOT_FOUND_MSG))
    assert isinstance(err, ServerNotFound) and err.not_found
    assert err.message == f"upctl server show failed: {NOT_FOUND_MSG}"
    assert not err.transient
    # the stderr detail line alone is enough (e.g. human output)
    assert isinstance(map_failure(CMD.delete("nope"), 1, "", failure_stderr("nope", NOT_FOUND_MSG)), ServerNotFound)


def test_state_illegal_is_plain_provider_error() -> None:
    msg = "Server is not in started state. (type=SERVER_STATE_ILLEGAL, status=409)"
    stdout = json.dumps({"argument": "web1", "error": msg, "resource": SERVER_UUID}, indent=2)
    stderr = progress("✗", f"Stopping server {SERVER_UUID}") + f"\n  Error: {msg}\n"
    stderr += "Error: Command execution failed for 1 resource(s)\n"
    err = map_failure(CMD.stop("web1"), 1, stdout, stderr)
    assert type(err) is ProviderError and not err.transient
    assert "SERVER_STATE_ILLEGAL" in err.message


def test_two_failed_targets_collects_messages() -> None:
    msg = "Server is not in started state. (type=SERVER_STATE_ILLEGAL, status=409)"
    stdout = json.dumps([{"argument": "a", "error": msg, "resource": "00aa"}, {"error": NOT_FOUND_MSG}])
    err = map_failure(["upctl", "server", "stop", "a", "nope"], 2, stdout, "")
    assert msg in err.message and NOT_FOUND_MSG in err.message


@pytest.mark.parametrize(
    "message",
    [
        "Not enough resources to create the server. (type=SERVER_RESOURCES_UNAVAILABLE, status=409)",
        "GPU plan has no capacity in zone fi-hel2",
        "Insufficient device availability for plan GPU-8xCPU-64GB-1xL40S",
    ],
)
def test_capacity_failures(message: str) -> None:
    argv = CMD.create(spec())
    err = map_failure(argv, 1, json.dumps({"error": message}), failure_stderr("", message))
    assert isinstance(err, CapacityError)
    assert err.exit_code == 3 and err.argv == argv and not err.transient


@pytest.mark.parametrize(
    "message",
    [
        "Internal server error (type=INTERNAL_ERROR, status=500)",
        "Service Unavailable (type=https://developers.upcloud.com/1.3/errors#ERROR_SERVICE_UNAVAILABLE, "
        "status=503, correlation_id=01KC8T59GZXZTNCZMYGJXGFSGM)",
        "context deadline exceeded",
        'Get "https://api.upcloud.com/1.3/server": read tcp 10.0.0.2:5123->94.237.0.1:443: '
        "read: connection reset by peer",
        'Post "https://api.upcloud.com/1.3/server": net/http: TLS handshake timeout',
    ],
)
def test_transient_failures(message: str) -> None:
    err = map_failure(CMD.create(spec()), 1, json.dumps({"error": message}), "")
    assert type(err) is ProviderError
    assert err.transient and is_transient(err)


def test_other_per_target_failures() -> None:
    msg = 'no storage with uuid, name or title "Ubuntu 99" was found'
    err = map_failure(CMD.create(spec(os="Ubuntu 99")), 1, json.dumps({"error": msg}), "")
    assert msg in err.message and err.hint is not None and "UUID" in err.hint and not err.transient
    weird = map_failure(CMD.list_servers(), 1, "", "something odd happened\n")
    assert "something odd happened" in weird.message


def test_is_transient_for_other_exceptions() -> None:
    assert is_transient(ConnectionResetError())
    assert not is_transient(ValueError("x"))
    assert not is_transient(CredentialsError("x"))
    assert is_transient(ProviderError("x", transient=True))


# ------------------------------------------------------------------------------------------- wait


def test_wait_warning_timeout() -> None:
    stderr = "\n".join(
        [
            progress(">", "Creating server orch-demo-gpu"),
            progress(">", f"Waiting for server {SERVER_UUID} to be in started state", "  12 s"),
            progress("!", "Creating server orch-demo-gpu", "> 999 s"),
            "  Error: context deadline exceeded",
            "",
        ]
    )
    assert wait_warning(stderr) == "Creating server orch-demo-gpu: context deadline exceeded"


def test_wait_warning_poll_error_and_none() -> None:
    stderr = (
        progress("!", f"Stopping server {SERVER_UUID}", "  30 s")
        + "\n  Error: The server does not exist. (type=SERVER_NOT_FOUND, status=404)\n"
    )
    warning = wait_warning(stderr)
    assert warning is not None and warning.startswith(f"Stopping server {SERVER_UUID}: The server does not")
    ok = progress(">", "Creating server x") + "\n" + progress("✓", "Creating server x", "  95 s") + "\n"
    assert wait_warning(ok) is None
    assert wait_warning("") is None
    coloured = "\x1b[33m! Creating server x\x1b[0m\n  Error: context deadline exceeded\n"
    assert wait_warning(coloured) == "Creating server x: context deadline exceeded"


def test_ambiguous_server_name_hint() -> None:
    msg = (
        "'web' is not a glob pattern, but matches multiple values. To target multiple resources with single "
        "argument, use a glob pattern, e.g. server-*"
    )
    err = map_failure(CMD.show("web"), 1, json.dumps({"error": msg}), failure_stderr("web", msg))
    assert type(err) is ProviderError and err.hint is not None and "UUID" in err.hint


# ------------------------------------------------------------------------------------------- owner labels


def test_owner_labels_parsed_from_server_show() -> None:
    """Labels as upctl prints them (go-api's LabelSlice marshals to {"label": [{"key", "value"}]})."""
    from orchestrator.providers.base import OWNER_LABEL_KEY, OWNER_NAME_LABEL_KEY

    legacy = parse_server(fixture("server_show.json"))  # our labels, no owner: a server of an older version
    assert legacy.is_ours and legacy.owner is None and not legacy.owned_by("abc123def456")
    assert not legacy.owned_by(None)
    doc = json.loads(fixture("server_show.json"))
    doc["labels"]["label"] += [
        {"key": OWNER_LABEL_KEY, "value": "abc123def456"},
        {"key": OWNER_NAME_LABEL_KEY, "value": "ana@laptop"},
    ]
    info = parse_server(json.dumps(doc))
    assert info.owner == "abc123def456" and info.owner_name == "ana@laptop"
    assert info.owned_by("abc123def456") and not info.owned_by("fff000fff000")
    doc["labels"]["label"] = [lb for lb in doc["labels"]["label"] if lb["key"] != "managed_by"]
    assert not parse_server(json.dumps(doc)).owned_by("abc123def456")  # the owner label alone is not ours


def test_server_labels_carry_the_owner_and_refuse_reserved_keys() -> None:
    from orchestrator.providers.base import server_labels

    owner = (("orchestrator_owner", "abc123def456"), ("orchestrator_owner_name", "ana@laptop"))
    labels = server_labels("demo", owner, {"team": "ml"})
    assert labels == labels_for("demo") + owner + (("team", "ml"),)
    argv = CMD.create(spec(labels=labels))
    assert argv[argv.index("--label", argv.index("orchestrator_deployment=demo")) + 1] == (
        "orchestrator_owner=abc123def456"
    )
    for key in ("orchestrator_owner", "managed_by", "orchestrator_deployment"):
        with pytest.raises(ConfigError, match=key):
            server_labels("demo", owner, {key: "x"})
