"""Install like a user: the wheel built from the checkout, installed in a fresh venv outside it, works from anywhere.

The wheel carries the orchestrator package and its playbooks, and nothing else (no mockcloud/ with its fake sudo,
apt-get and docker, no tests/). Installed with pip --no-index into a venv in a temporary dir, it validates and
dry-runs every config in configs/ from another working directory. The venv gets its dependencies through a .pth
file listing this interpreter's site-packages: a plain path line, so the editable-install hook that lives there
does not run, and `orchestrator` is imported from the venv, never from the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".demo", ".*_cache", ".gl"
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    names: list[str]
    venv: Path
    site: Path
    tmp: Path

    def run(self, *args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ORCHESTRATOR_", "VIRTUAL_ENV"))}
        env.update(ORCHESTRATOR_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
        return subprocess.run(
            [str(self.venv / "bin" / "orchestrator"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )


def _check(argv: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{what} failed ({' '.join(argv)}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the source: setuptools writes build/ into the tree it builds, and a stale build/lib
    # (from an older layout) would leak into the wheel.
    src = tmp / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=NOT_SOURCE)
    dist = tmp / "dist"
    _check(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(dist), str(src)],
        "pip wheel (the dev venv needs setuptools>=70.1: make setup)",
    )  # fmt: skip
    [wheel] = dist.glob("orchestrator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    venv = tmp / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], "python -m venv")
    vpy = venv / "bin" / "python"
    _check(
        [sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        "pip install WHEEL",
    )
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_check([str(vpy), "-c", purelib], "the venv's site-packages").stdout.strip())
    deps = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (site / "dev-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    return Installed(wheel, names, venv, site, tmp)


def test_wheel_carries_the_package_and_playbooks_only(installed: Installed) -> None:
    names = installed.names
    for book in ("deploy", "redeploy", "teardown"):
        assert f"orchestrator/playbooks/{book}.yaml" in names
    for dashboard in ("vllm", "triton", "tfserving", "gpu"):
        assert f"orchestrator/dashboards/{dashboard}.json" in names
    sources = {str(p.relative_to(REPO)) for p in (REPO / "orchestrator").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources <= set(names), sorted(sources - set(names))  # every module and subpackage
    tops = {n.split("/")[0] for n in names}
    assert tops == {"orchestrator", installed.wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert not [n for n in names if n.startswith(("mockcloud/", "tests/", "playbooks/"))]
    with zipfile.ZipFile(installed.wheel) as archive:  # real files, not a symlink entry
        deploy = archive.read("orchestrator/playbooks/deploy.yaml").decode()
    assert deploy == (REPO / "orchestrator" / "playbooks" / "deploy.yaml").read_text()
    installed_deploy = installed.site / "orchestrator" / "playbooks" / "deploy.yaml"
    assert installed_deploy.is_file() and not installed_deploy.is_symlink()


def test_installed_package_is_imported_from_the_venv(installed: Installed) -> None:
    probe = "import orchestrator, orchestrator.playbook as p; print(orchestrator.__file__); print(p.playbook_dir())"
    proc = _check([str(installed.venv / "bin" / "python"), "-c", probe], "import", cwd=installed.tmp)
    module, books = proc.stdout.splitlines()
    assert Path(module).resolve().is_relative_to(installed.site.resolve()), module
    assert not Path(module).resolve().is_relative_to(REPO)
    assert Path(books) == installed.site / "orchestrator" / "playbooks"


def test_version(installed: Installed) -> None:
    version = installed.wheel.name.split("-")[1]
    proc = installed.run("--version", cwd=installed.tmp, home=installed.tmp / "home")
    assert (proc.returncode, proc.stdout) == (0, f"orchestrator {version}\n"), proc.stderr


def _referenced(config: Path) -> list[Path]:
    """Local files or folders a config names with a relative path (model repositories, SavedModels...)."""
    found: list[Path] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and "/" in value and not value.startswith(("/", "~", "^")):
            target = (config.parent / value).resolve()
            if target.is_relative_to(REPO) and target.exists():
                found.append(target)

    walk(yaml.safe_load(config.read_text()))
    return found


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_installed_cli_validates_and_dry_runs_every_config(installed: Installed, config: Path) -> None:
    work = installed.tmp / f"work-{config.stem}"
    (work / "configs").mkdir(parents=True)
    shutil.copy2(config, work / "configs" / config.name)
    for ref in _referenced(config):
        dest = work / ref.relative_to(REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if ref.is_dir():
            shutil.copytree(ref, dest)
        else:
            shutil.copy2(ref, dest)
    copied = work / "configs" / config.name
    elsewhere = installed.tmp / f"cwd-{config.stem}"
    elsewhere.mkdir()
    home = installed.tmp / f"home-{config.stem}"
    name = yaml.safe_load(config.read_text())["name"]

    valid = installed.run("validate", str(copied), cwd=elsewhere, home=home)
    assert valid.returncode == 0, valid.stderr
    assert f"OK — deployment {name}," in valid.stdout
    assert re.search(r"playbooks deploy \(\d+ steps\), redeploy \(\d+ steps\), teardown \(\d+ steps\) OK", valid.stdout)

    dry = installed.run("deploy", str(copied), "--dry-run", cwd=elsewhere, home=home)
    assert dry.returncode == 0, dry.stderr
    assert f"local: upctl server create --hostname {name} " in dry.stdout, dry.stdout
    assert f"--label orchestrator_deployment={name}" in dry.stdout
    if "cluster" in yaml.safe_load(config.read_text()):  # a Ray cluster: its network first, one plan per node
        assert f"local: upctl network create --name {name}-ray " in dry.stdout, dry.stdout
        assert f"local: upctl server create --hostname {name}-2 " in dry.stdout, dry.stdout
    done = r"Dry run complete: \d+ actions in \d+ steps( \(\d+ replicas\))?; nothing was changed\."
    assert re.search(done, dry.stdout), dry.stdout
    assert not home.exists(), "validate and a dry run write nothing"


def test_installed_init_writes_starter_configs_that_validate(installed: Installed) -> None:
    work = installed.tmp / "work-init"
    work.mkdir()
    home = installed.tmp / "home-init"
    examples = {"triton": ("model_repository", "examples/triton/model_repository"),
                "tfserving": ("saved_model", "examples/tfserving/half_plus_two")}  # fmt: skip
    for engine in ("vllm", "triton", "tfserving"):
        assert f"orchestrator/templates/{engine}.yaml" in installed.names
        out = work / engine / "orchestrator.yaml"
        out.parent.mkdir()
        made = installed.run("init", "--engine", engine, "--output", str(out), cwd=installed.tmp, home=home)
        assert made.returncode == 0, made.stderr
        assert out.read_text() == (REPO / "orchestrator" / "templates" / f"{engine}.yaml").read_text()
        if engine in examples:
            where, example = examples[engine]
            shutil.copytree(REPO / example, out.parent / where)
        valid = installed.run("validate", str(out), cwd=installed.tmp, home=home)
        assert valid.returncode == 0, valid.stderr
        assert f"OK — deployment my-{engine}, {engine} serving" in valid.stdout
    schema = installed.run("schema", cwd=installed.tmp, home=home)
    assert schema.returncode == 0, schema.stderr
    assert '"title": "orchestrator deployment config"' in schema.stdout
    assert not home.exists(), "init, validate and schema write no state"
