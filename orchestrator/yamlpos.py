"""YAML loading that remembers the line of every key, so config errors can name file:line."""

from __future__ import annotations

from typing import Any

import yaml

from orchestrator.errors import ConfigError

Loc = tuple[str | int, ...]


def _walk(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            here: Loc = (*path, key)
            lines[here] = key_node.start_mark.line + 1
            _walk(value_node, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = (*path, i)
            lines[here] = item.start_mark.line + 1
            _walk(item, here, lines)


def load_with_lines(text: str, filename: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML; return (data, {key path: 1-based line}). Malformed YAML → ConfigError with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"malformed YAML: {problem}", "fix the YAML syntax", file=filename, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", file=filename) from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def nearest_line(lines: dict[Loc, int], loc: Loc) -> int | None:
    """Line of the deepest existing prefix of ``loc`` (a missing key points at its parent)."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1 if lines else None
