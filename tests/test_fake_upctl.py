"""The fake upctl (mockcloud/bin/upctl) as a subprocess: shapes, types, exit codes, state machine, faults."""

from __future__ import annotations

import base64
import json
import os
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockcloud.upctl import read_state, set_faults

REPO = Path(__file__).resolve().parents[1]
UPCTL = REPO / "mockcloud" / "bin" / "upctl"
GPU_PLAN = "GPU-8xCPU-64GB-1xL40S"
NVIDIA_OS = "Ubuntu Server 24.04 LTS (with NVIDIA drivers & CUDA)"
MISSING_CREDS = (
    "Error: user credentials not found, these must be set in config file ({}) or via environment variables "
    "or in a keyring (UpCloud)\n"
)
BAD_CREDS = "Error: invalid user credentials, authentication failed using the given username and password\n"

Run = Callable[..., subprocess.CompletedProcess[str]]


def ed25519_public_key(comment: str = "test@example") -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    world = tmp_path / "world"
    world.mkdir()
    return world


@pytest.fixture
def base_env(tmp_path: Path, home: Path) -> dict[str, str]:
    user_home = tmp_path / "userhome"
    user_home.mkdir()
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(user_home),
        FAKE_UPCTL_HOME=str(home),
        MOCKCLOUD_PYTHON=sys.executable,
        PYTHONPATH=str(REPO),
        NO_COLOR="1",
    )
    return env


@pytest.fixture
def upctl(base_env: dict[str, str]) -> Run:
    def run(*args: str, env: dict[str, str | None] | None = None, token: str | None = "test-token") -> Any:
        full = dict(base_env)
        if token is not None:
            full["UPCLOUD_TOKEN"] = token
        for key, value in (env or {}).items():
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        return subprocess.run(
            [str(UPCTL), *args], env=full, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )

    return run


@pytest.fixture
def pool(tmp_path: Path, home: Path) -> list[dict[str, Any]]:
    """Two mock hosts whose poweroff argv touches a marker file."""
    entries = []
    for n in (1, 2):
        host_dir = tmp_path / f"host{n}"
        host_dir.mkdir()
        marker = host_dir / "powered-off"
        entries.append(
            {
                "ipv4": f"10.200.0.{n + 1}",
                "authorized_keys": str(host_dir / "authorized_keys"),
                "poweroff": [
                    sys.executable,
                    "-c",
                    "import pathlib,sys; pathlib.Path(sys.argv[1]).touch()",
                    str(marker),
                ],
            }
        )
    (home / "hosts.json").write_text(json.dumps(entries))
    return entries


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(ed25519_public_key() + "\n")
    return path


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.endswith("\n"), proc.stdout
    return json.loads(proc.stdout)


def create(upctl: Run, key_file: Path, hostname: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return upctl(
        "server", "create", "--hostname", hostname, "--zone", "fi-hel2", "--plan", GPU_PLAN,
        "--os", NVIDIA_OS, "--os-storage-size", "100", "--ssh-keys", str(key_file), "-o", "json", *extra,
    )  # fmt: skip


def public_ipv4(details: dict[str, Any]) -> str:
    for iface in details["networking"]["interfaces"]:
        if iface["type"] == "public":
            for ip in iface["ip_addresses"]:
                if ip["family"] == "IPv4":
                    return str(ip["address"])
    raise AssertionError("no public IPv4")


# ------------------------------------------------------------------------------------------ credentials


def test_missing_credentials_exit_102_with_exact_message(upctl: Run, base_env: dict[str, str]) -> None:
    proc = upctl("server", "list", "-o", "json", token=None)
    assert proc.returncode == 102
    assert proc.stdout == ""
    expected_config = Path(base_env["HOME"]) / ".config" / "upctl.yaml"
    assert proc.stderr == MISSING_CREDS.format(f"default location {expected_config}")


def test_invalid_token_or_password_exit_103(upctl: Run) -> None:
    bad_token = upctl("server", "list", "-o", "json", token="invalid")
    bad_password = upctl(
        "zone", "list", token=None, env={"UPCLOUD_USERNAME": "api-user", "UPCLOUD_PASSWORD": "invalid"}
    )
    for proc in (bad_token, bad_password):
        assert (proc.returncode, proc.stdout, proc.stderr) == (103, "", BAD_CREDS)


def test_token_wins_over_bad_password(upctl: Run) -> None:
    proc = upctl("zone", "list", "-o", "json", env={"UPCLOUD_USERNAME": "u", "UPCLOUD_PASSWORD": "invalid"})
    assert proc.returncode == 0, proc.stderr


def test_config_file_credentials_and_used_message(upctl: Run, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("username: api-user\npassword: secret\noutput: json\n")
    proc = upctl("--config", str(good), "account", "show", token=None)
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)["username"] == "api-user"
    empty = tmp_path / "empty.yaml"
    empty.write_text("output: json\n")
    proc = upctl("zone", "list", "--config", str(empty), token=None)
    assert (proc.returncode, proc.stderr) == (102, MISSING_CREDS.format(f"used {empty}"))
    proc = upctl("zone", "list", "--config", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 100
    assert "cannot load configuration: unable to parse config from file" in proc.stderr


def test_default_config_honours_xdg_config_home(upctl: Run, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    (xdg / "upctl.yaml").write_text("token: from-file\n")
    proc = upctl("zone", "list", "-o", "json", token=None, env={"XDG_CONFIG_HOME": str(xdg)})
    assert proc.returncode == 0, proc.stderr
    (xdg / "upctl.yaml").write_text("token: invalid\n")
    assert upctl("zone", "list", token=None, env={"XDG_CONFIG_HOME": str(xdg)}).returncode == 103


def test_version_and_help_need_no_credentials_or_world(upctl: Run) -> None:
    proc = upctl("version", "-o", "json", token=None, env={"FAKE_UPCTL_HOME": None})
    assert proc.returncode == 0
    assert list(as_json(proc)) == ["architecture", "build_date", "built_with", "operating_system", "version"]
    helped = upctl("server", "create", "--help", token=None)
    assert helped.returncode == 0 and "--os-storage-size" in helped.stdout


def test_missing_world_home_exits_100(upctl: Run) -> None:
    proc = upctl("zone", "list", env={"FAKE_UPCTL_HOME": None})
    assert proc.returncode == 100
    assert "FAKE_UPCTL_HOME" in proc.stderr


# ------------------------------------------------------------------------------------------ usage errors


def test_unknown_flag_exits_100_with_usage(upctl: Run) -> None:
    proc = upctl("server", "list", "--bogus", "-o", "json")
    assert proc.returncode == 100
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error: unknown flag: --bogus\nUsage:\n  upctl server list")


def test_missing_required_flags_and_bad_values_exit_100(upctl: Run) -> None:
    proc = upctl("server", "create", "--plan", GPU_PLAN)
    assert proc.returncode == 100
    assert proc.stderr.startswith('Error: required flag(s) "hostname", "zone" not set\n')
    proc = upctl("server", "create", "--hostname", "h", "--zone", "fi-hel2", "--os-storage-size", "big")
    assert proc.returncode == 100
    assert 'invalid argument "big" for "--os-storage-size" flag: strconv.ParseInt' in proc.stderr
    proc = upctl("server", "show")
    assert (proc.returncode, proc.stderr) == (100, "Error: at least one positional argument is required\n")
    proc = upctl("server", "list", "-o", "toml")
    assert proc.returncode == 100 and "does not validate as in(human|json|yaml)" in proc.stderr
    proc = upctl("server", "firewall", "create", "x", "--action", "accept")
    assert proc.returncode == 100 and 'required flag(s) "direction" not set' in proc.stderr


# ------------------------------------------------------------------------------------------ catalogue


def test_plans_is_a_bare_array_with_real_numbers(upctl: Run) -> None:
    plans = as_json(upctl("server", "plans", "-o", "json"))
    assert isinstance(plans, list) and plans
    for plan in plans:
        assert list(plan) == [
            "core_number", "memory_amount", "name", "public_traffic_out", "storage_size", "storage_tier",
            "gpu_amount", "gpu_model",
        ]  # fmt: skip
        for key in ("core_number", "memory_amount", "public_traffic_out", "storage_size", "gpu_amount"):
            assert type(plan[key]) is int
    keys = [(p["core_number"], p["memory_amount"], p["storage_size"]) for p in plans]
    assert keys == sorted(keys)
    gpu = next(p for p in plans if p["name"] == GPU_PLAN)
    assert (gpu["storage_size"], gpu["storage_tier"], gpu["gpu_amount"], gpu["gpu_model"]) == (
        0,
        "",
        1,
        "NVIDIA L40S",
    )


def test_zone_list_and_device_availability(upctl: Run, home: Path) -> None:
    zones = as_json(upctl("zone", "list", "-o", "json"))
    assert list(zones) == ["zone"]
    assert {"id": "fi-hel2", "description": "Helsinki #2", "public": "yes"} in zones["zone"]
    devices = as_json(upctl("zone", "devices", "-o", "json"))
    assert devices["fi-hel2"]["gpu_plans"][GPU_PLAN] == {"amount": 10}
    set_faults(home, devices={"de-fra1": {GPU_PLAN: 3}})
    shown = as_json(upctl("zone", "devices", "show", "de-fra1", "fi-hel2", "-o", "json"))
    assert shown == [{"gpu_plans": {GPU_PLAN: {"amount": 3}}}, {"gpu_plans": None}]


def test_storage_list_filters(upctl: Run) -> None:
    templates = as_json(upctl("storage", "list", "--public", "--template", "-o", "json"))["storages"]
    by_uuid = {t["uuid"]: t for t in templates}
    ubuntu = by_uuid["01000000-0000-4000-8000-000030240200"]
    assert (ubuntu["title"], ubuntu["template_type"], ubuntu["type"]) == (
        "Ubuntu Server 24.04 LTS (Noble Numbat)", "cloud-init", "template",
    )  # fmt: skip
    assert by_uuid["01000000-0000-4000-8000-000030700200"]["title"] == NVIDIA_OS
    assert "labels" not in ubuntu
    assert as_json(upctl("storage", "list", "--template", "-o", "json")) == {"storages": []}


def test_json_escapes_like_go(upctl: Run) -> None:
    proc = upctl("storage", "list", "--public", "-o", "json")
    assert "(with NVIDIA drivers \\u0026 CUDA)" in proc.stdout
    assert "&" not in proc.stdout


# ------------------------------------------------------------------------------------------ create / show


def test_create_with_wait_then_show(upctl: Run, pool: list[dict[str, Any]], key_file: Path) -> None:
    proc = create(upctl, key_file, "gpu-a", "--label", "managed_by=orchestrator", "--label", "env=test", "--wait")
    assert proc.returncode == 0, proc.stderr
    created = as_json(proc)
    assert created["state"] == "maintenance"  # the create response, not refreshed after --wait
    uuid = created["uuid"]
    assert uuid.startswith("00") and [len(p) for p in uuid.split("-")] == [8, 4, 4, 4, 12]
    lines = [line.rstrip() for line in proc.stderr.splitlines()]
    assert lines == [
        "> Creating server gpu-a",
        f"> Waiting for server {uuid} to be in started state",
        "✓ Creating server gpu-a",
    ]
    assert all(len(line) == 100 for line in proc.stderr.splitlines())
    shown = as_json(upctl("server", "show", uuid, "-o", "json"))
    assert shown["state"] == "started"
    assert public_ipv4(shown) == "10.200.0.2"
    assert {"access": "public", "family": "IPv4", "address": "10.200.0.2"}.items() <= next(
        ip for ip in shown["ip_addresses"] if ip["access"] == "public" and ip["family"] == "IPv4"
    ).items()
    assert shown["labels"] == {
        "label": [{"key": "managed_by", "value": "orchestrator"}, {"key": "env", "value": "test"}]
    }
    assert (shown["core_number"], shown["memory_amount"], shown["remote_access_port"]) == ("8", "65536", "0")
    assert shown["devices"][0]["model"] == "NVIDIA L40S" and shown["devices"][0]["type"] == "gpu"
    assert shown["storage_devices"][0]["storage_title"] == "gpu-a-OS"
    assert shown["storage_devices"][0]["storage"].startswith("01")
    assert list(shown)[:11] == [
        "core_number", "hostname", "license", "memory_amount", "plan", "progress", "state", "tags", "title",
        "uuid", "zone",
    ]  # fmt: skip
    keys_file = Path(pool[0]["authorized_keys"])
    assert keys_file.read_text() == key_file.read_text()
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o644


def test_create_without_wait_reports_maintenance_for_boot_polls(upctl: Run, home: Path, key_file: Path) -> None:
    set_faults(home, boot_polls=2)
    uuid = as_json(create(upctl, key_file, "gpu-b"))["uuid"]
    states = [as_json(upctl("server", "show", "gpu-b", "-o", "json"))["state"] for _ in range(3)]
    assert states == ["maintenance", "maintenance", "started"]
    listed = as_json(upctl("server", "list", "--show-ip-addresses", "-o", "json"))["servers"]
    assert [s["uuid"] for s in listed] == [uuid]
    assert listed[0]["ip_addresses"][0]["access"] == "public"
    assert listed[0]["ip_addresses"][0]["address"].startswith("94.237.")  # no host pool → invented


def test_gpu_plan_without_os_storage_size_is_rejected(upctl: Run, key_file: Path, home: Path) -> None:
    proc = upctl("server", "create", "--hostname", "g", "--zone", "fi-hel2", "--plan", GPU_PLAN,
                 "--ssh-keys", str(key_file), "-o", "json")  # fmt: skip
    assert proc.returncode == 1
    assert "STORAGE_SIZE_INVALID" in as_json(proc)["error"]
    assert list(as_json(proc)) == ["error"]
    assert "✗ Creating server g" in proc.stderr
    assert proc.stderr.endswith("Error: Command execution failed for 1 resource(s)\n")
    assert read_state(home)["servers"] == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--plan", "GPU-1xCPU-1GB-9xNOPE"), "PLAN_INVALID"),
        (("--zone", "xx-nope1"), "ZONE_INVALID"),
        (("--zone", "de-fra1"), "SERVER_RESOURCES_UNAVAILABLE"),
        (("--label", "=novalue"), "INVALID_LABEL_KEY"),
    ],
)
def test_create_api_rejections(upctl: Run, key_file: Path, args: tuple[str, ...], code: str) -> None:
    proc = create(upctl, key_file, "h1", *args)
    assert proc.returncode == 1
    assert f"type={code}" in as_json(proc)["error"]


def test_create_client_side_validation(upctl: Run, tmp_path: Path) -> None:
    base = ("server", "create", "--hostname", "h", "--zone", "fi-hel2", "-o", "json")
    assert as_json(upctl(*base))["error"] == (
        "a password-delivery method, ssh-keys or a custom image must be specified"
    )
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key\n")
    proc = upctl(*base, "--ssh-keys", str(bad))
    assert proc.returncode == 1
    assert as_json(proc)["error"] == f'invalid ssh key "not a key" in file {bad}: ssh: no key found'
    proc = upctl(*base, "--ssh-keys", "ssh-ed25519 AAAA")
    assert as_json(proc)["error"] == 'invalid ssh key "ssh-ed25519 AAAA": ssh: no key found'
    proc = upctl(*base, "--ssh-keys", ed25519_public_key(), "--os", "No Such OS")
    assert as_json(proc)["error"] == 'no storage with uuid, name or title "No Such OS" was found'


def test_literal_and_repeated_ssh_keys_are_all_installed(
    upctl: Run, pool: list[dict[str, Any]], key_file: Path
) -> None:
    one, two = ed25519_public_key("one"), ed25519_public_key("two")
    proc = create(upctl, key_file, "keys", "--ssh-keys", f"{one},{two}")
    assert proc.returncode == 0, proc.stderr
    written = Path(pool[0]["authorized_keys"]).read_text().splitlines()
    assert written == [key_file.read_text().strip(), one, two]


def test_exhausted_pool_refuses_like_the_api(upctl: Run, pool: list[dict[str, Any]], key_file: Path) -> None:
    assert create(upctl, key_file, "p1").returncode == 0
    assert create(upctl, key_file, "p2").returncode == 0
    proc = create(upctl, key_file, "p3")
    assert proc.returncode == 1
    assert "type=SERVER_RESOURCES_UNAVAILABLE, status=409" in as_json(proc)["error"]


def test_parallel_creates_bind_distinct_hosts(
    upctl: Run, base_env: dict[str, str], pool: list[Any], key_file: Path
) -> None:
    env = dict(base_env, UPCLOUD_TOKEN="t")
    procs = [
        subprocess.Popen(
            [
                str(UPCTL),
                "server",
                "create",
                "--hostname",
                f"par{n}",
                "--zone",
                "fi-hel2",
                "--ssh-keys",
                str(key_file),
                "-o",
                "json",
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for n in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    addresses = {public_ipv4(json.loads(out)) for out, _ in outputs}
    assert addresses == {"10.200.0.2", "10.200.0.3"}


# ------------------------------------------------------------------------------------------ lifecycle


def test_stop_start_delete_lifecycle(upctl: Run, home: Path, pool: list[dict[str, Any]], key_file: Path) -> None:
    uuid = as_json(create(upctl, key_file, "life", "--wait"))["uuid"]
    marker = Path(pool[0]["poweroff"][-1])
    stopped = upctl("server", "stop", "life", "-o", "json")
    assert stopped.returncode == 0, stopped.stderr
    assert as_json(stopped)["state"] == "started"  # the stop response
    assert marker.exists()
    assert as_json(upctl("server", "show", uuid, "-o", "json"))["state"] == "stopped"

    again = upctl("server", "stop", uuid, "-o", "json")
    assert again.returncode == 1
    error = as_json(again)
    assert list(error) == ["argument", "error", "resource"]
    assert (error["argument"], error["resource"]) == (uuid, uuid)
    assert "type=SERVER_STATE_ILLEGAL, status=409" in error["error"]
    assert f"✗ Stopping server {uuid}" in again.stderr

    started = upctl("server", "start", uuid, "-o", "json")
    assert (started.returncode, as_json(started)["state"]) == (0, "started")
    refused = upctl("server", "delete", uuid)
    assert refused.returncode == 1 and "SERVER_STATE_ILLEGAL" in refused.stderr

    marker.unlink()
    deleted = upctl("server", "delete", uuid, "--stop", "-o", "json")
    assert (deleted.returncode, deleted.stdout) == (0, "")
    assert f"✓ Deleting server {uuid}" in deleted.stderr
    assert marker.exists()
    assert Path(pool[0]["authorized_keys"]).read_text() == ""
    gone = upctl("server", "show", uuid, "-o", "json")
    assert gone.returncode == 1
    assert as_json(gone) == {"error": f"cannot resolve argument: nothing found matching '{uuid}'"}
    leftover = as_json(upctl("storage", "list", "-o", "json"))["storages"]
    assert [(s["title"], s["type"]) for s in leftover] == [("life-OS", "normal")]


def test_delete_storages_and_pool_reuse(upctl: Run, pool: list[dict[str, Any]], key_file: Path) -> None:
    uuid = as_json(create(upctl, key_file, "tmp", "--wait"))["uuid"]
    assert upctl("server", "stop", uuid, "--wait").returncode == 0
    assert upctl("server", "delete", uuid, "--delete-storages").returncode == 0
    assert as_json(upctl("storage", "list", "-o", "json")) == {"storages": []}
    assert public_ipv4(as_json(create(upctl, key_file, "next"))) == "10.200.0.2"


def test_multiple_targets_give_array_and_failure_count(upctl: Run, key_file: Path) -> None:
    a = as_json(create(upctl, key_file, "multi-a", "--wait"))["uuid"]
    b = as_json(create(upctl, key_file, "multi-b", "--wait"))["uuid"]
    proc = upctl("server", "show", "multi-a", "missing", "multi-b", "-o", "json")
    assert proc.returncode == 1
    shown = as_json(proc)
    assert [item.get("uuid") for item in shown] == [a, None, b]
    assert shown[1] == {"error": "cannot resolve argument: nothing found matching 'missing'"}
    assert "✗ Command execution failed for missing" in proc.stderr
    assert upctl("server", "stop", a, b, "--wait").returncode == 0
    twice = upctl("server", "stop", a, b, "-o", "json")
    assert twice.returncode == 2
    assert twice.stderr.endswith("Error: Command execution failed for 2 resource(s)\n")
    assert len(as_json(twice)) == 2


def test_name_resolution_rules(upctl: Run, key_file: Path) -> None:
    web1 = as_json(create(upctl, key_file, "web-1", "--title", "Same"))["uuid"]
    web2 = as_json(create(upctl, key_file, "web-2", "--title", "Same"))["uuid"]
    assert as_json(upctl("server", "show", "WEB-1", "-o", "json"))["uuid"] == web1
    assert as_json(upctl("server", "show", web2[:13], "-o", "json"))["uuid"] == web2
    globbed = as_json(upctl("server", "show", "web-*", "-o", "json"))
    assert sorted(s["uuid"] for s in globbed) == sorted([web1, web2])
    ambiguous = upctl("server", "show", "Same", "-o", "json")
    assert ambiguous.returncode == 1
    assert "'Same' is not a glob pattern, but matches multiple values" in as_json(ambiguous)["error"]


# ------------------------------------------------------------------------------------------ faults


def test_fail_n_times_then_succeed(upctl: Run, home: Path, key_file: Path) -> None:
    set_faults(home, fail={"server create": {"times": 2, "kind": "5xx"}})
    codes = []
    for _ in range(3):
        proc = create(upctl, key_file, "flaky")
        codes.append(proc.returncode)
        if proc.returncode:
            assert as_json(proc) == {"error": "Internal server error (type=INTERNAL_ERROR, status=500)"}
    assert codes == [1, 1, 0]
    assert read_state(home)["fail_remaining"]["server create"] == 0


def test_fail_kinds_capacity_quota_timeout(upctl: Run, home: Path, key_file: Path) -> None:
    uuid = as_json(create(upctl, key_file, "kinds", "--wait"))["uuid"]
    set_faults(home, fail={"server show": {"times": 1, "kind": "capacity"}})
    proc = upctl("server", "show", uuid, "-o", "json")
    assert proc.returncode == 1 and "SERVER_RESOURCES_UNAVAILABLE" in as_json(proc)["error"]
    assert upctl("server", "show", uuid).returncode == 0
    set_faults(home, fail={"server create": {"times": 1, "kind": "quota"}})
    assert "LIMIT" in as_json(create(upctl, key_file, "q"))["error"]
    set_faults(home, fail={"server stop": {"times": 1, "kind": "timeout", "timeout_seconds": 0.05}})
    proc = upctl("server", "stop", uuid, "-o", "json")
    assert proc.returncode == 1
    assert as_json(proc)["error"].endswith("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")


def test_fail_kinds_auth_and_ratelimit(upctl: Run, home: Path, key_file: Path) -> None:
    uuid = as_json(create(upctl, key_file, "revoked", "--wait"))["uuid"]
    set_faults(home, fail={"server show": {"times": 1, "kind": "auth"}})
    proc = upctl("server", "show", uuid, "-o", "json")
    assert (proc.returncode, proc.stdout, proc.stderr) == (103, "", BAD_CREDS)
    assert upctl("server", "show", uuid).returncode == 0
    set_faults(home, fail={"server show": {"times": 1, "kind": "auth", "skip": 2}})
    assert [upctl("server", "show", uuid).returncode for _ in range(4)] == [0, 0, 103, 0]
    set_faults(home, fail={"zone list": {"times": 1, "kind": "ratelimit"}})
    proc = upctl("zone", "list", "-o", "json")
    assert proc.returncode == 1
    assert as_json(proc) == {"error": "Too many requests (type=TOO_MANY_REQUESTS, status=429)"}


def test_failure_stays_pending_until_the_api_call_is_reached(upctl: Run, home: Path, key_file: Path) -> None:
    """A name that does not resolve never reaches GET /server/{uuid}: the injected failure hits the next call."""
    uuid = as_json(create(upctl, key_file, "pending", "--wait"))["uuid"]
    set_faults(home, fail={"server show": {"times": 1}})
    missing = upctl("server", "show", "nope", "-o", "json")
    assert missing.returncode == 1
    assert as_json(missing) == {"error": "cannot resolve argument: nothing found matching 'nope'"}
    failed = upctl("server", "show", uuid, "-o", "json")
    assert failed.returncode == 1
    assert as_json(failed)["error"] == "Internal server error (type=INTERNAL_ERROR, status=500)"
    assert upctl("server", "show", uuid).returncode == 0


def test_wait_seconds_after_the_server_exists(home: Path, base_env: dict[str, str], key_file: Path) -> None:
    """`wait_seconds`: create --wait has stored the server (others see it) while the command still waits."""
    set_faults(home, wait_seconds=60)
    proc = subprocess.Popen(
        [str(UPCTL), "server", "create", "--hostname", "waiting", "--zone", "fi-hel2", "--plan", GPU_PLAN,
         "--os-storage-size", "50", "--ssh-keys", str(key_file), "--wait", "-o", "json"],
        env=base_env | {"UPCLOUD_TOKEN": "test-token"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not read_state(home).get("servers") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert [s["hostname"] for s in read_state(home)["servers"]] == ["waiting"]
        assert proc.poll() is None, "upctl must still be waiting"
    finally:
        proc.kill()
        proc.communicate()


def test_wait_timeout_warns_but_exits_zero(upctl: Run, home: Path, key_file: Path) -> None:
    set_faults(home, wait_timeout=True)
    proc = create(upctl, key_file, "slow", "--wait")
    assert proc.returncode == 0
    uuid = as_json(proc)["uuid"]
    lines = [line.rstrip() for line in proc.stderr.splitlines()]
    assert lines[-2:] == ["! Creating server slow", "  Error: context deadline exceeded"]
    assert [as_json(upctl("server", "show", uuid, "-o", "json"))["state"] for _ in range(2)] == [
        "maintenance", "started",
    ]  # fmt: skip
    stop = upctl("server", "stop", uuid, "--wait")
    assert stop.returncode == 0 and "! Stopping server" in stop.stderr
    assert as_json(upctl("server", "show", uuid, "-o", "json"))["state"] == "started"


def test_stuck_state_error(upctl: Run, home: Path, key_file: Path) -> None:
    set_faults(home, stuck_state="error")
    uuid = as_json(create(upctl, key_file, "stuck"))["uuid"]
    set_faults(home)
    for _ in range(3):
        assert as_json(upctl("server", "show", uuid, "-o", "json"))["state"] == "error"
    assert upctl("server", "stop", uuid).returncode == 1


# ------------------------------------------------------------------------------------------ firewall, IPs


def test_firewall_rules(upctl: Run, key_file: Path) -> None:
    uuid = as_json(create(upctl, key_file, "fw", "--wait"))["uuid"]
    modified = as_json(upctl("server", "modify", uuid, "--enable-firewall", "-o", "json"))
    assert modified["firewall"] == "on"
    rule = upctl(
        "server", "firewall", "create", uuid, "--direction", "in", "--action", "accept", "--family", "IPv4",
        "--protocol", "tcp", "--destination-port-start", "22", "--destination-port-end", "22",
        "--comment", "ssh", "-o", "json",
    )  # fmt: skip
    assert as_json(rule) == {
        "action": "accept", "comment": "ssh", "destination_port_start": "22", "destination_port_end": "22",
        "direction": "in", "family": "IPv4", "position": "1", "protocol": "tcp",
    }  # fmt: skip
    shown = as_json(upctl("server", "firewall", "show", uuid, "-o", "json"))
    assert [r["position"] for r in shown["firewall_rules"]] == ["1"]
    deleted = upctl("server", "firewall", "delete", uuid, "--position", "1", "-o", "json")
    assert (deleted.returncode, deleted.stdout) == (0, "")
    assert as_json(upctl("server", "firewall", "show", uuid, "-o", "json")) == {"firewall_rules": None}
    bad = upctl("server", "firewall", "create", uuid, "--direction", "in", "--action", "drop", "--family", "IPv5")
    assert bad.returncode == 1 and "invalid family, use either IPv4 or IPv6" in bad.stderr


def test_ip_address_list_and_yaml(upctl: Run, pool: list[dict[str, Any]], key_file: Path) -> None:
    uuid = as_json(create(upctl, key_file, "ips"))["uuid"]
    ips = as_json(upctl("ip-address", "list", "-o", "json"))["ip_addresses"]
    public = next(ip for ip in ips if ip["access"] == "public" and ip["family"] == "IPv4")
    assert (public["address"], public["server"], public["ptr_record"]) == (
        "10.200.0.2", uuid, "10-200-0-2.fi-hel2.upcloud.host",
    )  # fmt: skip
    yaml_out = upctl("server", "show", uuid, "-o", "yaml")
    assert yaml_out.returncode == 0 and f"uuid: {uuid}" in yaml_out.stdout
