"""Catalog of known GPU-host and model-server failures (F1-F18), matched against command output and logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

STILL_LOADING = "F16"
_GENERIC_RANK = {"F10": 1, "F16": 2}  # lower rank wins; every specific root cause has rank 0


@dataclass(frozen=True)
class KnownFailure:
    """One recognisable failure: what happened, why, what to do, and the log patterns that reveal it.

    ``patterns`` are regular expressions, searched case-insensitively in normalised text (ANSI colour
    codes removed, curly quotes straightened, runs of spaces collapsed).
    """

    code: str
    title: str
    why: str
    fix: str
    patterns: tuple[str, ...]


CATALOG: tuple[KnownFailure, ...] = (
    KnownFailure(
        code="F1",
        title="nvidia-smi cannot talk to the NVIDIA driver (kernel module not loaded)",
        why="The driver was installed but not loaded: usually no reboot since the install; otherwise a new "
        "kernel without a DKMS-built module, Secure Boot rejecting the module, or nouveau holding the GPU.",
        fix="If the driver was just installed, reboot the server. Otherwise check 'lsmod | grep nvidia', "
        "'dkms status' and 'dmesg | grep -i nvrm', reinstall the kernel headers and DKMS module for "
        "'uname -r', and blacklist nouveau.",
        patterns=(
            r"couldn'?t communicate with the NVIDIA driver",
            r"could not communicate with the NVIDIA driver",
            r"NVIDIA driver is not loaded",
        ),
    ),
    KnownFailure(
        code="F2",
        title="NVIDIA driver/library version mismatch",
        why="The NVIDIA user-space libraries were upgraded (often by unattended-upgrades) while the old "
        "kernel module is still loaded. Compare 'cat /proc/driver/nvidia/version' with "
        "'dpkg -l | grep nvidia-utils'.",
        fix="Reboot the server, then hold the driver packages ('apt-mark hold' the nvidia packages) so "
        "they are not upgraded underneath a running module again.",
        patterns=(r"Driver/library version mismatch",),
    ),
    KnownFailure(
        code="F3",
        title="Docker cannot give the container a GPU (no NVIDIA runtime)",
        why="The NVIDIA Container Toolkit is missing or not registered with Docker, Docker is the snap "
        "package, or Docker was not restarted after the toolkit was configured.",
        fix="Install nvidia-container-toolkit, run 'sudo nvidia-ctk runtime configure --runtime=docker' and "
        "'sudo systemctl restart docker', then check that 'docker info' lists the nvidia runtime. "
        "Do not use the Docker snap.",
        patterns=(r'could not select device driver "[^"]*" with capabilities: \[\[gpu\]\]',),
    ),
    KnownFailure(
        code="F4",
        title="The host NVIDIA driver is too old for the container image's CUDA",
        why="The image needs a newer CUDA than the installed driver supports (e.g. driver 550 only "
        "supports CUDA 12.4).",
        fix="Upgrade the driver to the 580 branch, or use an older image tag built for an older CUDA.",
        patterns=(
            r"nvidia-container-cli: requirement error: unsatisfied condition: cuda\s*>=?\s*[\d.]+",
            r"unsatisfied condition: cuda\s*>=?\s*[\d.]+",
            r"please update your driver to a newer version, or use an earlier cuda container",
        ),
    ),
    KnownFailure(
        code="F5",
        title="The NVIDIA driver is too old for the installed PyTorch/vLLM build",
        why="The Python wheel was built for a newer CUDA than the driver supports; the number in the "
        "message is the newest CUDA the driver supports (e.g. 12080 = CUDA 12.8).",
        fix="Reinstall torch/vLLM from the index that matches the driver (cu128/cu129), or upgrade the "
        "driver to the 580 branch.",
        patterns=(r"NVIDIA driver on your system is too old",),
    ),
    KnownFailure(
        code="F6",
        title="Not enough GPU memory for the KV cache of one full-length request",
        why="The weights fit, but the KV cache for the model's maximum context length does not; common "
        "with 128k-context models on a 48 GB card.",
        fix="Lower --max-model-len to at most the 'estimated maximum model length' in the log "
        "(e.g. 32768), or use --kv-cache-dtype fp8.",
        patterns=(
            r"to serve at least one request with the models?'?s? max seq len",
            r"max seq len \(\d+\) is larger than the maximum number of tokens that can be stored in KV cache",
            r"estimated maximum model length is \d+",
        ),
    ),
    KnownFailure(
        code="F7",
        title="No GPU memory left for vLLM's KV cache",
        why="The model weights plus the activation peak already use the whole memory budget.",
        fix="Use a smaller or quantized model, raise --gpu-memory-utilization (at most 0.95), or lower "
        "--max-num-seqs / --max-num-batched-tokens.",
        patterns=(r"No available memory for the cache blocks",),
    ),
    KnownFailure(
        code="F8",
        title="Another process is holding GPU memory that vLLM wants",
        why="Less memory is free than --gpu-memory-utilization asks for: another process (Triton, TF "
        "Serving, a stale vLLM container, a notebook) holds part of the GPU.",
        fix="List the holders with 'nvidia-smi --query-compute-apps=pid,used_memory --format=csv' and stop "
        "them, or lower vLLM's --gpu-memory-utilization.",
        patterns=(
            r"Free memory on device .{0,60}on startup is less than desired GPU memory utilization",
            r"Decrease GPU memory utilization or reduce GPU memory used by other processes",
        ),
    ),
    KnownFailure(
        code="F9",
        title="CUDA out of memory",
        why="The model needs more GPU memory than the card has (an L40S reports about 44.5 GiB to "
        "PyTorch), during weight loading, CUDA-graph capture or warm-up.",
        fix="Use a smaller or quantized model, lower --max-num-seqs / --max-num-batched-tokens, or add "
        "--enforce-eager to skip CUDA-graph memory. If it persists, the model is too large for 48 GB.",
        patterns=(
            r"CUDA out of memory",
            r"OutOfMemoryError",
            r"CUDA error: out of memory",
        ),
    ),
    KnownFailure(
        code="F10",
        title="vLLM's engine failed to start",
        why="This is vLLM's generic wrapper error; the real cause is in the ERROR lines above it.",
        fix="Read the log lines just before this error for the root cause (often GPU memory or model "
        "length), fix that, and start again.",
        patterns=(
            r"Engine core initialization failed",
            r"Engine process failed to start",
        ),
    ),
    KnownFailure(
        code="F11",
        title="The model is gated on Hugging Face and access was refused",
        why="401: no Hugging Face token reached the server (HF_TOKEN missing or not passed into the "
        "container). 403: the account behind the token has not been granted access to the model.",
        fix="Set HF_TOKEN (a token with read permission) so it is passed to the server, and accept the "
        "model's licence on its Hugging Face page with the same account.",
        patterns=(
            r"Cannot access gated repo",
            r"Access to model \S+ is restricted",
            r"is restricted and you are not in the authorized list",
            r"You are trying to access a gated repo",
            r"GatedRepoError",
        ),
    ),
    KnownFailure(
        code="F12",
        title="pip refused to install into the system Python (externally-managed-environment)",
        why="Ubuntu 24.04 marks its system Python as externally managed (PEP 668).",
        fix="Install into a virtual environment ('python3 -m venv /opt/<name>'; needs the python3-venv package).",
        patterns=(r"externally-managed-environment",),
    ),
    KnownFailure(
        code="F13",
        title="TF Serving cannot place the model on a GPU",
        why="The model is pinned to a GPU but TF Serving runs the CPU image or without --gpus.",
        fix="Use the tensorflow/serving:latest-gpu image and run it with --gpus all.",
        patterns=(
            r"Cannot assign a device for operation",
            r"was explicitly assigned to /device:GPU:\d+ but available devices",
        ),
    ),
    KnownFailure(
        code="F14",
        title="Triton could not load a model (UNAVAILABLE)",
        why="A bad config.pbtxt, a missing version directory, or a backend/CUDA mismatch; with "
        "--strict-readiness the server is then never ready (/v2/health/ready returns 400).",
        fix="Read the model's row in Triton's model table for the reason and fix the model repository. "
        "Use --exit-on-error=false --strict-readiness=false only if partial availability is acceptable.",
        patterns=(
            r"\|\s*(?-i:UNAVAILABLE):",
            r"failed to load '[^']+' version \d+",
            r"failed to load all models",
        ),
    ),
    KnownFailure(
        code="F15",
        title="The model server rejected the API key (401 Unauthorized)",
        why="The API key is missing or wrong; /health and /metrics do not need it, which can hide this.",
        fix="Send the configured API key (Authorization: Bearer ...) in probes and clients that call /v1/*.",
        patterns=(r"\"error\"\s*:\s*\"Unauthorized\"",),
    ),
    KnownFailure(
        code="F16",
        title="The model server is still loading",
        why="The engine accepts connections only once the model is loaded, which can take many minutes; "
        "until then connections are refused, reset or answered with an empty reply.",
        fix="Keep waiting until the deadline while watching that the container is still running and its "
        "log shows no other known failure.",
        patterns=(
            r"Connection refused",
            r"Connection reset by peer",
            r"Empty reply from server",
            r"Server disconnected without sending a response",
            r"\[Errno 111\]",
        ),
    ),
    KnownFailure(
        code="F17",
        title="The Python headers are missing: vLLM's kernel compiler cannot build (Python.h)",
        why="vLLM from pip compiles small C modules with Triton when the engine starts; on a bare Ubuntu "
        "24.04 the headers (python3-dev) are not installed, so the compile stops at '#include <Python.h>' "
        "(vLLM issue 27890).",
        fix="Install them on the server ('sudo apt-get install -y python3-dev build-essential'; prepare-host "
        "does this for engine.install.method: pip), then run `orchestrator redeploy CONFIG`.",
        patterns=(r"fatal error: Python\.h: No such file or directory", r"'Python\.h' file not found"),
    ),
    KnownFailure(
        code="F18",
        title="No C compiler on the server: vLLM's kernel compiler cannot build",
        why="Triton (used by vLLM at engine start) compiles its CUDA helper with the C compiler from $CC or "
        "cc/gcc/clang on PATH; a bare Ubuntu 24.04 has none (vLLM issue 15329).",
        fix="Install one on the server ('sudo apt-get install -y build-essential python3-dev'; prepare-host "
        "does this for engine.install.method: pip), then run `orchestrator redeploy CONFIG`.",
        patterns=(r"Failed to find C compiler\. Please specify via CC environment variable",),
    ),
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SPACES = re.compile(r"[ \t]+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", _ANSI.sub("", text).translate(_QUOTES))


@cache
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def by_code(code: str) -> KnownFailure:
    """The catalog entry with this code ("F1".."F18"); KeyError when unknown."""
    for failure in CATALOG:
        if failure.code == code:
            return failure
    raise KeyError(code)


def _last_match_end(failure: KnownFailure, text: str) -> int:
    """End offset of the last place any of the failure's patterns matches, or -1."""
    end = -1
    for pattern in _compiled(failure.patterns):
        for m in pattern.finditer(text):
            end = max(end, m.end())
    return end


def find_failures(text: str) -> list[KnownFailure]:
    """Every known failure in ``text``, most relevant first.

    Specific root causes come before the generic engine wrapper (F10), which comes before "still
    loading" (F16); among equally specific ones, the one seen last in the text comes first.
    """
    clean = _normalise(text)
    found: list[tuple[int, int, KnownFailure]] = []
    for failure in CATALOG:
        end = _last_match_end(failure, clean)
        if end >= 0:
            found.append((_GENERIC_RANK.get(failure.code, 0), -end, failure))
    found.sort(key=lambda item: (item[0], item[1]))
    return [failure for _, _, failure in found]


def match_failure(text: str) -> KnownFailure | None:
    """The most specific known failure in ``text`` (see find_failures), or None."""
    found = find_failures(text)
    return found[0] if found else None


def suggested_max_model_len(text: str) -> int | None:
    """For F6: the largest context vLLM says would fit, to retry with --max-model-len; None if absent."""
    clean = _normalise(text)
    values = re.findall(r"estimated maximum model length is (\d+)", clean, re.IGNORECASE)
    if not values:
        values = re.findall(r"can be stored in KV cache \((\d+)\)", clean, re.IGNORECASE)
    return int(values[-1]) if values else None


def explain(f: KnownFailure) -> str:
    """A short user-facing explanation: what happened, why, and what to do."""
    return f"What happened: {f.title} ({f.code})\nWhy: {f.why}\nWhat to do: {f.fix}"
