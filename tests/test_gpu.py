"""Tests for orchestrator.gpu: nvidia-smi query parsing, GPU count/model checks, failure explanations."""

from __future__ import annotations

import pytest

from orchestrator.errors import GpuVerificationError
from orchestrator.gpu import (
    QUERY_FIELDS,
    GpuInfo,
    check_gpus,
    explain_nvidia_smi_failure,
    model_matches,
    parse_query,
    query_argv,
)

L40S = GpuInfo(index=0, name="NVIDIA L40S", driver="580.95.05", memory_total_mib=46068, memory_used_mib=0)


def test_query_argv() -> None:
    assert QUERY_FIELDS == ("index", "name", "driver_version", "memory.total", "memory.used")
    assert query_argv() == [
        "nvidia-smi",
        "--query-gpu=index,name,driver_version,memory.total,memory.used",
        "--format=csv,noheader,nounits",
    ]


def test_parse_single_l40s() -> None:
    assert parse_query("0, NVIDIA L40S, 580.95.05, 46068, 0\n") == [L40S]


def test_parse_two_gpus_with_blank_lines_and_crlf() -> None:
    out = "\n0, NVIDIA L40S, 580.95.05, 46068, 0\r\n1, NVIDIA L40S, 580.95.05, 46068, 40123\r\n\n"
    gpus = parse_query(out)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[1] == GpuInfo(1, "NVIDIA L40S", "580.95.05", 46068, 40123)


def test_parse_names_with_spaces_and_unavailable_fields() -> None:
    out = "0, NVIDIA H100 80GB HBM3, 580.95.05, [N/A], [Not Supported]\n"
    assert parse_query(out) == [GpuInfo(0, "NVIDIA H100 80GB HBM3", "580.95.05", None, None)]
    assert parse_query("0, NVIDIA L40S, [N/A], 46068, 12")[0].driver == ""


def test_parse_tolerates_units_left_in() -> None:
    assert parse_query("0, NVIDIA L40S, 580.95.05, 46068 MiB, 0 MiB") == [L40S]


def test_parse_empty_output_is_no_gpus() -> None:
    assert parse_query("") == []
    assert parse_query("\n  \n") == []


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("0, NVIDIA L40S, 580.95.05, 46068", "expected 5 comma-separated fields, got 4"),
        ("0, NVIDIA L40S, 580.95.05, 46068, 0, 31", "expected 5 comma-separated fields, got 6"),
        ("x, NVIDIA L40S, 580.95.05, 46068, 0", "GPU index 'x' is not a number"),
        ("0, NVIDIA L40S, 580.95.05, lots, 0", "memory.total is 'lots'"),
        ("0, , 580.95.05, 46068, 0", "GPU name is missing"),
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
            "expected 5 comma-separated fields",
        ),
    ],
)
def test_parse_malformed_names_the_line(line: str, fragment: str) -> None:
    with pytest.raises(GpuVerificationError) as err:
        parse_query("0, NVIDIA L40S, 580.95.05, 46068, 0\n" + line + "\n")
    assert fragment in err.value.message
    assert repr(line.strip()) in err.value.message
    assert err.value.hint and "nvidia-smi --query-gpu" in err.value.hint
    assert err.value.exit_code == 6


@pytest.mark.parametrize("expected", ["NVIDIA L40S", "L40S", "l40s", "nvidia-l40s", " L40S "])
def test_model_matches_case_insensitive_substring(expected: str) -> None:
    assert model_matches("NVIDIA L40S", expected)
    check_gpus([L40S], 1, expected)


@pytest.mark.parametrize("expected", ["L40", "A100", "NVIDIA L4", "H100"])
def test_model_mismatch(expected: str) -> None:
    assert not model_matches("NVIDIA L40S", expected)
    with pytest.raises(GpuVerificationError) as err:
        check_gpus([L40S], 1, expected)
    assert f"expected GPU model {expected}" in err.value.message
    assert "NVIDIA L40S" in err.value.message
    assert err.value.hint


def test_model_matches_longer_names() -> None:
    assert model_matches("NVIDIA H100 80GB HBM3", "H100")
    assert model_matches("NVIDIA H100 80GB HBM3", "h100 80gb")
    assert not model_matches("NVIDIA H100 80GB HBM3", "H100 HBM3")


def test_count_mismatch() -> None:
    with pytest.raises(GpuVerificationError) as err:
        check_gpus([], 1, "L40S")
    assert err.value.message == "expected 1 GPU(s) of model L40S, nvidia-smi lists 0 (none)"
    assert err.value.hint and "lspci" in err.value.hint
    two = [L40S, GpuInfo(1, "NVIDIA L40S", "580.95.05", 46068, 0)]
    with pytest.raises(GpuVerificationError) as err:
        check_gpus(two, 1, "L40S")
    assert "lists 2 (#0 NVIDIA L40S, #1 NVIDIA L40S)" in err.value.message
    check_gpus(two, 2, "NVIDIA L40S")


def test_one_wrong_gpu_among_several_is_reported() -> None:
    mixed = [L40S, GpuInfo(1, "NVIDIA A10", "580.95.05", 23028, 0)]
    with pytest.raises(GpuVerificationError) as err:
        check_gpus(mixed, 2, "L40S")
    assert "but the server has NVIDIA A10" in err.value.message


F1_TEXT = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)


def test_explain_driver_not_loaded_exit_9() -> None:
    err = explain_nvidia_smi_failure(9, F1_TEXT)
    assert isinstance(err, GpuVerificationError)
    assert "cannot communicate with the NVIDIA driver" in err.message
    assert err.hint is not None
    for word in ("reboot", "lsmod", "dkms status", "dmesg", "nouveau"):
        assert word in err.hint
    assert err.details == F1_TEXT.strip()
    # the same text without the exit code (e.g. through a wrapper that lost it) is recognised too
    assert "cannot communicate" in explain_nvidia_smi_failure(1, F1_TEXT).message
    assert "cannot communicate" in explain_nvidia_smi_failure(9, "").message


def test_explain_version_mismatch() -> None:
    out = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n"
    err = explain_nvidia_smi_failure(18, out)
    assert "version mismatch" in err.message
    assert err.hint is not None and "Reboot" in err.hint and "apt-mark hold" in err.hint


@pytest.mark.parametrize(
    ("rc", "out"),
    [
        (127, "bash: line 1: nvidia-smi: command not found"),
        (127, ""),
        (1, "sh: 1: nvidia-smi: not found"),
        (2, "[Errno 2] No such file or directory: 'nvidia-smi'"),
    ],
)
def test_explain_not_installed(rc: int, out: str) -> None:
    err = explain_nvidia_smi_failure(rc, out)
    assert "no NVIDIA driver is installed" in err.message
    assert err.hint is not None and "nvidia-headless-580-server-open" in err.hint and "reboot" in err.hint


def test_explain_nvml_missing_exit_12() -> None:
    err = explain_nvidia_smi_failure(12, "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system.")
    assert "NVML library was not found" in err.message
    assert err.hint is not None and "nvidia-utils" in err.hint


def test_explain_fallen_off_bus_exit_15() -> None:
    err = explain_nvidia_smi_failure(15, "Unable to determine the device handle for GPU0000:00:06.0: Unknown Error")
    assert "fallen off the bus" in err.message
    assert err.hint is not None and "reboot" in err.hint
    assert "fallen off" in explain_nvidia_smi_failure(1, "GPU 00000000:00:06.0: GPU has fallen off the bus.").message


def test_explain_no_devices_and_internal_error() -> None:
    assert "no GPU devices" in explain_nvidia_smi_failure(6, "No devices were found").message
    err = explain_nvidia_smi_failure(255, "Unknown Error")
    assert "exit code 255" in err.message and err.hint is not None and "dmesg" in err.hint


def test_explain_unknown_exit_code_is_generic() -> None:
    err = explain_nvidia_smi_failure(3, "something odd")
    assert err.message == "nvidia-smi failed with exit code 3"
    assert err.details == "something odd"
    assert explain_nvidia_smi_failure(3, "  ").details is None
