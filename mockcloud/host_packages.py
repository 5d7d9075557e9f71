"""Mock apt-get, apt-mark and dpkg-query: installs recorded, never made; what dpkg reports installed (versions)."""

from __future__ import annotations

import re
import sys

from mockcloud import hoststate as hs
from mockcloud.host_node_exporter import NODE_EXPORTER, start_node_exporter
from mockcloud.hostbase import read_knobs

ARCHIVE = re.compile(
    r"nvidia-(headless|utils|driver|dkms|kernel-common)-\d{3}(-server)?(-open)?|docker\.io|python3(\.\d+)?-venv"
    r"|python3-dev|build-essential|curl|gnupg|ca-certificates|ubuntu-drivers-common|prometheus-node-exporter"
)
NVIDIA_REPO = re.compile(r"nvidia-container-toolkit(-base)?|libnvidia-container(1|-tools)")
NVIDIA_REPO_LINE = "Get:2 https://nvidia.github.io/libnvidia-container/stable/deb/amd64  InRelease [1477 B]\n"
APT_LOCK = (
    "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
    "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n"
)
BUILD_TOOLS = ("build-essential", "python3-dev")
VERSIONS = {"build-essential": "12.10ubuntu1", "python3-dev": "3.12.3-0ubuntu2", "docker.io": "28.2.2-0ubuntu1~24.04.1",
            "nvidia-container-toolkit": "1.17.8-1", "python3-venv": "3.12.3-0ubuntu2"}


def apt_mark(args: list[str]) -> int:
    if not hs.privileged():
        sys.stderr.write("E: Could not create temporary file for /var/lib/apt/extended_states - mkstemp (13)\n")
        return 100
    home = hs.home_or_exit()
    if args[:1] == ["hold"]:
        with hs.updating(home) as st:
            st["held"] = sorted(set(st.get("held", [])) | set(args[1:]))
        hs.record(home, "apt-mark " + " ".join(args))
        print("".join(f"{p} set on hold.\n" for p in args[1:]), end="")
    return 0


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
    home, command, pkgs = hs.home_or_exit(), words[0], words[1:]
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
    home = hs.home_or_exit()
    installed = _installed_packages(read_knobs(home), hs.load(home))
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
