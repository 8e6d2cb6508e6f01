"""What every benchmark shares: the machine the figures were measured on, and CPU time of a process from /proc."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from testbed.push import SKOPEO_BINARY
from testbed.registry import REGISTRY_BINARY


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far, from /proc."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def _value_of(path: str, key: str, separator: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return "unknown"
    values = (line.split(separator, 1)[1].strip().strip('"') for line in lines if line.startswith(key))
    return next(values, "unknown")


def _version_of(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> dict[str, str]:
    """What the figures were measured on, and when."""
    memory_kib = _value_of("/proc/meminfo", "MemTotal", ":").split()[0]
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(len(os.sched_getaffinity(0))),
        "cpu_model": _value_of("/proc/cpuinfo", "model name", ":"),
        "memory": f"{int(memory_kib) / 1024 / 1024:.1f} GiB" if memory_kib.isdigit() else "unknown",
        "python": platform.python_version(),
        "distribution": _value_of("/etc/os-release", "PRETTY_NAME", "="),
        "kernel": platform.release(),
        "registry": " ".join(_version_of(REGISTRY_BINARY, "--version").split()[-2:]) or "unknown",
        "skopeo": _version_of(SKOPEO_BINARY, "--version").removeprefix("skopeo version "),
        "sqlite": sqlite3.sqlite_version,
        "load_1min": f"{os.getloadavg()[0]:.1f}",
    }
