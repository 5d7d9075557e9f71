"""prometheus.yml as text: our scrape job blocks and rule_files lines added or removed, every other byte kept.

A job is written between ``# BEGIN <job>`` / ``# END <job>`` comment lines inside scrape_configs, indented like the
other jobs; where the layout does not allow a local edit (flow-style lists, a top level that is not a block
mapping) the file is re-serialised instead: settings kept, comments not. Deterministic. What a job holds is
monitoring.py's (scrape_job_dict).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from orchestrator.errors import MonitoringError
from orchestrator.monitoring import DEFAULT_GLOBAL, ScrapeTarget, scrape_job_dict
from orchestrator.yamlpos import compose, safe_load


class _Dumper(yaml.SafeDumper):
    """Block style with indented lists and no anchors, so the output reads like a hand-written file."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(doc: dict[str, Any] | list[Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def _load(existing_yaml: str | None) -> dict[str, Any]:
    """Parse prometheus.yml into a dict; an empty or comment-only file gives the minimal config."""
    hint = "Fix or move the file aside; the orchestrator only edits a valid Prometheus config."
    if existing_yaml is None or not existing_yaml.strip():
        return {"global": dict(DEFAULT_GLOBAL), "scrape_configs": []}
    try:
        doc = safe_load(existing_yaml)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "parse error"
        raise MonitoringError(
            f"existing Prometheus config is not valid YAML{where}: {problem}", hint, details=str(exc)
        ) from exc
    if doc is None:
        return {"global": dict(DEFAULT_GLOBAL), "scrape_configs": []}
    if not isinstance(doc, dict):
        raise MonitoringError(f"existing Prometheus config is a {type(doc).__name__}, not a mapping of settings", hint)
    configs = doc.get("scrape_configs")
    if configs is None:
        doc["scrape_configs"] = []
    elif not isinstance(configs, list):
        raise MonitoringError(
            f"'scrape_configs' in the existing Prometheus config is a {type(configs).__name__}, not a list",
            hint,
        )
    return doc


def _is_job(entry: object, job: str) -> bool:
    return isinstance(entry, dict) and entry.get("job_name") == job


def begin_marker(job: str) -> str:
    return f"# BEGIN {job} (managed by orchestrator: replaced by deploy, removed by teardown)"


def end_marker(job: str) -> str:
    return f"# END {job}"


def _job_block(job: dict[str, Any], indent: str) -> list[str]:
    """Our job as a delimited block of sequence-item lines, indented like the file's other items."""
    body = _dump([job]).splitlines(keepends=True)
    name = str(job["job_name"])
    return [f"{indent}{begin_marker(name)}\n", *(indent + line for line in body), f"{indent}{end_marker(name)}\n"]


def _last_line(node: yaml.Node) -> int:
    """The last line a node's own text is on (a block mapping's end mark runs past trailing comments)."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1])
    mark = node.end_mark
    return mark.line - 1 if mark.column == 0 and mark.line > node.start_mark.line else int(mark.line)


class _Layout(Exception):
    """The file's layout does not allow a local text edit; the caller falls back to re-serialising."""


def _item_span(lines: list[str], item: yaml.Node) -> tuple[int, int, str]:
    """(first line, last line, indent of the dash) of one block-sequence item."""
    first = int(item.start_mark.line)
    prefix = lines[first][: item.start_mark.column]
    if prefix.strip() == "" and first > 0 and lines[first - 1].strip() == "-":
        first -= 1
        prefix = lines[first].rstrip("\r\n")
    if prefix.strip() != "-":
        raise _Layout("sequence item does not start with '- '")
    return first, _last_line(item), prefix[: prefix.index("-")]


def _top_level(text: str) -> tuple[yaml.Node | None, tuple[yaml.Node, yaml.Node] | None]:
    root = compose(text)
    if root is None:
        return None, None
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise _Layout("top level is not a block mapping")
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "scrape_configs":
            return root, (key, value)
    return root, None


def _our_spans(lines: list[str], seq: yaml.SequenceNode, job: str) -> list[tuple[int, int, str]]:
    """Line spans of every item named ``job``, each widened to its BEGIN/END marker lines when present."""
    spans = []
    for item in seq.value:
        if not isinstance(item, yaml.MappingNode):
            continue
        names = [v.value for k, v in item.value if isinstance(k, yaml.ScalarNode) and k.value == "job_name"]
        if names != [job]:
            continue
        first, last, indent = _item_span(lines, item)
        if first > 0 and lines[first - 1].strip().startswith(f"# BEGIN {job} "):
            first -= 1
        if last + 1 < len(lines) and lines[last + 1].strip() == end_marker(job):
            last += 1
        spans.append((first, last, indent))
    return spans


def _edit(existing: str, job: str, new_job: dict[str, Any] | None) -> str:
    """Replace (new_job given) or remove our job by editing lines; everything else stays byte-identical."""
    if not existing.strip():
        existing = ""
    root, entry = _top_level(existing)
    lines = existing.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if root is None or entry is None:
        if new_job is None:
            return existing
        head = "" if root is not None else _dump({"global": dict(DEFAULT_GLOBAL)})
        return "".join(lines) + head + "scrape_configs:\n" + "".join(_job_block(new_job, "  "))
    key, seq = entry
    empty = isinstance(seq, yaml.ScalarNode) and seq.tag == "tag:yaml.org,2002:null"
    empty = empty or (isinstance(seq, yaml.SequenceNode) and seq.flow_style and not seq.value)
    if empty:
        if new_job is None:
            return existing
        at = int(key.start_mark.line)
        if seq.start_mark.line != at or seq.end_mark.line != at:
            raise _Layout("empty scrape_configs spread over lines")
        line = lines[at]
        lines[at] = line[: seq.start_mark.column].rstrip() + line[seq.end_mark.column :]
        lines[at + 1 : at + 1] = _job_block(new_job, " " * (key.start_mark.column + 2))
        return "".join(lines)
    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style:
        raise _Layout("scrape_configs is not a block sequence")
    spans = _our_spans(lines, seq, job)
    if new_job is None and not spans:
        return existing
    block: list[str] = []
    if new_job is not None:
        indent = spans[0][2] if spans else _item_span(lines, seq.value[-1])[2]
        block = _job_block(new_job, indent)
    if not spans:
        at = _item_span(lines, seq.value[-1])[1] + 1
        if at < len(lines) and lines[at].lstrip().startswith("# END "):
            at += 1  # after the last job's own END marker, not inside its block
        lines[at:at] = block
        return "".join(lines)
    for n, (first, last, _indent) in reversed(list(enumerate(spans))):
        lines[first : last + 1] = block if n == 0 else []
    return "".join(lines)


def _edited_or_dumped(existing: str | None, job: str, new_job: dict[str, Any] | None) -> str:
    """The text edit when it gives exactly the intended config; else the whole file re-serialised."""
    doc = _load(existing)
    kept = [entry for entry in doc["scrape_configs"] if not _is_job(entry, job)]
    if new_job is not None:
        configs = doc["scrape_configs"]
        at = next((i for i, e in enumerate(configs) if _is_job(e, job)), None)
        before = [e for e in configs[:at] if not _is_job(e, job)] if at is not None else kept
        kept = [*before, new_job, *kept[len(before) :]]
    expected = {**doc, "scrape_configs": kept}
    try:
        text = _edit(existing or "", job, new_job)
        if _load(text) == expected:
            return text
    except (_Layout, yaml.YAMLError, MonitoringError):
        pass
    return _dump(expected)


def merge_scrape_job(existing_yaml: str | None, target: ScrapeTarget) -> str:
    """Add the target's job to prometheus.yml, replacing a job of the same name; other content is kept.

    The job is written as a block between ``# BEGIN <job>`` / ``# END <job>`` comment lines inside
    scrape_configs, indented like the other jobs; every other byte of the file (comments, quoting, order)
    stays as it was. Where the layout does not allow a local edit (flow-style lists, a top level that is
    not a block mapping), the file is re-serialised instead: settings kept, comments not. Deterministic.
    """
    return _edited_or_dumped(existing_yaml, target.job, scrape_job_dict(target))


def remove_scrape_job(existing_yaml: str, job: str) -> tuple[str, bool]:
    """Remove every job named ``job`` (and its marker lines); returns (yaml, removed). Input text unchanged
    when nothing matched; otherwise only our lines go (re-serialised only where the layout needs it)."""
    doc = _load(existing_yaml)
    if not any(_is_job(entry, job) for entry in doc["scrape_configs"]):
        return existing_yaml, False
    return _edited_or_dumped(existing_yaml, job, None), True


# -- rule_files: the deployment's rules file, referenced from prometheus.yml ----------------------------------------


def _rule_files(doc: dict[str, Any]) -> list[Any]:
    files = doc.get("rule_files")
    if files is None:
        return []
    if not isinstance(files, list):
        raise MonitoringError(
            f"'rule_files' in the existing Prometheus config is a {type(files).__name__}, not a list",
            "Fix or move the file aside; the orchestrator only edits a valid Prometheus config.",
        )
    return files


def _edit_rule_files(existing: str, path: str, add: bool) -> str:
    """Add ``- path`` after the last rule_files item (or a new rule_files key), or drop its line; text edit."""
    root, _entry = _top_level(existing)
    lines = existing.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    entry = None
    if isinstance(root, yaml.MappingNode):
        entry = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "rule_files"), None)
    item = f"- {json.dumps(path)}\n"
    if entry is None:
        if not add:
            return existing
        return "".join(lines) + "rule_files:\n  " + item
    if isinstance(entry, yaml.SequenceNode) and entry.flow_style and entry.start_mark.line == entry.end_mark.line:
        # One-line flow list (``rule_files: [alerts.yml]``): edit it in place, the others' spelling kept.
        at, line = int(entry.start_mark.line), lines[int(entry.start_mark.line)]
        items = [
            line[n.start_mark.column : n.end_mark.column]
            for n in entry.value
            if not (isinstance(n, yaml.ScalarNode) and n.value == path)
        ]
        items += [json.dumps(path)] if add else []
        lines[at] = line[: entry.start_mark.column] + "[" + ", ".join(items) + "]" + line[entry.end_mark.column :]
        return "".join(lines)
    if not isinstance(entry, yaml.SequenceNode) or entry.flow_style or not entry.value:
        raise _Layout("rule_files is not a non-empty block sequence")
    if add:
        _first, last, indent = _item_span(lines, entry.value[-1])
        lines[last + 1 : last + 1] = [indent + item]
        return "".join(lines)
    kept = 0
    for node in reversed(entry.value):
        if isinstance(node, yaml.ScalarNode) and node.value == path:
            first, last, _indent = _item_span(lines, node)
            del lines[first : last + 1]
        else:
            kept += 1
    key_line = next(int(k.start_mark.line) for k, v in root.value if v is entry)  # type: ignore[union-attr]
    if not kept and lines[key_line].strip() == "rule_files:":
        del lines[key_line]
    return "".join(lines)


def _rule_files_edited(existing: str | None, path: str, add: bool) -> str:
    doc = _load(existing)
    files = [f for f in _rule_files(doc) if f != path]
    if add:
        files.append(path)
    expected = dict(doc)
    if files:
        expected["rule_files"] = files
    else:
        expected.pop("rule_files", None)
    try:
        text = _edit_rule_files(existing or "", path, add)
        got = _load(text)
        if not files and got.get("rule_files") == []:
            got.pop("rule_files")
        if got == expected:
            return text
    except (_Layout, yaml.YAMLError, MonitoringError):
        pass
    return _dump(expected)


def add_rule_file(existing_yaml: str | None, path: str) -> str:
    """Reference ``path`` from prometheus.yml's rule_files (once); every other byte kept where the layout allows."""
    doc = _load(existing_yaml)
    if path in _rule_files(doc):
        return existing_yaml or _dump(doc)
    return _rule_files_edited(existing_yaml, path, add=True)


def remove_rule_file(existing_yaml: str, path: str) -> tuple[str, bool]:
    """Drop ``path`` from rule_files; returns (yaml, removed); text unchanged when it was not there."""
    if path not in _rule_files(_load(existing_yaml)):
        return existing_yaml, False
    return _rule_files_edited(existing_yaml, path, add=False), True
