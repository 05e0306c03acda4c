"""What a command costs before it does its work: `provenance --version`, and a cold
single-file `provenance register` against a workspace with a 400-image reference set
(SSCD and the hashes, the defaults), each a fresh process as an artist runs it.

    python benchmarks/cli_startup.py [--rounds 5] [--against COMMIT]

With ``--against``, the other commit's code runs the same commands from a temporary copy
(``git archive``) on the same workspace, alternating within each round. Medians of the
rounds; ratios of medians from one run. Also prints the ten slowest imports of each
command (``python -X importtime``). Results: benchmarks/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from benchmarks.register_versions import write_pictures  # noqa: E402

REFERENCES = 400


def seconds(code: Path, arguments: list[str], workspace: Path | None = None) -> float:
    """Wall time of one `python -m provenance ARGUMENTS` with the code at ``code``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
    env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "provenance"]
    if workspace is not None:
        command += ["--workspace", str(workspace)]
    start = time.perf_counter()
    # Run from a neutral folder: `python -m` puts the current folder first on the path.
    subprocess.run(
        [*command, *arguments], env=env, check=True, capture_output=True, cwd=tempfile.gettempdir()
    )
    return time.perf_counter() - start


def slowest_imports(code: Path, arguments: list[str], count: int = 10) -> list[str]:
    """The ``count`` imports with the largest cumulative time (-X importtime)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
    env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "provenance", *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if found and len(found[3]) <= 2:  # the package, and what it imports directly
            rows.append((int(found[2]), found[4]))
    rows.sort(reverse=True)
    return [f"{name} {micros / 1e6:.3f} s" for micros, name in rows[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", help="another commit, run side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        codes = {"here": ROOT}
        if args.against:
            other = work / "other"
            other.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.against], cwd=ROOT, check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(other)], input=archive, check=True)
            codes[args.against] = other
        workspace = work / "workspace"
        seconds(ROOT, ["init", str(workspace)])
        references = work / "references"
        write_pictures(references, REFERENCES, seed=1)
        seconds(ROOT, ["refs", "add", "studio-ip", "--from", str(references)],
                workspace)  # fmt: skip
        new_files = iter(write_pictures(work / "new", args.rounds * len(codes) + 1, seed=2))
        timings: dict[str, dict[str, list[float]]] = {
            label: {"version": [], "register": []} for label in codes
        }
        for _ in range(args.rounds):
            for label, code in codes.items():
                timings[label]["version"].append(seconds(code, ["--version"]))
                timings[label]["register"].append(
                    seconds(code, ["register", str(next(new_files))], workspace)
                )
        results = {
            label: {
                name: {
                    "median_s": round(statistics.median(v), 3),
                    "runs_s": [round(x, 3) for x in v],
                }
                for name, v in measured.items()
            }
            for label, measured in timings.items()
        }
        imports = {
            "version": slowest_imports(ROOT, ["--version"]),
            "register": slowest_imports(
                ROOT, ["--workspace", str(workspace), "register", str(next(new_files))]
            ),
        }
    document = {
        "benchmark": "cli_startup",
        "machine": describe(),
        "rounds": args.rounds,
        "reference_set_images": REFERENCES,
        "results": results,
        "slowest_imports_here": imports,
    }
    if args.against:
        document["ratio_here_to_other"] = {
            name: round(
                results["here"][name]["median_s"] / results[args.against][name]["median_s"], 3
            )
            for name in ("version", "register")
        }
    out = ROOT / "benchmarks" / "results" / "cli_startup.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({k: v for k, v in document.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
