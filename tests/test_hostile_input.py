"""Hostile config values reach a real sshd mock host quoted: no injected command runs, values arrive literally."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from mockcloud.cloud import MockCloud
from tests.conftest import run_cli
from tests.test_e2e import API_KEY, cloud, env, prom, write_config  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (make setup)")


def test_shell_metacharacters_are_inert(cloud: MockCloud, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    marks = Path(tempfile.mkdtemp(prefix="orch-pwn-", dir="/tmp"))
    marks.chmod(0o777)  # the mock host's login user must be able to create files here if injection worked
    try:
        m = str(marks)
        model = f"org/model; touch {m}/a $(touch {m}/b) `touch {m}/c` 'q\"x"
        served = f"srv$(touch {m}/d);'\"x"
        cfg = write_config(
            cloud,
            tmp_path,
            None,
            name="hostile",
            model=model,
            served_name=served,
            extra_args=["--enforce-eager", f"$(touch {m}/e)"],
            install={"method": "pip", "venv": "hostile-venv"},
        )
        data = yaml.safe_load(cfg.read_text())
        data["provider"]["labels"] = {"team": f"a;b$(touch {m}/g)`id`"}
        cfg.write_text(yaml.safe_dump(data))
        proc = run_cli("deploy", str(cfg), env=env)
        assert proc.returncode == 0, proc.stderr
        assert sorted(os.listdir(marks)) == [], "an injected command ran"
        status = json.loads(run_cli("status", "hostile", "--json", env=env).stdout)[0]
        req = urllib.request.Request(
            f"{status['engine']['endpoint']}/models", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            listed = json.loads(resp.read())["data"][0]
        assert listed["id"] == served and listed["root"] == model  # arrived literally, not interpreted
        assert run_cli("teardown", "hostile", "--yes", env=env).returncode == 0
        assert sorted(os.listdir(marks)) == []
    finally:
        shutil.rmtree(marks, ignore_errors=True)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("model", "a\nrm -rf ~", "control characters"),
        ("served_name", "x\r\ny", "control characters"),
        ("install", {"venv": "v $(touch /tmp/x)"}, "plain path"),
    ],
)
def test_unsafe_values_are_refused(
    cloud: MockCloud,
    env: dict[str, str],
    tmp_path: Path,  # noqa: F811
    field: str,
    value: object,
    words: str,
) -> None:
    cfg = write_config(cloud, tmp_path, None, name="ctrl", **{field: value})
    proc = run_cli("deploy", str(cfg), env=env)
    assert proc.returncode == 2 and f"engine.{field}" in proc.stderr and words in proc.stderr
