"""Mock host system tools (sudo, apt-get, systemctl, nvidia-ctk, reboot, ...): they record, never install."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mockcloud import hoststate as hs
from mockcloud.hostbase import DEFAULT_KNOBS, poweroff_host, read_knobs, tool_argv

CTK_VERSION = "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d"
KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
LIST_URL = "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list"
CANNED = {
    KEY_URL: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF6bCyEBEADCmockcloudstandinkey\n=mock\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n",
    LIST_URL: "deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
    "#deb https://nvidia.github.io/libnvidia-container/experimental/deb/$(ARCH) /\n",
}
ARCHIVE = re.compile(
    r"nvidia-(headless|utils|driver|dkms|kernel-common)-\d{3}(-server)?(-open)?|docker\.io|python3(\.\d+)?-venv"
    r"|python3-dev|build-essential|curl|gnupg|ca-certificates|ubuntu-drivers-common|prometheus-node-exporter"
)
NODE_EXPORTER = "prometheus-node-exporter"  # package and systemd unit (mockcloud/engine_node.py serves :9100)
NODE_PID = "node-exporter.pid"
NVIDIA_REPO = re.compile(r"nvidia-container-toolkit(-base)?|libnvidia-container(1|-tools)")
SYSTEM_DIRS = ("/etc/", "/usr/", "/var/", "/opt/", "/boot/", "/lib/")
NVIDIA_REPO_LINE = "Get:2 https://nvidia.github.io/libnvidia-container/stable/deb/amd64  InRelease [1477 B]\n"
APT_LOCK = (
    "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
    "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n"
)


def _home() -> Path:
    home = hs.host_home()
    if home is None:
        sys.stderr.write("mockcloud host tools run on mock hosts only (MOCKHOST_HOME is not set)\n")
        raise SystemExit(1)
    return home


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


def apt_get(args: list[str]) -> int:
    words, i = [], 0
    while i < len(args):
        if args[i] in ("-o", "-c", "-t"):
            i += 2
            continue
        if not args[i].startswith("-"):
            words.append(args[i])
        i += 1
    if not words:
        sys.stderr.write("E: No command given\n")
        return 100
    if not hs.privileged():
        sys.stderr.write(APT_LOCK)
        return 100
    home, command, pkgs = _home(), words[0], words[1:]
    with hs.updating(home) as st:
        if command == "update":
            st["apt_updated_rev"] = st.get("sources_rev", 0)
            hs.record(home, "apt-get update")
            repo = NVIDIA_REPO_LINE if hs.NVIDIA_LIST in st.get("files", {}) else ""
            print(f"Hit:1 http://archive.ubuntu.com/ubuntu noble InRelease\n{repo}Reading package lists... Done")
            return 0
        if command != "install":
            sys.stderr.write(f"E: Invalid operation {command}\n")
            return 100
        repo_ready = hs.NVIDIA_LIST in st.get("files", {}) and st.get("apt_updated_rev", 0) >= st.get("nvidia_rev", 1)
        for pkg in pkgs:
            if not (ARCHIVE.fullmatch(pkg) or (repo_ready and NVIDIA_REPO.fullmatch(pkg))):
                sys.stderr.write(f"Reading package lists...\nE: Unable to locate package {pkg}\n")
                return 100
        have = hs.packages(st)
        st["packages"] = have + [p for p in pkgs if p not in have]
        hs.record(home, "apt-get install " + " ".join(pkgs))
    print("Reading package lists... Done\n" + "".join(f"Setting up {p} ...\n" for p in pkgs), end="")
    if NODE_EXPORTER in pkgs:  # the package's postinst enables and starts its service
        start_node_exporter(home)
    return 0


def node_exporter_pid(home: Path) -> int | None:
    """The running stand-in's pid (None when it is not running)."""
    try:
        pid = int((home / "run" / NODE_PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_node_exporter(home: Path) -> None:
    """systemd starting prometheus-node-exporter.service: the stand-in, once, with the host's environment."""
    if node_exporter_pid(home) is not None:
        return
    (home / "run").mkdir(parents=True, exist_ok=True)
    with open(home / "run" / "node-exporter.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mockcloud.engine_node"],
            env=dict(os.environ, MOCKHOST_HOME=str(home)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (home / "run" / NODE_PID).write_text(str(proc.pid))


def stop_node_exporter(home: Path) -> None:
    pid = node_exporter_pid(home)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if node_exporter_pid(home) is None:
                break
            time.sleep(0.05)
    with contextlib.suppress(OSError):
        (home / "run" / NODE_PID).unlink()


def _node_exporter_installed(home: Path) -> bool:
    return NODE_EXPORTER in hs.packages(hs.load(home))


def apt_mark(args: list[str]) -> int:
    if not hs.privileged():
        sys.stderr.write("E: Could not create temporary file for /var/lib/apt/extended_states - mkstemp (13)\n")
        return 100
    home = _home()
    if args[:1] == ["hold"]:
        with hs.updating(home) as st:
            st["held"] = sorted(set(st.get("held", [])) | set(args[1:]))
        hs.record(home, "apt-mark " + " ".join(args))
        print("".join(f"{p} set on hold.\n" for p in args[1:]), end="")
    return 0


BUILD_TOOLS = ("build-essential", "python3-dev")
VERSIONS = {"build-essential": "12.10ubuntu1", "python3-dev": "3.12.3-0ubuntu2", "docker.io": "28.2.2-0ubuntu1~24.04.1",
            "nvidia-container-toolkit": "1.17.8-1", "python3-venv": "3.12.3-0ubuntu2"}


def _installed_packages(knobs: dict[str, object], state: dict[str, object]) -> list[str]:
    """What dpkg knows as installed: the image's packages (by knob) and what apt-get installed since."""
    base = [] if knobs.get("no_build_tools") else list(BUILD_TOOLS)
    base += [] if knobs.get("no_docker") else ["docker.io"]
    base += [] if knobs.get("no_toolkit") or knobs.get("no_ctk_cli") else ["nvidia-container-toolkit"]
    return base + [p for p in hs.packages(state) if p not in base]


def dpkg_query(args: list[str]) -> int:
    """`dpkg-query -W [-f=FORMAT] PKG...`: one formatted line per installed package (default: name TAB version)."""
    fmt, names, i = "${binary:Package}\t${Version}\n", [], 0
    show = False
    while i < len(args):
        arg = args[i]
        if arg in ("-W", "--show"):
            show = True
        elif arg in ("-f", "--showformat"):
            i += 1
            fmt = args[i] if i < len(args) else fmt
        elif arg.startswith(("-f=", "--showformat=")):
            fmt = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            sys.stderr.write(f"dpkg-query: error: unknown option {arg}\n")
            return 2
        else:
            names.append(arg)
        i += 1
    if not show:
        sys.stderr.write("dpkg-query: error: need an action option (mockcloud supports only -W)\n")
        return 2
    home = _home()
    installed = _installed_packages(_knobs(), hs.load(home))
    fmt = fmt.replace("\\n", "\n").replace("\\t", "\t")
    rc = 0
    for name in names:
        if name not in installed:
            sys.stderr.write(f"dpkg-query: no packages found matching {name}\n")
            rc = 1
            continue
        fields = {"Package": name, "binary:Package": name, "Version": VERSIONS.get(name, "1.0-1"),
                  "db:Status-Status": "installed", "Status": "install ok installed", "db:Status-Abbrev": "ii "}
        sys.stdout.write(re.sub(r"\$\{([\w:-]+)\}", lambda m, f=fields: f.get(m.group(1), ""), fmt))
    return rc


def systemctl(args: list[str]) -> int:
    words = [a for a in args if not a.startswith("-")]
    verb, units = (words[0], words[1:]) if words else ("", [])
    if verb in ("reboot", "kexec"):
        return reboot([])
    knobs, home = _knobs(), _home()
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
        if unit.removesuffix(".service") == NODE_EXPORTER and not _node_exporter_installed(home):
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
    home = _home()
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
    home = _home()
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
    home = _home()
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


def _reboot_now(home: Path, sessions: list[int]) -> int:
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
    if _node_exporter_installed(home):  # an enabled unit starts at boot
        with contextlib.suppress(OSError):
            (home / "run" / NODE_PID).unlink()
        start_node_exporter(home)
    return 0


def uptime(args: list[str]) -> int:
    home = _home()
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


def _system(path: str) -> bool:
    return path.startswith(SYSTEM_DIRS)


def curl(args: list[str]) -> int:
    url = next((a for i, a in enumerate(args) if a.startswith(("http://", "https://"))), "")
    if url not in CANNED:
        return _exec_real("curl", args)
    out = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output")), None)
    hs.record(_home(), f"curl {url}")
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
    home = _home()
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
    home = _home()
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
    home = _home()
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
        return _reboot_now(Path(argv[1]), [int(p) for p in argv[2:]])
    if argv[:1] == ["__poweroff"]:
        time.sleep(0.5)
        poweroff_host(Path(argv[1]))
        return 0
    if not argv or argv[0] not in TOOLS:
        sys.stderr.write(f"usage: hostsys.py {{{','.join(TOOLS)}}} [args]\n")
        return 2
    return TOOLS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
