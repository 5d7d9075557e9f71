"""A generic inference request for a Triton model, built from its KServe v2 metadata (for `bench`).

``GET /v2/models/<model>`` lists the inputs with name, datatype and shape; a leading ``-1`` (the batch dimension
when max_batch_size > 0) and any other variable dimension become 1. The request carries zeros of each input's
datatype (``false`` for BOOL, empty strings for BYTES) as the flat row-major ``data`` list the protocol uses, and
is POSTed to ``/v2/models/<model>/infer``; the figures are those of every inference bench (bench.run_inference).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from orchestrator.errors import EngineError

DATATYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
             "FP64", "BF16", "BYTES"}  # fmt: skip


def _zero(datatype: str) -> bool | float | int | str:
    if datatype == "BOOL":
        return False
    if datatype == "BYTES":
        return ""
    return 0.0 if datatype.startswith(("FP", "BF")) else 0


def infer_request(metadata: dict[str, Any]) -> dict[str, Any]:
    """The request body for one inference of the model ``metadata`` describes; EngineError when it cannot be built."""
    model = str(metadata.get("name") or "?")
    inputs = metadata.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise EngineError(f"Triton model {model!r} lists no inputs in its metadata", "bench needs the model's inputs")
    tensors = []
    for spec in inputs:
        name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
        if not isinstance(name, str) or datatype not in DATATYPES or not isinstance(shape, list):
            raise EngineError(f"Triton model {model!r}: cannot read input {json.dumps(spec)[:200]} of its metadata")
        dims = [1 if int(d) < 0 else int(d) for d in shape]
        tensors.append({"name": name, "shape": dims, "datatype": datatype, "data": [_zero(datatype)] * math.prod(dims)})
    return {"inputs": tensors}


def _error(resp: Any) -> str:
    try:
        return str(resp.json()["error"])
    except (ValueError, KeyError, TypeError):
        return str(resp.text)[:200]


def pick_model(client: Any, base: str, listed: Sequence[str]) -> str:
    """The model to benchmark: the first one the config lists, else the first READY one in the repository."""
    if listed:
        return listed[0]
    resp = client.post(f"{base}/repository/index", json={})
    if resp.status_code != 200:
        raise EngineError(f"Triton's repository index answered HTTP {resp.status_code}: {_error(resp)}")
    ready = [str(row["name"]) for row in resp.json() if row.get("state") == "READY"]
    if not ready:
        raise EngineError("Triton has no READY model to benchmark", "check `orchestrator logs NAME`")
    return ready[0]


def prepare(base: str, listed: Sequence[str], timeout: float) -> tuple[str, str, str]:
    """(model, infer URL, request body) for ``base`` (".../v2")."""
    import httpx

    base = base.rstrip("/")
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            model = pick_model(client, base, listed)
            resp = client.get(f"{base}/models/{quote(model, safe='')}")
    except httpx.HTTPError as exc:
        raise EngineError(f"cannot read the Triton model metadata at {base}: {type(exc).__name__}: {exc}") from None
    if resp.status_code != 200:
        raise EngineError(
            f"Triton answered HTTP {resp.status_code} for model {model!r}: {_error(resp)}",
            "is the model loaded? see `orchestrator status NAME`",
        )
    body = json.dumps(infer_request(resp.json()))
    return model, f"{base}/models/{quote(model, safe='')}/infer", body
