"""Mock NVIDIA DCGM exporter: ``python -m mockcloud.engine_dcgm`` as the fake docker runs the dcgm-exporter image.

Serves ``/metrics`` on container port 9400 (published with ``-p``) with the DCGM field names and labels the real
exporter uses (``DCGM_FI_DEV_*``, labelled gpu, UUID, pci_bus_id, device, modelName, Hostname), one series per mock
GPU (the host's knobs: gpu_count, gpu_name, gpu_mem_mib). Also usable on loopback for tests:
``MOCKENGINE_PORTS='{"9400": ["127.0.0.1", "<port>"]}'``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from typing import Any

from mockcloud.engine_common import JsonHandler, RawMetrics, Servers, emit, knobs, stop_event

PORT = 9400
FIELDS = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", lambda mem: 0.0),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", lambda mem: 0.0),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", lambda mem: float(mem - 1200)),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", lambda mem: 1200.0),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", lambda mem: 41.0),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", lambda mem: 78.42),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", lambda mem: 2520.0),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", lambda mem: 9001.0),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", lambda mem: 0.0),
)


def gpu_metrics() -> RawMetrics:
    k = knobs()
    metrics = RawMetrics()
    for name, kind, text, _value in FIELDS:
        metrics.declare(name, kind, text)
    for index in range(int(k["gpu_count"])):
        seed = hashlib.sha256(f"{os.environ.get('MOCKHOST_IP', '')}/{index}".encode()).hexdigest()
        labels = {
            "gpu": str(index),
            "UUID": f"GPU-{seed[:8]}-{seed[8:12]}-{seed[12:16]}-{seed[16:20]}-{seed[20:32]}",
            "pci_bus_id": f"00000000:{index + 1:02X}:00.0",
            "device": f"nvidia{index}",
            "modelName": str(k["gpu_name"]),
            "Hostname": socket.gethostname(),
        }
        for name, _kind, _text, value in FIELDS:
            metrics.set(name, labels, value(int(k["gpu_mem_mib"])))
    return metrics


class DcgmHandler(JsonHandler):
    server: Any  # ThreadingHTTPServer with .metrics

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.split("?", 1)[0] == "/metrics":
            self.send(200, self.server.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self.send(404, b"404 page not found\n", "text/plain; charset=utf-8")


def main() -> int:
    stop = stop_event()
    servers = Servers()
    if not servers.start(PORT, DcgmHandler, metrics=gpu_metrics()):
        emit("level=error msg=\"port 9400 is not published\"", err=True)
        return 1
    emit('level=info msg="Starting webserver" address=:9400')
    try:
        stop.wait()
    finally:
        servers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
