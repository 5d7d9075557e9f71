"""What the mock vLLM says: its deterministic completions and the root causes it prints for start-up failures."""

from __future__ import annotations

import json
from typing import Any

from mockcloud.engine_vllm_config import EngineConfig

REPLY_TEXT = "This is a deterministic reply from the mock vLLM engine running on a mock GPU host ."
REPLY_WORDS = tuple(REPLY_TEXT.split())
ENGINE_CORE_FAILED = "RuntimeError: Engine core initialization failed. See root cause above."


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _prompt_text(body: dict[str, Any], chat: bool) -> str:
    if chat:
        messages = body.get("messages") or []
        parts = [m.get("content") if isinstance(m, dict) else "" for m in messages]
        return " ".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    prompt = body.get("prompt", "")
    return " ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)


def complete(body: dict[str, Any], chat: bool, served: str, created: int) -> tuple[dict[str, Any], int, int, str]:
    """A deterministic OpenAI-style answer: (response, prompt tokens, completion tokens, finish reason).

    With vLLM's ``ignore_eos`` (what `vllm bench serve` sends) the reply runs on to exactly ``max_tokens``."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or (len(REPLY_WORDS) if chat else 16)
    if body.get("ignore_eos"):
        count = max(0, int(limit))
        reason = "length"
        words = tuple(REPLY_WORDS[i % len(REPLY_WORDS)] for i in range(count))
    else:
        count = max(0, min(int(limit), len(REPLY_WORDS)))
        reason = "length" if count < len(REPLY_WORDS) else "stop"
        words = REPLY_WORDS[:count]
    prompt_tokens = _count_tokens(_prompt_text(body, chat)) + (4 * len(body.get("messages") or []) if chat else 0)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": count,
        "total_tokens": prompt_tokens + count,
    }
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": " ".join(words)},
            "logprobs": None,
            "finish_reason": reason,
        }
        response = {
            "id": f"chatcmpl-mock{created}",
            "object": "chat.completion",
            "created": created,
            "model": served,
            "choices": [choice],
            "usage": usage,
        }
    else:
        choice = {
            "index": 0,
            "text": "".join(" " + w for w in words),
            "logprobs": None,
            "finish_reason": reason,
        }
        response = {
            "id": f"cmpl-mock{created}",
            "object": "text_completion",
            "created": created,
            "model": served,
            "choices": [choice],
            "usage": usage,
        }
    return response, prompt_tokens, count, reason


def failure_text(kind: str, cfg: EngineConfig, environ: dict[str, str]) -> str:
    """The root cause vLLM prints for each simulated start-up failure (engines.md §6: F6, F9, F11, F8)."""
    total_gib = float(cfg.knobs["gpu_mem_mib"]) / 1024 - 0.46
    if kind == "kv_cache":
        needed = cfg.max_model_len * 16 / 131072
        available = needed * 0.62
        estimate = int(cfg.max_model_len * 0.62) // 16 * 16
        return (
            f"ValueError: To serve at least one request with the model's max seq len ({cfg.max_model_len}), "
            f"({needed:.2f} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({available:.2f} GiB). Based on the available memory, the estimated maximum model length is "
            f"{estimate}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            "initializing the engine."
        )
    if kind == "oom":
        return (
            f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total "
            f"capacity of {total_gib:.2f} GiB of which 1.25 MiB is free. Including non-PyTorch memory, this "
            f"process has {total_gib - 0.01:.2f} GiB memory in use. Of the allocated memory "
            f"{total_gib - 0.4:.2f} GiB is allocated by PyTorch, and 0.19 GiB is reserved by PyTorch but "
            "unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
        )
    if kind == "gated":
        url = f"https://huggingface.co/{cfg.model}/resolve/main/config.json"
        if environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN"):
            access = (
                f"Access to model {cfg.model} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{cfg.model} to ask for access."
            )
            status = "403 Client Error"
        else:
            access = (
                f"Access to model {cfg.model} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            status = "401 Client Error"
        return (
            f"OSError: You are trying to access a gated repo.\nMake sure to have access to it at "
            f"https://huggingface.co/{cfg.model}.\n{status}. (Request ID: Root=1-mock)\n\n"
            f"Cannot access gated repo for url {url}.\n{access}"
        )
    desired = total_gib * cfg.gpu_memory_utilization
    return (
        f"ValueError: Free memory on device ({desired * 0.75:.2f}/{total_gib:.2f} GiB) on startup is less "
        f"than desired GPU memory utilization ({cfg.gpu_memory_utilization}, {desired:.2f} GiB). "
        "Decrease GPU memory utilization or reduce GPU memory used by other processes."
    )


def stream_chunks(response: dict[str, Any], chat: bool, usage: bool) -> list[dict[str, Any]]:
    """``response`` (a completion or chat completion) as vLLM's OpenAI server streams it (``stream: true``): a
    chunk per word, then an empty one with the finish reason; with ``stream_options.include_usage`` every chunk
    carries ``"usage": null`` and a last chunk with no choices carries the usage. The text chunks come first, the
    usage one (if any) last: a streamer paces the former."""
    choice = response["choices"][0]
    text = choice["message"]["content"] if chat else choice["text"]
    pieces = [(" " if i or not chat else "") + word for i, word in enumerate(text.split())]
    base = {k: response[k] for k in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk" if chat else "text_completion"
    extra: dict[str, Any] = {"usage": None} if usage else {}
    chunks = []
    for i, piece in enumerate([*pieces, ""]):
        finish = choice["finish_reason"] if i == len(pieces) else None
        body = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
        chunks.append({**base, "choices": [{**body, "logprobs": None, "finish_reason": finish}], **extra})
    if usage:
        chunks.append({**base, "choices": [], "usage": response["usage"]})
    return chunks
