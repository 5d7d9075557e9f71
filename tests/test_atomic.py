"""The one atomic writer (orchestrator.atomic): mode before content, kept mode/owner, symlinks, in-place fallback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.actions import WriteLocal
from orchestrator.atomic import write_atomic
from orchestrator.monitoring import ScrapeTarget
from orchestrator.prometheus_yml import merge_scrape_job
from orchestrator.transports.live import LiveExecutor

ROOT = os.geteuid() == 0


def test_new_file_gets_the_mode_asked_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "a" / "f.json", "x", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "f.json").stat().st_mode) == 0o644
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.json"]  # no temp file left


def test_prometheus_yml_keeps_its_mode_and_comments_through_a_merge(tmp_path: Path) -> None:
    prom = tmp_path / "prometheus.yml"
    prom.write_text("# team config: do not lose me\nscrape_configs:\n  - job_name: node\n")
    prom.chmod(0o640)
    text = merge_scrape_job(prom.read_text(), ScrapeTarget(job="orchestrator-x", targets=("203.0.113.1:8000",)))
    LiveExecutor({}).execute(WriteLocal(prom, text, keep_existing=True))
    assert stat.S_IMODE(prom.stat().st_mode) == 0o640
    assert prom.read_text().startswith("# team config: do not lose me\nscrape_configs:\n  - job_name: node\n  # BEGIN")


def test_without_keep_existing_the_mode_is_reset(tmp_path: Path) -> None:
    f = tmp_path / "state.json"
    f.write_text("old")
    f.chmod(0o666)
    write_atomic(f, "new", 0o600)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and f.read_text() == "new"


def test_a_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "prometheus.yml"
    real.parent.mkdir()
    real.write_text("a: 1\n")
    real.chmod(0o600)
    link = tmp_path / "prometheus.yml"
    link.symlink_to(real)
    write_atomic(link, "a: 2\n", 0o644, keep_existing=True)
    assert link.is_symlink() and real.read_text() == "a: 2\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


@pytest.mark.skipif(not ROOT, reason="only root can make a file owned by another user")
def test_owner_and_group_are_kept_as_root(tmp_path: Path) -> None:
    f = tmp_path / "prometheus.yml"
    f.write_text("a: 1\n")
    os.chown(f, 65534, 65534)
    write_atomic(f, "a: 2\n", 0o644, keep_existing=True)
    st = f.stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534) and f.read_text() == "a: 2\n"


@pytest.mark.skipif(ROOT, reason="root may write into any directory, so the fallback is never needed")
def test_unwritable_directory_rewrites_the_file_in_place(tmp_path: Path) -> None:
    d = tmp_path / "etc-prometheus"
    d.mkdir()
    f = d / "prometheus.yml"
    f.write_text("a: 1\n" * 10)
    inode = f.stat().st_ino
    d.chmod(0o555)
    try:
        write_atomic(f, "b: 2\n", 0o644, keep_existing=True)
    finally:
        d.chmod(0o755)
    assert f.read_text() == "b: 2\n" and f.stat().st_ino == inode


def test_an_unreadable_local_file_is_an_orchestrator_error(tmp_path: Path) -> None:
    from orchestrator.actions import ReadLocal
    from orchestrator.errors import OrchestratorError

    (tmp_path / "prometheus.yml").mkdir()  # unreadable as a file, for root too
    with pytest.raises(OrchestratorError) as err:
        LiveExecutor({}).execute(ReadLocal(tmp_path / "prometheus.yml"))
    assert err.value.message == f"cannot read {tmp_path / 'prometheus.yml'}: Is a directory"
