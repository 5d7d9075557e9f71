"""The docker engine code every containerised engine uses (Triton, TF Serving, vLLM's docker method).

Image, container, uploads, start script; containers restart with docker (``--restart unless-stopped``), so the
engine is back after a reboot of the server without the orchestrator.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from orchestrator.actions import Remote, Upload, UploadFile
from orchestrator.config import DeploymentConfig
from orchestrator.engines.base import StartAction
from orchestrator.engines.logs import container_name, docker_log_command, run_dir
from orchestrator.model_files import dirs_under, files_under


class DockerEngine:
    """One container ``orchestrator-<name>`` from ``image``, started by ``<run_dir>/start.sh``.

    Subclasses set ``kind``/``label`` and build ``uploads()`` and ``run_words()`` (both get the run's secrets,
    by name: values go only into secret uploads, never into argv or the script); model files are uploaded
    into ``<run_dir>/<folder>`` (a staging folder, then one rename, so no stale file survives a redeploy)
    and mounted from there.
    """

    kind = "docker"
    label = "engine"
    method = "docker"
    restart_policy = "unless-stopped"  # back after a reboot (docker starts it), gone after `docker rm -f`

    def __init__(self, cfg: DeploymentConfig, image: str) -> None:
        self.cfg = cfg
        self.image = image
        self.run_dir = run_dir(cfg.name)
        self.container = container_name(cfg.name)

    # -- install ---------------------------------------------------------------------------------
    def install_probe(self) -> Remote:
        image = shlex.quote(self.image)
        return Remote(f"docker image inspect --format '{{{{.Id}}}}' {image}", f"is the {self.label} image present?")

    def install(self) -> list[Remote]:
        return [Remote(f"docker pull {shlex.quote(self.image)}", f"pull the {self.label} image", timeout=3600)]

    # -- start / stop ----------------------------------------------------------------------------
    def upload_dir(self, src: Path, folder: str) -> list[StartAction]:
        """Replace ``<run_dir>/<folder>`` on the host with the local directory ``src``."""
        stage, final = f"{self.run_dir}/{folder}.upload", f"{self.run_dir}/{folder}"
        dirs = " ".join(shlex.quote(d) for d in [stage, *(f"{stage}/{d}" for d in dirs_under(src))])
        actions: list[StartAction] = [
            Remote(f"rm -rf {shlex.quote(stage)} && mkdir -p {dirs}", f"staging folder for {src.name}")
        ]
        for path, rel in files_under(src):
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            actions.append(UploadFile(path, f"{stage}/{rel}", mode))
        actions.append(
            Remote(
                f"rm -rf {shlex.quote(final)} && mv {shlex.quote(stage)} {shlex.quote(final)}",
                f"put the uploaded {folder} in place",
            )
        )
        return actions

    def uploads(self, secrets: dict[str, str] | None = None) -> list[StartAction]:
        return []

    def run_words(self, secrets: dict[str, str] | None = None) -> str:
        """The ``docker run`` line of start.sh (shell text; every value quoted)."""
        raise NotImplementedError

    def script_prelude(self) -> list[str]:
        """Shell lines of start.sh before the container is (re)created."""
        return []

    def docker_run(
        self,
        *,
        ports: list[tuple[int, int]],
        mounts: list[tuple[str, str]],
        args: list[str],
        env: tuple[str, ...] = (),
        flags: tuple[str, ...] = (),
        volumes: tuple[str, ...] = (),
    ) -> str:
        """``docker run -d``: ports are (host, container); mounts are (folder under run_dir, container path).

        ``env`` entries are NAME=VALUE for plain values or a bare NAME, which docker takes from start.sh's
        environment (secrets: never in argv). ``volumes`` are ready shell words for ``-v`` (e.g. under $HOME).
        """
        words = ["docker", "run", "-d", "--name", self.container, "--restart", self.restart_policy, "--gpus=all"]
        words += list(flags)
        for host, container in ports:
            words += ["-p", f"{host}:{container}"]
        for pair in env:
            words += ["-e", pair]
        line = shlex.join(words)
        for folder, target in mounts:
            line += ' -v "$PWD"/' + shlex.quote(f"{folder}:{target}")
        for volume in volumes:
            line += f" -v {volume}"
        return line + " " + shlex.join([self.image, *args])

    def start_script(self, secrets: dict[str, str] | None = None) -> str:
        lines = [
            "#!/bin/sh",
            f"# written by orchestrator for deployment {self.cfg.name}",
            'cd "$(dirname "$0")" || exit 1',
            *self.script_prelude(),
            f"docker rm -f {shlex.quote(self.container)} >/dev/null 2>&1",
            self.run_words(secrets),
        ]
        return "\n".join(lines) + "\n"

    def start(self, secrets: dict[str, str]) -> list[StartAction]:
        rd = shlex.quote(self.run_dir)
        return [
            self.stop(),
            Remote(f"mkdir -p {rd} && chmod 700 {rd}", "run directory on the host"),
            *self.uploads(secrets),
            Upload(f"{self.run_dir}/start.sh", self.start_script(secrets), 0o700),
            Remote(
                f'out=$(sh {rd}/start.sh 2>&1); rc=$?; printf "%s\\n" "$out" | tail -n 20; exit $rc',
                f"start the {self.label} container",
            ),
        ]

    def stop(self) -> Remote:
        return Remote(f"docker rm -f {shlex.quote(self.container)} >/dev/null 2>&1; true", f"stop {self.label}")

    def running_probe(self) -> Remote:
        name = shlex.quote(self.container)
        return Remote(
            f"docker inspect -f '{{{{.State.Status}}}}' {name} 2>/dev/null | grep -qx running",
            f"is the {self.label} container running?",
            timeout=30,
        )

    def log_tail(self, lines: int = 80) -> Remote:
        return Remote(f"docker logs --tail {lines} {shlex.quote(self.container)} 2>&1", "engine log tail")

    def log_command(self, tail: int, since: str | None = None, follow: bool = False) -> str:
        """The container's log, as docker keeps it (stdout and stderr of the engine, merged)."""
        return docker_log_command(self.container, tail, since, follow)
