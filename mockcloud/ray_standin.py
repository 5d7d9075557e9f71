"""A stand-in for Ray Serve LLM's app on CPU: `import_path: mockcloud.ray_standin:build_app`, same args shape.

``ray.serve.llm`` cannot be imported without vLLM (and vLLM needs a GPU), so CPU tests deploy this instead through
the very Serve config file the orchestrator writes. Like ``build_openai_app`` it builds an ingress deployment
(``OpenAiIngress``) that serves ``/v1/models`` and ``/v1/completions`` (streamed too) and routes each request, through a
deployment handle, to an ``LLMServer:<model_id>`` deployment whose options come from the LLMConfig's
``deployment_config`` (autoscaling_config, max_ongoing_requests). Each completion names the Ray node (id, address)
and host of the ``LLMServer`` replica that answered, so a test can see requests reach replicas on every node.
``accelerator_type`` and ``engine_kwargs`` are accepted and echoed in ``/v1/models``, not acted on (no GPU, no vLLM).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mockcloud.engine_vllm_text import stream_chunks


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class LLMServer:
    """One model replica: answers a completion with where it ran."""

    def __init__(self, llm_config: dict[str, Any]) -> None:
        import ray

        self.model_id = str(llm_config["model_loading_config"]["model_id"])
        ctx = ray.get_runtime_context()
        self.where = {
            "node_id": ctx.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "hostname": socket.gethostname(),
            "mock_host": os.environ.get("MOCKHOST_NAME", ""),
            "pid": os.getpid(),
        }

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A canned completion: max_tokens tokens with ignore_eos (as vLLM), else at most 8."""
        max_tokens = int(body.get("max_tokens") or 16)
        tokens = max(1, max_tokens if body.get("ignore_eos") else min(max_tokens, 8))
        return {
            "id": f"cmpl-standin-{time.monotonic_ns()}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": [{"index": 0, "text": " ok" * tokens, "logprobs": None, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": 1 + tokens},
            "served_by": self.where,
        }


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class OpenAiIngress:
    """The OpenAI routes, as Ray Serve LLM's ingress serves them."""

    def __init__(self, servers: dict[str, DeploymentHandle], cards: dict[str, dict[str, Any]]) -> None:
        self.servers = servers
        self.cards = cards

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path == "/v1/models":
            data = [{"id": mid, "object": "model", "owned_by": "organization", **c} for mid, c in self.cards.items()]
            return JSONResponse({"object": "list", "data": data})
        if request.method == "POST" and path == "/v1/completions":
            body = await request.json()
            model = body.get("model")
            if model not in self.servers:
                msg = f"The model `{model}` does not exist."
                return JSONResponse({"object": "error", "message": msg, "type": "NotFoundError", "code": 404}, 404)
            done = await self.servers[model].complete.remote(body)
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                events = [f"data: {json.dumps(c)}\n\n" for c in stream_chunks(done, False, usage)]
                return StreamingResponse(iter([*events, "data: [DONE]\n\n"]), media_type="text/event-stream")
            return JSONResponse(done)
        return JSONResponse({"object": "error", "message": "Not Found", "code": 404}, 404)


def build_app(args: dict[str, Any]) -> Any:
    """``args`` as build_openai_app takes them: ``{"llm_configs": [LLMConfig as a dict, ...]}``."""
    servers: dict[str, Any] = {}
    cards: dict[str, dict[str, Any]] = {}
    for cfg in args["llm_configs"]:
        model_id = str(cfg["model_loading_config"]["model_id"])
        options = dict(cfg.get("deployment_config") or {})
        deployment = LLMServer.options(name=f"LLMServer:{model_id}", **options)
        servers[model_id] = deployment.bind(cfg)
        cards[model_id] = {
            "metadata": {
                "model_source": cfg["model_loading_config"].get("model_source"),
                "accelerator_type": cfg.get("accelerator_type"),
                "engine_kwargs": cfg.get("engine_kwargs") or {},
            }
        }
    return OpenAiIngress.bind(servers, cards)
