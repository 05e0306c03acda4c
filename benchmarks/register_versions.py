"""Registration time of this checkout against another commit, side by side.

For a change on the register path (the audit log vouching for every row it writes, for
instance): both versions register the same folder of real pictures into fresh workspaces
(no reference sets, ``--jobs 1``), alternating within each round; the other commit runs
from a temporary git worktree. Medians over rounds; the ratio is of medians from one run.

    python benchmarks/register_versions.py --against COMMIT [--files N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "images"


def write_pictures(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Crops of the sample photographs, 256 px, every file's bytes distinct (also across
    folders written with different ``seed``s)."""
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.*g"))]
    written = []
    for i in range(count):
        photo = rng.choice(photos)
        side = min(photo.size) // 2
        x, y = rng.randrange(photo.width - side), rng.randrange(photo.height - side)
        crop = photo.crop((x, y, x + side, y + side)).resize((256, 256))
        crop.putpixel((0, 0), (i % 256, i // 256, (7 + seed) % 256))
        crop.save(folder / f"frame_{i:05d}.png")
        written.append(folder / f"frame_{i:05d}.png")
    return written


def register_seconds(code: Path, folder: Path, workspace: Path) -> float:
    """Wall time of one `provenance register` of ``folder`` with the code at ``code``."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(code)!r})\n"
        "from provenance import RegisterRequest, Workspace\n"
        # Before the use cases were modules, registering was a Workspace method.
        "try:\n"
        "    from provenance.registration import register\n"
        "except ImportError:\n"
        "    def register(ws, *args, **kwargs): return ws.register(*args, **kwargs)\n"
        f"Workspace.create(__import__('pathlib').Path({str(workspace)!r})).close()\n"
        f"ws = Workspace.open(__import__('pathlib').Path({str(workspace)!r}))\n"
        "start = time.perf_counter()\n"
        f"report = register(ws, [{str(folder)!r}], RegisterRequest(), jobs=1)\n"
        "print(time.perf_counter() - start, report.count('new'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=code
    ).stdout.split()
    return float(out[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="The commit to compare with.")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        other = root / "other"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(other), args.against],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        try:
            folder = root / "pictures"
            write_pictures(folder, args.files)
            times: dict[str, list[float]] = {"this": [], "other": []}
            for round_ in range(args.rounds):
                order = [("this", ROOT), ("other", other)]
                for name, code in order if round_ % 2 == 0 else order[::-1]:
                    workspace = root / f"ws-{name}-{round_}"
                    times[name].append(register_seconds(code, folder, workspace))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(other)],
                cwd=ROOT, check=False, capture_output=True,
            )  # fmt: skip
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "against": args.against,
        "files": args.files,
        "rounds": args.rounds,
        "median_seconds": medians,
        "files_per_second": {k: round(args.files / v, 1) for k, v in medians.items()},
        "time_ratio_this_to_other": round(medians["this"] / medians["other"], 3),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
