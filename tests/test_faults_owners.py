"""Shared accounts: two installations ($ORCHESTRATOR_HOME) on one UpCloud account, orphans per owner, name
clashes, redeploy defects (a lost API key, a gone server) and the interrupted create behind a capacity fallback."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from mockcloud.upctl import read_state, set_faults
from orchestrator.owner import ensure_owner, load_owner, owner_id_path, sanitize_name
from tests.conftest import run_cli
from tests.test_e2e import cloud, env, prom, write_config  # noqa: F401 - shared fixtures
from tests.test_faults import check_invariant, cloud_uuids, scenario, tracked_uuids  # noqa: F401

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")


def other_home(e: dict[str, str], tmp_path: Path, name: str = "home-b") -> dict[str, str]:
    return e | {"ORCHESTRATOR_HOME": str(tmp_path / name)}


def home(e: dict[str, str]) -> Path:
    return Path(e["ORCHESTRATOR_HOME"])


def hand_made(c: MockCloud, e: dict[str, str], hostname: str, *labels: str) -> str:
    """A server made with upctl by hand (what a run killed between `server create` and the state write leaves)."""
    argv = ["upctl", "server", "create", "--hostname", hostname, "--zone", "fi-hel2", "--plan", "GPU-8xCPU-64GB-1xL40S"]
    argv += ["--os-storage-size", "50", "--ssh-keys", f"{c.client_key}.pub", "--wait", "-o", "json"]
    for label in labels:
        argv += ["--label", label]
    created = subprocess.run(argv, env=e, capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["uuid"])


def owned(e: dict[str, str], deployment: str) -> tuple[str, ...]:
    owner = ensure_owner(home(e))
    return (
        "managed_by=orchestrator",
        f"orchestrator_deployment={deployment}",
        f"orchestrator_owner={owner.id}",
        f"orchestrator_owner_name={owner.name}",
    )


def orphans_of(e: dict[str, str]) -> dict[str, list[str]]:
    proc = run_cli("status", "--orphans", "--json", env=e)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return {"orphans": [o["uuid"] for o in doc["orphans"]], "foreign": [o["uuid"] for o in doc["foreign"]]}


def firewall(e: dict[str, str], uuid: str) -> str:
    proc = subprocess.run(["upctl", "server", "firewall", "show", uuid, "-o", "json"], env=e, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


# ------------------------------------------------------------------------------------------- owner id


def test_owner_id_created_once_0600_and_labels_sanitized(tmp_path: Path) -> None:
    h = tmp_path / "home"
    assert load_owner(h) is None and not h.exists()
    first = ensure_owner(h)
    assert stat.S_IMODE(owner_id_path(h).stat().st_mode) == 0o600
    assert stat.S_IMODE(h.stat().st_mode) == 0o700
    assert ensure_owner(h) == first == load_owner(h)
    assert ensure_owner(tmp_path / "other").id != first.id
    assert sanitize_name("Zoë Smith@laptop.local:22/x") == "Zo-Smith@laptop.local-22-x"
    assert sanitize_name("=,\n") == "unknown" and len(sanitize_name("u" * 300)) == 64


# ------------------------------------------------------------------------------------------- two homes


def test_two_homes_each_tears_down_only_its_own_orphans(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, a = scenario
    b = other_home(a, tmp_path)
    assert run_cli("deploy", str(write_config(c, tmp_path, None, name="alpha")), env=a).returncode == 0
    alpha = tracked_uuids(home(a))
    ghost = hand_made(c, b, "beta", *owned(b, "beta"))  # B's run died after create: B's orphan
    assert orphans_of(b) == {"orphans": [ghost], "foreign": list(alpha)}
    assert orphans_of(a) == {"orphans": [], "foreign": [ghost]}

    mine = run_cli("teardown", "--orphans", "--yes", env=a)
    assert mine.returncode == 0, mine.stderr
    assert "no orphaned servers" in mine.stdout and "--include-foreign" in mine.stdout
    assert cloud_uuids(c) == alpha | {ghost}, "A deleted a server that is B's"

    theirs = run_cli("teardown", "--orphans", "--yes", env=b)
    assert theirs.returncode == 0, theirs.stderr
    assert "1 orphaned server(s) deleted" in theirs.stdout
    assert cloud_uuids(c) == alpha, "B must delete its own orphan and nothing of A's"
    check_invariant("two homes: teardown --orphans removes only this owner's", c, a, b)


def test_same_name_from_another_home_is_a_clash_not_an_adoption(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, a = scenario
    b = other_home(a, tmp_path)
    cfg = write_config(c, tmp_path, None, name="shared")
    assert run_cli("deploy", str(cfg), env=a).returncode == 0
    (uuid,) = tracked_uuids(home(a))
    rules = firewall(a, uuid)
    assert json.loads(rules)["firewall_rules"], "A's deploy wrote no firewall rules"
    proc = run_cli("deploy", str(cfg), env=b)
    assert proc.returncode == 2, proc.stderr
    assert f"a server with hostname 'shared' already exists ({uuid}, another owner's" in proc.stderr
    assert "hint: set provider.hostname" in proc.stderr and "adopting" not in proc.stderr
    assert firewall(a, uuid) == rules, "B rewrote the firewall of A's server"
    assert cloud_uuids(c) == {uuid} and tracked_uuids(home(b)) == set()
    check_invariant("same deployment name from another home", c, a, b)


def test_legacy_unowned_server_is_foreign_and_not_adopted(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, e = scenario
    ensure_owner(home(e))
    legacy = hand_made(c, e, "old", "managed_by=orchestrator", "orchestrator_deployment=old")
    assert orphans_of(e) == {"orphans": [], "foreign": [legacy]}
    proc = run_cli("deploy", str(write_config(c, tmp_path, None, name="old")), env=e)
    assert proc.returncode == 2, proc.stderr
    assert "without an owner label" in proc.stderr and "teardown --orphans --include-foreign" in proc.stderr
    assert cloud_uuids(c) == {legacy} and tracked_uuids(home(e)) == set()
    gone = run_cli("teardown", "--orphans", "--include-foreign", "--yes", env=e)
    assert gone.returncode == 0, gone.stderr
    assert cloud_uuids(c) == set()
    check_invariant("server of an older version (no owner label) is a clash", c, e)


def test_include_foreign_removes_other_owners_servers(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, a = scenario
    b = other_home(a, tmp_path)
    ensure_owner(home(a))
    theirs = hand_made(c, b, "theirs", *owned(b, "theirs"))
    legacy = hand_made(c, a, "legacy", "managed_by=orchestrator", "orchestrator_deployment=legacy")
    asked = run_cli("teardown", "--orphans", "--include-foreign", env=a)
    assert asked.returncode == 2 and "--yes" in asked.stderr  # not interactive: nothing without --yes
    assert cloud_uuids(c) == {theirs, legacy}
    proc = run_cli("teardown", "--orphans", "--include-foreign", "--yes", "--json", env=a)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["orphans"] == [] and doc["include_foreign"] is True
    assert {(f["uuid"], f["result"]) for f in doc["foreign"]} == {(theirs, "deleted"), (legacy, "deleted")}
    owners = {f["uuid"]: f["owner"] for f in doc["foreign"]}
    assert owners == {theirs: ensure_owner(home(b)).id, legacy: None}
    assert cloud_uuids(c) == set()
    check_invariant("teardown --orphans --include-foreign", c, a, b)


# ------------------------------------------------------------------------------------------- dry-run / json


def failing_upctl(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "upctl-was-called"
    fake = tmp_path / "upctl-must-not-run"
    fake.write_text(f"#!/bin/sh\necho called >> {marker}\nexit 1\n")
    fake.chmod(0o755)
    return fake, marker


def test_teardown_orphans_dry_run_calls_no_upctl(tmp_path: Path) -> None:
    fake, marker = failing_upctl(tmp_path)
    e = {"ORCHESTRATOR_UPCTL": str(fake), "ORCHESTRATOR_HOME": str(tmp_path / "home")}
    proc = run_cli("teardown", "--orphans", "--dry-run", env=e)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "dry-run ran upctl"
    out = proc.stdout
    order = [
        f"local: {fake} server list -o json",
        f"local: {fake} server show '<server.uuid>' -o json",
        f"local: {fake} server stop '<orphan.uuid>' --type soft --wait -o json",
        f"local: {fake} server delete '<orphan.uuid>' --delete-storages -o json",
        "Dry run complete",
    ]
    positions = [out.find(s) for s in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), (positions, out)
    assert "server stop '<foreign.uuid>'" not in out  # other owners' servers: only with --include-foreign
    assert not (tmp_path / "home").exists(), "dry-run wrote under $ORCHESTRATOR_HOME"

    both = run_cli("teardown", "--orphans", "--include-foreign", "--dry-run", "--json", env=e)
    assert both.returncode == 0, both.stderr
    doc = json.loads(both.stdout)
    assert doc["dry_run"] is True and doc["ok"] is True and doc["owner"] is None
    assert [(o["uuid"], o["result"]) for o in doc["orphans"] + doc["foreign"]] == [
        ("<orphan.uuid>", "would delete"),
        ("<foreign.uuid>", "would delete"),
    ]
    assert not marker.exists(), "dry-run ran upctl"


def test_orphans_json_errors_are_json(tmp_path: Path) -> None:
    fake = tmp_path / "upctl"
    fake.write_text(
        "#!/bin/sh\necho 'Error: user credentials not found, these must be set in config file' >&2\nexit 102\n"
    )
    fake.chmod(0o755)
    e = {"ORCHESTRATOR_UPCTL": str(fake), "ORCHESTRATOR_HOME": str(tmp_path / "home")}
    for argv in (("teardown", "--orphans", "--yes", "--json"), ("status", "--orphans", "--json")):
        proc = run_cli(*argv, env=e)
        assert proc.returncode == 4, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["ok"] is False and doc["exit_code"] == 4 and "credentials" in doc["error"]


# ------------------------------------------------------------------------------------------- redeploy


def test_redeploy_recreate_keeps_the_generated_api_key(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    c, e = scenario
    e = {k: v for k, v in e.items() if k != "VLLM_API_KEY"}  # no key given: one is generated and kept
    cfg = write_config(c, tmp_path, None, name="keyed")
    assert run_cli("deploy", str(cfg), env=e).returncode == 0
    key_file = home(e) / "secrets" / "keyed.api_key"
    key = key_file.read_text()
    before = tracked_uuids(home(e))
    proc = run_cli("redeploy", str(cfg), "--recreate", env=e)
    assert proc.returncode == 0, proc.stderr
    assert tracked_uuids(home(e)) != before, "--recreate must make a new server"
    assert key_file.read_text() == key, "--recreate lost (or replaced) the key the engine serves with"
    again = run_cli("deploy", str(cfg), env=e)  # engine unchanged and running: kept; health must pass the key
    assert again.returncode == 0, again.stderr
    assert "already serving" in again.stderr
    check_invariant("redeploy --recreate keeps the API key", c, e)


def test_redeploy_refuses_when_the_server_is_gone(scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path) -> None:
    c, e = scenario
    cfg = write_config(c, tmp_path, None, name="vanished")
    assert run_cli("deploy", str(cfg), env=e).returncode == 0
    (uuid,) = tracked_uuids(home(e))
    argv = ["upctl", "server", "delete", uuid, "--stop", "--delete-storages"]
    gone = subprocess.run(argv, env=e, capture_output=True)
    assert gone.returncode == 0, gone.stderr
    proc = run_cli("redeploy", str(cfg), env=e)
    assert proc.returncode == 11, proc.stderr
    assert f"the recorded server {uuid} no longer exists; redeploy does not create servers" in proc.stderr
    assert f"orchestrator redeploy {cfg} --recreate" in proc.stderr
    assert cloud_uuids(c) == set(), "redeploy created a server"
    assert "KEPT" not in proc.stderr
    check_invariant("redeploy with the server gone", c, e)


# ------------------------------------------------------------------------------------------- interrupted create


def test_interrupted_create_on_a_fallback_plan_is_adopted_not_duplicated(
    scenario: tuple[MockCloud, dict[str, str]], tmp_path: Path
) -> None:
    """The first plan has no stock; the fallback's create reaches the cloud but its answer is lost (a client
    timeout, transient): the retry must find that server, whatever its plan, instead of creating another."""
    c, e = scenario
    set_faults(
        c.upctl_home,
        devices={"fi-hel2": {"GPU-8xCPU-64GB-1xL40S": 0, "GPU-12xCPU-128GB-1xL40S": 4}},
        fail={"server create": {"times": 1, "kind": "response_lost", "timeout_seconds": 0.2}},
    )
    cfg = write_config(c, tmp_path, None, name="lostreply")
    data = yaml.safe_load(cfg.read_text())
    data["provider"]["fallbacks"] = [{"plan": "GPU-12xCPU-128GB-1xL40S"}]
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("deploy", str(cfg), env=e)
    assert proc.returncode == 0, proc.stderr
    assert "context deadline exceeded" in proc.stderr and "adopting it" in proc.stderr
    servers = read_state(c.upctl_home)["servers"]
    assert [s["plan"] for s in servers] == ["GPU-12xCPU-128GB-1xL40S"], "a second server was created"
    status = json.loads(run_cli("status", "lostreply", "--json", env=e).stdout)[0]
    assert status["server"]["plan"] == "GPU-12xCPU-128GB-1xL40S" and status["server"]["gpu_amount"] == 1
    check_invariant("capacity fallback + interrupted create", c, e)


def test_fake_upctl_response_lost_creates_then_times_out(cloud: MockCloud) -> None:  # noqa: F811
    """The fault knob behind the scenario above: the server exists, the client got `context deadline exceeded`."""
    set_faults(cloud.upctl_home, fail={"server create": {"times": 1, "kind": "response_lost", "timeout_seconds": 0}})
    try:
        argv = ["upctl", "server", "create", "--hostname", "knob", "--zone", "fi-hel2"]
        argv += ["--plan", "GPU-8xCPU-64GB-1xL40S", "--os-storage-size", "50"]
        argv += ["--ssh-keys", f"{cloud.client_key}.pub", "--wait", "-o", "json"]
        proc = subprocess.run(argv, env=cloud.env(), capture_output=True, text=True)
        assert proc.returncode == 1
        assert 'Post "https://api.upcloud.com/1.3/server": context deadline exceeded' in proc.stderr
        assert [s["hostname"] for s in read_state(cloud.upctl_home)["servers"]] == ["knob"]
    finally:
        set_faults(cloud.upctl_home)
        for uuid in cloud_uuids(cloud):
            subprocess.run(["upctl", "server", "delete", uuid, "--stop", "--delete-storages"], env=cloud.env())
    assert cloud_uuids(cloud) == set()
