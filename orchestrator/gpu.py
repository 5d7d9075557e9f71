"""Parsing and checking ``nvidia-smi`` output: which GPUs a host has, and why nvidia-smi failed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.errors import GpuVerificationError

QUERY_FIELDS = ("index", "name", "driver_version", "memory.total", "memory.used")

_TOKEN = re.compile(r"[a-z0-9]+")
_MIB_SUFFIX = re.compile(r"\s*MiB$", re.IGNORECASE)
# bash: "nvidia-smi: command not found"; dash: "sh: 1: nvidia-smi: not found"; Python: "[Errno 2] No such
# file or directory: 'nvidia-smi'"; docker: "executable file not found in $PATH".
_NOT_INSTALLED = re.compile(
    r"nvidia-smi\W*(command )?not found|command not found|no such file or directory\W*\S*nvidia-smi"
    r"|executable file not found",
    re.IGNORECASE,
)

INSTALL_DRIVER_HINT = (
    "Install the 580 server driver and reboot: 'sudo apt-get install -y nvidia-headless-580-server-open "
    "nvidia-utils-580-server && sudo reboot' (or create the server from UpCloud's GPU template)."
)


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as nvidia-smi reports it; memory in MiB, None where nvidia-smi says [N/A]."""

    index: int
    name: str
    driver: str
    memory_total_mib: int | None
    memory_used_mib: int | None


def query_argv() -> list[str]:
    """The nvidia-smi command whose output parse_query reads."""
    return ["nvidia-smi", "--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,noheader,nounits"]


def _is_unavailable(value: str) -> bool:
    return value.startswith("[") and value.endswith("]")  # [N/A], [Not Supported], [Unknown Error]


def _mib(value: str, line: str, field: str) -> int | None:
    if _is_unavailable(value):
        return None
    number = _MIB_SUFFIX.sub("", value)  # tolerate output captured without 'nounits'
    if not number.isdigit():
        raise _malformed(line, f"{field} is {value!r}, not a number of MiB")
    return int(number)


def _malformed(line: str, why: str) -> GpuVerificationError:
    return GpuVerificationError(
        f"unexpected nvidia-smi output line {line!r}: {why}",
        f"Run '{' '.join(query_argv())}' on the server to see the raw output.",
    )


def parse_query(stdout: str) -> list[GpuInfo]:
    """Parse the output of query_argv(): one GPU a line, fields in QUERY_FIELDS order."""
    gpus: list[GpuInfo] = []
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]  # GPU names never contain commas
        if len(fields) != len(QUERY_FIELDS):
            raise _malformed(line, f"expected {len(QUERY_FIELDS)} comma-separated fields, got {len(fields)}")
        index, name, driver, total, used = fields
        if not index.isdigit():
            raise _malformed(line, f"GPU index {index!r} is not a number")
        if not name or _is_unavailable(name):
            raise _malformed(line, "GPU name is missing")
        gpus.append(
            GpuInfo(
                index=int(index),
                name=name,
                driver="" if _is_unavailable(driver) else driver,
                memory_total_mib=_mib(total, line, "memory.total"),
                memory_used_mib=_mib(used, line, "memory.used"),
            )
        )
    return gpus


def model_matches(gpu_name: str, expected_model: str) -> bool:
    """True when the plan's model name appears, as whole words, in nvidia-smi's name (case-insensitive).

    "NVIDIA L40S", "L40S" and "l40s" all match "NVIDIA L40S"; "L40" does not.
    """
    want = _TOKEN.findall(expected_model.lower())
    have = _TOKEN.findall(gpu_name.lower())
    if not want:
        return True
    return any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))


def check_gpus(gpus: list[GpuInfo], expected_count: int, expected_model: str) -> None:
    """Raise GpuVerificationError unless there are exactly ``expected_count`` GPUs of ``expected_model``."""
    found = ", ".join(f"#{g.index} {g.name}" for g in gpus) or "none"
    if len(gpus) != expected_count:
        raise GpuVerificationError(
            f"expected {expected_count} GPU(s) of model {expected_model}, nvidia-smi lists {len(gpus)} ({found})",
            "Check that the server was created with the GPU plan you configured ('lspci | grep -i nvidia' "
            "shows the devices the VM has); if a GPU is missing, delete the server and create it again.",
        )
    wrong = [g for g in gpus if not model_matches(g.name, expected_model)]
    if wrong:
        names = ", ".join(sorted({g.name for g in wrong}))
        raise GpuVerificationError(
            f"expected GPU model {expected_model}, but the server has {names} ({found})",
            "The plan or zone gave a different GPU than configured: fix the plan/gpu model in the "
            "config, or pick a plan that provides this model.",
        )


def explain_nvidia_smi_failure(returncode: int, output: str) -> GpuVerificationError:
    """Turn a failed nvidia-smi run (exit code + combined output) into an error saying what to do."""
    text = output.strip()
    low = text.lower()
    details = text or None

    def err(message: str, hint: str) -> GpuVerificationError:
        return GpuVerificationError(message, hint, details=details)

    if "driver/library version mismatch" in low:
        return err(
            "nvidia-smi failed: NVIDIA driver/library version mismatch",
            "The driver libraries were upgraded while the old kernel module is still loaded. Reboot the "
            "server, then hold the driver packages ('sudo apt-mark hold' the nvidia-* packages) so "
            "unattended-upgrades cannot do it again.",
        )
    if returncode == 127 or _NOT_INSTALLED.search(text):
        return err("nvidia-smi not found: no NVIDIA driver is installed on the server", INSTALL_DRIVER_HINT)
    if returncode == 9 or "communicate with the nvidia driver" in low or "driver is not loaded" in low:
        return err(
            "nvidia-smi cannot communicate with the NVIDIA driver (the kernel module is not loaded)",
            "If the driver was just installed, reboot the server and run again. Otherwise check "
            "'lsmod | grep nvidia', 'dkms status' and 'dmesg | grep -i nvrm' (Secure Boot, nouveau); "
            "reinstall the kernel headers and DKMS module for 'uname -r' and blacklist nouveau.",
        )
    if returncode == 12 or "nvml shared library not found" in low:
        return err(
            "nvidia-smi failed: the NVML library was not found (driver user-space libraries missing)",
            "Reinstall the driver's utilities for the installed branch, e.g. 'sudo apt-get install "
            "--reinstall nvidia-utils-580-server', then reboot.",
        )
    if returncode == 15 or "fallen off the bus" in low:
        return err(
            "nvidia-smi failed: the GPU has fallen off the bus or is inaccessible",
            "This is a hardware or hypervisor fault: reboot the server; if it happens again, delete the "
            "server and create a new one (and tell UpCloud support if it persists).",
        )
    if returncode == 6 or "no devices were found" in low:
        return err(
            "nvidia-smi found no GPU devices",
            "Check 'lspci | grep -i nvidia'. If no device is listed, the server plan has no GPU; if it is "
            "listed, check 'dmesg | grep -i nvrm' for driver errors and reboot.",
        )
    if returncode == 255:
        return err(
            "nvidia-smi failed with an internal driver error (exit code 255)",
            "Check 'dmesg | grep -i nvrm' for driver errors and reboot the server; reinstall the driver "
            "if it persists.",
        )
    return err(
        f"nvidia-smi failed with exit code {returncode}",
        "Run 'nvidia-smi' on the server to see the full error; 'dmesg | grep -i nvrm' shows driver errors.",
    )
