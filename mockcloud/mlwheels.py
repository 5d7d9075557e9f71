"""Stand-in torch / tensorflow wheels and the indexes that serve them (a local PyPI and PyTorch's cuXYZ indexes)."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

TORCH_VERSION = "2.9.1"
TORCH_INDEXES = {"cu126": "12.6", "cu128": "12.8", "cu130": "13.0"}
TF_VERSION = "2.20.0"
CUDNN_VERSION = "9.3.0.75"
_DATE = (2025, 10, 1, 0, 0, 0)

# How the stand-ins see the host's GPU: through the mock host's knobs and recorded state, like a real driver.
_HOST = '''
def _host():
    """(knobs, state) of the mock host this runs on, or None elsewhere."""
    try:
        from mockcloud import hoststate
        from mockcloud.hostbase import read_knobs
    except ImportError:
        return None
    home = hoststate.host_home()
    return (read_knobs(home), hoststate.load(home)) if home else None
'''

_TORCH_INIT = '''"""Stand-in for PyTorch on mockcloud hosts: CUDA follows the host's driver; ops take simulated time."""

import time

from torch import cuda, version

__version__ = version.__version__
_fused = []


class Tensor:
    def __init__(self, shape, device="cpu"):
        self.shape, self.device = tuple(shape), device

    def _op(self, other=None):
        if not _fused:
            time.sleep(0.0004)  # one kernel launch per op in eager mode
        return Tensor(self.shape, self.device)

    __add__ = __radd__ = __mul__ = __rmul__ = __matmul__ = _op


def randn(*shape, device="cpu"):
    if str(device).startswith("cuda"):
        cuda._lazy_init()
    return Tensor(shape, device)


def sin(x):
    return x._op()


def cos(x):
    return x._op()


def compile(fn, **options):
    state = {"compiled": False}

    def compiled(*args):
        if not state["compiled"]:
            time.sleep(0.3)  # tracing + code generation on the first call
            state["compiled"] = True
        _fused.append(1)
        try:
            time.sleep(0.0004)  # one fused kernel
            return fn(*args)
        finally:
            _fused.pop()

    return compiled
'''

_TORCH_CUDA = (
    '''"""torch.cuda of the stand-in: available when the host's driver is loaded and supports this wheel's CUDA."""

import warnings

from torch import version
'''
    + _HOST
    + """
NO_DRIVER = (
    "Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver "
    "from http://www.nvidia.com/Download/index.aspx"
)


def _problem():
    host = _host()
    if host is None:
        return NO_DRIVER
    from mockcloud import hoststate

    knobs, state = host
    if hoststate.driver_state(knobs, state) != "ok":
        return NO_DRIVER
    have = hoststate.cuda_tuple(hoststate.driver_cuda(knobs))
    if hoststate.cuda_tuple(version.cuda) > have:
        return (
            f"The NVIDIA driver on your system is too old (found version {have[0] * 1000 + have[1] * 10}). "
            "Please update your GPU driver by downloading and installing a new version from the URL: "
            "http://www.nvidia.com/Download/index.aspx Alternatively, go to: https://pytorch.org to install a "
            "PyTorch version that has been compiled with your version of the CUDA driver."
        )
    return None


def is_available():
    problem = _problem()
    if problem and "too old" in problem:
        where = "(Triggered internally at /pytorch/c10/cuda/CUDAFunctions.cpp:119.)"
        warnings.warn(f"CUDA initialization: {problem} {where}")
    return problem is None


def _lazy_init():
    problem = _problem()
    if problem:
        raise RuntimeError(problem)


def device_count():
    return int(_host()[0]["gpu_count"]) if is_available() else 0


def get_device_name(device=0):
    _lazy_init()
    return str(_host()[0]["gpu_name"])


def synchronize():
    _lazy_init()
"""
)

_TF_INIT = (
    '''"""Stand-in for TensorFlow on mockcloud hosts: GPUs are visible with the driver and the and-cuda libraries."""

import collections
import importlib.util
import sys
import time

__version__ = "'''
    + TF_VERSION
    + """"
PhysicalDevice = collections.namedtuple("PhysicalDevice", "name device_type")
"""
    + _HOST
    + """

def _gpus():
    host = _host()
    if host is None:
        return []
    from mockcloud import hoststate

    knobs, state = host
    if hoststate.driver_state(knobs, state) != "ok":
        return []
    if importlib.util.find_spec("nvidia.cudnn") is None:
        sys.stderr.write(
            "W0000 00:00:1700000000.000000    4242 gpu_device.cc:2342] Cannot dlopen some GPU libraries. Please make "
            "sure the missing libraries mentioned above are installed properly if you would like to use GPU. "
            "Follow the guide at https://www.tensorflow.org/install/gpu for how to download and setup the required "
            "libraries for your platform.\\nSkipping registering GPU devices...\\n"
        )
        return []
    return [PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(int(knobs["gpu_count"]))]


class _Config:
    @staticmethod
    def list_physical_devices(device_type=None):
        devices = [PhysicalDevice("/physical_device:CPU:0", "CPU"), *_gpus()]
        return [d for d in devices if device_type in (None, d.device_type)]


config = _Config()
_fused = []


class Tensor:
    def __init__(self, shape):
        self.shape = tuple(shape)

    def _op(self, other=None):
        if not _fused:
            time.sleep(0.0004)
        return Tensor(self.shape)

    __add__ = __radd__ = __mul__ = __rmul__ = _op

    def numpy(self):
        return self


class _Random:
    @staticmethod
    def normal(shape):
        return Tensor(shape)


random = _Random()


def sin(x):
    return x._op()


def cos(x):
    return x._op()


def function(fn, jit_compile=None, **options):
    state = {"traced": False}

    def traced(*args):
        if not state["traced"]:
            time.sleep(0.3 if jit_compile else 0.05)  # tracing (+ XLA compilation)
            state["traced"] = True
        if jit_compile:
            _fused.append(1)
            time.sleep(0.0004)  # one fused XLA kernel
        try:
            return fn(*args)
        finally:
            if jit_compile:
                _fused.pop()

    return traced
"""
)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(dest: Path, dist: str, version: str, files: dict[str, str], requires: str = "") -> Path:
    """A deterministic pure-Python wheel of ``files`` (archive path → text), with METADATA and RECORD."""
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: {version}\n"
    meta += "Summary: mockcloud stand-in (test hosts only)\n" + requires + "\n"
    wheel = "Wheel-Version: 1.0\nGenerator: mockcloud.mlwheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
    content = {name: text.encode() for name, text in files.items()}
    content[f"{info}/METADATA"] = meta.encode()
    content[f"{info}/WHEEL"] = wheel.encode()
    record = [_record_line(name, data) for name, data in content.items()] + [f"{info}/RECORD,,"]
    content[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{dist}-{version}-py3-none-any.whl"
    tmp = dest / f".{target.name}.{os.getpid()}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in content.items():
            entry = zipfile.ZipInfo(name, date_time=_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    tmp.chmod(0o644)
    tmp.replace(target)
    return target


def _index_page(folder: Path, links: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f'<a href="{href}">{href.rsplit("/", 1)[-1].replace("%2B", "+")}</a><br>\n' for href in links)
    (folder / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{body}</body></html>\n")


def build_ml_wheels(wheelhouse: Path) -> None:
    """tensorflow + nvidia-cudnn-cu12 beside vllm (the host's PyPI), torch under pytorch/whl/cuXYZ/ only."""
    tf_requires = f'Provides-Extra: and-cuda\nRequires-Dist: nvidia-cudnn-cu12=={CUDNN_VERSION} ; extra == "and-cuda"\n'
    write_wheel(wheelhouse, "tensorflow", TF_VERSION, {"tensorflow/__init__.py": _TF_INIT}, tf_requires)
    cudnn = {"nvidia/__init__.py": "", "nvidia/cudnn/__init__.py": '"""stand-in cuDNN libraries"""\n'}
    write_wheel(wheelhouse, "nvidia_cudnn_cu12", CUDNN_VERSION, cudnn)
    for tag, cuda in TORCH_INDEXES.items():
        version = f"{TORCH_VERSION}+{tag}"
        files = {
            "torch/__init__.py": _TORCH_INIT,
            "torch/cuda.py": _TORCH_CUDA,
            "torch/version.py": f'__version__ = "{version}"\ncuda = "{cuda}"\n',
        }
        folder = wheelhouse / "pytorch" / "whl" / tag
        wheel = write_wheel(folder, "torch", version, files)
        _index_page(folder / "torch", [f"../{wheel.name.replace('+', '%2B')}"])


def write_simple_index(wheelhouse: Path) -> None:
    """simple/<project>/index.html for every wheel in the flat wheelhouse: what PIP_INDEX_URL points at."""
    projects: dict[str, list[str]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name = wheel.name.split("-")[0].lower().replace("_", "-")
        projects.setdefault(name, []).append(f"../../{wheel.name}")
    for name, links in projects.items():
        _index_page(wheelhouse / "simple" / name, links)


def pytorch_index_url(wheelhouse: Path) -> str:
    """What host.pytorch.index_url must be on the mock hosts (the real one is https://download.pytorch.org/whl)."""
    return f"file://{wheelhouse}/pytorch/whl"
