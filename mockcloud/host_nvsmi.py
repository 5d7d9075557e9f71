# Mock `nvidia-smi` for mockcloud hosts, run by the shim mockcloud/hostbin/nvidia-smi (a module: its bytecode is
# cached). Formats follow engines.md §4.4:
# `--query-gpu=<fields> --format=csv[,noheader][,nounits]`, `--query-compute-apps`, `-L`, `--version`, table.
# Knobs come from $MOCKHOST_HOME/knobs.json: gpu_count, gpu_name, gpu_mem_mib, driver, nvsmi_fail.
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from mockcloud.hostbase import DEFAULT_KNOBS, pid_alive, read_knobs
from mockcloud.hoststate import driver_state, load

F1 = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
      "Make sure that the latest NVIDIA driver is installed and running.")
INVALID = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."
RESERVED_MIB = 599  # a real L40S shows free + used = total - ~600 MiB
UNITS = {"memory.total": "MiB", "memory.used": "MiB", "memory.free": "MiB", "memory.reserved": "MiB",
         "utilization.gpu": "%", "utilization.memory": "%", "power.draw": "W", "power.limit": "W",
         "fan.speed": "%", "used_memory": "MiB", "used_gpu_memory": "MiB"}
ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
           "used_gpu_memory": "used_memory"}


def cuda_version(driver: str) -> str:
    major = int(driver.split(".")[0]) if driver.split(".")[0].isdigit() else 580
    branches = ((580, "13.0"), (575, "12.9"), (570, "12.8"), (560, "12.6"), (550, "12.4"), (535, "12.2"))
    for floor, cuda in branches:
        if major >= floor:
            return cuda
    return "12.0"


def compute_cap(name: str) -> str:
    for marker, cap in (("H100", "9.0"), ("H200", "9.0"), ("A100", "8.0"), ("L4", "8.9"), ("L40", "8.9")):
        if marker in name:
            return cap
    return "8.9"


def engine_claims() -> list[tuple[int, int]]:
    """(pid, MiB) of the live mock engines on this host: they 'hold' GPU 0's memory."""
    home = os.environ.get("MOCKHOST_HOME")
    claims: list[tuple[int, int]] = []
    if home and (Path(home) / "run" / "pids").is_dir():
        for entry in sorted((Path(home) / "run" / "pids").iterdir()):
            try:
                info = json.loads(entry.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and entry.name.isdigit() and pid_alive(int(entry.name)):
                claims.append((int(entry.name), int(info.get("gpu_mem_mib", 0))))
    return claims


def gpu_values(knobs: dict[str, object], index: int, claims: list[tuple[int, int]]) -> dict[str, str]:
    total = int(str(knobs["gpu_mem_mib"]))
    used = min(total - RESERVED_MIB, sum(mib for _, mib in claims)) if index == 0 else 0
    name = str(knobs["gpu_name"])
    import hashlib

    seed = hashlib.sha256(f"{os.environ.get('MOCKHOST_IP', '')}/{index}".encode()).hexdigest()
    busy = used > 0
    return {
        "index": str(index), "name": name, "driver_version": str(knobs["driver"]),
        "count": str(knobs["gpu_count"]),
        "uuid": f"GPU-{seed[:8]}-{seed[8:12]}-{seed[12:16]}-{seed[16:20]}-{seed[20:32]}",
        "pci.bus_id": f"00000000:{index + 1:02X}:00.0", "serial": str(1320000000000 + int(seed[:6], 16)),
        "memory.total": str(total), "memory.used": str(used), "memory.free": str(total - RESERVED_MIB - used),
        "memory.reserved": str(RESERVED_MIB), "utilization.gpu": "0", "utilization.memory": "0",
        "temperature.gpu": "38" if busy else "31", "power.draw": "78.42" if busy else "33.16",
        "power.limit": "350.00", "pstate": "P0" if busy else "P8", "fan.speed": "[N/A]",
        "compute_cap": compute_cap(name), "persistence_mode": "Enabled", "display_mode": "Disabled",
        "compute_mode": "Default", "vbios_version": "95.02.66.00.02",
        "timestamp": time.strftime("%Y/%m/%d %H:%M:%S.000"),
    }


def csv_output(fields: list[str], rows: list[dict[str, str]], fmt: str) -> int:
    options = {o.strip() for o in fmt.split(",")}
    if "csv" not in options:
        print(INVALID)
        return 2
    for field in fields:
        if rows and ALIASES.get(field, field) not in rows[0]:
            print(f'Field "{field}" is not a valid field to query.\n')
            return 2
    units = "nounits" not in options
    if "noheader" not in options:
        print(", ".join(f"{f} [{UNITS[f]}]" if f in UNITS and units else f for f in fields))
    for row in rows:
        cells = []
        for field in fields:
            value = row[ALIASES.get(field, field)]
            unit = UNITS.get(field)
            cells.append(f"{value} {unit}" if unit and units and not value.startswith("[") else value)
        print(", ".join(cells))
    return 0


def table(knobs: dict[str, object], gpus: list[dict[str, str]], claims: list[tuple[int, int]]) -> None:
    driver = str(knobs["driver"])
    bar = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
    rule = "+" + "-" * 89 + "+"

    def wide(text: str) -> str:
        return "|" + text.ljust(89) + "|"

    print(time.strftime("%a %b %d %H:%M:%S %Y       "))
    print(rule)
    cuda = knobs.get("driver_cuda") or cuda_version(driver)
    print(wide(f" NVIDIA-SMI {driver:<22}Driver Version: {driver:<15}CUDA Version: {cuda}"))
    print(bar)
    print("| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |")
    print("| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |")
    print("|                                         |                        |               MIG M. |")
    print("|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|")
    for gpu in gpus:
        print(f"|{gpu['index']:>4}  {gpu['name'][:31]:<31}On  |   {gpu['pci.bus_id']} Off |{'0':>21} |")
        power = f"{float(gpu['power.draw']):.0f}W /  350W"
        memory = f"{gpu['memory.used']}MiB / {gpu['memory.total']:>6}MiB"
        util = gpu["utilization.gpu"] + "%"
        left = f" N/A  {gpu['temperature.gpu']:>3}C    {gpu['pstate']}{power:>24} "
        print(f"|{left}|{memory:>23} |{util:>8}      Default |")
        print(f"|{'':41}|{'':24}|{'N/A':>21} |")
        print(bar)
    print()
    print(rule)
    print(wide(" Processes:"))
    print(wide("  GPU   GI   CI              PID   Type   Process name                        GPU Memory"))
    print(wide("        ID   ID                                                               Usage"))
    print("|" + "=" * 89 + "|")
    if not claims:
        print(wide("  No running processes found"))
    for pid, mib in claims:
        row = f"    0   N/A  N/A        {pid:>9}      C   VLLM::EngineCore"
        print(wide(row + f"{mib}MiB".rjust(88 - len(row))))
    print(rule)


def main(argv: list[str]) -> int:
    home = os.environ.get("MOCKHOST_HOME")
    knobs = read_knobs(home) if home else dict(DEFAULT_KNOBS)
    state = driver_state(knobs, load(Path(home) if home else None))  # no_driver, nvsmi_fail, installs, reboots
    if state == "missing":
        sys.stderr.write("bash: line 1: nvidia-smi: command not found\n")
        return 127
    if state == "not-loaded":
        print(F1)
        return 9
    options: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            options[key] = value
        elif arg in ("--query-gpu", "--query-compute-apps", "--format", "-i", "--id") and i + 1 < len(argv):
            options[arg] = argv[i + 1]
            i += 1
        elif arg in ("-L", "--list-gpus", "--version", "-h", "--help", "-q", "--query"):
            flags.add(arg)
        else:
            print(INVALID)
            return 2
        i += 1
    claims = engine_claims()
    gpus = [gpu_values(knobs, n, claims) for n in range(int(str(knobs["gpu_count"])))]
    selected = options.get("-i", options.get("--id"))
    if selected is not None:
        gpus = [g for g in gpus if g["index"] == selected or g["uuid"] == selected]
        if not gpus:
            print(f"No devices were found matching the provided ID: {selected}")
            return 6
    if flags & {"-h", "--help"}:
        print("NVIDIA System Management Interface -- mockcloud stand-in (query-gpu, query-compute-apps, -L)")
        return 0
    if "--version" in flags:
        driver = str(knobs["driver"])
        cuda = knobs.get("driver_cuda") or cuda_version(driver)
        print(f"NVIDIA-SMI version  : {driver}\nNVML version        : {driver}\n"
              f"DRIVER version      : {driver}\nCUDA Version        : {cuda}")
        return 0
    if flags & {"-L", "--list-gpus"}:
        for gpu in gpus:
            print(f"GPU {gpu['index']}: {gpu['name']} (UUID: {gpu['uuid']})")
        return 0
    if "--query-gpu" in options:
        return csv_output([f.strip() for f in options["--query-gpu"].split(",") if f.strip()], gpus,
                          options.get("--format", ""))
    if "--query-compute-apps" in options:
        uuid = gpus[0]["uuid"] if gpus else ""
        apps = [{"pid": str(pid), "process_name": "VLLM::EngineCore", "used_memory": str(mib),
                 "gpu_uuid": uuid, "gpu_name": str(knobs["gpu_name"]), "gpu_bus_id": "00000000:01:00.0",
                 "name": "VLLM::EngineCore", "uuid": uuid, "pci.bus_id": "00000000:01:00.0"}
                for pid, mib in claims]
        template = apps or [{"pid": "", "process_name": "", "used_memory": "", "gpu_uuid": "", "gpu_name": "",
                             "gpu_bus_id": "", "name": "", "uuid": "", "pci.bus_id": ""}]
        fields = [f.strip() for f in options["--query-compute-apps"].split(",") if f.strip()]
        for field in fields:
            if ALIASES.get(field, field) not in template[0] and field not in template[0]:
                print(f'Field "{field}" is not a valid field to query.\n')
                return 2
        return csv_output(fields, apps, options.get("--format", ""))
    table(knobs, gpus, claims)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
