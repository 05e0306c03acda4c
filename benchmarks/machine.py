"""The machine description written into every benchmark result."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from multiprocessing import cpu_count
from pathlib import Path

PACKAGES = ("pillow", "numpy", "imagehash", "onnxruntime", "faiss-cpu", "sqlalchemy", "imagededup")


def describe() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }
