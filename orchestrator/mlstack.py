"""PyTorch and TensorFlow venvs as data: the wheel index for the driver's CUDA, install commands, verify scripts."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from orchestrator.actions import Remote
from orchestrator.engines.vllm import home_path

# PyTorch's per-CUDA wheel indexes (engines.md §4.5) and the CUDA version each needs from the driver.
INDEXES: dict[str, tuple[int, int]] = {"cu126": (12, 6), "cu128": (12, 8), "cu130": (13, 0)}
ANY_INDEX = "<cu126|cu128|cu130>"

TORCH_PROBE = 'import json, torch; print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda}))'
TORCH_VERIFY = (
    "import json, torch; ok = torch.cuda.is_available(); "
    'print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda, "available": ok, '
    '"device": torch.cuda.get_device_name(0) if ok else None}))'
)
TORCH_COMPILE = """import json, time, torch
def f(x):
    return torch.sin(x) * torch.cos(x) + x
x = torch.randn(4096, 4096, device="cuda")
def bench(fn, n=20):
    fn(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1000 / n
print(json.dumps({"eager_ms": bench(f), "compiled_ms": bench(torch.compile(f))}))
"""
TF_PROBE = 'import json, tensorflow as tf; print(json.dumps({"version": tf.__version__}))'
TF_VERIFY = (
    'import json, tensorflow as tf; gpus = tf.config.list_physical_devices("GPU"); '
    'print(json.dumps({"version": tf.__version__, "gpus": [d.name for d in gpus]}))'
)
TF_COMPILE = """import json, time, tensorflow as tf
def f(x):
    return tf.sin(x) * tf.cos(x) + x
x = tf.random.normal((4096, 4096))
def bench(fn, n=20):
    fn(x).numpy()
    t = time.perf_counter()
    for _ in range(n):
        y = fn(x)
    y.numpy()
    return (time.perf_counter() - t) * 1000 / n
print(json.dumps({"eager_ms": bench(f), "compiled_ms": bench(tf.function(f, jit_compile=True))}))
"""


class IndexChoiceError(ValueError):
    """No PyTorch index fits the driver (the F5 situation, caught before a multi-GB download)."""


@dataclass(frozen=True)
class Timing:
    """The ML stack check's timings: eager and compiled, in milliseconds."""

    eager_ms: float
    compiled_ms: float

    def describe(self, what: str) -> str:
        speedup = self.eager_ms / self.compiled_ms if self.compiled_ms > 0 else 0.0
        return f"{what}: eager {self.eager_ms:.2f} ms, compiled {self.compiled_ms:.2f} ms ({speedup:.1f}x)"


def cuda_version(text: str) -> tuple[int, int] | None:
    """'13.0' → (13, 0); None for anything else."""
    parts = text.strip().split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def index_cuda(tag: str) -> str:
    """'cu128' → '12.8', the value torch.version.cuda reports for wheels from that index."""
    major, minor = INDEXES[tag]
    return f"{major}.{minor}"


def pick_index(driver_cuda: str, wanted: str) -> str:
    """The wheel index for a driver whose nvidia-smi says 'CUDA Version: driver_cuda'.

    ``auto`` takes the newest index the driver supports; an explicit index newer than the driver is refused,
    because its wheels would report F5 ('The NVIDIA driver on your system is too old') and see no GPU.
    """
    have = cuda_version(driver_cuda)
    if have is None:
        raise IndexChoiceError(f"cannot tell which CUDA the driver supports (nvidia-smi said {driver_cuda!r})")
    if wanted != "auto":
        if INDEXES[wanted] > have:
            raise IndexChoiceError(
                f"host.pytorch.cuda is {wanted} (CUDA {index_cuda(wanted)}), but the driver supports CUDA "
                f"{driver_cuda} at most: PyTorch would not see the GPU"
                + (" (cu130 wheels need a 580+ driver)" if wanted == "cu130" else "")
            )
        return wanted
    fits = [tag for tag, version in INDEXES.items() if version <= have]
    if not fits:
        raise IndexChoiceError(f"the driver supports CUDA {driver_cuda}, older than any PyTorch index (cu126+)")
    return max(fits, key=lambda tag: INDEXES[tag])


def venv_python(venv: str) -> str:
    return f"{home_path(venv)}/bin/python3"


def ensure_venv(venv: str, what: str) -> Remote:
    """Idempotent: an existing interpreter at the path is used as it is."""
    return Remote(
        f"test -x {venv_python(venv)} || python3 -m venv {home_path(venv)}",
        f"create the {what} venv (Ubuntu 24.04 refuses system pip)",
    )


def run_python(venv: str, script: str, purpose: str, timeout: float = 300.0) -> Remote:
    return Remote(f"{venv_python(venv)} -c {shlex.quote(script)}", purpose, timeout=timeout)


def torch_requirement(version: str | None) -> str:
    """torch==2.9.1 also matches the index's 2.9.1+cu128 (PEP 440: no local label in the pin)."""
    return f"torch=={version}" if version else "torch"


def torch_install(venv: str, version: str | None, index_url: str, tag: str) -> Remote:
    url = f"{index_url.rstrip('/')}/{tag}"
    req = shlex.quote(torch_requirement(version))
    return Remote(
        f"{venv_python(venv)} -m pip install {req} --index-url {shlex.quote(url)}",
        f"install PyTorch from the {tag} index",
        timeout=3600,
    )


def torch_uninstall(venv: str) -> Remote:
    return Remote(f"{venv_python(venv)} -m pip uninstall -y torch", "remove PyTorch built for another CUDA")


def tf_install(venv: str, version: str) -> Remote:
    req = shlex.quote(f"tensorflow[and-cuda]=={version}")
    return Remote(f"{venv_python(venv)} -m pip install {req}", "install TensorFlow with its CUDA libraries", 3600)


def last_json(stdout: str) -> dict[str, object] | None:
    """The last stdout line that is a JSON object (libraries may print other lines first)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def torch_matches(probe: dict[str, object] | None, version: str | None, tag: str) -> bool:
    """Is the installed torch the wanted one: built for the index's CUDA and, if pinned, that version?"""
    if probe is None or probe.get("cuda") != index_cuda(tag):
        return False
    installed = str(probe.get("version", "")).split("+")[0]
    return version is None or installed == version


def parse_timing(stdout: str) -> Timing | None:
    data = last_json(stdout)
    if data is None:
        return None
    eager, compiled = data.get("eager_ms"), data.get("compiled_ms")
    if not isinstance(eager, (int, float)) or not isinstance(compiled, (int, float)):
        return None
    return Timing(float(eager), float(compiled))
