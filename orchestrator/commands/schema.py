"""`orchestrator schema`: the deployment config's JSON Schema, generated from the pydantic models in config.py.

Durations (`30m`, `1h30m`, `90s` or a number of seconds) are parsed by a before-validator, so pydantic alone would
type them as plain numbers and an editor would flag `timeout: 30m`; here they become "a number >= 0, or a string
such as 30m".
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from orchestrator.durations import parse_duration

DRAFT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "orchestrator deployment config"
# The strings parse_duration accepts: a plain number, or one or more <number><unit> parts (ms, s, m, h).
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h))+)\s*$"


class _ConfigSchema(GenerateJsonSchema):
    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        if schema["function"].get("function") is parse_duration:
            return {
                "anyOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "string", "pattern": DURATION_PATTERN},
                ],
                "description": "a duration: seconds, or e.g. 90s, 30m, 1h30m",
            }
        return super().function_before_schema(schema)


def _engine_by_kind(union: dict[str, Any]) -> dict[str, Any]:
    """pydantic's discriminated union (oneOf + an OpenAPI `discriminator`, which JSON Schema validators ignore) as
    if/then/else on `kind`: an error inside the engine is reported at its key, not as "matches none of 3", and a
    missing kind means vllm, as the loader reads it."""
    refs: dict[str, str] = dict(union["discriminator"]["mapping"])
    chosen: dict[str, Any] = {"$ref": refs.pop("vllm")}
    for kind, ref in sorted(refs.items(), reverse=True):
        chosen = {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"$ref": ref},
            "else": chosen,
        }
    return {"title": "Engine", "description": "engine.kind: vllm (default), triton or tfserving", **chosen}


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a deployment config file."""
    from orchestrator.config import NAME_RE, DeploymentConfig

    body = DeploymentConfig.model_json_schema(schema_generator=_ConfigSchema, mode="validation")
    body.pop("title", None)
    body["properties"]["name"]["pattern"] = NAME_RE.pattern  # checked by a field validator, so not in the schema
    body["properties"]["engine"] = _engine_by_kind(body["properties"]["engine"])
    return {
        "$schema": DRAFT,
        "title": TITLE,
        "description": "A deployment config for `orchestrator deploy` (see README, 'Config reference').",
        **body,
    }
