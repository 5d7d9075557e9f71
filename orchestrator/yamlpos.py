"""YAML loading that remembers the line of every key, so config errors can name file:line; the one place that
picks PyYAML's parser.

libyaml's parser (PyYAML's C extension, when it is built) is several times faster than the pure-Python one, which
every dry run would otherwise pay for on the config, the playbooks and prometheus.yml. A document it refuses is
parsed again by the pure-Python parser, so a malformed file gets the error (message, line) PyYAML always gave.
"""

from __future__ import annotations

from typing import Any

import yaml

from orchestrator.errors import ConfigError

Loc = tuple[str | int, ...]

# libyaml's parser first where PyYAML was built with it; the pure-Python one last (it also words the errors).
_LOADERS: tuple[type[Any], ...] = ((yaml.CSafeLoader,) if yaml.__with_libyaml__ else ()) + (yaml.SafeLoader,)


def _node_and_data(text: str, *, data: bool) -> tuple[yaml.Node | None, Any]:
    """The document's node tree and, with ``data``, its value built from that tree (one parse, not two)."""
    for n, loader_class in enumerate(_LOADERS, 1):
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            return node, (loader.construct_document(node) if data and node is not None else None)
        except yaml.YAMLError:
            if n == len(_LOADERS):
                raise
        finally:
            loader.dispose()
    raise AssertionError("unreachable: the last loader returns or raises")


def safe_load(text: str) -> Any:
    """``yaml.safe_load``, through the fast parser."""
    return _node_and_data(text, data=True)[1]


def compose(text: str) -> yaml.Node | None:
    """``yaml.compose`` with the safe loader, through the fast parser (nodes with their line/column marks)."""
    return _node_and_data(text, data=False)[0]


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
        node, data = _node_and_data(text, data=True)
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
