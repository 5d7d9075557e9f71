"""Mock reboot, shutdown and uptime: the host going down (its SSH sessions dropped) and up again, its boot time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mockcloud import hoststate as hs
from mockcloud.host_node_exporter import NODE_PID, node_exporter_installed, start_node_exporter
from mockcloud.hostbase import poweroff_host, read_knobs, tool_argv


def _session_pids() -> list[int]:
    """This SSH session's own sshd processes (not the listener): killing them drops the connection."""
    found, pid = [], os.getpid()
    while pid > 1:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if comm.startswith("sshd"):
            # sshd rewrites its title ("sshd: /usr/sbin/sshd -D ... [listener] ..."): one string, not argv words.
            # The listener must survive (a real reboot brings sshd back); as root it is out of reach anyway.
            if b"[listener]" in b" ".join(cmdline) or b"-D" in cmdline:
                break
            found.append(pid)
        pid = parent
    return found


def reboot(args: list[str]) -> int:
    if not hs.privileged():
        sys.stderr.write("Call to Reboot failed: Interactive authentication required.\n")
        return 1
    home = hs.home_or_exit()
    hs.record(home, "reboot")
    sessions = [str(p) for p in _session_pids()]
    subprocess.Popen(
        tool_argv("hostsys", "__reboot", str(home), *sessions),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return 0


def shutdown(args: list[str]) -> int:
    if "-r" in args or "--reboot" in args:
        return reboot(args)
    if not any(a in args for a in ("-h", "-P", "--poweroff", "--halt")):
        sys.stderr.write("shutdown (mockcloud): only 'shutdown -r' and 'shutdown -h' are simulated\n")
        return 1
    if not hs.privileged():
        sys.stderr.write("Call to PowerOff failed: Interactive authentication required.\n")
        return 1
    home = hs.home_or_exit()
    hs.record(home, "poweroff")
    # The guest powers off: the fake cloud then reports the server `stopped` (see upctl_server.py).
    (home / "guest-poweroff").write_text(f"{time.time()}\n")
    subprocess.Popen(
        tool_argv("hostsys", "__poweroff", str(home)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return 0


def reboot_now(home: Path, sessions: list[int]) -> int:
    """The host going down and up again: every process dies, SSH sessions drop, the driver loads."""
    time.sleep(0.5)
    poweroff_host(home)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in sessions:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        time.sleep(0.2)
    knobs = read_knobs(home)
    with hs.updating(home) as st:
        st["boot_time"] = max(time.time(), hs.boot_time(home, st) + 60)
        st["reboots"] = int(st.get("reboots", 0)) + 1
        st["driver_loaded"] = hs.driver_installed(knobs, st)
        st["runtime_active"] = bool(st.get("runtime_configured"))
    if hs.docker_present(knobs, hs.load(home)):
        # docker.service starts at boot and brings back the containers whose restart policy asks for it
        env = dict(os.environ, MOCKHOST_HOME=str(home))
        subprocess.run(tool_argv("host_docker", "__boot"), env=env, capture_output=True, timeout=60, check=False)
    if node_exporter_installed(home):  # an enabled unit starts at boot
        with contextlib.suppress(OSError):
            (home / "run" / NODE_PID).unlink()
        start_node_exporter(home)
    return 0


def poweroff_now(home: Path) -> int:
    """The guest powering off (after `shutdown -h`): every process of the host dies."""
    time.sleep(0.5)
    poweroff_host(home)
    return 0


def uptime(args: list[str]) -> int:
    home = hs.home_or_exit()
    booted = hs.boot_time(home, hs.load(home))
    if "-s" in args or "--since" in args:
        print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(booted)))
        return 0
    minutes = int((time.time() - booted) // 60)
    if "-p" in args or "--pretty" in args:
        print(f"up {minutes} minutes")
        return 0
    print(f" {time.strftime('%H:%M:%S')} up {minutes} min,  1 user,  load average: 0.08, 0.03, 0.01")
    return 0
