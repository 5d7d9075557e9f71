"""Ray on a mock host: a venv at the path the orchestrator's Ray plan uses (`cluster.venv`), with real Ray in it.

pip-installing Ray (≈ 490 MB) on every mock host would take minutes, so the host's venv is made with the host's
python (`python3 -m venv --without-pip`) and sees this machine's installed Ray through a ``.pth`` file; its
``bin/ray`` and ``bin/serve`` are the console scripts pip writes. The plan's ``cluster.install: none`` then finds
`ray --version` answering as on a server where Ray was installed before.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

SCRIPTS = {"ray": ("ray.scripts.scripts", "main"), "serve": ("ray.serve.scripts", "cli")}


def ray_site_packages() -> Path:
    """Where this machine's Ray is installed (the dev venv's site-packages)."""
    import ray

    return Path(ray.__file__).resolve().parent.parent


def seed_ray_venv(home: Path, python: str, user: str | None, venv: str = "ray-venv") -> Path:
    """Make ``home/venv`` a venv of ``python`` that imports this machine's Ray; owned by ``user`` when given."""
    from mockcloud.hosts import MockHostError, usable_by_others

    site = ray_site_packages()
    if user is not None and os.geteuid() == 0 and not usable_by_others(site / "ray"):
        raise MockHostError(
            f"the mock hosts' user {user} cannot read this machine's Ray in {site} (a parent directory is private); "
            "put the checkout's venv where other users can traverse to it"
        )
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
