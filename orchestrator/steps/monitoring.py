"""Monitoring steps: merge the deployment's scrape job into prometheus.yml (promtool-checked), and remove it."""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.actions import HttpCheck, Local, ReadLocal, RemoveLocal, WriteLocal
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import MonitoringError, OrchestratorError
from orchestrator.monitoring import (
    check_config_argv,
    file_sd_document,
    job_name,
    merge_scrape_job,
    parse_promtool_output,
    promtool_error,
    remove_scrape_job,
)
from orchestrator.state import MonitoringRecord


def _promtool(ctx: StepContext) -> str | None:
    mode = ctx.cfg.monitoring.promtool
    if mode == "never":
        return None
    if mode == "always" or shutil.which("promtool"):
        return "promtool"  # when missing, running it fails with a clear "command not found"
    return None


def file_sd_path(ctx: StepContext) -> Path | None:
    d = ctx.cfg.monitoring.file_sd_dir
    return Path(d).expanduser() / f"{job_name(ctx.cfg.name)}.json" if d else None


def monitoring(ctx: StepContext) -> StepGen:
    m = ctx.cfg.monitoring
    if not m.prometheus_config and not m.file_sd_dir:
        return "disabled (no monitoring.prometheus_config or file_sd_dir)"
    target = ctx.engine.scrape_target(ctx.ip)
    rec = MonitoringRecord(job=target.job)
    written: list[str] = []
    sd = file_sd_path(ctx)
    if sd is not None:
        yield WriteLocal(sd, file_sd_document([target]))
        rec.file_sd = str(sd)
        written.append(str(sd))
    if m.prometheus_config:
        path = Path(m.prometheus_config).expanduser()
        r = yield ReadLocal(path)
        before = r.stdout if r.known and r.rc == 0 else None
        yield WriteLocal(path, merge_scrape_job(before, target))
        promtool = _promtool(ctx)
        if promtool:
            argv = check_config_argv(str(path))
            r = yield Local(tuple(argv), "validate the Prometheus config", timeout=60)
            ok, messages = parse_promtool_output(r.rc, r.stdout, r.stderr)
            if r.known and not ok:
                # Put back what was there: never leave a config Prometheus would refuse to load.
                yield WriteLocal(path, before) if before is not None else RemoveLocal(path)
                raise promtool_error(str(path), messages)
        rec.prometheus_config = str(path)
        written.append(str(path))
        if m.reload_url:
            yield from _reload(m.reload_url)
            written.append("Prometheus reloaded")
    ctx.dep.monitoring = rec
    ctx.save()
    return f"scrape job {target.job} -> {target.targets[0]}{target.metrics_path} in {', '.join(written)}"


def _reload(url: str) -> StepGen:
    try:
        yield HttpCheck("POST", url, "status", "200", timeout=10.0)
    except OrchestratorError as exc:
        raise MonitoringError(
            f"Prometheus reload failed: {exc.message}",
            "is Prometheus running with --web.enable-lifecycle? check monitoring.reload_url",
        ) from None
    return None


def unmonitor(ctx: StepContext) -> StepGen:
    rec = ctx.dep.monitoring
    done: list[str] = []
    job = rec.job or job_name(ctx.cfg.name)
    cfg_path = rec.prometheus_config or ctx.cfg.monitoring.prometheus_config
    if cfg_path:
        path = Path(cfg_path).expanduser()
        r = yield ReadLocal(path)
        if r.known and r.rc == 0:
            text, removed = remove_scrape_job(r.stdout, job)
            if removed:
                yield WriteLocal(path, text)
                done.append(f"job {job} removed from {path}")
                if ctx.cfg.monitoring.reload_url:
                    yield from _reload(ctx.cfg.monitoring.reload_url)
        elif not r.known:
            done.append(f"remove job {job} from {path}")
    for extra in (rec.file_sd, rec.run_metrics):
        if extra:
            yield RemoveLocal(Path(extra))
            done.append(f"{extra} removed")
    ctx.dep.monitoring = MonitoringRecord()
    ctx.save()
    return "; ".join(done) or "nothing to remove"
