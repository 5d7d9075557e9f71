"""Prometheus scrape configuration for deployed model servers: pure text-in, text-out helpers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.errors import MonitoringError
from orchestrator.yamlpos import compose, safe_load

DEFAULT_GLOBAL: dict[str, str] = {"scrape_interval": "15s"}
DEFAULT_METRICS_PATH = "/metrics"
DEFAULT_SCHEME = "http"
JOB_PREFIX = "orchestrator-"

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Prometheus duration: units in descending order, at least one, e.g. "15s", "1m30s", "500ms".
_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_JOB_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: where the metrics are (``host:port`` targets, path, scheme) and extra labels."""

    job: str
    targets: tuple[str, ...]
    metrics_path: str = DEFAULT_METRICS_PATH
    scheme: str = DEFAULT_SCHEME
    labels: tuple[tuple[str, str], ...] = ()
    scrape_interval: str | None = None


def job_name(deployment: str) -> str:
    """The scrape job name for a deployment: ``orchestrator-<deployment>``, unsafe characters as ``-``."""
    cleaned = _JOB_UNSAFE.sub("-", deployment.strip()).strip("-.")
    if not cleaned:
        raise MonitoringError(
            f"cannot derive a Prometheus job name from deployment name {deployment!r}",
            "Use a deployment name with letters, digits, '-', '_' or '.'.",
        )
    return JOB_PREFIX + cleaned


def validate_target(target: ScrapeTarget) -> None:
    """Reject what ``promtool check config`` would reject later, with a clearer message."""
    hint = "Targets are 'host:port' with no scheme or path; set metrics_path and scheme separately."
    if not target.job.strip():
        raise MonitoringError("scrape job name is empty", "Use job_name(<deployment>) to build one.")
    if not target.targets:
        raise MonitoringError(f"scrape job {target.job!r} has no targets", hint)
    for t in target.targets:
        _check_host_port(target.job, t, hint)
    if not target.metrics_path.startswith("/"):
        raise MonitoringError(
            f"scrape job {target.job!r}: metrics_path {target.metrics_path!r} must start with '/'",
            "For example /metrics or /monitoring/prometheus/metrics.",
        )
    if target.scheme not in ("http", "https"):
        raise MonitoringError(f"scrape job {target.job!r}: scheme {target.scheme!r} must be 'http' or 'https'", None)
    for name, _value in target.labels:
        if not _LABEL_NAME.match(name):
            raise MonitoringError(
                f"scrape job {target.job!r}: {name!r} is not a valid Prometheus label name",
                "Label names match [a-zA-Z_][a-zA-Z0-9_]*.",
            )
    if target.scrape_interval is not None and not _is_duration(target.scrape_interval):
        raise MonitoringError(
            f"scrape job {target.job!r}: scrape_interval {target.scrape_interval!r} is not a duration",
            "Use a duration such as 15s, 1m or 1m30s.",
        )


def _check_host_port(job: str, target: str, hint: str) -> None:
    bad = not target or "://" in target or "/" in target or any(c.isspace() for c in target)
    host, sep, port = target.rpartition(":")
    if not bad:
        bad = not sep or not host or not port.isdigit() or not 0 < int(port) < 65536
    if not bad and ":" in host:  # IPv6 must be bracketed: [::1]:8000
        bad = not (host.startswith("[") and host.endswith("]"))
    if bad:
        raise MonitoringError(f"scrape job {job!r}: {target!r} is not a valid 'host:port' target", hint)


def _is_duration(text: str) -> bool:
    return bool(text) and _DURATION.match(text) is not None and any(ch.isdigit() for ch in text)


def scrape_job_dict(target: ScrapeTarget) -> dict[str, Any]:
    """The ``scrape_configs`` entry for one target, in a fixed key order."""
    validate_target(target)
    job: dict[str, Any] = {"job_name": target.job}
    if target.scrape_interval is not None:
        job["scrape_interval"] = target.scrape_interval
    job["metrics_path"] = target.metrics_path
    job["scheme"] = target.scheme
    group: dict[str, Any] = {"targets": list(target.targets)}
    if target.labels:
        group["labels"] = dict(sorted(target.labels))
    job["static_configs"] = [group]
    return job


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


def file_sd_document(targets: list[ScrapeTarget]) -> str:
    """A file_sd_configs JSON document: one target group per ScrapeTarget, keys sorted, trailing newline.

    Each group carries ``job`` (overriding the referencing job's name), ``__metrics_path__`` when the
    path is not /metrics and ``__scheme__`` when it is not http. ``scrape_interval`` cannot be set
    per target here; use a static job (merge_scrape_job) for that.
    """
    groups: list[dict[str, Any]] = []
    for target in targets:
        validate_target(target)
        labels: dict[str, str] = {"job": target.job}
        labels.update(dict(target.labels))
        if target.metrics_path != DEFAULT_METRICS_PATH:
            labels["__metrics_path__"] = target.metrics_path
        if target.scheme != DEFAULT_SCHEME:
            labels["__scheme__"] = target.scheme
        groups.append({"targets": list(target.targets), "labels": labels})
    return json.dumps(groups, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_config_argv(config_path: str) -> list[str]:
    """The promtool command that validates a config file (and the file_sd files it references)."""
    return ["promtool", "check", "config", config_path]


def parse_promtool_output(returncode: int, stdout: str, stderr: str) -> tuple[bool, list[str]]:
    """Read ``promtool check ...`` output: (ok, messages).

    Messages are the ``FAILED: <reason>`` and ``WARNING: <text>`` lines, stripped, in output order
    (stdout first). A reason promtool spreads over several lines (YAML unmarshal errors) is joined
    into one. When promtool fails without a FAILED line (usage error, crash), the last non-empty line
    of its output is reported as the reason, so there is always something to show.
    """
    messages: list[str] = []
    failed = False
    for stream in (stdout, stderr):
        current: list[str] | None = None  # the FAILED message still collecting continuation lines
        for line in stream.splitlines():
            text = line.strip()
            if text.startswith(("FAILED:", "WARNING:")):
                failed = failed or text.startswith("FAILED:")
                current = [text] if text.startswith("FAILED:") else None
                messages.append(text)
            elif current is not None and text and not text.startswith(("SUCCESS:", "Checking ")):
                current.append(text)
                messages[-1] = " ".join(current)
            else:
                current = None
    ok = returncode == 0 and not failed
    if not ok and not failed:
        tail = [ln.strip() for ln in (stderr.strip() or stdout.strip()).splitlines() if ln.strip()]
        messages.append(f"FAILED: {tail[-1] if tail else f'promtool exited {returncode}'}")
    return ok, messages


def promtool_error(config_path: str, messages: list[str]) -> MonitoringError:
    """The error to raise when promtool rejected a config, reasons in the message, details below."""
    reasons = [m.removeprefix("FAILED:").strip() for m in messages if m.startswith("FAILED:")]
    first = reasons[0] if reasons else "unknown reason"
    return MonitoringError(
        f"promtool rejected {config_path}: {first}",
        f"Fix the reported problem; 'promtool check config {config_path}' shows it again.",
        details="\n".join(messages) or None,
    )


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
