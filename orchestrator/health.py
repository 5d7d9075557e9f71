"""HTTP readiness checks (httpx): what "ready" means per probe, and polling until ready or a deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.actions import HttpCheck, Result
from orchestrator.errors import EngineError

if TYPE_CHECKING:
    import httpx


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


EXPECTATIONS: dict[str, Callable[[httpx.Response, str], Verdict]] = {
    "status": expect_status,
    "openai-model": expect_openai_model,
    "openai-completion": expect_openai_completion,
}

StillAlive = Callable[[], bool]
OnWait = Callable[[str], None]


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
    http = client or httpx.Client(timeout=check.timeout, trust_env=False)
    started = time.monotonic()
    last = "no answer yet"
    next_note = started + 15.0
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
                # vLLM refuses connections until the model is loaded; docker-proxy resets them instead.
                last = f"{type(exc).__name__}: still starting"
            waited = time.monotonic() - started
            if not check.wait or waited >= check.wait:
                break
            if alive is not None and not alive():
                log = dead_log() if dead_log else ""
                raise EngineError(
                    f"the engine process exited while {check.url} was not ready ({last})",
                    "see the log tail below; fix the cause and run `orchestrator redeploy CONFIG`",
                    details=log,
                )
            if on_wait is not None and time.monotonic() >= next_note:
                on_wait(f"waiting for {check.url}: {last} ({waited:.0f}s)")
                next_note = time.monotonic() + 30.0
            time.sleep(check.interval)
    finally:
        if own:
            http.close()
    raise EngineError(
        f"{check.method} {check.url} not ready after {time.monotonic() - started:.0f}s (last: {last})",
        _hint_for(check, last),
        details=dead_log() if dead_log else None,
    )


def _hint_for(check: HttpCheck, last: str) -> str:
    if "401" in last:
        return "the engine has a different API key than the one in your environment; redeploy to set it"
    if check.wait:
        return "large models can take long to download and load: raise engine.health.timeout, then redeploy"
    return "check the engine log on the server"
