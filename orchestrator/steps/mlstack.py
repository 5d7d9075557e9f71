"""ml-stack: PyTorch and TensorFlow in their own venvs, matched to the driver's CUDA and verified on the GPU."""

from __future__ import annotations

from collections.abc import Generator

from orchestrator import mlstack as ml
from orchestrator.actions import Action, Remote, Result
from orchestrator.context import StepContext, StepGen
from orchestrator.errors import HostPrepError
from orchestrator.failures import by_code, explain
from orchestrator.gpu import model_matches
from orchestrator.hostprep import SMI_PROBE, parse_nvidia_smi

TextGen = Generator[Action, Result, str | None]

COMPILER_HINT = (
    "torch.compile and XLA need a C compiler and Python headers on the server: "
    "'sudo apt-get install -y build-essential python3-dev'; or set host.compile_check: false"
)


def _gpu_model(ctx: StepContext) -> str:
    srv = ctx.dep.server
    return ctx.cfg.gpu.model or (srv.gpu_model if srv and srv.gpu_model else "NVIDIA L40S")


def _driver_cuda(ctx: StepContext) -> TextGen:
    """The CUDA version the driver supports: learnt by prepare-host, else asked from nvidia-smi."""
    known = ctx.facts.get("driver_cuda")
    if isinstance(known, str) and known:
        return known
    r = yield SMI_PROBE
    if not r.known:
        return None
    drv = parse_nvidia_smi(r.rc, r.stdout + r.stderr)
    if drv.state != "ok" or not drv.cuda:
        raise HostPrepError(
            "cannot tell which CUDA version the driver supports (nvidia-smi shows no 'CUDA Version')",
            "run the prepare-host and verify-gpu steps first, or set host.pytorch.cuda explicitly",
            details=drv.output or None,
        )
    return drv.cuda


def _checked(cmd: Remote, r: Result, setting: str) -> Result:
    if r.known and r.rc != 0:
        out = (r.stdout + r.stderr).strip()
        hint = "see the command output above"
        if "ensurepip is not available" in out or "python3-venv" in out:
            hint = "install the venv module on the server: sudo apt-get install -y python3-venv"
        elif "externally-managed-environment" in out:
            hint = f"{setting} points at a system Python, not a venv: set it to a new directory (e.g. the default)"
        raise HostPrepError(f"{cmd.purpose} failed (exit {r.rc})", hint, details=out[-3000:] or None)
    return r


def _compile(ctx: StepContext, venv: str, script: str, what: str) -> TextGen:
    cmd = ml.run_python(venv, script, f"{what}: time eager vs compiled", timeout=900)
    r = yield cmd
    if not r.known:
        return None
    timing = ml.parse_timing(r.stdout)
    if r.rc != 0 or timing is None:
        out = (r.stdout + r.stderr).strip()
        raise HostPrepError(f"{what} compile check failed (exit {r.rc})", COMPILER_HINT, details=out[-3000:] or None)
    return timing.describe(what)


def pytorch(ctx: StepContext) -> TextGen:
    p = ctx.cfg.host.pytorch
    cuda = yield from _driver_cuda(ctx)
    if cuda is None:
        tag = p.cuda if p.cuda != "auto" else ml.ANY_INDEX
    else:
        try:
            tag = ml.pick_index(cuda, p.cuda)
        except ml.IndexChoiceError as exc:
            raise HostPrepError(
                str(exc),
                f"{explain(by_code('F5'))}\nset host.pytorch.cuda: auto (picks the index the driver supports)",
            ) from None
    r = yield ml.run_python(p.venv, ml.TORCH_PROBE, "which PyTorch is in the venv?", timeout=120)
    probe = ml.last_json(r.stdout) if r.ok else None
    verb = "already installed"
    if cuda is None or not ml.torch_matches(probe, p.version, tag):
        if probe is not None:
            cmd = ml.torch_uninstall(p.venv)
            _checked(cmd, (yield cmd), "host.pytorch.venv")
        for cmd in (ml.ensure_venv(p.venv, "PyTorch"), ml.torch_install(p.venv, p.version, p.index_url, tag)):
            _checked(cmd, (yield cmd), "host.pytorch.venv")
        verb = "installed"
    r = yield ml.run_python(p.venv, ml.TORCH_VERIFY, "does PyTorch see the GPU?", timeout=300)
    if not r.known:
        return None
    report = ml.last_json(r.stdout)
    out = (r.stdout + r.stderr).strip()[-3000:] or None
    if r.rc != 0 or report is None or report.get("available") is not True:
        raise HostPrepError(
            "PyTorch cannot use the GPU: torch.cuda.is_available() is not True",
            f"the wheel is built for CUDA {report.get('cuda') if report else '?'}, the driver supports {cuda}",
            details=out,
        )
    device, model = str(report.get("device")), _gpu_model(ctx)
    if not model_matches(device, model):
        raise HostPrepError(f"PyTorch sees {device!r}, expected {model}", "check gpu.model and the plan")
    note = f"PyTorch {report.get('version')} {verb} ({tag} index) sees {device}"
    if ctx.cfg.host.compile_check:
        timing = yield from _compile(ctx, p.venv, ml.TORCH_COMPILE, "torch.compile")
        note += f"; {timing}" if timing else ""
    return note


def tensorflow(ctx: StepContext) -> TextGen:
    t = ctx.cfg.host.tensorflow
    r = yield ml.run_python(t.venv, ml.TF_PROBE, "which TensorFlow is in the venv?", timeout=300)
    probe = ml.last_json(r.stdout) if r.ok else None
    verb = "already installed"
    if probe is None or probe.get("version") != t.version:
        for cmd in (ml.ensure_venv(t.venv, "TensorFlow"), ml.tf_install(t.venv, t.version)):
            _checked(cmd, (yield cmd), "host.tensorflow.venv")
        verb = "installed"
    r = yield ml.run_python(t.venv, ml.TF_VERIFY, "does TensorFlow see the GPU?", timeout=300)
    if not r.known:
        return None
    report = ml.last_json(r.stdout)
    gpus = report.get("gpus") if report else None
    if r.rc != 0 or not isinstance(gpus, list) or not gpus:
        raise HostPrepError(
            "TensorFlow sees no GPU: tf.config.list_physical_devices('GPU') is empty",
            "tensorflow[and-cuda] brings its own CUDA libraries and needs only the driver; run the check with "
            "TF_CPP_MIN_LOG_LEVEL=0 to see 'Cannot dlopen some GPU libraries' and which library is missing",
            details=(r.stdout + r.stderr).strip()[-3000:] or None,
        )
    note = f"TensorFlow {report.get('version') if report else '?'} {verb}, {len(gpus)} GPU(s) visible"
    if ctx.cfg.host.compile_check:
        timing = yield from _compile(ctx, t.venv, ml.TF_COMPILE, "XLA jit_compile")
        note += f"; {timing}" if timing else ""
    return note


def ml_stack(ctx: StepContext) -> StepGen:
    h = ctx.cfg.host
    if not (h.pytorch.enabled or h.tensorflow.enabled):
        return "nothing to do: host.pytorch and host.tensorflow are disabled"
    notes: list[str | None] = []
    if h.pytorch.enabled:
        notes.append((yield from pytorch(ctx)))
    if h.tensorflow.enabled:
        notes.append((yield from tensorflow(ctx)))
    return "; ".join(n for n in notes if n) or None
