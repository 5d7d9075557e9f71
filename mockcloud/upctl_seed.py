"""Fixed catalogue of the fake upctl world: plans, zones, public templates, account, version, GPU stock."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: the fake upctl starts once per call
if TYPE_CHECKING:
    from typing import Any

VERSION: dict[str, str] = {
    "architecture": "amd64",
    "build_date": "2026-07-24T09:40:10Z",
    "built_with": "go1.24.5",
    "operating_system": "linux",
    "version": "3.35.0",
}

UBUNTU_2404_UUID = "01000000-0000-4000-8000-000030240200"
UBUNTU_2404_TITLE = "Ubuntu Server 24.04 LTS (Noble Numbat)"
NVIDIA_UUID = "01000000-0000-4000-8000-000030700200"
NVIDIA_TITLE = "Ubuntu Server 24.04 LTS (with NVIDIA drivers & CUDA)"
DEFAULT_OS = UBUNTU_2404_TITLE
DEFAULT_PLAN = "1xCPU-2GB"
L40S_MODEL = "NVIDIA L40S"
L40S_METADATA: dict[str, int] = {"cores": 18176, "memory": 48}
MIN_STORAGE_GIB = 10
MAX_STORAGE_GIB = 4096


def _plan(name: str, cores: int, mem_gib: int, storage: int, tier: str, traffic: int) -> dict[str, Any]:
    return {
        "core_number": cores,
        "memory_amount": mem_gib * 1024,
        "name": name,
        "public_traffic_out": traffic,
        "storage_size": storage,
        "storage_tier": tier,
        "gpu_amount": 0,
        "gpu_model": "",
    }


def _gpu_plan(cores: int, mem_gib: int, gpus: int) -> dict[str, Any]:
    plan = _plan(f"GPU-{cores}xCPU-{mem_gib}GB-{gpus}xL40S", cores, mem_gib, 0, "", 12)
    plan["gpu_amount"] = gpus
    plan["gpu_model"] = L40S_MODEL
    return plan


PLANS: list[dict[str, Any]] = [
    _plan("DEV-1xCPU-1GB-10GB", 1, 1, 10, "standard", 1024),
    _plan("DEV-1xCPU-2GB", 1, 2, 30, "standard", 2048),
    _plan("1xCPU-1GB", 1, 1, 25, "maxiops", 1024),
    _plan("1xCPU-2GB", 1, 2, 50, "maxiops", 2048),
    _plan("2xCPU-4GB", 2, 4, 80, "maxiops", 4096),
    _plan("4xCPU-8GB", 4, 8, 160, "maxiops", 5120),
    _plan("6xCPU-16GB", 6, 16, 320, "maxiops", 6144),
    _plan("8xCPU-32GB", 8, 32, 640, "maxiops", 7168),
    _plan("HIMEM-8xCPU-128GB", 8, 128, 640, "maxiops", 7168),
    _gpu_plan(8, 64, 1),
    _gpu_plan(12, 128, 1),
    _gpu_plan(12, 128, 2),
    _gpu_plan(16, 192, 1),
    _gpu_plan(16, 192, 2),
    _gpu_plan(16, 192, 3),
    _gpu_plan(20, 256, 1),
    _gpu_plan(20, 256, 2),
    _gpu_plan(20, 256, 3),
    _gpu_plan(32, 384, 2),
    _gpu_plan(32, 384, 3),
]

ZONES: list[dict[str, str]] = [
    {"id": zone_id, "description": description, "public": "yes"}
    for zone_id, description in (
        ("au-syd1", "Sydney #1"),
        ("de-fra1", "Frankfurt #1"),
        ("es-mad1", "Madrid #1"),
        ("fi-hel1", "Helsinki #1"),
        ("fi-hel2", "Helsinki #2"),
        ("nl-ams1", "Amsterdam #1"),
        ("pl-waw1", "Warsaw #1"),
        ("se-sto1", "Stockholm #1"),
        ("sg-sin1", "Singapore #1"),
        ("uk-lon1", "London #1"),
        ("us-chi1", "Chicago #1"),
        ("us-nyc1", "New York #1"),
        ("us-sjo1", "San Jose #1"),
    )
]
ZONE_IDS: frozenset[str] = frozenset(z["id"] for z in ZONES)


def default_device_availability() -> dict[str, dict[str, int]]:
    """`{zone: {plan: amount}}`: fi-hel2 offers every L40S plan, 10 of each."""
    return {"fi-hel2": {p["name"]: 10 for p in PLANS if p["gpu_amount"] > 0}}


def _template(uuid: str, title: str, size: int, template_type: str, created: str) -> dict[str, Any]:
    return {
        "access": "public",
        "encrypted": "no",
        "license": 0,
        "part_of_plan": "",
        "size": size,
        "state": "online",
        "template_type": template_type,
        "tier": "",
        "title": title,
        "type": "template",
        "uuid": uuid,
        "zone": "",
        "origin": "",
        "created": created,
    }


PUBLIC_TEMPLATES: list[dict[str, Any]] = [
    _template(
        "01000000-0000-4000-8000-000020070100",
        "Debian GNU/Linux 12 (Bookworm)",
        4,
        "cloud-init",
        "2023-06-20T08:00:00Z",
    ),
    _template(
        "01000000-0000-4000-8000-000030220200",
        "Ubuntu Server 22.04 LTS (Jammy Jellyfish)",
        4,
        "cloud-init",
        "2022-04-28T08:00:00Z",
    ),
    _template(UBUNTU_2404_UUID, UBUNTU_2404_TITLE, 4, "cloud-init", "2024-04-30T08:00:00Z"),
    _template(NVIDIA_UUID, NVIDIA_TITLE, 20, "cloud-init", "2025-03-11T08:00:00Z"),
    _template("01000000-0000-4000-8000-000150020100", "Rocky Linux 9", 4, "cloud-init", "2023-01-10T08:00:00Z"),
    _template(
        "01000000-0000-4000-8000-000010080300",
        "Windows Server 2022 Standard",
        30,
        "native",
        "2022-01-18T08:00:00Z",
    ),
]


def account(username: str) -> dict[str, Any]:
    """`account show -o json`: a map rendered with sorted keys, every limit present (zeros included)."""
    limits = {
        "cores": 200,
        "detached_floating_ips": 10,
        "gpus": 8,
        "load_balancers": 50,
        "managed_object_storages": 20,
        "memory": 1048576,
        "network_peerings": 100,
        "networks": 100,
        "ntp_excess_gib": 20000,
        "public_ipv4": 50,
        "public_ipv6": 100,
        "storage_hdd": 10240,
        "storage_maxiops": 10240,
        "storage_ssd": 10240,
    }
    return {"credits": 9972.12, "resource_limits": dict(sorted(limits.items())), "username": username}


def find_plan(name: str) -> dict[str, Any] | None:
    return next((p for p in PLANS if p["name"] == name), None)
