"""Engine steps: start it detached, prove it serves (a real request), and stop it."""

from __future__ import annotations

import hashlib
import json
import time

from orchestrator.actions import Remote
from orchestrator.context import RESTART_FACT, StepContext, StepGen
from orchestrator.engines.base import MultiGpu, Supervised
from orchestrator.errors import EngineError, OrchestratorError
from orchestrator.secrets import API_KEY
from orchestrator.state import EngineRecord, HealthRecord
from orchestrator.steps.host import connect_action
from orchestrator.steps.running import server_state


def engine_config_hash(ctx: StepContext) -> str:
    doc = {"engine": ctx.cfg.engine.model_dump(mode="json"), "secrets": sorted(ctx.secrets)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def start_engine(ctx: StepContext) -> StepGen:
    engine = ctx.engine
    rec, wanted = ctx.dep.engine, engine_config_hash(ctx)
    if not ctx.facts.get(RESTART_FACT) and rec and rec.config_hash == wanted and ctx.dep.health and ctx.dep.health.ok:
        r = yield engine.running_probe()
        if r.ok:
            return f"{engine.kind} already serving {rec.served_name} with this config; not restarted"
    if isinstance(engine, Supervised):
        r = yield engine.supervisor_probe()
        if r.ok:
            answer = r.stdout.split("\n")
            engine.use_supervisor(answer[0].strip(), answer[1].strip() if len(answer) > 1 else "")
    if isinstance(engine, MultiGpu):
        engine.use_gpus(gpu_count(ctx))
    actions = engine.start(ctx.secrets)
    last = None
    for action in actions:
        r = yield action
        if isinstance(action, Remote) and r.known and r.rc != 0:
            raise EngineError(
                f"{action.purpose} failed (exit {r.rc})",
                "see the output below",
                details=(r.stdout + r.stderr)[-3000:],
            )
        last = r
    if last is None or not last.known:
        return None
    pid = None
    if last is not None and last.known and engine.method != "docker":
        text = last.stdout.strip().splitlines()[-1:] or [""]
        pid = int(text[0]) if text[0].isdigit() else None
    ctx.dep.engine = EngineRecord(
        kind=engine.kind,
        model=ctx.cfg.engine.model,
        served_name=ctx.cfg.engine.served,
        endpoint=engine.endpoint(ctx.ip),
        metrics_url=_metrics_url(ctx),
        method=engine.method,
        pid=pid,
        config_hash=wanted,
    )
    ctx.save()
    return f"started (pid {pid})" if pid else "started"


def gpu_count(ctx: StepContext) -> int:
    """What verify-gpu counted, else the plan's gpu_amount recorded at provision, else gpu.count, else 1."""
    seen = ctx.facts.get("gpu_count")
    if isinstance(seen, int) and seen > 0:
        return seen
    srv = ctx.dep.server
    return (srv.gpu_amount if srv and srv.gpu_amount else 0) or ctx.cfg.gpu.count or 1


def _metrics_url(ctx: StepContext) -> str:
    t = ctx.engine.scrape_target(ctx.ip)
    return f"{t.scheme}://{t.targets[0]}{t.metrics_path}"


def health(ctx: StepContext) -> StepGen:
    started = time.monotonic()
    checks = ctx.engine.readiness(ctx.ip, api_key=API_KEY in ctx.secrets)
    known = True
    try:
        for check in checks:
            r = yield check
            known = known and r.known
    except OrchestratorError as exc:
        ctx.dep.health = HealthRecord(ok=False, checked_at=time.time(), detail=exc.message)
        ctx.save()
        raise
    if not known:
        return None
    took = time.monotonic() - started
    ctx.dep.health = HealthRecord(ok=True, checked_at=time.time(), detail=r.stdout, time_to_healthy=took)
    ctx.facts["time_to_healthy"] = took
    ctx.save()
    return f"serving {ctx.cfg.engine.served} at {ctx.engine.endpoint(ctx.ip)} (ready after {took:.1f}s)"


def stop_engine(ctx: StepContext) -> StepGen:
    """Best effort: the server is deleted next anyway, but a clean stop flushes logs and frees the GPU.

    The provider is asked first: a stopped server (its auto-stop timer) answers no SSH, so connecting would only
    wait out the timeout, and a deleted one's address may be someone else's server by now."""
    srv = ctx.dep.server
    if srv is None or not srv.ip or ctx.dep.engine is None:
        return "no engine recorded"
    try:
        state = yield from server_state(ctx, srv.uuid)
    except OrchestratorError:
        state = None  # the provider could not say: try the engine all the same
    if state == "gone":
        ctx.mark_found_gone()
        return "skipped: the server is already gone"
    if state == "stopped":
        return "skipped: the server is stopped (nothing runs on it)"
    try:
        yield connect_action(ctx, 20.0, host=srv.ip, pinned_host_key=srv.host_key, auth_grace=0.0)
        r = yield ctx.engine.stop()
    except OrchestratorError as exc:
        ctx.notify(f"could not stop the engine cleanly ({exc.message}); deleting the server stops it anyway")
        return f"skipped: {exc.message}"
    if r.known and r.rc != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or [""]
        ctx.notify(f"engine stop exited {r.rc} ({tail[0]}); deleting the server stops it anyway")
        return f"stop exited {r.rc}: {tail[0]}".rstrip(": ")
    return "stopped" if r.known else None
