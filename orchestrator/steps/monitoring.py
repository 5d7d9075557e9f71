"""Monitoring steps: merge the deployment's scrape job into prometheus.yml (promtool-checked), and remove it."""

from __future__ import annotations

import shutil
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

from orchestrator import dcgm, node_exporter
from orchestrator.actions import (
    Action,
    HttpCheck,
    Local,
    LockLocal,
    ReadLocal,
    RemoveLocal,
    Result,
    UnlockLocal,
    WriteLocal,
)
from orchestrator.alerts import AlertSettings, rules_document, rules_path
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import MonitoringError, OrchestratorError
from orchestrator.grafana import ENGINE_DASHBOARDS, GPU_DASHBOARD, HOST_DASHBOARD, dashboard_path, provisioning_files
from orchestrator.monitoring import (
    ScrapeTarget,
    check_config_argv,
    file_sd_document,
    job_name,
    parse_promtool_output,
    promtool_error,
)
from orchestrator.ports import DCGM_PORT, NODE_PORT
from orchestrator.prometheus_yml import add_rule_file, merge_scrape_job, remove_rule_file, remove_scrape_job
from orchestrator.run_metrics import RUN_METRICS_COMMANDS, textfile_name
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


def lock_path(config: Path) -> Path:
    """The lock file beside prometheus.yml that every orchestrator process takes before editing it."""
    return config.parent / f".{config.name}.lock"


# A fleet (orchestrator/fleet.py) splits this step: each replica's run starts the exporters on its own server
# (EXPORTERS_ONLY), then one run for the fleet writes one job per exporter whose targets are FLEET_IPS.
EXPORTERS_ONLY = "monitoring_exporters_only"
FLEET_IPS = "monitoring_fleet_ips"


def _fleet_ips(ctx: StepContext) -> list[str]:
    ips = ctx.facts.get(FLEET_IPS)
    return [str(ip) for ip in ips] if isinstance(ips, list) and ips else [ctx.ip]


def _joined(targets: list[ScrapeTarget]) -> ScrapeTarget:
    """One job whose targets are every server's (a single server: its own job as it is)."""
    return replace(targets[0], targets=tuple(t for each in targets for t in each.targets))


def monitoring(ctx: StepContext) -> StepGen:
    m = ctx.cfg.monitoring
    if not m.prometheus_config and not m.file_sd_dir:
        return "disabled (no monitoring.prometheus_config or file_sd_dir)"
    if ctx.facts.get(EXPORTERS_ONLY):
        started = yield from _exporters(ctx)
        return "; ".join([*started, "the fleet's scrape jobs are written after its replicas"])
    fleet = isinstance(ctx.facts.get(FLEET_IPS), list)
    ips = _fleet_ips(ctx)
    target = _joined([ctx.engine.scrape_target(ip) for ip in ips])
    gpu = _joined([dcgm.scrape_target(ctx.cfg.name, ip, m.scrape_interval) for ip in ips]) if m.dcgm_exporter else None
    host = (
        _joined([node_exporter.scrape_target(ctx.cfg.name, ip, m.scrape_interval) for ip in ips])
        if m.node_exporter
        else None
    )
    rec = MonitoringRecord(job=target.job)
    written: list[str] = [] if fleet else (yield from _exporters(ctx))
    sd = file_sd_path(ctx)
    if sd is not None:
        yield WriteLocal(sd, file_sd_document([target, *([gpu] if gpu else []), *([host] if host else [])]))
        rec.file_sd = str(sd)
        written.append(str(sd))
    if m.prometheus_config:
        path = Path(m.prometheus_config).expanduser()
        lock = lock_path(path)
        # Read-merge-write-check-reload under one cross-process lock: parallel deploys never lose a job.
        yield LockLocal(lock, f"merge scrape job {target.job} into {path}")
        try:
            r = yield ReadLocal(path)
            before = r.stdout if r.known and r.rc == 0 else None
            text = merge_scrape_job(before, target)
            if gpu is not None:
                text = merge_scrape_job(text, gpu)
            else:
                text, _gone = remove_scrape_job(text, dcgm.gpu_job(ctx.cfg.name))
            if host is not None:
                text = merge_scrape_job(text, host)
            else:
                text, _gone = remove_scrape_job(text, node_exporter.node_job(ctx.cfg.name))
            rules = rules_path(path, target.job)
            rules_before: str | None = None
            if m.alerts:
                # The rules file first, so the config never references a file that is not there.
                rr = yield ReadLocal(rules)
                rules_before = rr.stdout if rr.known and rr.rc == 0 else None
                settings = AlertSettings(waiting_requests=m.alert_waiting_requests)
                doc = rules_document(ctx.cfg.name, target.job, ctx.cfg.engine.kind, settings, host=m.node_exporter)
                yield WriteLocal(rules, doc)
                text = add_rule_file(text, rules.name)
            else:
                text, _dropped = remove_rule_file(text, rules.name)
            yield WriteLocal(path, text, keep_existing=True)
            promtool = _promtool(ctx)
            if promtool:
                argv = check_config_argv(str(path))
                r = yield Local(tuple(argv), "validate the Prometheus config", timeout=60)
                ok, messages = parse_promtool_output(r.rc, r.stdout, r.stderr)
                if r.known and not ok:
                    # Put back what was there: never leave a config Prometheus would refuse to load.
                    yield WriteLocal(path, before, keep_existing=True) if before is not None else RemoveLocal(path)
                    if m.alerts:
                        yield WriteLocal(rules, rules_before) if rules_before is not None else RemoveLocal(rules)
                    raise promtool_error(str(path), messages)
            rec.prometheus_config = str(path)
            written.append(str(path))
            if m.alerts:
                written.append(str(rules))
            else:
                yield RemoveLocal(rules)  # alerts turned off since the last deploy: no longer referenced
            if m.reload_url:
                yield from _reload(m.reload_url)
                written.append("Prometheus reloaded")
        except OrchestratorError as exc:
            yield UnlockLocal(lock)
            if isinstance(exc, MonitoringError):
                raise
            raise MonitoringError(exc.message, exc.hint or f"check {path} and its directory's permissions") from None
        yield UnlockLocal(lock)
    if m.grafana_dir:
        grafana = Path(m.grafana_dir).expanduser()
        files = provisioning_files(
            grafana, m.prometheus_url, ctx.cfg.name, target.job, ctx.cfg.engine.kind, host=m.node_exporter
        )
        for f in files:
            yield WriteLocal(f.path, f.text)
        if not m.node_exporter:  # turned off since the last deploy: its dashboard would show nothing
            yield RemoveLocal(dashboard_path(grafana, target.job, HOST_DASHBOARD))
        written.append(f"Grafana provisioning in {grafana}")
    ctx.dep.monitoring = rec
    ctx.save()
    where = target.targets[0] if len(target.targets) == 1 else f"{len(target.targets)} targets"
    return f"scrape job {target.job} -> {where}{target.metrics_path} in {', '.join(written)}"


def _exporters(ctx: StepContext) -> Generator[Action, Result, list[str]]:
    """Start the exporters monitoring asks for on the server (DCGM in docker, node exporter from apt)."""
    m = ctx.cfg.monitoring
    written: list[str] = []
    if m.dcgm_exporter:
        r = yield dcgm.start(m.dcgm_image)
        if r.known and r.rc != 0:
            raise MonitoringError(
                f"starting NVIDIA's DCGM exporter failed (exit {r.rc})",
                "it runs in docker with --gpus all: the server needs docker and the NVIDIA Container Toolkit "
                "(or set monitoring.dcgm_exporter: false)",
                details=(r.stdout + r.stderr)[-3000:] or None,
            )
        written.append(f"DCGM exporter on :{DCGM_PORT}")
    if m.node_exporter:
        r = yield node_exporter.install(ctx.cfg.ssh.user)
        if r.known and r.rc != 0:
            raise MonitoringError(
                f"installing Prometheus' node exporter failed (exit {r.rc})",
                f"it is Ubuntu's {node_exporter.PACKAGE} package (universe): check apt on the server "
                "(or set monitoring.node_exporter: false)",
                details=(r.stdout + r.stderr)[-3000:] or None,
            )
        written.append(f"node exporter on :{NODE_PORT}")
    return written


def _reload(url: str) -> StepGen:
    try:
        yield HttpCheck("POST", url, "status", "200", timeout=10.0, subject="Prometheus")
    except OrchestratorError as exc:
        raise MonitoringError(
            f"Prometheus reload failed: {exc.message}",
            "is Prometheus running with --web.enable-lifecycle? check monitoring.reload_url",
        ) from None
    return None


class ReloadFailed(MonitoringError):
    """The job is out of prometheus.yml, but Prometheus did not reload."""


def _remove_job(ctx: StepContext, path: Path, job: str) -> StepGen:
    """Take our job out of prometheus.yml (under the lock) and reload; raises when it could not."""
    lock = lock_path(path)
    try:
        yield LockLocal(lock, f"remove scrape job {job} from {path}")
    except OrchestratorError:
        # No lock file where there is no directory: then there is no prometheus.yml either (a deploy that failed
        # before its monitoring step could create them), so no job to remove; anything else stays an error.
        r = yield ReadLocal(path)
        if r.known and r.rc != 0:
            return f"{path} does not exist: no scrape job to remove"
        raise
    try:
        r = yield ReadLocal(path)
        note = f"remove job {job} from {path}"
        if r.known and r.rc == 0:
            text, removed = remove_scrape_job(r.stdout, job)
            text, gpu_removed = remove_scrape_job(text, job + "-gpu")  # dcgm.gpu_job: the DCGM exporter's job
            text, node_removed = remove_scrape_job(text, job + node_exporter.JOB_SUFFIX)  # the node exporter's
            removed = removed or gpu_removed or node_removed
            note = f"job {job} removed from {path}" if removed else f"job {job} was not in {path}"
            rules = rules_path(path, job)
            text, unreferenced = remove_rule_file(text, rules.name)
            if unreferenced:
                note += f"; rules file {rules} unreferenced"
            if removed or unreferenced:
                yield WriteLocal(path, text, keep_existing=True)
        if ctx.cfg.monitoring.reload_url and (not r.known or r.rc == 0):
            # Also when the job was already gone: a teardown whose reload failed finishes here.
            try:
                yield from _reload(ctx.cfg.monitoring.reload_url)
            except MonitoringError as exc:
                raise ReloadFailed(
                    f"job {job} is out of {path}, but Prometheus still scrapes it until it reloads: {exc.message}",
                    exc.hint,
                ) from None
    except OrchestratorError:
        yield UnlockLocal(lock)
        raise
    yield UnlockLocal(lock)
    return note


def run_metrics_paths(ctx: StepContext) -> list[Path]:
    """Every run-metrics textfile this deployment may have written: the recorded one and one per command."""
    rec = ctx.dep.monitoring
    paths = [Path(rec.run_metrics)] if rec.run_metrics else []
    cfg_path = rec.prometheus_config or ctx.cfg.monitoring.prometheus_config
    if cfg_path:
        folder = Path(cfg_path).expanduser().parent
        paths += [folder / textfile_name(ctx.cfg.name, command) for command in RUN_METRICS_COMMANDS]
    return list(dict.fromkeys(paths))


def watch_paths(ctx: StepContext, job: str, rules: bool = True) -> list[Path]:
    """The deployment's alert rules file (``rules``: prometheus.yml no longer references it) and Grafana
    dashboards; the shared datasource and provider files stay."""
    paths: list[Path] = []
    cfg_path = ctx.dep.monitoring.prometheus_config or ctx.cfg.monitoring.prometheus_config
    if cfg_path and rules:
        paths.append(rules_path(Path(cfg_path).expanduser(), job))
    if ctx.cfg.monitoring.grafana_dir:
        grafana = Path(ctx.cfg.monitoring.grafana_dir).expanduser()
        paths += [dashboard_path(grafana, job, name) for name in (*ENGINE_DASHBOARDS, GPU_DASHBOARD, HOST_DASHBOARD)]
    return paths


def unmonitor(ctx: StepContext) -> StepGen:
    """Remove the scrape job, file_sd file and run-metrics files; the record keeps only what could not go."""
    rec = ctx.dep.monitoring
    done: list[str] = []
    remains: list[str] = []
    left = MonitoringRecord()
    job = rec.job or job_name(ctx.cfg.name)
    cfg_path = rec.prometheus_config or ctx.cfg.monitoring.prometheus_config
    if cfg_path:
        path = Path(cfg_path).expanduser()
        try:
            done.append((yield from _remove_job(ctx, path, job)) or "")
        except ReloadFailed as exc:
            remains.append(exc.message)
            left.prometheus_config, left.job = str(path), job  # so a re-run reloads
        except OrchestratorError as exc:
            remains.append(f"scrape job {job} is still in {path}: {exc.message}")
            left.prometheus_config, left.job = str(path), job
    extras = ([Path(rec.file_sd)] if rec.file_sd else []) + run_metrics_paths(ctx)
    extras += watch_paths(ctx, job, rules=not left.prometheus_config)
    for extra in extras:
        try:
            yield RemoveLocal(extra)
        except OrchestratorError as exc:
            remains.append(f"{extra} is still there: {exc.message}")
            if str(extra) == rec.file_sd:
                left.file_sd = rec.file_sd
            else:
                left.run_metrics = str(extra)
            continue
        if str(extra) in (rec.file_sd, rec.run_metrics):
            done.append(f"{extra} removed")
    ctx.dep.monitoring = left
    ctx.save()
    if remains:
        raise MonitoringError("; ".join(remains), f"fix that, then run `orchestrator teardown {ctx.cfg.name}` again")
    return "; ".join(x for x in done if x) or "nothing to remove"
