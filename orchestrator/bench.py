"""Load test of a deployed vLLM endpoint from the laptop: streamed completions, per concurrency level.

The figures follow `vllm bench serve` (vllm/benchmarks/serve.py `calculate_metrics` and the OpenAI completions
request function in vllm/benchmarks/lib/endpoint_request_func.py):
- TTFT: from sending the request to the first streamed chunk that has choices;
- ITL: the gaps between successive chunks that have choices (each one a token, an empty one too);
- TPOT: (e2e latency - TTFT) / (output tokens - 1), per request with more than one output token;
- E2E latency: from sending the request to the end of the stream;
- output tokens: `usage.completion_tokens` of the last chunk (`stream_options.include_usage`);
- request throughput and output tokens/s: completed requests / tokens over the level's wall-clock duration;
- percentiles: linear interpolation between closest ranks (numpy.percentile's default).
The request is the one vLLM's bench sends: `/v1/completions`, `stream: true`, `max_tokens`, `ignore_eos: true`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 95, 99)
PROMPT_WORD = "hello"


@dataclass
class RequestResult:
    ok: bool
    ttft: float = 0.0
    itl: list[float] = field(default_factory=list)
    latency: float = 0.0
    output_tokens: int = 0
    error: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """numpy.percentile(values, q) with its default (linear) interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and p50/p95/p99 in seconds (None when nothing was measured)."""
    if not values:
        return {"mean": None, **{f"p{q}": None for q in PERCENTILES}}
    return {"mean": sum(values) / len(values), **{f"p{q}": percentile(values, q) for q in PERCENTILES}}


def payload(model: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": " ".join([PROMPT_WORD] * max(1, input_tokens)),
        "max_tokens": output_tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def _one(client: Any, url: str, body: dict[str, Any], headers: dict[str, str]) -> RequestResult:
    import httpx

    result = RequestResult(ok=False)
    start = time.perf_counter()
    recent = start
    try:
        async with client.stream("POST", url, json=body, headers=headers) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")[:200]
                result.error = f"HTTP {resp.status_code}: {text}"
                return result
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    continue
                chunk = json.loads(data)
                now = time.perf_counter()
                if chunk.get("choices"):
                    if result.ttft == 0.0:
                        result.ttft = now - start
                    else:
                        result.itl.append(now - recent)
                    recent = now
                elif isinstance(chunk.get("usage"), dict):
                    result.output_tokens = int(chunk["usage"].get("completion_tokens") or 0)
            result.latency = time.perf_counter() - start
            result.ok = result.ttft > 0
            if not result.ok:
                result.error = "the stream carried no tokens"
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except ValueError as exc:
        result.error = f"bad stream chunk: {exc}"
    return result


async def _level(
    one: Callable[[Any, int], Awaitable[RequestResult]], concurrency: int, requests: int, timeout: float
) -> tuple[list[RequestResult], float]:
    """`requests` calls of `one` (the client, the request's number), at most `concurrency` at a time, all bounded
    by `timeout`; the results in request order."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def gated(client: httpx.AsyncClient, n: int) -> RequestResult:
        async with gate:
            return await one(client, n)

    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, trust_env=False) as client:
        start = time.perf_counter()
        tasks = [asyncio.create_task(gated(client, n)) for n in range(requests)]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        duration = time.perf_counter() - start
    late = f"not finished within {timeout:g}s"
    return [t.result() if t in done else RequestResult(ok=False, error=late) for t in tasks], duration


def spread(urls: Sequence[str], results: Sequence[RequestResult]) -> dict[str, int] | None:
    """With several endpoints (a fleet's replicas, request N sent to endpoint N mod their count, as a round-robin
    balancer in front of them would): how many requests each answered; None for one endpoint."""
    if len(urls) < 2:
        return None
    return {url: sum(1 for n, r in enumerate(results) if r.ok and n % len(urls) == i) for i, url in enumerate(urls)}


def summarize(results: Sequence[RequestResult], duration: float, concurrency: int) -> dict[str, Any]:
    """One concurrency level's figures (seconds; rates per second), as `vllm bench serve` computes them."""
    good = [r for r in results if r.ok]
    tokens = sum(r.output_tokens for r in good)
    tpots = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in good if r.output_tokens > 1]
    errors = sorted({r.error for r in results if not r.ok})
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "completed": len(good),
        "failed": len(results) - len(good),
        "errors": errors[:5],
        "duration_s": duration,
        "request_throughput": len(good) / duration if duration > 0 else None,
        "output_tokens": tokens,
        "output_tokens_per_s": tokens / duration if duration > 0 else None,
        "ttft_s": _stats([r.ttft for r in good]),
        "tpot_s": _stats(tpots),
        "itl_s": _stats([gap for r in good for gap in r.itl]),
        "e2e_latency_s": _stats([r.latency for r in good]),
    }


def cost_per_million(output_tokens_per_s: float | None, price_per_hour: float | None) -> float | None:
    """What a million output tokens cost at this throughput, with the server billed per hour."""
    if not price_per_hour or not output_tokens_per_s:
        return None
    return price_per_hour / (output_tokens_per_s * 3600) * 1_000_000


def run(
    endpoints: Sequence[str],
    model: str,
    api_key: str | None,
    *,
    levels: Sequence[int],
    requests: int,
    input_tokens: int,
    output_tokens: int,
    timeout: float,
    price_per_hour: float | None = None,
) -> list[dict[str, Any]]:
    """Run each concurrency level in turn against ``endpoints`` (".../v1" each; requests spread round-robin, the
    concurrency shared); bounded by ``requests`` and ``timeout``. ``price_per_hour``: of every endpoint's server."""
    urls = [endpoint.rstrip("/") + "/completions" for endpoint in endpoints]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = payload(model, input_tokens, output_tokens)
    out = []
    for level in levels:
        results, duration = asyncio.run(
            _level(lambda client, n: _one(client, urls[n % len(urls)], body, headers), level, requests, timeout)
        )
        figures = summarize(results, duration, level)
        figures["cost_per_1m_output_tokens"] = cost_per_million(figures["output_tokens_per_s"], price_per_hour)
        if (by_endpoint := spread(endpoints, results)) is not None:
            figures["completed_per_endpoint"] = by_endpoint
        out.append(figures)
    return out


async def _infer_one(client: Any, url: str, body: str, headers: dict[str, str]) -> RequestResult:
    import httpx

    start = time.perf_counter()
    try:
        resp = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return RequestResult(ok=False, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    latency = time.perf_counter() - start
    if resp.status_code != 200:
        return RequestResult(ok=False, error=f"HTTP {resp.status_code}: {resp.text[:200]}")
    return RequestResult(ok=True, latency=latency)


def run_inference(
    urls: Sequence[str], body: str, *, levels: Sequence[int], requests: int, timeout: float
) -> list[dict[str, Any]]:
    """Triton/TF Serving style: one JSON inference request repeated (spread round-robin over ``urls``);
    inferences/s and latency percentiles."""
    headers = {"Content-Type": "application/json"}
    out = []
    for level in levels:
        results, duration = asyncio.run(
            _level(lambda client, n: _infer_one(client, urls[n % len(urls)], body, headers), level, requests, timeout)
        )
        good = [r for r in results if r.ok]
        figures = {
            "concurrency": level,
            "requests": len(results),
            "completed": len(good),
            "failed": len(results) - len(good),
            "errors": sorted({r.error for r in results if not r.ok})[:5],
            "duration_s": duration,
            "inferences_per_s": len(good) / duration if duration > 0 else None,
            "latency_s": _stats([r.latency for r in good]),
        }
        if (by_endpoint := spread(urls, results)) is not None:
            figures["completed_per_endpoint"] = by_endpoint
        out.append(figures)
    return out


def inference_table(levels: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for lv in levels:
        st = lv["latency_s"]
        lines.append(
            f"concurrency {lv['concurrency']}: {lv['completed']}/{lv['requests']} ok in {lv['duration_s']:.2f}s, "
            f"{lv['inferences_per_s'] or 0:.1f} inferences/s"
        )
        lines.append(
            f"  latency ms  mean {_ms(st['mean'])}  p50 {_ms(st['p50'])}  p95 {_ms(st['p95'])}  p99 {_ms(st['p99'])}"
        )
        lines += _spread_lines(lv)
        for err in lv["errors"]:
            lines.append(f"  error {err}")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def table(levels: Sequence[dict[str, Any]], currency: str) -> list[str]:
    """Plain lines, one block per concurrency level (times in ms)."""
    lines = []
    for lv in levels:
        lines.append(
            f"concurrency {lv['concurrency']}: {lv['completed']}/{lv['requests']} ok in {lv['duration_s']:.2f}s, "
            f"{lv['request_throughput'] or 0:.2f} req/s, {lv['output_tokens_per_s'] or 0:.1f} output tok/s"
        )
        for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2e_latency_s", "E2E")):
            st = lv[key]
            lines.append(
                f"  {label:<5} ms  mean {_ms(st['mean'])}  p50 {_ms(st['p50'])}  p95 {_ms(st['p95'])}  "
                f"p99 {_ms(st['p99'])}"
            )
        if lv.get("cost_per_1m_output_tokens") is not None:
            lines.append(f"  cost  ≈ {lv['cost_per_1m_output_tokens']:.2f} {currency} per 1M output tokens")
        lines += _spread_lines(lv)
        for err in lv["errors"]:
            lines.append(f"  error {err}")
    return lines


def _spread_lines(level: dict[str, Any]) -> list[str]:
    by_endpoint = level.get("completed_per_endpoint")
    if not by_endpoint:
        return []
    return ["  answered: " + ", ".join(f"{n} by {endpoint}" for endpoint, n in by_endpoint.items())]
