"""Mock Prometheus node exporter: ``python -m mockcloud.engine_node``, started by the mock apt-get / systemctl
when ``prometheus-node-exporter`` is installed (Debian's postinst starts the service).

Serves ``/metrics`` on port 9100 with a subset of the families real node_exporter 1.7.0 (Ubuntu 24.04's package)
exports, under the same names, HELP/TYPE lines and label names as the recorded outputs in
tests/fixtures/recorded/node-exporter/ (tests check that): CPU seconds per mode, load, memory, the root
filesystem, network and disk byte counters. Values come from the machine the mock host runs on (/proc, statvfs
of /), so counters move. Listens on MOCKHOST_IP:9100, or on ``MOCKNODE_LISTEN=host:port`` (loopback tests).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from mockcloud.engine_common import JsonHandler, RawMetrics, emit, stop_event

PORT = 9100
VERSION = "1.7.0"
CPU_MODES = ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")  # /proc/stat column order
FAMILIES = (
    ("node_boot_time_seconds", "gauge", "Node boot time, in unixtime."),
    ("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode."),
    ("node_disk_read_bytes_total", "counter", "The total number of bytes read successfully."),
    ("node_disk_written_bytes_total", "counter", "The total number of bytes written successfully."),
    (
        "node_exporter_build_info",
        "gauge",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which "
        "node_exporter was built, and the goos and goarch for the build.",
    ),
    ("node_filesystem_avail_bytes", "gauge", "Filesystem space available to non-root users in bytes."),
    ("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes."),
    ("node_load1", "gauge", "1m load average."),
    ("node_load15", "gauge", "15m load average."),
    ("node_load5", "gauge", "5m load average."),
    ("node_memory_Buffers_bytes", "gauge", "Memory information field Buffers_bytes."),
    ("node_memory_Cached_bytes", "gauge", "Memory information field Cached_bytes."),
    ("node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes."),
    ("node_memory_MemFree_bytes", "gauge", "Memory information field MemFree_bytes."),
    ("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes."),
    ("node_network_receive_bytes_total", "counter", "Network device statistic receive_bytes."),
    ("node_network_transmit_bytes_total", "counter", "Network device statistic transmit_bytes."),
)
MEMINFO = ("Buffers", "Cached", "MemAvailable", "MemFree", "MemTotal")
USER_HZ = 100


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _boot_time() -> float:
    for line in _read("/proc/stat").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return time.time()


def collect() -> RawMetrics:
    """One scrape's worth of metrics, read fresh."""
    m = RawMetrics()
    for name, kind, text in FAMILIES:
        m.declare(name, kind, text)
    m.set("node_boot_time_seconds", {}, _boot_time())
    for line in _read("/proc/stat").splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu") and fields[0] != "cpu":
            user, nice, system, idle, iowait, irq, softirq, steal = (float(v) / USER_HZ for v in fields[1:9])
            values = dict(zip(("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"),
                              (user, nice, system, idle, iowait, irq, softirq, steal), strict=True))  # fmt: skip
            for mode in CPU_MODES:
                m.set("node_cpu_seconds_total", {"cpu": fields[0][3:], "mode": mode}, values[mode])
    for line in _read("/proc/diskstats").splitlines():
        f = line.split()
        if len(f) > 9 and not f[2].startswith(("loop", "ram")):
            m.set("node_disk_read_bytes_total", {"device": f[2]}, float(f[5]) * 512)
            m.set("node_disk_written_bytes_total", {"device": f[2]}, float(f[9]) * 512)
    build = {"branch": "debian/sid", "goarch": "amd64", "goos": "linux", "goversion": "go1.22.2",
             "revision": VERSION, "tags": "netgo osusergo static_build", "version": VERSION}  # fmt: skip
    m.set("node_exporter_build_info", build, 1.0)
    st = os.statvfs("/")
    fs = {"device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/"}
    m.set("node_filesystem_avail_bytes", fs, float(st.f_bavail * st.f_frsize))
    m.set("node_filesystem_size_bytes", fs, float(st.f_blocks * st.f_frsize))
    for name, value in zip(("node_load1", "node_load5", "node_load15"), os.getloadavg(), strict=True):
        m.set(name, {}, value)
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        if key in MEMINFO and rest.split():
            m.set(f"node_memory_{key}_bytes", {}, float(rest.split()[0]) * 1024)
    for line in _read("/proc/net/dev").splitlines()[2:]:
        device, _, rest = line.partition(":")
        cols = rest.split()
        if len(cols) >= 9:
            m.set("node_network_receive_bytes_total", {"device": device.strip()}, float(cols[0]))
            m.set("node_network_transmit_bytes_total", {"device": device.strip()}, float(cols[8]))
    return m


class NodeHandler(JsonHandler):
    server: Any

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self.send(200, collect().render(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/":
            self.send(200, b"<html><head><title>Node Exporter</title></head></html>\n", "text/html; charset=UTF-8")
        else:
            self.send(404, b"404 page not found\n", "text/plain; charset=utf-8")


def listen_address() -> tuple[str, int]:
    spec = os.environ.get("MOCKNODE_LISTEN")
    if spec:
        host, _, port = spec.rpartition(":")
        return host, int(port)
    return os.environ.get("MOCKHOST_IP") or "127.0.0.1", PORT


def main() -> int:
    import threading
    from http.server import ThreadingHTTPServer

    stop = stop_event()
    address = listen_address()
    try:
        server = ThreadingHTTPServer(address, NodeHandler)
    except OSError as exc:
        emit(f'level=ERROR source=node_exporter.go msg="listen tcp {address[0]}:{address[1]}: {exc.strerror}"', True)
        return 1
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    emit(f'level=INFO source=node_exporter.go msg="Starting node_exporter" version="(version={VERSION})"')
    emit(f'level=INFO source=tls_config.go msg="Listening on" address=[::]:{address[1]}')
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
