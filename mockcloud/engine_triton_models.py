"""Mock Triton's model repository: what tritonserver concludes about each model folder, its status table, and its
check of an inference request against a model's inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockcloud.engine_common import first, parse_pbtxt

BACKENDS = {"python", "onnxruntime", "tensorrt", "pytorch", "tensorflow", "openvino", "fil", "dali", "identity"}
PLATFORMS = {
    "onnxruntime_onnx": "onnxruntime",
    "tensorrt_plan": "tensorrt",
    "pytorch_libtorch": "pytorch",
    "tensorflow_savedmodel": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
    "ensemble": "ensemble",
}


@dataclass
class Model:
    name: str
    state: str = "LOADING"  # LOADING | READY | UNAVAILABLE
    reason: str = ""
    versions: list[str] = field(default_factory=list)
    platform: str = ""
    max_batch_size: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def _tensors(config: dict[str, list[Any]], kind: str, batch: int) -> list[dict[str, Any]]:
    found = []
    for tensor in config.get(kind, []):
        dims = [int(d) for d in tensor.get("dims", [])]
        datatype = str(first(tensor, "data_type", "TYPE_FP32")).removeprefix("TYPE_")
        found.append({"name": first(tensor, "name", ""), "datatype": datatype, "shape": ([-1] if batch else []) + dims})
    return found


def load_model(folder: Path, fail: str | None) -> Model:
    """What tritonserver concludes about one model directory."""
    model = Model(folder.name)
    where = f"/models/{folder.name}/config.pbtxt"
    versions = sorted((v.name for v in folder.iterdir() if v.is_dir() and v.name.isdigit()), key=int)
    model.versions = [v for v in versions if not v.startswith("0")] or ["1"]
    try:
        config = parse_pbtxt((folder / "config.pbtxt").read_text())
    except FileNotFoundError:
        return unavailable(model, f"Invalid argument: unable to find a config.pbtxt for '{model.name}' at {where}")
    except ValueError as exc:
        return unavailable(model, f"Internal: failed to read text proto from {where}: {exc}")
    name = first(config, "name", model.name)
    if name != model.name:
        return unavailable(model, f"Invalid argument: model name '{name}' in {where} does not match the directory")
    platform = first(config, "platform", "")
    backend = first(config, "backend", "") or PLATFORMS.get(platform, "")
    if backend not in BACKENDS and backend != "ensemble":
        return unavailable(
            model,
            f"Invalid argument: unable to find backend library for backend '{backend}', try specifying runtime "
            "on the model configuration.",
        )
    if not any(v.isdigit() and not v.startswith("0") for v in versions):
        return unavailable(
            model,
            f"Internal: failed to load model '{model.name}': at least one version must be available under the "
            f"version policy of model '{model.name}'",
        )
    if fail in (model.name, "*"):
        return unavailable(model, f"Internal: Stub process '{model.name}_0_0' is not healthy.")
    model.platform = platform or backend
    model.max_batch_size = int(first(config, "max_batch_size", "0"))
    model.inputs = _tensors(config, "input", model.max_batch_size)
    model.outputs = _tensors(config, "output", model.max_batch_size)
    model.config = {k: v[0] if len(v) == 1 and k not in ("input", "output") else v for k, v in config.items()}
    model.versions = model.versions[-1:]  # default version policy: latest 1
    model.state = "READY"
    return model


def unavailable(model: Model, reason: str) -> Model:
    model.state, model.reason = "UNAVAILABLE", reason
    return model


def model_table(models: list[Model]) -> str:
    rows = [("Model", "Version", "Status")] + [
        (m.name, m.versions[-1], m.state if m.state == "READY" else f"UNAVAILABLE: {m.reason}") for m in models
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule, "| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)) + " |", rule]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows[1:]]
    return "\n".join([*lines, rule])


def _elements(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _flat(data: Any) -> list[Any]:
    """The JSON ``data`` field flattened (row-major nested lists are allowed, as in Triton's HTTP frontend)."""
    if isinstance(data, list):
        return [x for item in data for x in _flat(item)]
    return [data]


def input_problem(model: Model, sent: list[dict[str, Any]], given: list[dict[str, Any]]) -> str | None:
    """Triton's check of an inference request against the model's inputs: count, datatype, shape, data size.
    Messages as Triton's core words them (src/infer_request.cc); None when the request is well formed."""
    rid = "[request id: <id_unknown>] "
    wanted = [t["name"] for t in model.inputs]
    if len(sent) != len(wanted):
        got = [str(i.get("name")) for i in sent]
        return (
            f"{rid}expected {len(wanted)} inputs but got {len(sent)} inputs for model '{model.name}'. Got input(s) "
            f"{got}, but missing required input(s) {[w for w in wanted if w not in got]}. Please provide all "
            "required input(s)."
        )
    for spec, tensor in zip(model.inputs, given, strict=True):
        if tensor.get("datatype") != spec["datatype"]:
            return (
                f"{rid}inference input '{spec['name']}' data-type is '{tensor.get('datatype')}', but model "
                f"'{model.name}' expects '{spec['datatype']}'"
            )
        shape = tensor.get("shape")
        expected = list(spec["shape"])
        ok = isinstance(shape, list) and len(shape) == len(expected) and all(isinstance(d, int) for d in shape)
        ok = ok and all(e == -1 and d >= 1 or d == e for d, e in zip(shape, expected, strict=True))
        ok = ok and not (model.max_batch_size and shape and shape[0] > model.max_batch_size)
        if not ok:
            got = ",".join(str(d) for d in shape) if isinstance(shape, list) else shape
            return (
                f"{rid}unexpected shape for input '{spec['name']}' for model '{model.name}'. Expected "
                f"[{','.join(str(d) for d in expected)}], got [{got}]. "
            )
        if len(_flat(tensor.get("data"))) != _elements(shape):
            return "Unable to parse 'data': Shape does not match true shape of 'data' field"
    return None
