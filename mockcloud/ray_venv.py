"""Ray on a mock host: a venv at the path the orchestrator's Ray plan uses (`cluster.venv`), with real Ray in it.

pip-installing Ray (≈ 490 MB) on every mock host would take minutes, so the host's venv is made with the host's
python (`python3 -m venv --without-pip`) and sees this machine's installed Ray through a ``.pth`` file; its
``bin/ray`` and ``bin/serve`` are the console scripts pip writes. The plan's ``cluster.install: none`` then finds
`ray --version` answering as on a server where Ray was installed before.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from mockcloud.host_errors import MockHostError
from mockcloud.host_runtime import usable_by_others

SCRIPTS = {"ray": ("ray.scripts.scripts", "main"), "serve": ("ray.serve.scripts", "cli")}


def ray_site_packages() -> Path:
    """Where this machine's Ray is installed (the dev venv's site-packages)."""
    import ray

    return Path(ray.__file__).resolve().parent.parent


def readable_site(site: Path, dest: Path) -> Path:
    """``site`` (private) mirrored at ``dest`` where other users can read it: hard links when on one filesystem."""
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        linked = subprocess.run(["cp", "-al", str(site), str(tmp)], capture_output=True, timeout=600)
        if linked.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(site, tmp, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        for folder, _, files in os.walk(tmp):
            os.chmod(folder, 0o755)
            for name in files:
                item = os.path.join(folder, name)
                if not os.path.islink(item):
                    os.chmod(item, os.stat(item).st_mode | 0o444)
        tmp.rename(dest)
    if not usable_by_others(dest / "ray"):
        raise MockHostError(f"{dest} is not reachable by the mock hosts' user: a parent directory is private")
    return dest


def seed_ray_venv(
    home: Path, python: str, user: str | None, venv: str = "ray-venv", shared: Path | None = None
) -> Path:
    """Make ``home/venv`` a venv of ``python`` that imports this machine's Ray; owned by ``user`` when given.

    When the host's user cannot reach this machine's Ray (the checkout, and so its venv, sits in a private
    directory, as in a clone under /root), the installed packages are linked (hard links, else copied) once into
    ``shared/ray-site`` (default: beside ``home``), a world-readable folder the hosts import from instead.
    """
    site = ray_site_packages()
    if user is not None and os.geteuid() == 0 and not usable_by_others(site / "ray"):
        site = readable_site(site, (shared or home.parent) / "ray-site")
    path = home / venv
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True, timeout=120)
    purelib = subprocess.run(
        [str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    (Path(purelib) / "_mockcloud_ray.pth").write_text(str(site) + "\n")
    for name, (module, func) in SCRIPTS.items():
        script = path / "bin" / name
        script.write_text(
            f"#!{path}/bin/python\nimport sys\nfrom {module} import {func}\n"
            f"if __name__ == '__main__':\n    sys.exit({func}())\n"
        )
        script.chmod(0o755)
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for folder, dirs, files in os.walk(path):
            for item in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(item, entry.pw_uid, entry.pw_gid)
    return path
