"""Mock GPU hosts: what their commands run with (HostRuntime: python, import path, shims) and their login user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mockcloud.host_errors import MockHostError, run_setup

LOGIN_USER_WHEN_ROOT = "gpuops"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
HOSTBIN = PACKAGE_DIR / "hostbin"
SHIMS = tuple(sorted(p.name for p in HOSTBIN.iterdir() if not p.name.startswith(".")))
HOST_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def usable_by_others(path: Path) -> bool:
    """True when users other than the owner can traverse to ``path`` and read it."""
    path = path.resolve()
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        if not mode & 0o001 or (part == path and not mode & 0o004):
            return False
    return True


def ensure_login_user() -> str:
    """The dedicated, unlocked ``gpuops`` account (root's shell profile is slow, never log in as root)."""
    try:
        pwd.getpwnam(LOGIN_USER_WHEN_ROOT)
    except KeyError:
        made = subprocess.run(
            ["useradd", "-m", "-s", "/bin/bash", LOGIN_USER_WHEN_ROOT],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent run may have created it first, so look again rather than trusting the exit code
            pwd.getpwnam(LOGIN_USER_WHEN_ROOT)
        except KeyError:
            raise MockHostError(f"useradd {LOGIN_USER_WHEN_ROOT} failed: {made.stderr.strip()}") from None
    shadow = Path("/etc/shadow").read_text().splitlines()
    entry = next((line.split(":") for line in shadow if line.startswith(LOGIN_USER_WHEN_ROOT + ":")), None)
    if entry is None or entry[1].startswith("!"):
        run_setup(["usermod", "-p", "*", LOGIN_USER_WHEN_ROOT], "unlocking the gpuops account")
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    return LOGIN_USER_WHEN_ROOT


@dataclass(frozen=True)
class HostRuntime:
    """A mock host's python, import path and shims (mockcloud/hostbin), all usable by the host's login user."""

    python: str
    path: str  # PYTHONPATH: where `mockcloud` (and, for a system python, prometheus_client) is imported from
    hostbin: Path

    def env(self, home: Path) -> dict[str, str]:
        """The environment every command on the host starts with: the shims come before any real tool."""
        return {
            "PATH": f"{self.hostbin}:{HOST_SYSTEM_PATH}",
            "HOME": str(home),
            "MOCKCLOUD_PYTHON": self.python,
            "MOCKHOST_HOME": str(home),
            "PYTHONPATH": self.path,
        }


def host_runtime(root: Path, *, other_user: bool, package_dir: Path = PACKAGE_DIR) -> HostRuntime:
    """What the host's commands run with. When the login user is another account (we are root) and cannot read
    this python (root's pyenv), prometheus_client or the checkout (a clone in a 0700 dir), the system python runs
    copies of mockcloud and prometheus_client put in ``root/hostlib``, which the login user can read."""
    import prometheus_client

    here = HostRuntime(sys.executable, str(package_dir.parent), package_dir / "hostbin")
    if not other_user:
        return _compiled(here, package_dir)
    prom_dir = Path(prometheus_client.__file__).parent
    needed = (Path(sys.executable), Path(os.__file__).parent, prom_dir, package_dir, package_dir / "hostbin")
    if all(usable_by_others(p) for p in needed):
        return _compiled(here, package_dir)
    system = next((p for p in ("/usr/local/bin/python3", "/usr/bin/python3") if os.path.exists(p)), None)
    if system is None or not usable_by_others(Path(system)):
        raise MockHostError(f"no python usable by the mock host user: {sys.executable} is private, no /usr/bin/python3")
    hostlib = root / "hostlib"
    skip = shutil.ignore_patterns("__pycache__")
    for src, name in ((prom_dir, "prometheus_client"), (package_dir, "mockcloud")):
        if not (hostlib / name).exists():
            shutil.copytree(src, hostlib / name, ignore=skip)
    _compiled(HostRuntime(system, str(hostlib), hostlib / "mockcloud" / "hostbin"), hostlib)  # + prometheus_client
    for folder, _, files in os.walk(hostlib):
        os.chmod(folder, 0o755)
        for file in files:
            path = os.path.join(folder, file)
            os.chmod(path, os.stat(path).st_mode | 0o444)
    runtime = HostRuntime(system, str(hostlib), hostlib / "mockcloud" / "hostbin")
    if not usable_by_others(runtime.hostbin):
        raise MockHostError(f"{hostlib} is not reachable by the mock host user: a parent directory is private")
    return runtime


def _compiled(runtime: HostRuntime, package_dir: Path) -> HostRuntime:
    """``runtime`` once the bytecode of ``package_dir`` is cached for its python: every host tool and engine is a
    new process importing mockcloud, and the host's user may not write the cache itself (a root-owned checkout, the
    hostlib copy), which made each of them compile the modules again (half the mock cloud's CPU in a fleet)."""
    subprocess.run(
        [runtime.python, "-m", "compileall", "-q", "-j", "0", str(package_dir)],
        capture_output=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    return runtime


def check_shims(runtime: HostRuntime, user: str | None) -> None:
    """Every shimmed tool must resolve to the shim for the host's user: a mock host never reaches a real docker,
    nvidia-smi, systemctl or apt-get (this machine may have them in /usr/local/bin or /usr/bin)."""
    script = 'for n in "$@"; do p=$(command -v "$n") || p="(not found)"; printf "%s %s\\n" "$n" "$p"; done'
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *SHIMS],
        capture_output=True,
        text=True,
        env=runtime.env(Path("/")),
        user=user,
        cwd="/",
        timeout=30,
        check=False,
    )
    found = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    wrong = [f"{n} -> {found.get(n, '(no answer)')}" for n in SHIMS if found.get(n) != str(runtime.hostbin / n)]
    if proc.returncode != 0 or wrong:
        raise MockHostError(
            f"mock host tools do not resolve to the shims in {runtime.hostbin} for user {user or 'this user'}: "
            + ", ".join(wrong)
            + (f" ({proc.stderr.strip()})" if proc.stderr.strip() else "")
        )
