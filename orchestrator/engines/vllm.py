"""vLLM (OpenAI-compatible server), from a venv (pip) or the vllm/vllm-openai docker image."""

from __future__ import annotations

import json
import shlex

from orchestrator.actions import HttpCheck, Remote, Upload
from orchestrator.config import DeploymentConfig, EngineConfig
from orchestrator.engines.base import StartAction
from orchestrator.engines.docker import DockerEngine
from orchestrator.engines.logs import file_log_command, log_file, run_dir
from orchestrator.monitoring import ScrapeTarget, job_name
from orchestrator.secrets import API_KEY, HF_TOKEN

TP_FLAGS = ("--tensor-parallel-size", "-tp")


def home_path(path: str) -> str:
    """A shell word for a host path; relative paths live under the login user's home."""
    return shlex.quote(path) if path.startswith("/") else '"$HOME"/' + shlex.quote(path)


class VllmContainer(DockerEngine):
    """vLLM's docker method: the vllm/vllm-openai image (entrypoint `vllm serve`), through the docker engine code."""

    kind = "vllm"
    label = "vLLM"

    def __init__(self, owner: VllmEngine) -> None:
        super().__init__(owner.cfg, owner.e.install.image)
        self.owner = owner

    def script_prelude(self) -> list[str]:
        return ["set -a; . ./engine.env; set +a"]

    def uploads(self, secrets: dict[str, str] | None = None) -> list[StartAction]:
        return [Upload(f"{self.run_dir}/engine.env", self.owner.env_file(secrets or {}), 0o600, secret=True)]

    def run_words(self, secrets: dict[str, str] | None = None) -> str:
        e = self.owner.e
        have = secrets or {}
        names = tuple(var for name, var in ((HF_TOKEN, "HF_TOKEN"), (API_KEY, "VLLM_API_KEY")) if name in have)
        return self.docker_run(
            ports=[(e.port, e.port)],
            mounts=[],
            env=names,  # bare names: docker takes the values from start.sh's environment, never from argv
            flags=("--ipc=host",),  # PyTorch shares tensors between processes through /dev/shm
            volumes=('"$HOME/.cache/huggingface:/root/.cache/huggingface"',),
            args=["--model", e.model, *self.owner.engine_args()],
        )


class VllmEngine:
    kind = "vllm"

    def __init__(self, cfg: DeploymentConfig) -> None:
        if not isinstance(cfg.engine, EngineConfig):
            raise TypeError(f"VllmEngine needs a vllm engine config, not {cfg.engine.kind}")
        self.cfg = cfg
        self.e = cfg.engine
        self.run_dir = run_dir(cfg.name)
        self.method = self.e.install.method
        self.unit = f"orchestrator-{cfg.name}.service"
        # Until the probe answers (dry-run), assume what a fresh UpCloud server gives: root with systemd.
        self.supervisor = "systemd" if cfg.ssh.user == "root" and self.method != "docker" else "nohup"
        self.home = "/root" if cfg.ssh.user == "root" else "<home>"
        self.gpu_count = cfg.gpu.count or 1
        self.docker = VllmContainer(self) if self.method == "docker" else None

    # -- install ---------------------------------------------------------------------------------
    @property
    def needs_docker(self) -> bool:
        """prepare-host installs docker + the NVIDIA Container Toolkit only for engines that run in docker."""
        return self.method == "docker"

    @property
    def needs_build_tools(self) -> bool:
        """vLLM from pip compiles kernels at engine start (Triton JIT): a C compiler and Python headers (F17/F18)."""
        return self.method == "pip"

    def use_gpus(self, count: int) -> None:
        """The server's GPU count (verify-gpu, else the plan's gpu_amount): vLLM shards the model over all of them."""
        self.gpu_count = max(count, 1)

    @property
    def _venv(self) -> str:
        return home_path(self.e.install.venv)

    def install_probe(self) -> Remote:
        if self.docker is not None:
            return self.docker.install_probe()
        if self.method == "none":
            return Remote("command -v vllm && vllm --version", "is vllm on PATH?")
        want = self.e.install.version
        check = f"{self._venv}/bin/vllm --version"
        if want:
            check += f" | grep -qxF {shlex.quote(want)} && echo {shlex.quote(want)}"
        return Remote(check, "is vLLM installed in the venv?")

    def install(self) -> list[Remote]:
        if self.docker is not None:
            return self.docker.install()
        if self.method == "none":
            return []
        pkg = "vllm" + (f"=={self.e.install.version}" if self.e.install.version else "")
        return [
            Remote(f"python3 -m venv {self._venv}", "create the venv (Ubuntu 24.04 refuses system pip)"),
            Remote(f"{self._venv}/bin/pip install {shlex.quote(pkg)}", "install vLLM", timeout=3600),
            Remote(f"{self._venv}/bin/vllm --version", "installed vLLM version"),
        ]

    # -- start / stop ----------------------------------------------------------------------------
    def engine_args(self) -> list[str]:
        e = self.e
        args = ["--host", e.host, "--port", str(e.port), "--served-model-name", e.served]
        args += ["--gpu-memory-utilization", f"{e.gpu_memory_utilization:g}"]
        if e.max_model_len:
            args += ["--max-model-len", str(e.max_model_len)]
        if e.dtype != "auto":
            args += ["--dtype", e.dtype]
        explicit = any(a in TP_FLAGS or a.startswith(tuple(f + "=" for f in TP_FLAGS)) for a in e.extra_args)
        if self.gpu_count > 1 and not explicit:  # vLLM's default is 1 GPU; an explicit extra_args value wins
            args += ["--tensor-parallel-size", str(self.gpu_count)]
        return args + list(e.extra_args)

    def env_file(self, secrets: dict[str, str]) -> str:
        lines = ["# written by orchestrator; secrets for the engine, mode 0600"]
        if HF_TOKEN in secrets:
            lines.append(f"HF_TOKEN={shlex.quote(secrets[HF_TOKEN])}")
        if API_KEY in secrets:
            # vLLM reads VLLM_API_KEY itself, so the key never shows in `ps`.
            lines.append(f"VLLM_API_KEY={shlex.quote(secrets[API_KEY])}")
        return "\n".join(lines) + "\n"

    def start_script(self, secrets: dict[str, str]) -> str:
        if self.docker is not None:
            return self.docker.start_script(secrets)
        vllm = f"{self._venv}/bin/vllm" if self.method == "pip" else "vllm"
        lines = [
            "#!/bin/sh",
            f"# written by orchestrator for deployment {self.cfg.name}",
            'cd "$(dirname "$0")" || exit 1',
            "set -a; . ./engine.env; set +a",
            f"exec {vllm} serve {shlex.quote(self.e.model)} {shlex.join(self.engine_args())}",
        ]
        return "\n".join(lines) + "\n"

    def start(self, secrets: dict[str, str]) -> list[StartAction]:
        if self.docker is not None:
            return self.docker.start(secrets)
        rd = shlex.quote(self.run_dir)
        steps: list[StartAction] = [
            self.stop(),
            Remote(f"mkdir -p {rd} && chmod 700 {rd}", "run directory on the host"),
            Upload(f"{self.run_dir}/engine.env", self.env_file(secrets), 0o600, secret=True),
            Upload(f"{self.run_dir}/start.sh", self.start_script(secrets), 0o700),
        ]
        if self.supervisor == "systemd":
            unit = shlex.quote(self.unit)
            steps.append(Upload(f"/etc/systemd/system/{self.unit}", self.unit_file(), 0o644))
            steps.append(
                Remote(
                    f"systemctl daemon-reload && systemctl enable --quiet {unit} && systemctl restart {unit} && "
                    f"systemctl show -p MainPID --value {unit}",
                    "start vLLM as a systemd service",
                )
            )
        else:
            # setsid+nohup, all three fds redirected, no pty: survives the SSH session ending.
            steps.append(
                Remote(
                    f"cd {rd} || exit 1; setsid nohup sh ./start.sh > engine.log 2>&1 < /dev/null &"
                    " echo $! > engine.pid; cat engine.pid",
                    "start vLLM detached",
                )
            )
        return steps

    def supervisor_probe(self) -> Remote:
        return Remote(
            'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; '
            'then echo systemd; else echo nohup; fi; printf "%s\\n" "$HOME"',
            "systemd or setsid/nohup?",
            timeout=30,
        )

    def use_supervisor(self, supervisor: str, home: str) -> None:
        self.supervisor = supervisor if self.method != "docker" else "nohup"
        self.home = home

    def unit_file(self) -> str:
        run = f"{self.home}/{self.run_dir}"
        return "\n".join(
            [
                "[Unit]",
                f"Description=orchestrator: vLLM for deployment {self.cfg.name}",
                "After=network-online.target",
                "Wants=network-online.target",
                "StartLimitIntervalSec=600",
                "StartLimitBurst=3",
                "",
                "[Service]",
                "Type=simple",
                f"WorkingDirectory={run}",
                f"Environment=HOME={self.home}",
                f"ExecStart=/bin/sh {run}/start.sh",
                "Restart=on-failure",
                "RestartSec=10",
                f"StandardOutput=append:{run}/engine.log",
                "StandardError=inherit",
                "KillMode=control-group",
                "TimeoutStopSec=30",
                "",
                "[Install]",
                "WantedBy=multi-user.target",
                "",
            ]
        )

    def _systemd_active(self) -> str:
        return f"[ -d /run/systemd/system ] && systemctl is-active --quiet {shlex.quote(self.unit)}"

    def _pid_alive(self) -> str:
        pidf = shlex.quote(f"{self.run_dir}/engine.pid")
        return (
            f'pid=$(cat {pidf} 2>/dev/null) && [ -n "$pid" ] && '
            f"awk '{{exit ($3 == \"Z\")}}' /proc/$pid/stat 2>/dev/null"
        )

    def running_probe(self) -> Remote:
        if self.docker is not None:
            return self.docker.running_probe()
        return Remote(f"{{ {self._systemd_active()}; }} || {{ {self._pid_alive()}; }}", "is vLLM running?", timeout=30)

    def stop(self) -> Remote:
        if self.docker is not None:
            return self.docker.stop()
        pidf = shlex.quote(f"{self.run_dir}/engine.pid")
        # The engine leads its own session (setsid): signal the whole group, so its workers go too.
        systemd_stop = f"{{ [ -d /run/systemd/system ] && systemctl stop {shlex.quote(self.unit)} 2>/dev/null; }}; "
        return Remote(
            systemd_stop + f'pid=$(cat {pidf} 2>/dev/null); if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then '
            f'kill -TERM -- -"$pid" 2>/dev/null || kill -TERM "$pid"; i=0; '
            f"while awk '{{exit ($3 == \"Z\")}}' /proc/$pid/stat 2>/dev/null && [ $i -lt 100 ]; do "
            f"sleep 0.1; i=$((i+1)); done; "
            f'kill -KILL -- -"$pid" 2>/dev/null; fi; rm -f {pidf}; true',
            "stop vLLM if it runs",
            timeout=60,
        )

    def log_tail(self, lines: int = 80) -> Remote:
        if self.docker is not None:
            return self.docker.log_tail(lines)
        return Remote(f"tail -n {lines} {shlex.quote(self.run_dir + '/engine.log')}", "engine log tail")

    def log_command(self, tail: int, since: str | None = None, follow: bool = False) -> str:
        """The engine's log: docker's for the docker method, else the log file (the systemd unit appends the
        engine's output to the same file as the detached process does: StandardOutput=append:)."""
        if self.docker is not None:
            return self.docker.log_command(tail, since, follow)
        return file_log_command(log_file(self.cfg.name), self.method, tail, since, follow)

    # -- health / monitoring ---------------------------------------------------------------------
    def endpoint(self, ip: str) -> str:
        return f"http://{ip}:{self.e.port}/v1"

    def readiness(self, ip: str, api_key: bool) -> list[HttpCheck]:
        base = f"http://{ip}:{self.e.port}"
        h = self.e.health
        bearer = API_KEY if api_key else None
        checks = [
            HttpCheck(
                "GET",
                f"{base}/health",
                "status",
                "200",
                wait=h.timeout,
                interval=h.interval,
                liveness=self.running_probe(),
                log_tail=self.log_tail(),
            ),
            HttpCheck(
                "GET",
                f"{base}/v1/models",
                "openai-model",
                self.e.served,
                bearer_secret=bearer,
                wait=60.0,
                interval=h.interval,
                liveness=self.running_probe(),
                log_tail=self.log_tail(),
            ),
        ]
        if h.completion_check:
            body = json.dumps({"model": self.e.served, "prompt": "Hello", "max_tokens": 1, "temperature": 0})
            checks.append(
                HttpCheck(
                    "POST",
                    f"{base}/v1/completions",
                    "openai-completion",
                    json_body=body,
                    bearer_secret=bearer,
                    wait=120.0,
                    interval=h.interval,
                    timeout=60.0,
                    liveness=self.running_probe(),
                    log_tail=self.log_tail(),
                )
            )
        return checks

    def scrape_target(self, ip: str) -> ScrapeTarget:
        return ScrapeTarget(
            job=job_name(self.cfg.name),
            targets=(f"{ip}:{self.e.port}",),
            metrics_path="/metrics",
            labels=(("deployment", self.cfg.name), ("engine", "vllm"), ("model", self.e.served)),
            scrape_interval=self.cfg.monitoring.scrape_interval,
        )
