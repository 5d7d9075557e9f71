"""Build the stand-in ``vllm`` wheel (pure zipfile, no network) that mock hosts install with a plain pip."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from pathlib import Path

VLLM_VERSION = "0.11.0"
WHEEL_NAME = f"vllm-{VLLM_VERSION}-py3-none-any.whl"
_DIST_INFO = f"vllm-{VLLM_VERSION}.dist-info"
_FIXED_DATE = (2025, 10, 1, 0, 0, 0)

_INIT = f'''"""Stand-in for vLLM on mockcloud hosts: the `vllm` command runs mockcloud's mock engine."""

__version__ = "{VLLM_VERSION}"
'''

_ENTRY = '''"""Console entry point of the stand-in wheel: exec the mock engine with the host's python."""

import os
import sys


def main() -> None:
    python = os.environ.get("MOCKCLOUD_PYTHON")
    if not python:
        sys.stderr.write("vllm (mockcloud stand-in): MOCKCLOUD_PYTHON is not set; runs on mock hosts only\\n")
        raise SystemExit(1)
    os.execv(python, [python, "-m", "mockcloud.engine", *sys.argv[1:]])
'''

_METADATA = f"""Metadata-Version: 2.1
Name: vllm
Version: {VLLM_VERSION}
Summary: Stand-in for vLLM used by mockcloud test hosts (runs a mock OpenAI-compatible server)
License: Apache-2.0
Requires-Python: >=3.9

"""

_WHEEL = """Wheel-Version: 1.0
Generator: mockcloud.wheelhouse
Root-Is-Purelib: true
Tag: py3-none-any

"""

_ENTRY_POINTS = """[console_scripts]
vllm = vllm._mockcloud_entry:main
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_files() -> dict[str, bytes]:
    """Every file of the wheel, RECORD last, keyed by its archive path."""
    files = {
        "vllm/__init__.py": _INIT.encode(),
        "vllm/_mockcloud_entry.py": _ENTRY.encode(),
        f"{_DIST_INFO}/METADATA": _METADATA.encode(),
        f"{_DIST_INFO}/WHEEL": _WHEEL.encode(),
        f"{_DIST_INFO}/entry_points.txt": _ENTRY_POINTS.encode(),
        f"{_DIST_INFO}/top_level.txt": b"vllm\n",
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{_DIST_INFO}/RECORD,,"]
    files[f"{_DIST_INFO}/RECORD"] = ("\n".join(record) + "\n").encode()
    return files


def build_vllm_wheel(dest_dir: Path) -> Path:
    """Write ``vllm-0.11.0-py3-none-any.whl`` into ``dest_dir`` (byte-identical on every build)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / WHEEL_NAME
    tmp = dest_dir / f".{WHEEL_NAME}.{os.getpid()}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in wheel_files().items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    tmp.chmod(0o644)
    tmp.replace(target)
    return target


def ensure_wheelhouse(dest_dir: Path) -> Path:
    """The wheelhouse directory (world-readable), building the wheel once if it is not there yet."""
    if not (dest_dir / WHEEL_NAME).exists():
        build_vllm_wheel(dest_dir)
    from mockcloud.mlwheels import build_ml_wheels, write_simple_index

    if not (dest_dir / "simple").exists():
        build_ml_wheels(dest_dir)  # stand-in torch (per-CUDA indexes) and tensorflow
        write_simple_index(dest_dir)
    for folder, _, _ in os.walk(dest_dir):
        os.chmod(folder, 0o755)
    return dest_dir


if __name__ == "__main__":
    print(build_vllm_wheel(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
