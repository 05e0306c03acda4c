"""Re-run notebooks headless and save them with their outputs (plots included).

    .venv/bin/python notebooks/run.py                     the three, on demo-workspace/
    .venv/bin/python notebooks/run.py --workspace WS triage.ipynb

The triage and legal notebooks read the workspace given (default: the demo workspace that
`bash scripts/demo.sh` builds); the calibration notebook reads benchmarks/results/. A
calibration cell whose per-image scores are absent (they are not committed) keeps the
figure it was saved with, drawn at the last full benchmark run, instead of losing it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ("triage.ipynb", "legal.ipynb", "calibration.ipynb")
# What a calibration cell prints when the per-image scores are not here.
ABSENT = "is not here (bash benchmarks/run.sh writes it)"


def run(name: str) -> None:
    path = HERE / name
    saved = nbformat.read(path, as_version=4)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    for old, new in zip(saved.cells, notebook.cells, strict=True):
        if new.cell_type != "code":
            continue
        printed = "".join(o.get("text", "") for o in new.outputs if o.output_type == "stream")
        if ABSENT in printed:
            new.outputs.extend(o for o in old.outputs if o.output_type == "display_data")
    nbformat.write(notebook, path)
    print(f"notebooks/{name} re-run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="notebooks to run")
    parser.add_argument("--workspace", type=Path, default=HERE.parent / "demo-workspace")
    arguments = parser.parse_args()
    os.environ["PROVENANCE_WORKSPACE"] = str(arguments.workspace.resolve())
    for name in arguments.names:
        run(name)


if __name__ == "__main__":
    main()
