"""Tests for orchestrator.monitoring: golden YAML/JSON, merge/remove semantics, real promtool checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import MonitoringError
from orchestrator.monitoring import (
    ScrapeTarget,
    check_config_argv,
    file_sd_document,
    job_name,
    parse_promtool_output,
    promtool_error,
    scrape_job_dict,
)
from orchestrator.prometheus_yml import begin_marker, merge_scrape_job, remove_scrape_job

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt install prometheus)")

VLLM = ScrapeTarget(
    job="orchestrator-demo",
    targets=("203.0.113.5:8000",),
    labels=(("gpu", "l40s"), ("engine", "vllm")),
)
TRITON = ScrapeTarget(job="orchestrator-tr", targets=("203.0.113.6:8002",), labels=(("engine", "triton"),))
TFS = ScrapeTarget(
    job="orchestrator-tf",
    targets=("10.0.0.7:8501",),
    metrics_path="/monitoring/prometheus/metrics",
    labels=(("engine", "tfserving"),),
)

FRESH_GOLDEN = """\
global:
  scrape_interval: 15s
scrape_configs:
  # BEGIN orchestrator-demo (managed by orchestrator: replaced by deploy, removed by teardown)
  - job_name: orchestrator-demo
    metrics_path: /metrics
    scheme: http
    static_configs:
      - targets:
          - 203.0.113.5:8000
        labels:
          engine: vllm
          gpu: l40s
  # END orchestrator-demo
"""

EXISTING = """\
# hand-written config
global:
  scrape_interval: 30s
  scrape_timeout: 10s
  external_labels:
    site: hel2
rule_files: [alerts.yml]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['localhost:9090']}]
  - job_name: orchestrator-demo
    static_configs: [{targets: ['10.9.9.9:8000']}]
  - job_name: node
    scrape_interval: 1m
    static_configs: [{targets: ['localhost:9100']}]
alerting:
  alertmanagers: []
"""

REPLACED_GOLDEN = """\
# hand-written config
global:
  scrape_interval: 30s
  scrape_timeout: 10s
  external_labels:
    site: hel2
rule_files: [alerts.yml]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['localhost:9090']}]
  # BEGIN orchestrator-demo (managed by orchestrator: replaced by deploy, removed by teardown)
  - job_name: orchestrator-demo
    metrics_path: /metrics
    scheme: http
    static_configs:
      - targets:
          - 203.0.113.5:8000
        labels:
          engine: vllm
          gpu: l40s
  # END orchestrator-demo
  - job_name: node
    scrape_interval: 1m
    static_configs: [{targets: ['localhost:9100']}]
alerting:
  alertmanagers: []
"""


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


# --- job_name ---------------------------------------------------------------------------------------


def test_job_name_is_prefixed_and_stable() -> None:
    assert job_name("demo") == "orchestrator-demo"
    assert job_name("demo") == job_name("demo")
    assert job_name("llama-8b_prod.1") == "orchestrator-llama-8b_prod.1"


def test_job_name_replaces_unsafe_characters() -> None:
    assert job_name("my demo/one") == "orchestrator-my-demo-one"
    assert job_name("  x  ") == "orchestrator-x"


def test_job_name_rejects_empty() -> None:
    with pytest.raises(MonitoringError) as err:
        job_name(" // ")
    assert err.value.hint


# --- merge ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [None, "", "   \n"])
def test_merge_into_nothing_starts_minimal_config(existing: str | None) -> None:
    assert merge_scrape_job(existing, VLLM) == FRESH_GOLDEN


def test_merge_into_comment_only_file_keeps_the_comment() -> None:
    assert merge_scrape_job("# only a comment\n", VLLM) == "# only a comment\n" + FRESH_GOLDEN


def test_merge_replaces_same_job_in_place_and_keeps_everything_else() -> None:
    assert merge_scrape_job(EXISTING, VLLM) == REPLACED_GOLDEN


def test_merge_appends_new_job_after_existing_ones() -> None:
    out = yaml.safe_load(merge_scrape_job(EXISTING, TFS))
    names = [j["job_name"] for j in out["scrape_configs"]]
    assert names == ["prometheus", "orchestrator-demo", "node", "orchestrator-tf"]
    tf = out["scrape_configs"][-1]
    assert tf["metrics_path"] == "/monitoring/prometheus/metrics"
    assert tf["static_configs"] == [{"targets": ["10.0.0.7:8501"], "labels": {"engine": "tfserving"}}]
    # the untouched job keeps its old target
    assert out["scrape_configs"][1]["static_configs"][0]["targets"] == ["10.9.9.9:8000"]
    assert out["global"] == {
        "scrape_interval": "30s",
        "scrape_timeout": "10s",
        "external_labels": {"site": "hel2"},
    }
    assert out["alerting"] == {"alertmanagers": []}
    assert out["rule_files"] == ["alerts.yml"]


def test_merge_is_idempotent() -> None:
    once = merge_scrape_job(EXISTING, VLLM)
    assert merge_scrape_job(once, VLLM) == once
    fresh = merge_scrape_job(None, TRITON)
    assert merge_scrape_job(fresh, TRITON) == fresh


def test_merge_replaces_changed_target() -> None:
    once = merge_scrape_job(None, VLLM)
    moved = ScrapeTarget(job=VLLM.job, targets=("10.0.0.99:8000",))
    out = yaml.safe_load(merge_scrape_job(once, moved))
    assert out["scrape_configs"] == [
        {
            "job_name": "orchestrator-demo",
            "metrics_path": "/metrics",
            "scheme": "http",
            "static_configs": [{"targets": ["10.0.0.99:8000"]}],
        }
    ]


def test_merge_collapses_duplicate_jobs_of_the_same_name() -> None:
    dup = (
        "scrape_configs:\n"
        "  - job_name: orchestrator-demo\n    static_configs: [{targets: ['a:1']}]\n"
        "  - job_name: other\n    static_configs: [{targets: ['b:1']}]\n"
        "  - job_name: orchestrator-demo\n    static_configs: [{targets: ['c:1']}]\n"
    )
    out = yaml.safe_load(merge_scrape_job(dup, VLLM))
    assert [j["job_name"] for j in out["scrape_configs"]] == ["orchestrator-demo", "other"]


def test_merge_adds_scrape_configs_when_missing_or_null() -> None:
    for existing in ("global:\n  scrape_interval: 1m\n", "global:\n  scrape_interval: 1m\nscrape_configs:\n"):
        out = yaml.safe_load(merge_scrape_job(existing, VLLM))
        assert out["global"] == {"scrape_interval": "1m"}
        assert [j["job_name"] for j in out["scrape_configs"]] == ["orchestrator-demo"]


def test_merge_carries_path_scheme_and_interval() -> None:
    t = ScrapeTarget(
        job="j",
        targets=("h:8501",),
        metrics_path="/monitoring/prometheus/metrics",
        scheme="https",
        scrape_interval="5s",
    )
    assert scrape_job_dict(t) == {
        "job_name": "j",
        "scrape_interval": "5s",
        "metrics_path": "/monitoring/prometheus/metrics",
        "scheme": "https",
        "static_configs": [{"targets": ["h:8501"]}],
    }


def test_merge_keeps_the_users_anchors_and_emits_none_itself() -> None:
    existing = (
        "x: &lbl {a: b}\nscrape_configs:\n  - job_name: p\n    static_configs: [{targets: ['h:1'], labels: *lbl}]\n"
    )
    out = merge_scrape_job(existing, VLLM)
    assert out.startswith(existing)  # the user's text, anchors included, byte for byte
    ours = out[len(existing) :]
    assert "&" not in ours and "*" not in ours
    assert yaml.safe_load(out)["scrape_configs"][0]["static_configs"][0]["labels"] == {"a": "b"}


# --- text-preserving edits -------------------------------------------------------------------------

COMMENTED = """\
# Prometheus on the lab box -- edited by hand, keep these notes!
global:
  scrape_interval: 30s   # slower than default on purpose
  evaluation_interval: "1m"
scrape_configs:
  # node exporter
  - job_name: 'node'
    static_configs:
      - targets: ["localhost:9100"]  # the box itself
  - job_name: prometheus
    static_configs: [{targets: ['localhost:9090']}]
  # keep this comment after the jobs
alerting:
  alertmanagers: []   # none yet
"""


def test_merge_keeps_comments_and_quoting_byte_identical() -> None:
    out = merge_scrape_job(COMMENTED, VLLM)
    lines = out.splitlines(keepends=True)
    begin = lines.index(f"  {begin_marker(VLLM.job)}\n")
    end = lines.index("  # END orchestrator-demo\n")
    # everything outside our block is the original file, in order, byte for byte
    assert "".join(lines[:begin] + lines[end + 1 :]) == COMMENTED
    # our block goes right after the last job, before the trailing comment
    assert lines[begin - 1] == "    static_configs: [{targets: ['localhost:9090']}]\n"
    assert lines[end + 1] == "  # keep this comment after the jobs\n"
    assert yaml.safe_load("".join(lines[begin + 1 : end])) == [scrape_job_dict(VLLM)]


def test_merge_twice_replaces_the_block_not_duplicates_it() -> None:
    once = merge_scrape_job(COMMENTED, VLLM)
    moved = ScrapeTarget(job=VLLM.job, targets=("198.51.100.7:8000",))
    twice = merge_scrape_job(once, moved)
    assert twice.count("# BEGIN orchestrator-demo ") == 1 and twice.count("job_name: orchestrator-demo") == 1
    assert "198.51.100.7:8000" in twice and "203.0.113.5:8000" not in twice
    assert twice == once.replace("          - 203.0.113.5:8000\n        labels:\n          engine: vllm\n"
                                 "          gpu: l40s\n", "          - 198.51.100.7:8000\n")


def test_remove_leaves_the_rest_byte_identical() -> None:
    merged = merge_scrape_job(merge_scrape_job(COMMENTED, VLLM), TFS)
    text, removed = remove_scrape_job(merged, VLLM.job)
    assert removed
    again, removed = remove_scrape_job(text, TFS.job)
    assert removed
    assert again == COMMENTED


def test_legacy_unmarked_job_is_replaced_in_place_keeping_comments() -> None:
    legacy = COMMENTED.replace(
        "  # keep this comment", "  - job_name: orchestrator-demo  # written by an older version\n"
        "    static_configs:\n      - targets: ['10.9.9.9:8000']\n  # keep this comment"
    )
    out = merge_scrape_job(legacy, VLLM)
    assert out == merge_scrape_job(COMMENTED, VLLM)
    assert remove_scrape_job(legacy, VLLM.job) == (COMMENTED, True)


def test_job_that_only_shares_a_prefix_is_not_touched() -> None:
    longer = ScrapeTarget(job="orchestrator-demo-2", targets=("203.0.113.9:8000",))
    both = merge_scrape_job(merge_scrape_job(COMMENTED, longer), VLLM)
    text, removed = remove_scrape_job(both, VLLM.job)
    assert removed and text == merge_scrape_job(COMMENTED, longer)


def test_flow_style_scrape_configs_falls_back_to_a_correct_rewrite() -> None:
    flow = "# note\nscrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}]}]\n"
    out = yaml.safe_load(merge_scrape_job(flow, VLLM))
    assert [j["job_name"] for j in out["scrape_configs"]] == ["a", "orchestrator-demo"]
    text, removed = remove_scrape_job(merge_scrape_job(flow, VLLM), VLLM.job)
    assert removed and yaml.safe_load(text) == yaml.safe_load(flow)


@pytest.mark.parametrize(
    ("existing", "fragment"),
    [
        ("global: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "not a mapping"),
        ("plain string\n", "not a mapping"),
        ("scrape_configs: {job_name: x}\n", "not a list"),
        ("scrape_configs: nope\n", "not a list"),
    ],
)
def test_merge_rejects_invalid_existing_config(existing: str, fragment: str) -> None:
    with pytest.raises(MonitoringError) as err:
        merge_scrape_job(existing, VLLM)
    assert fragment in err.value.message
    assert "\n" not in err.value.message
    assert err.value.hint
    assert err.value.exit_code == 9


def test_invalid_yaml_error_names_the_line() -> None:
    with pytest.raises(MonitoringError) as err:
        merge_scrape_job("global:\n  scrape_interval: 15s\nscrape_configs: [\n  - job_name: a\n", VLLM)
    assert err.value.message.startswith("existing Prometheus config is not valid YAML (line ")
    assert err.value.details


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        (ScrapeTarget(job="j", targets=("http://203.0.113.5:8000",)), "not a valid 'host:port'"),
        (ScrapeTarget(job="j", targets=("203.0.113.5:8000/metrics",)), "not a valid 'host:port'"),
        (ScrapeTarget(job="j", targets=("203.0.113.5",)), "not a valid 'host:port'"),
        (ScrapeTarget(job="j", targets=("203.0.113.5:99999",)), "not a valid 'host:port'"),
        (ScrapeTarget(job="j", targets=("::1:8000",)), "not a valid 'host:port'"),
        (ScrapeTarget(job="j", targets=()), "no targets"),
        (ScrapeTarget(job=" ", targets=("h:1",)), "job name is empty"),
        (ScrapeTarget(job="j", targets=("h:1",), metrics_path="metrics"), "must start with '/'"),
        (ScrapeTarget(job="j", targets=("h:1",), scheme="ftp"), "'http' or 'https'"),
        (
            ScrapeTarget(job="j", targets=("h:1",), labels=(("bad-name", "x"),)),
            "not a valid Prometheus label",
        ),
        (ScrapeTarget(job="j", targets=("h:1",), scrape_interval="15"), "not a duration"),
        (ScrapeTarget(job="j", targets=("h:1",), scrape_interval="fast"), "not a duration"),
    ],
)
def test_invalid_targets_are_rejected_before_promtool(target: ScrapeTarget, fragment: str) -> None:
    with pytest.raises(MonitoringError) as err:
        merge_scrape_job(None, target)
    assert fragment in err.value.message


def test_ipv6_target_in_brackets_is_accepted() -> None:
    out = yaml.safe_load(merge_scrape_job(None, ScrapeTarget(job="j", targets=("[::1]:8000",))))
    assert out["scrape_configs"][0]["static_configs"][0]["targets"] == ["[::1]:8000"]


# --- remove -----------------------------------------------------------------------------------------


def test_remove_drops_only_the_named_job() -> None:
    text, removed = remove_scrape_job(EXISTING, "orchestrator-demo")
    assert removed is True
    out = yaml.safe_load(text)
    assert [j["job_name"] for j in out["scrape_configs"]] == ["prometheus", "node"]
    assert out["global"]["external_labels"] == {"site": "hel2"}


def test_remove_after_merge_restores_the_other_jobs() -> None:
    merged = merge_scrape_job(REPLACED_GOLDEN, TFS)
    text, removed = remove_scrape_job(merged, TFS.job)
    assert removed
    assert text == REPLACED_GOLDEN


def test_remove_of_unknown_job_returns_input_unchanged() -> None:
    assert remove_scrape_job(EXISTING, "nope") == (EXISTING, False)
    assert remove_scrape_job("", "nope") == ("", False)


def test_remove_last_job_leaves_empty_list() -> None:
    text, removed = remove_scrape_job(FRESH_GOLDEN, "orchestrator-demo")
    assert removed
    assert text == "global:\n  scrape_interval: 15s\nscrape_configs:\n"  # null: Prometheus reads no jobs


def test_remove_rejects_invalid_yaml() -> None:
    with pytest.raises(MonitoringError):
        remove_scrape_job("scrape_configs: [\n", "x")


# --- file_sd ----------------------------------------------------------------------------------------

FILE_SD_GOLDEN = """\
[
  {
    "labels": {
      "engine": "vllm",
      "gpu": "l40s",
      "job": "orchestrator-demo"
    },
    "targets": [
      "203.0.113.5:8000"
    ]
  },
  {
    "labels": {
      "engine": "triton",
      "job": "orchestrator-tr"
    },
    "targets": [
      "203.0.113.6:8002"
    ]
  },
  {
    "labels": {
      "__metrics_path__": "/monitoring/prometheus/metrics",
      "engine": "tfserving",
      "job": "orchestrator-tf"
    },
    "targets": [
      "10.0.0.7:8501"
    ]
  }
]
"""


def test_file_sd_document_golden() -> None:
    assert file_sd_document([VLLM, TRITON, TFS]) == FILE_SD_GOLDEN


def test_file_sd_document_scheme_and_empty() -> None:
    doc = json.loads(file_sd_document([ScrapeTarget(job="j", targets=("h:443",), scheme="https")]))
    assert doc == [{"targets": ["h:443"], "labels": {"job": "j", "__scheme__": "https"}}]
    assert file_sd_document([]) == "[]\n"


def test_file_sd_document_validates_targets() -> None:
    with pytest.raises(MonitoringError):
        file_sd_document([ScrapeTarget(job="j", targets=("http://h:1",))])


# --- promtool output parsing (captured promtool 2.42 output) ------------------------------------------


def test_parse_promtool_success() -> None:
    out = "Checking p.yml\n SUCCESS: p.yml is valid prometheus config file syntax\n\n"
    assert parse_promtool_output(0, out, "") == (True, [])


def test_parse_promtool_warning_keeps_ok() -> None:
    out = (
        "Checking sd.yml\n"
        '  WARNING: file "t/*.json" for file_sd in scrape job "a" does not exist\n'
        " SUCCESS: sd.yml is valid prometheus config file syntax\n"
    )
    ok, msgs = parse_promtool_output(0, out, "")
    assert ok
    assert msgs == ['WARNING: file "t/*.json" for file_sd in scrape job "a" does not exist']


def test_parse_promtool_multiline_failed_reason_is_joined() -> None:
    err = (
        "  FAILED: parsing YAML file bad.yml: yaml: unmarshal errors:\n"
        "  line 2: field scrape_intervall not found in type config.plain\n"
    )
    ok, msgs = parse_promtool_output(1, "Checking bad.yml\n\n", err)
    assert not ok
    assert msgs == [
        "FAILED: parsing YAML file bad.yml: yaml: unmarshal errors: "
        "line 2: field scrape_intervall not found in type config.plain"
    ]


def test_parse_promtool_failure_without_failed_line() -> None:
    ok, msgs = parse_promtool_output(2, "", "promtool: error: unknown flag --bogus\n")
    assert not ok
    assert msgs == ["FAILED: promtool: error: unknown flag --bogus"]
    assert parse_promtool_output(1, "", "") == (False, ["FAILED: promtool exited 1"])


def test_promtool_error_carries_reason_and_details() -> None:
    err = promtool_error("/etc/prometheus/prometheus.yml", ["WARNING: w", "FAILED: bad thing"])
    assert err.message == "promtool rejected /etc/prometheus/prometheus.yml: bad thing"
    assert err.details == "WARNING: w\nFAILED: bad thing"
    assert err.hint and "promtool check config" in err.hint
    assert check_config_argv("/x/p.yml") == ["promtool", "check", "config", "/x/p.yml"]


# --- real promtool ----------------------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_fresh_and_merged_configs(tmp_path: Path) -> None:
    cfg = tmp_path / "prometheus.yml"
    text = merge_scrape_job(None, VLLM)
    for t in (TRITON, TFS, ScrapeTarget(job="fast", targets=("h:9", "h2:9"), scrape_interval="5s")):
        text = merge_scrape_job(text, t)
    cfg.write_text(text)
    proc = _promtool("check", "config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert parse_promtool_output(proc.returncode, proc.stdout, proc.stderr) == (True, [])


@needs_promtool
def test_promtool_accepts_config_with_other_jobs_merged(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text("groups: []\n")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(merge_scrape_job(EXISTING, TFS))
    proc = _promtool("check", "config", str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert parse_promtool_output(proc.returncode, proc.stdout, proc.stderr)[0]


@needs_promtool
def test_promtool_validates_referenced_file_sd_json(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 15s\n"
        "scrape_configs:\n"
        "  - job_name: model-servers\n"
        "    file_sd_configs:\n"
        f"      - files: ['{targets}/*.json']\n"
        "        refresh_interval: 30s\n"
    )
    # missing file: only a warning
    proc = _promtool("check", "config", str(cfg))
    ok, msgs = parse_promtool_output(proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0 and ok
    assert len(msgs) == 1 and msgs[0].startswith("WARNING:") and "does not exist" in msgs[0]
    # our document: valid
    (targets / "orchestrator.json").write_text(file_sd_document([VLLM, TRITON, TFS]))
    proc = _promtool("check", "config", str(cfg))
    assert parse_promtool_output(proc.returncode, proc.stdout, proc.stderr) == (True, [])
    # a malformed document: FAILED, and we report why
    (targets / "orchestrator.json").write_text('[{"targets": "203.0.113.5:8000"}]\n')
    proc = _promtool("check", "config", str(cfg))
    ok, msgs = parse_promtool_output(proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 1 and not ok
    assert any("checking SD file" in m and "cannot unmarshal" in m for m in msgs), msgs


@needs_promtool
def test_promtool_broken_config_reasons_are_reported(tmp_path: Path) -> None:
    cases = {
        "typo.yml": ("global:\n  scrape_intervall: 5s\n", "field scrape_intervall not found"),
        "dup.yml": (
            "scrape_configs:\n"
            "  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n"
            "  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n",
            'found multiple scrape configs with job name "a"',
        ),
        "scheme.yml": (
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['http://127.0.0.1:8000']}]\n",
            "is not a valid hostname",
        ),
    }
    for name, (text, reason) in cases.items():
        cfg = tmp_path / name
        cfg.write_text(text)
        proc = _promtool("check", "config", str(cfg))
        ok, msgs = parse_promtool_output(proc.returncode, proc.stdout, proc.stderr)
        assert proc.returncode == 1 and not ok, name
        assert any(m.startswith("FAILED:") and reason in m for m in msgs), (name, msgs)
        err = promtool_error(str(cfg), msgs)
        assert reason in err.message


# --- parallel deploys sharing one prometheus.yml -------------------------------------------------------

# One real process per deployment: the real monitoring/unmonitor step through the Runner and the LiveExecutor.
# Every process waits for the "go" file, so all eight read-merge-write at the same moment.
_WORKER = """
import os, sys, time
from pathlib import Path
from orchestrator.config import DeploymentConfig
from orchestrator.context import StepContext
from orchestrator.playbook import Playbook, PlaybookStep
from orchestrator.runner import Runner
from orchestrator.state import Deployment, MonitoringRecord, ServerRecord
from orchestrator.transports.live import LiveExecutor

name, prom, step, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
cfg = DeploymentConfig.model_validate(
    {"name": name, "engine": {"model": "m"}, "monitoring": {"prometheus_config": prom, "run_metrics": False}}
)
dep = Deployment(name=name, config_path="c", server=ServerRecord(uuid="00" + name, ip="203.0.113.7"))
dep.monitoring = MonitoringRecord(prometheus_config=prom, job="orchestrator-" + name)
class Quiet:
    def step_started(self, *a): ...
    def action(self, *a): ...
    def step_finished(self, *a): ...
    def info(self, *a): ...
while not go.exists():
    time.sleep(0.001)
executor = LiveExecutor({})
try:
    book = Playbook(name="t", steps=[PlaybookStep(kind=step)])
    Runner(executor, Quiet()).run(book, StepContext(cfg=cfg, dep=dep, store=None))
finally:
    executor.close()
"""


def _all_at_once(names: list[str], prom: Path, step: str, go: Path) -> None:
    import os
    import sys

    from tests.conftest import REPO

    go.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, n, str(prom), step, str(go)], env=env, cwd=REPO,
                         stderr=subprocess.PIPE, text=True)
        for n in names
    ]
    time.sleep(1.5)  # let every interpreter start and reach the wait
    go.write_text("go")
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def test_eight_parallel_merges_and_removals_lose_no_job(tmp_path: Path) -> None:
    prom = tmp_path / "prometheus.yml"
    original = "# shared by the team\nglobal:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n" \
               "    static_configs: [{targets: ['localhost:9100']}]\n"
    prom.write_text(original)
    names = [f"par{i}" for i in range(8)]
    for _round in range(3):
        _all_at_once(names, prom, "monitoring", tmp_path / "go")
        jobs = [j["job_name"] for j in yaml.safe_load(prom.read_text())["scrape_configs"]]
        assert sorted(jobs) == sorted(["node", *(f"orchestrator-{n}" for n in names)])
        _all_at_once(names, prom, "unmonitor", tmp_path / "go")
        assert prom.read_text() == original  # every job gone, none came back, the rest byte-identical
