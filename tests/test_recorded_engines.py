"""Health expectations and the nvidia-smi parser on RECORDED real outputs (see tests/fixtures/recorded/README.md)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from orchestrator.gpu import QUERY_FIELDS, check_gpus, parse_query
from orchestrator.health import (
    expect_openai_completion,
    expect_openai_model,
    expect_tfs_available,
    expect_tfs_predict,
    expect_triton_ready,
)

REPO = Path(__file__).resolve().parents[1]
RECORDED = Path(__file__).parent / "fixtures" / "recorded"
L40S_CAPTURE = "linux-x86_64__nvidia-l40s__595.80.query-gpu.csv"


def response(path: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=(RECORDED / path).read_text(), headers={"Content-Type": "application/json"})


# ------------------------------------------------------------------ vLLM (OpenAI-compatible server)


def test_vllm_models_listing_names_the_served_model() -> None:
    resp = response("vllm/v1_models.json")
    verdict = expect_openai_model(resp, "Meta-Llama-3.1-8B-Instruct")
    assert verdict.ready and verdict.detail == "model Meta-Llama-3.1-8B-Instruct listed"
    other = expect_openai_model(resp, "Qwen/Qwen2.5-0.5B-Instruct")
    assert not other.ready and other.fatal  # a server that serves another model will not start serving ours
    assert "Meta-Llama-3.1-8B-Instruct" in other.detail


def test_vllm_completion_answer() -> None:
    verdict = expect_openai_completion(response("vllm/v1_completions.json"), "")
    assert verdict.ready and verdict.detail == "completion answered"


# ------------------------------------------------------------------ TensorFlow Serving REST API


def test_tfs_model_status_available() -> None:
    verdict = expect_tfs_available(response("tensorflow-serving/model_status.json"), "half_plus_two")
    assert verdict.ready and verdict.detail == "model half_plus_two version 123 AVAILABLE"


@pytest.mark.parametrize("name", ["predict_row.json", "predict_columnar.json"])
def test_tfs_predict_answers(name: str) -> None:
    verdict = expect_tfs_predict(response(f"tensorflow-serving/{name}"), "")
    assert verdict.ready and verdict.detail == "predict answered"


# ------------------------------------------------------------------ Triton


def test_triton_unknown_model_is_fatal() -> None:
    """A 400 naming an unknown model will not turn into 'ready' by waiting: the check stops at once."""
    verdict = expect_triton_ready(response("triton/unknown_model_400.json", 400), "ensemble")
    assert not verdict.ready and verdict.fatal
    assert verdict.detail == "HTTP 400: Request for unknown model: '/models::ensemble' is not found"


# ------------------------------------------------------------------ nvidia-smi


def recorded_query(capture: str, *, units: bool) -> str:
    """Our query's output, taken from a recorded full `--query-gpu=... --format=csv` run (header names the columns).

    The recording has units ("46068 MiB"); `nounits` prints the same numbers without them.
    """
    rows = list(csv.reader(io.StringIO((RECORDED / "nvidia-smi" / capture).read_text()), skipinitialspace=True))
    header = [h.split(" [")[0] for h in rows[0]]
    lines = []
    for row in rows[1:]:
        cells = dict(zip(header, row, strict=True))
        values = [cells[f] for f in QUERY_FIELDS]
        lines.append(", ".join(values if units else [v.removesuffix(" MiB") for v in values]))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("units", [False, True], ids=["nounits", "with-units"])
def test_parse_query_on_recorded_l40s(units: bool) -> None:
    [gpu] = parse_query(recorded_query(L40S_CAPTURE, units=units))
    assert (gpu.index, gpu.name, gpu.driver, gpu.memory_total_mib, gpu.memory_used_mib) == (
        0,
        "NVIDIA L40S",
        "595.80",
        46068,
        0,
    )
    check_gpus([gpu], 1, "NVIDIA L40S")


@pytest.mark.parametrize(
    "capture, name, total",
    [
        ("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.query-gpu.csv", "NVIDIA H100 80GB HBM3", 81559),
        ("linux-x86_64__nvidia-h200-mig__590.48.01.query-gpu.csv", "NVIDIA H200", 143771),
    ],
)
def test_parse_query_on_other_recorded_gpus(capture: str, name: str, total: int) -> None:
    [gpu] = parse_query(recorded_query(capture, units=False))
    assert (gpu.name, gpu.driver, gpu.memory_total_mib) == (name, "590.48.01", total)
    with pytest.raises(Exception, match="L40S"):
        check_gpus([gpu], 1, "NVIDIA L40S")


def test_mock_nvidia_smi_prints_what_the_real_one_prints(tmp_path: Path) -> None:
    """The mock host's nvidia-smi (default knobs: one L40S): same header cells and value formats as the recording."""
    argv = [str(REPO / "mockcloud" / "hostbin" / "nvidia-smi"), "--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv"]
    env = {"PATH": os.environ["PATH"], "MOCKHOST_HOME": str(tmp_path), "MOCKCLOUD_PYTHON": sys.executable}
    fake = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = list(csv.reader(io.StringIO(fake), skipinitialspace=True))
    real = list(csv.reader(io.StringIO((RECORDED / "nvidia-smi" / L40S_CAPTURE).read_text()), skipinitialspace=True))
    real_cells = dict(zip(real[0], real[1], strict=True))
    wanted = [h for f in QUERY_FIELDS for h in real[0] if h.split(" [")[0] == f]
    assert rows[0] == wanted  # e.g. "memory.total [MiB]"
    fake_cells = dict(zip(rows[0], rows[1], strict=True))
    assert fake_cells["name"] == real_cells["name"] == "NVIDIA L40S"
    assert fake_cells["memory.total [MiB]"] == real_cells["memory.total [MiB]"] == "46068 MiB"
    assert re.fullmatch(r"\d+ MiB", fake_cells["memory.used [MiB]"])
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", fake_cells["driver_version"])
