"""Where each engine's log is and the shell command that prints it: docker's log for a container, else the file
(a Ray cluster's: Serve's log files on each node).

Pure functions of a few config values (the deployment name, the engine kind, vLLM's install method; a cluster's
temp_dir), so that
`orchestrator logs` can build the command from the state's config snapshot without pydantic; the engine classes
call the same functions (tests/test_reach.py checks both agree for every config in configs/ and every method).
"""

from __future__ import annotations

import re
import shlex

from orchestrator.errors import ConfigError

# What `docker logs --since` takes: a Go duration relative to now (10m, 1h30m, 45s) or a timestamp (RFC 3339,
# a date, Unix seconds).
SINCE_RE = re.compile(
    r"^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$"  # 10m, 1h30m
    r"|^\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$"  # 2026-05-04, 2026-05-04T12:00:00Z
    r"|^\d+(?:\.\d+)?$"  # Unix seconds
)
KINDS = ("vllm", "triton", "tfserving")  # engine.kind
METHODS = ("pip", "docker", "none")  # vLLM's engine.install.method; the other engines always run in docker
DOCKER = "docker"


def check_since(since: str) -> str:
    """``since`` as docker logs and journalctl understand it; anything else is a usage error (exit 2)."""
    if not SINCE_RE.match(since):
        raise ConfigError(
            f"--since {since!r} is not a duration or a timestamp",
            "give a duration such as 10m, 1h30m or 45s, or a timestamp such as 2026-05-04T12:00:00Z",
        )
    return since


def run_dir(name: str) -> str:
    """The deployment's folder on the server, under the login user's home."""
    return f".orchestrator/{name}"


def container_name(name: str) -> str:
    return f"orchestrator-{name}"


def log_file(name: str) -> str:
    """The log of an engine run outside docker: the detached process and the systemd unit both append to it."""
    return f"{run_dir(name)}/engine.log"


def docker_log_command(container: str, tail: int, since: str | None, follow: bool) -> str:
    """The container's log, as docker keeps it (stdout and stderr of the engine, merged)."""
    words = ["docker", "logs", "--tail", str(tail)]
    if since:
        words += ["--since", check_since(since)]
    if follow:
        words.append("--follow")
    return shlex.join([*words, container]) + " 2>&1"


def file_log_command(path: str, method: str, tail: int, since: str | None, follow: bool) -> str:
    """The log file's last lines (``-F``: followed across a rotation); --since is refused: no dates in it."""
    if since:
        raise ConfigError(
            f"--since is not supported for vLLM's {method} method: its log is a plain file whose lines "
            "carry no full date",
            "use --tail N (and -f to follow)",
        )
    words = ["tail", "-n", str(tail)] + (["-F"] if follow else [])
    return shlex.join(words) + " " + shlex.quote(path)


def home_word(path: str) -> str:
    """A shell word for a host path; relative paths live under the login user's home."""
    return shlex.quote(path) if path.startswith("/") else '"$HOME"/' + shlex.quote(path)


RAY_LOGS = "session_latest/logs"  # Ray's logs under a node's --temp-dir (serve/: Serve's own)


def ray_log_command(temp_dir: str, tail: int, since: str | None, follow: bool) -> str:
    """A Ray node's Serve logs under its --temp-dir (``temp_dir``: a host path, as cluster.temp_dir): Serve's
    controller and proxy, and each replica's, which carries vLLM's own output under Ray; one header per file."""
    if since:
        raise ConfigError(
            "--since is not supported for a Ray cluster: Serve's logs are plain files whose lines carry no full date",
            "use --tail N (and -f to follow)",
        )
    words = ["tail", "-n", str(tail)] + (["-F"] if follow else [])
    return shlex.join(words) + f" {home_word(temp_dir)}/{RAY_LOGS}/serve/*.log"


def snapshot_log_command(config: dict[str, object], tail: int, since: str | None, follow: bool) -> str | None:
    """The log command from a config snapshot (a Ray cluster's Serve logs, else the engine's), or None where the
    snapshot lacks what it needs."""
    cluster = config.get("cluster")
    if isinstance(cluster, dict):
        temp_dir = cluster.get("temp_dir")
        return ray_log_command(temp_dir, tail, since, follow) if isinstance(temp_dir, str) else None
    source = snapshot_log_source(config)
    return None if source is None else log_command(*source, tail, since, follow)


def log_command(name: str, kind: str, method: str, tail: int, since: str | None, follow: bool) -> str:
    """Engine.log_command for deployment ``name``'s engine ``kind`` (vLLM installed by ``method``)."""
    if kind != "vllm" or method == DOCKER:
        return docker_log_command(container_name(name), tail, since, follow)
    return file_log_command(log_file(name), method, tail, since, follow)


def snapshot_log_source(config: dict[str, object]) -> tuple[str, str, str] | None:
    """(name, kind, method) from a config snapshot (DeploymentConfig.model_dump), or None where it lacks them or
    holds values the engines do not know (then the validated config decides, and says what is wrong)."""
    name, engine = config.get("name"), config.get("engine")
    if not isinstance(name, str) or not isinstance(engine, dict) or engine.get("kind") not in KINDS:
        return None
    kind = str(engine["kind"])
    if kind != "vllm":
        return name, kind, DOCKER
    install = engine.get("install")
    method = install.get("method") if isinstance(install, dict) else None
    return (name, kind, method) if isinstance(method, str) and method in METHODS else None
