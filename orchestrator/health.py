"""HTTP readiness checks (httpx): what "ready" means per probe, and polling until ready or a deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from orchestrator.actions import HttpCheck, Result
from orchestrator.errors import EngineError

if TYPE_CHECKING:
    import ssl

    import httpx


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context (httpx's default: certifi's CA bundle) for every check of the process: loading
    the bundle costs ~80 ms of CPU, once per client otherwise (three checks per server, N servers in a fleet)."""
    import ssl

    import certifi

    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class Verdict:
    ready: bool
    detail: str
    fatal: bool = False  # an answer that waiting will not fix (e.g. 401 with our key)


def _json(resp: httpx.Response) -> object:
    try:
        return json.loads(resp.text)
    except ValueError:
        return None


def expect_status(resp: httpx.Response, arg: str) -> Verdict:
    want = int(arg or 200)
    return Verdict(resp.status_code == want, f"HTTP {resp.status_code}")


def expect_openai_model(resp: httpx.Response, arg: str) -> Verdict:
    if resp.status_code == 401:
        return Verdict(False, "HTTP 401 Unauthorized: the API key was refused", fatal=True)
    if resp.status_code != 200:
        return Verdict(False, f"HTTP {resp.status_code}")
    body = _json(resp)
    data = body.get("data") if isinstance(body, dict) else None
    ids = [m.get("id") for m in data if isinstance(m, dict)] if isinstance(data, list) else []
    if arg in ids:
        return Verdict(True, f"model {arg} listed")
    return Verdict(False, f"model {arg} not listed (got {ids})", fatal=bool(ids))


def expect_openai_completion(resp: httpx.Response, arg: str) -> Verdict:
    if resp.status_code == 401:
        return Verdict(False, "HTTP 401 Unauthorized: the API key was refused", fatal=True)
    if resp.status_code != 200:
        return Verdict(False, f"HTTP {resp.status_code}: {resp.text[:200]}")
    body = _json(resp)
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices:
        return Verdict(True, "completion answered")
    return Verdict(False, "completion response has no choices", fatal=True)


def _error_text(resp: httpx.Response) -> str:
    body = _json(resp)
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, str) else ""


def expect_triton_ready(resp: httpx.Response, arg: str) -> Verdict:
    """Triton's /v2/health/ready and /v2/models/<m>/ready: 200 ready, 400 not (yet) ready."""
    what = f"model {arg}" if arg else "server"
    if resp.status_code == 200:
        return Verdict(True, f"{what} ready")
    err = _error_text(resp)
    if resp.status_code == 400 and "unknown model" in err.lower():
        return Verdict(False, f"HTTP 400: {err}", fatal=True)
    note = f" ({err})" if err else ""
    if resp.status_code == 400:
        return Verdict(False, f"HTTP 400: {what} not ready yet{note}")
    return Verdict(False, f"HTTP {resp.status_code}{note}")


def expect_tfs_available(resp: httpx.Response, arg: str) -> Verdict:
    """TF Serving's GET /v1/models/<m>: ready once a version is AVAILABLE with error_code OK."""
    if resp.status_code != 200:
        err = _error_text(resp)
        return Verdict(False, f"HTTP {resp.status_code}" + (f": {err}" if err else ""))
    body = _json(resp)
    raw = body.get("model_version_status") if isinstance(body, dict) else None
    versions = [v for v in raw if isinstance(v, dict)] if isinstance(raw, list) else []
    failed = []
    for v in versions:
        raw_status = v.get("status")
        status = raw_status if isinstance(raw_status, dict) else {}
        code = str(status.get("error_code") or "OK")
        if v.get("state") == "AVAILABLE" and code == "OK":
            return Verdict(True, f"model {arg} version {v.get('version')} AVAILABLE")
        if v.get("state") == "END" and code != "OK":
            failed.append(f"version {v.get('version')}: {code}: {status.get('error_message', '')}")
    if versions and len(failed) == len(versions):
        return Verdict(False, "the model failed to load: " + "; ".join(failed), fatal=True)
    states = ", ".join(f"version {v.get('version')} {v.get('state')}" for v in versions)
    return Verdict(False, states or "no model versions yet")


def expect_tfs_predict(resp: httpx.Response, arg: str) -> Verdict:
    """TF Serving's POST /v1/models/<m>:predict: 200 with predictions (row) or outputs (columnar)."""
    if resp.status_code == 400:
        return Verdict(False, f"HTTP 400: {_error_text(resp) or resp.text[:200]}", fatal=True)
    if resp.status_code != 200:
        return Verdict(False, f"HTTP {resp.status_code}: {resp.text[:200]}")
    body = _json(resp)
    if isinstance(body, dict) and ("predictions" in body or "outputs" in body):
        return Verdict(True, "predict answered")
    return Verdict(False, "predict response has neither predictions nor outputs", fatal=True)


def expect_ray_serve_running(resp: httpx.Response, arg: str) -> Verdict:
    from orchestrator.ray_serve import expect_serve_running

    return expect_serve_running(resp, arg)


def expect_ray_nodes_alive(resp: httpx.Response, arg: str) -> Verdict:
    from orchestrator.ray_serve import expect_nodes_alive

    return expect_nodes_alive(resp, arg)


EXPECTATIONS: dict[str, Callable[[httpx.Response, str], Verdict]] = {
    "status": expect_status,
    "openai-model": expect_openai_model,
    "openai-completion": expect_openai_completion,
    "triton-ready": expect_triton_ready,
    "tfs-available": expect_tfs_available,
    "tfs-predict": expect_tfs_predict,
    "ray-serve-running": expect_ray_serve_running,
    "ray-nodes-alive": expect_ray_nodes_alive,
}


@dataclass(frozen=True)
class Wait:
    """One failed probe of a polling check: what it waits for, why it is not ready yet, and for how long."""

    url: str
    reason: str
    elapsed: float  # seconds since the check's first probe
    deadline: float  # seconds it may wait in all (the check's `wait`, clamped by its step's timeout)

    def text(self) -> str:
        from orchestrator.durations import format_duration, format_limit

        took = f"{format_duration(self.elapsed)} of {format_limit(self.deadline)}"
        return f"waiting for {self.url}: {self.reason}, {took}"


def transport_reason(exc: Exception, timeout: float, waiting: bool = True, subject: str = "the engine") -> str:
    """Why a probe got no HTTP answer, in words. While a deploy waits: vLLM refuses connections until its model is
    loaded, and docker-proxy accepts and then resets them. A single probe (``status``, a check that does not wait)
    of an engine that served before, or of another service (``subject``: Prometheus for a reload), means nothing
    listens now."""
    import httpx

    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        why = f"no answer within {timeout:g}s"
    elif "refused" in text:
        why = "connection refused"
    elif isinstance(exc, httpx.ConnectError):
        why = f"cannot connect ({exc})" if str(exc) else "cannot connect"
    elif "reset" in text:
        why = "connection reset"
    else:
        why = f"connection closed ({type(exc).__name__})"
    if not waiting:
        return f"{why}: {subject} is not answering (stopped, crashed or restarting)"
    return f"{why}: still starting (model loading)"


StillAlive = Callable[[], bool]
OnWait = Callable[[Wait], None]


# How often a failed probe asks whether the engine still runs (a remote command on the server, over SSH): the first
# failed probe asks at once, the next LIVENESS_PERIOD later, and each gap after that is twice the one before, up
# to LIVENESS_MAX. An engine that dies starting (a bad flag, no memory) is noticed within seconds, as before; one
# that dies in minutes of model loading within LIVENESS_MAX, with a fifth of the SSH commands a fixed 2 s costs.
LIVENESS_PERIOD = 2.0
LIVENESS_MAX = 10.0


def run_check(
    check: HttpCheck,
    secrets: dict[str, str],
    *,
    alive: StillAlive | None = None,
    on_wait: OnWait | None = None,
    dead_log: Callable[[], str] | None = None,
    client: httpx.Client | None = None,
) -> Result:
    """Perform one HttpCheck; poll while it is not ready when ``check.wait`` is set."""
    import httpx

    expect = EXPECTATIONS[check.expect]
    headers = {"Authorization": f"Bearer {secrets[check.bearer_secret]}"} if check.bearer_secret else {}
    if check.json_body is not None:
        headers["Content-Type"] = "application/json"
    own = client is None
    http = client or httpx.Client(timeout=check.timeout, trust_env=False, verify=tls_context())
    started = time.monotonic()
    last = "no answer yet"
    next_alive, gap = 0.0, LIVENESS_PERIOD  # the first failed probe asks at once, later ones further apart
    try:
        while True:
            try:
                resp = http.request(check.method, check.url, headers=headers, content=check.json_body)
                verdict = expect(resp, check.expect_arg)
                last = verdict.detail
                if verdict.ready:
                    return Result(rc=0, stdout=last)
                if verdict.fatal:
                    raise EngineError(f"{check.method} {check.url}: {last}", _hint_for(check, last))
            except httpx.TransportError as exc:
                last = transport_reason(exc, check.timeout, waiting=bool(check.wait), subject=check.subject)
            waited = time.monotonic() - started
            if not check.wait or waited >= check.wait:
                break
            if alive is not None and time.monotonic() >= next_alive:
                next_alive, gap = time.monotonic() + gap, min(gap * 2, LIVENESS_MAX)
                if not alive():
                    raise EngineError(
                        f"the engine process exited while {check.url} was not ready ({last})",
                        "see the log tail below; fix the cause and run `orchestrator redeploy CONFIG`",
                        details=dead_log() if dead_log else "",
                    )
            if on_wait is not None:  # every failed probe: the reporter decides how often to show it
                on_wait(Wait(check.url, last, waited, check.wait or waited))
            time.sleep(check.interval)
    finally:
        if own:
            http.close()
    outcome = f" not ready after {time.monotonic() - started:.0f}s (last: {last})" if check.wait else f": {last}"
    raise EngineError(
        f"{check.method} {check.url}{outcome}",
        _hint_for(check, last),
        details=dead_log() if dead_log else None,
    )


def _hint_for(check: HttpCheck, last: str) -> str:
    if "401" in last:
        return "the engine has a different API key than the one in your environment; redeploy to set it"
    if check.expect == "tfs-predict":
        return "engine.example_input does not fit the model's signature (see GET /v1/models/<model>/metadata)"
    if check.expect == "tfs-available" and "failed to load" in last:
        return "see the model's error above and the engine log; fix the SavedModel or the image, then redeploy"
    if check.wait:
        return "large models can take long to download and load: raise engine.health.timeout, then redeploy"
    return "check the engine log on the server"
