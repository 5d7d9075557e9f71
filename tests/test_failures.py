"""Tests for orchestrator.failures: every engines.md §6 string in a realistic log tail, and precedence."""

from __future__ import annotations

import re

import pytest

from orchestrator.failures import (
    CATALOG,
    STILL_LOADING,
    KnownFailure,
    by_code,
    explain,
    find_failures,
    match_failure,
    suggested_max_model_len,
)

F1_LOG = """\
$ nvidia-smi
NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest \
NVIDIA driver is installed and running.

"""

F2_LOG = """\
+ nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv,noheader,nounits
Failed to initialize NVML: Driver/library version mismatch
NVML library version: 580.95
"""

F3_LOG = """\
Unable to find image 'vllm/vllm-openai:latest' locally
latest: Pulling from vllm/vllm-openai
Status: Downloaded newer image for vllm/vllm-openai:latest
docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].
See 'docker run --help'.
"""

F3_COMPOSE_LOG = """\
 Container demo-vllm-1  Creating
Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]
"""

F4_LOG = """\
docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI \
runtime create failed: runc create failed: unable to start container process: error during container init: \
error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'
nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.8, please update your driver to a \
newer version, or use an earlier cuda container: unknown.
"""

F5_LOG = """\
INFO 11-28 07:10:01 [__init__.py:216] Automatically detected platform cuda.
/opt/vllm/lib/python3.12/site-packages/torch/cuda/__init__.py:182: UserWarning: CUDA initialization: The \
NVIDIA driver on your system is too old (found version 12080). Please update your GPU driver by downloading \
and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx
  return torch._C._cuda_getDeviceCount() > 0
"""

F6_LOG = """\
(EngineCore_DP0 pid=211) ERROR 11-28 07:21:40 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=211) ERROR 11-28 07:21:40 [core.py:708] Traceback (most recent call last):
(EngineCore_DP0 pid=211) ERROR 11-28 07:21:40 [core.py:708]   File "/usr/local/lib/python3.12/dist-packages/\
vllm/v1/core/kv_cache_utils.py", line 686, in check_enough_kv_cache_memory
(EngineCore_DP0 pid=211) ERROR 11-28 07:21:40 [core.py:708] ValueError: To serve at least one request with \
the models's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV \
cache memory (9.47 GiB). Based on the available memory, the estimated maximum model length is 77584. Try \
increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
(APIServer pid=1) Traceback (most recent call last):
(APIServer pid=1)   File "/usr/local/bin/vllm", line 10, in <module>
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core \
proc(s): {'EngineCore_DP0': 1}
"""

F6_DOC_LOG = """\
(EngineCore_DP0 pid=42) ERROR [core.py:708] ValueError: To serve at least one request with the model's max \
seq len (131072), (… GiB KV cache is needed, which is larger than the available KV cache memory (… GiB). \
Based on the available memory, the estimated maximum model length is 32768. Try increasing \
`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
"""

F6_OLD_LOG = """\
INFO 05-02 10:11:12 gpu_executor.py:83] # GPU blocks: 229, # CPU blocks: 2048
ERROR 05-02 10:11:12 engine.py:366] ValueError: The model's max seq len (4096) is larger than the maximum \
number of tokens that can be stored in KV cache (3664). Try increasing `gpu_memory_utilization` or \
decreasing `max_model_len` when initializing the engine.
"""

F7_LOG = """\
(EngineCore_DP0 pid=97) INFO 11-28 07:30:01 [gpu_worker.py:298] Available KV cache memory: -1.52 GiB
(EngineCore_DP0 pid=97) ERROR 11-28 07:30:01 [core.py:708] ValueError: No available memory for the cache \
blocks. Try increasing `gpu_memory_utilization` when initializing the engine.
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above.
"""

F8_LOG = """\
(EngineCore_DP0 pid=88) ERROR 11-28 07:40:00 [core.py:708] ValueError: Free memory on device (67.24/79.25 \
GiB) on startup is less than desired GPU memory utilization (0.9, 71.33 GiB). Decrease GPU memory \
utilization or reduce GPU memory used by other processes.
"""

F9_LOG = """\
(EngineCore_DP0 pid=120) INFO 11-28 07:50:11 [gpu_model_runner.py:2602] Capturing CUDA graphs (mixed \
prefill-decode, PIECEWISE): 45%|████▌     | 30/67 [00:02<00:02, 13.20it/s]
(EngineCore_DP0 pid=120) ERROR 11-28 07:50:12 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. \
Tried to allocate 2.00 MiB. GPU 0 has a total capacity of 44.53 GiB of which 1.25 MiB is free. Process \
3412 has 44.52 GiB memory in use. Of the allocated memory 43.10 GiB is allocated by PyTorch.
"""

F10_LOG = """\
(EngineCore_DP0 pid=211) ERROR 11-28 08:00:00 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=211) ERROR 11-28 08:00:00 [core.py:708] AssertionError: something nobody catalogued
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core \
proc(s): {'EngineCore_DP0': 1}
"""

F11_401_LOG = """\
(APIServer pid=1) huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-6929-abc)

Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/resolve/main/\
config.json.
Access to model meta-llama/Llama-3.1-8B-Instruct is restricted. You must have access to it and be \
authenticated to access it. Please log in.
"""

F11_403_LOG = """\
Cannot access gated repo for url https://huggingface.co/google/gemma-2-9b/resolve/main/config.json.
Access to model google/gemma-2-9b is restricted and you are not in the authorized list. Visit \
https://huggingface.co/google/gemma-2-9b to ask for access.
"""

F11_OSERROR_LOG = """\
OSError: You are trying to access a gated repo.
Make sure to have access to it at https://huggingface.co/mistralai/Mistral-7B-Instruct-v0.3.
"""

F12_LOG = """\
$ pip install vllm
error: externally-managed-environment

× This environment is externally managed
╰─> To install Python packages system-wide, try apt install
    python3-xyz, where xyz is the package you are trying to
    install.
"""

F13_LOG = """\
2025-11-28 08:10:00.000001: E tensorflow_serving/util/retrier.cc:37] Loading servable: {name: half_plus_two \
version: 1} failed: Invalid argument: Cannot assign a device for operation 'a': Operation was explicitly \
assigned to /device:GPU:0 but available devices are [ /job:localhost/replica:0/task:0/device:CPU:0 ].
"""

F14_LOG = """\
I1128 08:20:00.123456 1 server.cc:676]
+--------+---------+--------------------------------------------------------------+
| Model  | Version | Status                                                       |
+--------+---------+--------------------------------------------------------------+
| simple | 1       | UNAVAILABLE: Invalid argument: model 'simple', tensor 'INPUT0' |
+--------+---------+--------------------------------------------------------------+
error: creating server: Internal - failed to load all models
"""

F15_LOG = """\
GET http://203.0.113.5:8000/v1/models -> 401
{"error": "Unauthorized"}
"""

F16_LOG = """\
poll 1: GET http://203.0.113.5:8000/health: [Errno 111] Connection refused
poll 2: curl: (56) Recv failure: Connection reset by peer
poll 3: curl: (52) Empty reply from server
"""

# vLLM issue 27890 (vllm serve from pip on Ubuntu 24.04.3 without python3-dev): Triton's JIT at engine start.
F17_LOG = """\
(EngineCore_DP0 pid=4121) INFO 10-31 12:01:07 [gpu_model_runner.py:2653] Model loading took 14.2488 GiB
/tmp/tmpq3a9x1b2/cuda_utils.c:6:10: fatal error: Python.h: No such file or directory
    6 | #include <Python.h>
      |          ^~~~~~~~~~
compilation terminated.
(EngineCore_DP0 pid=4121) ERROR 10-31 12:01:09 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=4121) ERROR 10-31 12:01:09 [core.py:708] subprocess.CalledProcessError: Command \
'['/usr/bin/gcc', '/tmp/tmpq3a9x1b2/cuda_utils.c', '-O3', '-shared', '-fPIC']' returned non-zero exit status 1.
"""

# vLLM issue 15329: no compiler at all (triton/runtime/build.py).
F18_LOG = """\
ERROR 03-22 09:50:04 [core.py:340]   File "/opt/vllm/lib/python3.12/site-packages/triton/backends/nvidia/\
driver.py", line 57, in compile_module_from_src
ERROR 03-22 09:50:04 [core.py:340]     so = _build(name, src_path, tmpdir, library_dirs(), include_dir, libraries)
ERROR 03-22 09:50:04 [core.py:340]   File "/opt/vllm/lib/python3.12/site-packages/triton/runtime/build.py", \
line 32, in _build
ERROR 03-22 09:50:04 [core.py:340]     raise RuntimeError("Failed to find C compiler. Please specify via CC \
environment variable.")
ERROR 03-22 09:50:04 [core.py:340] RuntimeError: Failed to find C compiler. Please specify via CC environment \
variable.
"""


CASES = [
    ("F1", F1_LOG),
    ("F2", F2_LOG),
    ("F3", F3_LOG),
    ("F3", F3_COMPOSE_LOG),
    ("F4", F4_LOG),
    ("F5", F5_LOG),
    ("F6", F6_LOG),
    ("F6", F6_DOC_LOG),
    ("F6", F6_OLD_LOG),
    ("F7", F7_LOG),
    ("F8", F8_LOG),
    ("F9", F9_LOG),
    ("F10", F10_LOG),
    ("F11", F11_401_LOG),
    ("F11", F11_403_LOG),
    ("F11", F11_OSERROR_LOG),
    ("F12", F12_LOG),
    ("F13", F13_LOG),
    ("F14", F14_LOG),
    ("F15", F15_LOG),
    ("F16", F16_LOG),
    ("F17", F17_LOG),
    ("F18", F18_LOG),
]


def test_jit_failures_say_what_to_install() -> None:
    for log, code in ((F17_LOG, "F17"), (F18_LOG, "F18")):
        found = match_failure(log)
        assert found is not None and found.code == code
        text = explain(found)
        assert "python3-dev" in text and "build-essential" in text and "redeploy" in text


@pytest.mark.parametrize(("code", "log"), CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_each_failure_is_recognised(code: str, log: str) -> None:
    found = match_failure(log)
    assert found is not None
    assert found.code == code


def test_catalog_is_complete_and_well_formed() -> None:
    assert [f.code for f in CATALOG] == [f"F{i}" for i in range(1, 19)]
    for f in CATALOG:
        assert f.title and f.why and f.fix and f.patterns
        for p in f.patterns:
            re.compile(p)
    assert by_code("F6").code == "F6"
    with pytest.raises(KeyError):
        by_code("F99")


def test_every_catalog_entry_has_a_test_case() -> None:
    assert {c for c, _ in CASES} == {f.code for f in CATALOG}


def test_specific_cause_beats_generic_engine_wrapper() -> None:
    # F6 is followed by the generic F10 wrapper: F6 must win, and F10 is still reported second.
    assert [f.code for f in find_failures(F6_LOG)] == ["F6", "F10"]
    assert match_failure(F7_LOG) == by_code("F7")
    # F10 wins only when nothing more specific is present
    assert match_failure(F10_LOG) == by_code("F10")


def test_real_failure_beats_still_loading() -> None:
    log = F16_LOG + "container exited (1); docker logs --tail 20:\n" + F9_LOG + F10_LOG
    assert [f.code for f in find_failures(log)] == ["F9", "F10", "F16"]
    assert match_failure(F16_LOG + F10_LOG) == by_code("F10")


def test_among_specific_causes_the_latest_wins() -> None:
    assert match_failure(F8_LOG + F9_LOG) == by_code("F9")
    assert match_failure(F9_LOG + F8_LOG) == by_code("F8")


def test_non_matching_log_is_none() -> None:
    healthy = """\
(APIServer pid=1) INFO 11-28 07:25:12 [api_server.py:1880] Starting vLLM API server 0 on http://0.0.0.0:8000
(APIServer pid=1) INFO:     Started server process [1]
(APIServer pid=1) INFO:     Waiting for application startup.
(APIServer pid=1) INFO:     Application startup complete.
(APIServer pid=1) INFO:     10.0.0.1:51234 - "GET /health HTTP/1.1" 200 OK
"""
    assert match_failure(healthy) is None
    assert find_failures("") == []
    # a word that merely looks like F14 must not trigger it
    assert match_failure("HTTP 503 Service Unavailable: try later") is None


def test_matching_survives_formatting_variations() -> None:
    ansi = "\x1b[1;31mERROR\x1b[0m ValueError: No available memory   for the cache blocks."
    assert match_failure(ansi) == by_code("F7")
    curly = "NVIDIA-SMI has failed because it couldn\u2019t communicate with the NVIDIA driver."
    assert match_failure(curly) == by_code("F1")
    lower = "failed to initialize nvml: driver/library version mismatch"
    assert match_failure(lower) == by_code("F2")
    old_torch = "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 44.53 GiB total capacity)"
    assert match_failure(old_torch) == by_code("F9")
    other_cuda = "nvidia-container-cli: requirement error: unsatisfied condition: cuda>=13.0, please update"
    assert match_failure(other_cuda) == by_code("F4")


def test_suggested_max_model_len() -> None:
    assert suggested_max_model_len(F6_LOG) == 77584
    assert suggested_max_model_len(F6_DOC_LOG) == 32768
    assert suggested_max_model_len(F6_OLD_LOG) == 3664
    assert suggested_max_model_len(F7_LOG) is None


def test_explain_has_what_why_and_what_to_do() -> None:
    text = explain(by_code("F6"))
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("What happened: ") and lines[0].endswith("(F6)")
    assert lines[1].startswith("Why: ")
    assert lines[2].startswith("What to do: ") and "--max-model-len" in lines[2]
    assert "reboot" in explain(by_code("F1")).lower()
    assert "hold" in explain(by_code("F2"))
    assert "nvidia-ctk runtime configure" in explain(by_code("F3"))
    assert "HF_TOKEN" in explain(by_code("F11"))


def test_still_loading_code_is_f16() -> None:
    loading = by_code(STILL_LOADING)
    assert isinstance(loading, KnownFailure)
    assert "loading" in loading.title


@pytest.mark.parametrize("owner", ["model's", "models's", "models'", "model"])
def test_f6_first_pattern_tolerates_possessive_spellings(owner: str) -> None:
    line = f"ValueError: To serve at least one request with the {owner} max seq len (131072), (16.00 GiB KV"
    assert re.search(by_code("F6").patterns[0], line, re.IGNORECASE)
