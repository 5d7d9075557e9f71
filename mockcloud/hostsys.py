"""Mock host system tools (sudo, systemctl, nvidia-ctk, curl, gpg, tee, usermod) and the dispatch of every tool."""

from __future__ import annotations

import json
import os
import pwd
import re
import sys
from collections.abc import Callable
from pathlib import Path

from mockcloud import hoststate as hs
from mockcloud.host_node_exporter import (
    NODE_EXPORTER,
    node_exporter_installed,
    node_exporter_pid,
    start_node_exporter,
    stop_node_exporter,
)
from mockcloud.host_packages import apt_get, apt_mark, dpkg_query
from mockcloud.host_power import poweroff_now, reboot, reboot_now, shutdown, uptime
from mockcloud.hostbase import DEFAULT_KNOBS, read_knobs

CTK_VERSION = "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d"
KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
LIST_URL = "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list"
CANNED = {
    KEY_URL: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF6bCyEBEADCmockcloudstandinkey\n=mock\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n",
    LIST_URL: "deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
    "#deb https://nvidia.github.io/libnvidia-container/experimental/deb/$(ARCH) /\n",
}
SYSTEM_DIRS = ("/etc/", "/usr/", "/var/", "/opt/", "/boot/", "/lib/")


def _knobs() -> dict[str, object]:
    home = hs.host_home()
    return read_knobs(home) if home else dict(DEFAULT_KNOBS)


def _exec_real(name: str, args: list[str]) -> int:
    for folder in ("/usr/bin", "/bin"):
        if os.path.exists(f"{folder}/{name}"):
            os.execv(f"{folder}/{name}", [name, *args])
    sys.stderr.write(f"{name}: command not found\n")
    return 127


def sudo(args: list[str]) -> int:
    env, i = dict(os.environ), 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "--":
            i += 1
            break
        i += 2 if args[i] in ("-u", "-g", "-C", "-D", "-p", "-U") else 1
    while i < len(args) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", args[i]):
        key, _, value = args[i].partition("=")
        env[key] = value
        i += 1
    if i >= len(args):
        sys.stderr.write("usage: sudo [-n] [-E] [-u user] command [args]\n")
        return 1
    name = pwd.getpwuid(os.getuid()).pw_name
    env.update(SUDO_USER=name, SUDO_UID=str(os.getuid()), SUDO_GID=str(os.getgid()), SUDO_COMMAND=" ".join(args[i:]))
    try:
        os.execvpe(args[i], args[i:], env)
    except FileNotFoundError:
        sys.stderr.write(f"sudo: {args[i]}: command not found\n")
    return 1


def systemctl(args: list[str]) -> int:
    words = [a for a in args if not a.startswith("-")]
    verb, units = (words[0], words[1:]) if words else ("", [])
    if verb in ("reboot", "kexec"):
        return reboot([])
    knobs, home = _knobs(), hs.home_or_exit()
    state = hs.load(home)
    names = [u.removesuffix(".service") for u in units]
    if verb in ("is-active", "status"):
        up = all(u != "docker" or hs.docker_present(knobs, state) for u in names)
        up = up and (NODE_EXPORTER not in names or node_exporter_pid(home) is not None)
        print("active" if up else "inactive")
        return 0 if up else 3
    if not hs.privileged():
        sys.stderr.write(f"Failed to {verb} {' '.join(units)}: Interactive authentication required.\n")
        return 1
    for unit in units:
        if unit.removesuffix(".service") == "docker" and not hs.docker_present(knobs, state):
            sys.stderr.write(f"Failed to {verb} docker.service: Unit docker.service not found.\n")
            return 5
        if unit.removesuffix(".service") == NODE_EXPORTER and not node_exporter_installed(home):
            sys.stderr.write(f"Failed to {verb} {NODE_EXPORTER}.service: Unit {NODE_EXPORTER}.service not found.\n")
            return 5
    if NODE_EXPORTER in names:
        if verb in ("stop", "restart") or (verb == "disable" and "--now" in args):
            stop_node_exporter(home)
        if verb in ("start", "restart") or (verb == "enable" and "--now" in args):
            start_node_exporter(home)
    with hs.updating(home) as st:
        if verb in ("restart", "start", "enable") and "docker" in [u.removesuffix(".service") for u in units]:
            st["runtime_active"] = bool(st.get("runtime_configured"))
    hs.record(home, "systemctl " + " ".join(args))
    return 0


def nvidia_ctk(args: list[str]) -> int:
    home = hs.home_or_exit()
    if not hs.toolkit_present(_knobs(), hs.load(home)):
        sys.stderr.write("bash: line 1: nvidia-ctk: command not found\n")
        return 127
    if args[:1] in (["--version"], ["-v"]):
        print(CTK_VERSION)
        return 0
    if args[:2] == ["runtime", "configure"] and "--runtime=docker" in args:
        if not hs.privileged():
            sys.stderr.write(
                "ERRO[0000] unable to flush config: unable to open /etc/docker/daemon.json for writing: "
                "open /etc/docker/daemon.json: permission denied\n"
            )
            return 1
        daemon = {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
        with hs.updating(home) as st:
            st["runtime_configured"] = True
            st.setdefault("files", {})["/etc/docker/daemon.json"] = json.dumps(daemon, indent=4)
        hs.record(home, "nvidia-ctk " + " ".join(args))
        print(
            "INFO[0000] Loading config from /etc/docker/daemon.json\n"
            "INFO[0000] Wrote updated config to /etc/docker/daemon.json\n"
            "INFO[0000] It is recommended that docker daemon be restarted."
        )
        return 0
    sys.stderr.write(f"nvidia-ctk: unsupported arguments {args} (mockcloud)\n")
    return 1


def _system(path: str) -> bool:
    return path.startswith(SYSTEM_DIRS)


def curl(args: list[str]) -> int:
    url = next((a for i, a in enumerate(args) if a.startswith(("http://", "https://"))), "")
    if url not in CANNED:
        return _exec_real("curl", args)
    out = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output")), None)
    hs.record(hs.home_or_exit(), f"curl {url}")
    if out:
        Path(out).write_text(CANNED[url])
    else:
        sys.stdout.write(CANNED[url])
    return 0


def gpg(args: list[str]) -> int:
    out = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output")), "")
    if "--dearmor" not in args or not _system(out):
        return _exec_real("gpg", args)
    if not hs.privileged():
        sys.stderr.write(f"gpg: can't create '{out}': Permission denied\ngpg: dearmoring failed: Permission denied\n")
        return 2
    source = args[-1] if args[-1] != out and not args[-1].startswith("-") else ""
    text = Path(source).read_text() if source else sys.stdin.read()
    if "BEGIN PGP PUBLIC KEY BLOCK" not in text:
        sys.stderr.write("gpg: no valid OpenPGP data found.\n")
        return 2
    home = hs.home_or_exit()
    with hs.updating(home) as st:
        st.setdefault("files", {})[out] = "<dearmored OpenPGP key>"
    hs.record(home, f"gpg --dearmor -o {out}")
    return 0


def tee(args: list[str]) -> int:
    paths = [a for a in args if not a.startswith("-")]
    if not any(_system(p) for p in paths):
        return _exec_real("tee", args)
    data = sys.stdin.read()
    sys.stdout.write(data)
    if not hs.privileged():
        for path in paths:
            sys.stderr.write(f"tee: {path}: Permission denied\n")
        return 1
    home = hs.home_or_exit()
    with hs.updating(home) as st:
        files = st.setdefault("files", {})
        for path in paths:
            files[path] = (files.get(path, "") if "-a" in args else "") + data
            if path.startswith("/etc/apt/"):
                st["sources_rev"] = int(st.get("sources_rev", 0)) + 1
                if path == hs.NVIDIA_LIST:
                    st["nvidia_rev"] = st["sources_rev"]
            hs.record(home, f"tee {path}")
    return 0


def usermod(args: list[str]) -> int:
    if not hs.privileged():
        sys.stderr.write("usermod: Permission denied.\nusermod: cannot lock /etc/passwd; try again later.\n")
        return 1
    home = hs.home_or_exit()
    if len(args) >= 3 and args[0] in ("-aG", "-a") and args[-1]:
        groups = args[1] if args[0] == "-aG" else args[2]
        with hs.updating(home) as st:
            member = st.setdefault("groups", {}).setdefault(args[-1], [])
            member.extend(g for g in groups.split(",") if g not in member)
    hs.record(home, "usermod " + " ".join(args))
    return 0


TOOLS: dict[str, Callable[[list[str]], int]] = {
    "sudo": sudo,
    "apt-get": apt_get,
    "apt-mark": apt_mark,
    "systemctl": systemctl,
    "nvidia-ctk": nvidia_ctk,
    "dpkg-query": dpkg_query,
    "reboot": reboot,
    "shutdown": shutdown,
    "uptime": uptime,
    "curl": curl,
    "gpg": gpg,
    "tee": tee,
    "usermod": usermod,
}


def main(argv: list[str]) -> int:
    if argv[:1] == ["__reboot"]:
        return reboot_now(Path(argv[1]), [int(p) for p in argv[2:]])
    if argv[:1] == ["__poweroff"]:
        return poweroff_now(Path(argv[1]))
    if not argv or argv[0] not in TOOLS:
        sys.stderr.write(f"usage: hostsys.py {{{','.join(TOOLS)}}} [args]\n")
        return 2
    return TOOLS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
