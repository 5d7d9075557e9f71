"""UpCloud via the `upctl` CLI: argv builders, JSON output parsers and failure mapping (no subprocesses)."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import CapacityError, ConfigError, CredentialsError, OrchestratorError, ProviderError
from orchestrator.providers.base import CreateSpec, PlanInfo, ServerInfo, TemplateInfo

MIN_UPCTL_VERSION = "3.21.0"  # first release with `zone devices`
_SNIPPET = 200


class ServerNotFound(ProviderError):
    """The named server does not exist (upctl could not resolve it, or the API says it is gone)."""

    not_found = True


# --------------------------------------------------------------------------------------------- argv


def _check_name(what: str, value: str) -> str:
    if not value or value.startswith("-") or "\n" in value:
        raise ConfigError(f"invalid {what} {value!r} for upctl", f"give a non-empty {what} not starting with '-'")
    return value


def _ssh_keys_value(keys: Sequence[str]) -> str:
    """Join keys the way upctl's string-slice flag splits them (one CSV record)."""
    for key in keys:
        if "\n" in key.strip():
            raise ConfigError("an SSH public key must be a single line", "pass one key per entry, or a file path")
        literal = re.match(r"^\S+\s+AAAA", key.strip())
        if literal and not key.strip().startswith("ssh-"):
            raise ConfigError(
                f"upctl only accepts literal SSH keys that start with 'ssh-' (got {key.strip()[:24]}...)",
                "write the key to a file and list the file path instead",
            )
    items = [k.strip() for k in keys if k.strip()]
    if not items:
        return ""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(items)
    return buf.getvalue()


@dataclass(frozen=True)
class UpctlCommands:
    """Builds upctl argv lists. Secrets never appear here: upctl reads them from its environment."""

    binary: str = "upctl"

    def _json(self, *args: str) -> list[str]:
        return [self.binary, *args, "-o", "json"]

    def version(self) -> list[str]:
        return self._json("version")

    def account(self) -> list[str]:
        return self._json("account", "show")

    def plans(self) -> list[str]:
        return self._json("server", "plans")

    def zones(self) -> list[str]:
        return self._json("zone", "list")

    def zone_devices(self) -> list[str]:
        return self._json("zone", "devices")

    def templates(self) -> list[str]:
        # Plain `--template` would list only private templates; `--public` switches to UpCloud's OS images.
        return self._json("storage", "list", "--public", "--template")

    def create(self, spec: CreateSpec) -> list[str]:
        if spec.os_storage_size <= 0:
            raise ConfigError(
                f"os_storage_size must be a positive number of GiB (got {spec.os_storage_size})",
                "GPU plans report storage_size 0, so the OS disk size has to be given explicitly",
            )
        args = [
            "server", "create",
            "--hostname", _check_name("hostname", spec.hostname),
            "--title", spec.title or spec.hostname,
            "--zone", _check_name("zone", spec.zone),
            "--plan", _check_name("plan", spec.plan),
            "--os", _check_name("os template", spec.os),
            "--os-storage-size", str(spec.os_storage_size),
        ]  # fmt: skip
        if ssh_keys := _ssh_keys_value(spec.ssh_keys):
            args += ["--ssh-keys", ssh_keys]
        for key, value in spec.labels:
            if not key or "=" in key:
                raise ConfigError(f"invalid label key {key!r}", "label keys must be non-empty and contain no '='")
            args += ["--label", f"{key}={value}"]
        if spec.wait:
            args.append("--wait")
        if spec.user_data is not None:
            args += ["--user-data", spec.user_data]
        return self._json(*args)

    def show(self, server: str) -> list[str]:
        return self._json("server", "show", _check_name("server", server))

    def list_servers(self) -> list[str]:
        return self._json("server", "list")

    def stop(self, server: str, wait: bool = True) -> list[str]:
        args = ["server", "stop", _check_name("server", server), "--type", "soft"]
        return self._json(*args, *(["--wait"] if wait else []))

    def delete(self, server: str, delete_storages: bool = True) -> list[str]:
        # Prints nothing on success; `-o json` still makes a failure print its {"error": ...} object.
        args = ["server", "delete", _check_name("server", server)]
        return self._json(*args, *(["--delete-storages"] if delete_storages else []))

    def start(self, server: str) -> list[str]:
        return self._json("server", "start", _check_name("server", server))


# ------------------------------------------------------------------------------------------ parsing


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def _load(stdout: str, what: str) -> Any:
    if not stdout.strip():
        raise ProviderError(
            f"upctl printed no JSON for {what}",
            "the upctl call must include `-o json`; check `upctl version` works",
        )
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            f"upctl printed malformed JSON for {what} ({exc.msg}): {_snippet(stdout)!r}",
            f"check that `upctl` is UpCloud's CLI, version {MIN_UPCTL_VERSION} or newer",
        ) from exc


def _shape_error(what: str, data: Any) -> ProviderError:
    return ProviderError(
        f"unexpected JSON shape from upctl for {what}: {_snippet(json.dumps(data))!r}",
        f"upgrade upctl to {MIN_UPCTL_VERSION} or newer",
    )


def _int(value: Any) -> int:
    """Plan JSON has real numbers; server JSON has numeric strings ("8")."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def parse_plans(stdout: str) -> list[PlanInfo]:
    """`server plans -o json`: a bare array (v3.9+) or the older ``{"plans": [...]}``."""
    data = _load(stdout, "server plans")
    if isinstance(data, dict) and isinstance(data.get("plans"), list):
        data = data["plans"]
    if not isinstance(data, list):
        raise _shape_error("server plans", data)
    return [
        PlanInfo(
            name=_str(p.get("name")),
            cores=_int(p.get("core_number")),
            memory_mib=_int(p.get("memory_amount")),
            storage_size=_int(p.get("storage_size")),
            gpu_amount=_int(p.get("gpu_amount")),
            gpu_model=_str(p.get("gpu_model")),
        )
        for p in _dicts(data)
        if _str(p.get("name"))
    ]


def select_plan(plans: Sequence[PlanInfo], pattern: str) -> PlanInfo:
    """Exact plan name first, else a full-match regex that must match exactly one plan."""
    for plan in plans:
        if plan.name == pattern:
            return plan
    try:
        rx: re.Pattern[str] | None = re.compile(pattern)
    except re.error:
        rx = None
    matches = [p for p in plans if rx is not None and rx.fullmatch(p.name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(p.name for p in matches)
        raise ProviderError(
            f"plan pattern {pattern!r} matches {len(matches)} plans: {names}",
            "set the plan to one exact name from that list",
        )
    gpu_names = [p.name for p in plans if p.is_gpu]
    close = difflib.get_close_matches(pattern, gpu_names, n=5, cutoff=0.4) or sorted(gpu_names)[:8]
    raise ProviderError(
        f"no UpCloud plan is named or matches {pattern!r}",
        f"GPU plans include: {', '.join(close)}" if close else "`upctl server plans` lists no GPU plans",
    )


def parse_zones(stdout: str) -> list[str]:
    """`zone list -o json` → zone ids. The key is singular: ``{"zone": [...]}``."""
    data = _load(stdout, "zone list")
    if isinstance(data, dict):
        data = data.get("zone", data.get("zones"))
    if not isinstance(data, list):
        raise _shape_error("zone list", data)
    return [_str(z.get("id")) for z in _dicts(data) if _str(z.get("id"))]


def parse_zone_devices(stdout: str) -> dict[str, dict[str, int]]:
    """`zone devices -o json` → {zone: {gpu plan: amount available}} (zones without devices map to {})."""
    data = _load(stdout, "zone devices")
    if not isinstance(data, dict):
        raise _shape_error("zone devices", data)
    result: dict[str, dict[str, int]] = {}
    for zone, entry in data.items():
        gpu_plans = entry.get("gpu_plans") if isinstance(entry, dict) else None
        plans = gpu_plans if isinstance(gpu_plans, dict) else {}
        result[zone] = {name: _int(info.get("amount")) if isinstance(info, dict) else 0 for name, info in plans.items()}
    return result


def check_zone(zones: Sequence[str], zone: str) -> None:
    """Raise when ``zone`` is not one of the zones this account sees."""
    if zone in zones:
        return
    close = difflib.get_close_matches(zone, list(zones), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known zones: {', '.join(sorted(zones))}"
    raise ProviderError(f"UpCloud has no zone {zone!r}", hint + " (GPU servers live in fi-hel2)")


def check_gpu_availability(devices: dict[str, dict[str, int]], zone: str, plan: str) -> None:
    """CapacityError when ``plan`` has no free GPUs in ``zone``; the hint names zones that have some."""
    available = devices.get(zone, {})
    amount = available.get(plan)
    if amount is not None and amount > 0:
        return
    elsewhere = sorted(z for z, plans in devices.items() if z != zone and plans.get(plan, 0) > 0)
    other_plans = sorted(p for p, n in available.items() if n > 0)
    if elsewhere:
        hint = f"{plan} is available in: {', '.join(elsewhere)}"
    elif other_plans:
        hint = f"no zone has {plan} free right now; {zone} has: {', '.join(other_plans)}"
    else:
        hint = "no zone reports free capacity for this plan; try again later or pick another GPU plan"
    reason = "has no free capacity" if amount is not None else "is not offered"
    raise CapacityError(f"GPU plan {plan} {reason} in zone {zone}", hint)


def parse_templates(stdout: str) -> list[TemplateInfo]:
    """`storage list --public --template -o json` → templates (``{"storages": [...]}``)."""
    data = _load(stdout, "storage list")
    if isinstance(data, dict):
        data = data.get("storages")
    if data is None:
        return []
    if not isinstance(data, list):
        raise _shape_error("storage list", data)
    return [
        TemplateInfo(uuid=_str(s.get("uuid")), title=_str(s.get("title")), template_type=_str(s.get("template_type")))
        for s in _dicts(data)
        if _str(s.get("uuid")) and s.get("type", "template") == "template"
    ]


def _one_template(matches: list[TemplateInfo], wanted: str, how: str) -> TemplateInfo:
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{t.title} ({t.uuid})" for t in matches)
    raise ProviderError(
        f"OS template {wanted!r} {how} {len(matches)} templates: {listing}",
        "set the template to one UUID or exact title from that list",
    )


def resolve_template(templates: Sequence[TemplateInfo], wanted: str) -> TemplateInfo:
    """UUID or exact title; else a unique case-insensitive substring of the title; else a regex search."""
    for tmpl in templates:
        if tmpl.uuid == wanted:
            return tmpl
    exact = [t for t in templates if t.title == wanted]
    if exact:
        return _one_template(exact, wanted, "has the same title as")
    needle = wanted.casefold()
    matches = [t for t in templates if needle and needle in t.title.casefold()]
    if not matches:
        try:
            rx = re.compile(wanted, re.IGNORECASE)
            matches = [t for t in templates if rx.search(t.title)]
        except re.error:
            matches = []
    if matches:
        return _one_template(matches, wanted, "matches")
    titles = ", ".join(sorted(t.title for t in templates)[:10])
    raise ProviderError(
        f"no public OS template matches {wanted!r}",
        f"available templates: {titles}" if titles else "`upctl storage list --public --template` returned none",
    )


def _address(ip: dict[str, Any], family: str) -> str | None:
    if ip.get("family") == family and _str(ip.get("address")):
        return _str(ip.get("address"))
    return None


def public_ipv4(server: dict[str, Any]) -> str | None:
    """The public IPv4: public interfaces first, then the top-level ``ip_addresses`` (create responses)."""
    candidates: list[tuple[bool, str]] = []
    networking = server.get("networking")
    interfaces = networking.get("interfaces") if isinstance(networking, dict) else None
    if isinstance(interfaces, dict):  # the API's wrapped form {"interface": [...]}
        interfaces = interfaces.get("interface")
    for iface in _dicts(interfaces):
        if iface.get("type") != "public":
            continue
        ips = iface.get("ip_addresses")
        if isinstance(ips, dict):
            ips = ips.get("ip_address")
        for ip in _dicts(ips):
            if addr := _address(ip, "IPv4"):
                candidates.append((ip.get("floating") == "yes", addr))
    if not candidates:
        for ip in _dicts(server.get("ip_addresses")):
            if ip.get("access") == "public" and (addr := _address(ip, "IPv4")):
                candidates.append((ip.get("floating") == "yes", addr))
    if not candidates:
        return None
    return sorted(candidates, key=lambda c: c[0])[0][1]  # prefer the server's own address over a floating one


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        value = value.get("label")
    return {_str(lb.get("key")): _str(lb.get("value")) for lb in _dicts(value) if _str(lb.get("key"))}


def _server(obj: dict[str, Any], detailed: bool) -> ServerInfo:
    return ServerInfo(
        uuid=_str(obj.get("uuid")),
        hostname=_str(obj.get("hostname")),
        title=_str(obj.get("title")),
        state=_str(obj.get("state")),
        plan=_str(obj.get("plan")),
        zone=_str(obj.get("zone")),
        public_ipv4=public_ipv4(obj),
        labels=_labels(obj.get("labels")) if detailed else {},
        gpu_models=tuple(_str(d.get("model")) for d in _dicts(obj.get("devices")) if d.get("type") == "gpu"),
    )


def parse_server(stdout: str) -> ServerInfo:
    """`server show|create|stop|start -o json` → the server (one object, or the first of an array)."""
    data = _load(stdout, "server details")
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        raise _shape_error("server details", data)
    if "error" in data and "uuid" not in data:
        raise ProviderError(f"upctl reported an error: {_str(data.get('error'))}", "re-run with --debug for details")
    if not _str(data.get("uuid")):
        raise _shape_error("server details", data)
    return _server(data, detailed=True)


def parse_server_list(stdout: str) -> list[ServerInfo]:
    """`server list -o json` → summaries (``{"servers": [...]}``): no labels or devices."""
    data = _load(stdout, "server list")
    if isinstance(data, dict):
        data = data.get("servers")
    if data is None:
        return []
    if not isinstance(data, list):
        raise _shape_error("server list", data)
    return [_server(s, detailed=False) for s in _dicts(data) if _str(s.get("uuid"))]


# ------------------------------------------------------------------------------------------ failures

_CAPACITY = re.compile(
    r"SERVER_RESOURCES_UNAVAILABLE|no (?:gpu |free )?capacity|out of capacity|insufficient capacity"
    r"|not enough (?:capacity|resources)|availability",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"status=(?:5\d\d|429)\b|context deadline exceeded|connection (?:refused|reset)|timed? ?out\b|timeout"
    r"|temporary failure|unexpected EOF|TLS handshake|no such host|HTTP 5\d\d",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"cannot resolve argument: nothing found matching|SERVER_NOT_FOUND")
_AUTH = re.compile(r"AUTHENTICATION_FAILED|INVALID_CREDENTIALS|invalid user credentials")
_HINTS: tuple[tuple[str, str], ...] = (
    ("INSUFFICIENT_CREDITS", "add credits to the UpCloud account"),
    (
        r"multiple storages matched|no storage with uuid, name or title",
        "set the OS template to an exact UUID (see `upctl storage list --public --template`)",
    ),
    (r"not a glob pattern, but matches multiple values", "several servers share this name; use the UUID"),
    (r"password-delivery method, ssh-keys", "configure at least one SSH public key"),
)
_ERROR_LINE = re.compile(r"^\s*Error:\s*(.*\S)\s*$")
_SUMMARY = re.compile(r"^Command execution failed for \d+ resource")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

NO_CREDENTIALS_HINT = (
    "export UPCLOUD_TOKEN=... (or UPCLOUD_USERNAME and UPCLOUD_PASSWORD), or put them in ~/.config/upctl.yaml"
)
BAD_CREDENTIALS_HINT = (
    "check UPCLOUD_TOKEN (or UPCLOUD_USERNAME/UPCLOUD_PASSWORD, ignored when a token is set) "
    "and the keys in ~/.config/upctl.yaml; the API user needs API access enabled"
)


def _clean_lines(text: str) -> list[str]:
    return [_ANSI.sub("", line) for line in re.split(r"\r\n|\r|\n", text)]


def _stdout_errors(stdout: str) -> list[str]:
    try:
        data = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        return []
    items = data if isinstance(data, list) else [data]
    return [_str(d.get("error")) for d in _dicts(items) if _str(d.get("error"))]


def _stderr_errors(stderr: str, *, indented_only: bool) -> list[str]:
    found: list[str] = []
    for line in _clean_lines(stderr):
        m = _ERROR_LINE.match(line)
        if m and (line.startswith(" ") or not indented_only) and not _SUMMARY.match(m.group(1)):
            found.append(m.group(1))
    return found


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _command(argv: Sequence[str]) -> str:
    words = [w for w in list(argv)[1:3] if not w.startswith("-")]
    return "upctl " + " ".join(words) if words else "upctl"


def map_failure(argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> ProviderError:
    """Turn a non-zero upctl exit into the project's error type (see upctl's exit codes 1-99, 100-103)."""
    common: dict[str, Any] = {"argv": argv, "returncode": returncode, "stderr": stderr}
    cmd = _command(argv)
    if returncode == 102:
        return CredentialsError("upctl found no UpCloud credentials", NO_CREDENTIALS_HINT, **common)
    if returncode == 103:
        return CredentialsError("UpCloud rejected the credentials", BAD_CREDENTIALS_HINT, **common)
    if returncode == 101:
        return ProviderError(f"{cmd} was interrupted", "run the command again", **common)
    if returncode == 100:
        detail = next(iter(_stderr_errors(stderr, indented_only=False)), _snippet(stderr) or "no message")
        if re.search(r"cannot (?:resolve command line arguments|get resolver)", detail):
            return ProviderError(
                f"{cmd} could not reach the UpCloud API: {detail}",
                "check the network connection and https://status.upcloud.com, then retry",
                transient=bool(_TRANSIENT.search(detail) or "dial tcp" in detail),
                **common,
            )
        if "cannot load configuration" in detail:
            return ProviderError(
                f"upctl could not load its config file: {detail}", "fix or remove the --config path", **common
            )
        return ProviderError(
            f"upctl rejected its arguments ({cmd}): {detail}",
            f"this is an orchestrator bug or an old upctl; upgrade upctl to {MIN_UPCTL_VERSION} or newer",
            **common,
        )
    messages = _unique([*_stdout_errors(stdout), *_stderr_errors(stderr, indented_only=True)])
    if not messages:
        messages = _stderr_errors(stderr, indented_only=False) or [_snippet(stderr) or "no error message"]
    text = "; ".join(messages)
    message = f"{cmd} failed: {text}"
    if _AUTH.search(text):
        return CredentialsError("UpCloud rejected the credentials", BAD_CREDENTIALS_HINT, **common)
    if _NOT_FOUND.search(text):
        return ServerNotFound(message, "the server does not exist (already deleted?)", **common)
    if "SERVER_STATE_ILLEGAL" in text:
        return ProviderError(
            message, "the server is in the wrong state for this; check it with `upctl server show`", **common
        )
    if _CAPACITY.search(text):
        return CapacityError(
            message,
            "UpCloud has no free capacity for this plan in this zone; try another plan or zone",
            **common,
        )
    for pattern, hint in _HINTS:
        if re.search(pattern, text):
            return ProviderError(message, hint, **common)
    if _TRANSIENT.search(text):
        return ProviderError(message, "a temporary API or network problem; retrying may help", transient=True, **common)
    return ProviderError(message, "re-run the upctl command by hand with --debug for details", **common)


def is_transient(err: Exception) -> bool:
    """True for failures worth retrying (API 5xx/429, timeouts, dropped connections)."""
    if isinstance(err, OrchestratorError):
        return bool(getattr(err, "transient", False))
    return isinstance(err, ConnectionError)


def wait_warning(stderr: str) -> str | None:
    """The `--wait` warning upctl prints (``! ...`` plus ``  Error: ...``) while still exiting 0, if any."""
    lines = _clean_lines(stderr)
    for i, line in enumerate(lines):
        if not line.startswith("! "):
            continue
        text = re.sub(r"\s+(?:>\s*)?\d+ s$", "", line[2:].rstrip()).strip()
        details: list[str] = []
        for follow in lines[i + 1 :]:
            if not follow.startswith("  "):
                break
            if m := _ERROR_LINE.match(follow):
                details.append(m.group(1))
        return f"{text}: {'; '.join(details)}" if details else text
    return None
