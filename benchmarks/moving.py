"""Moving pictures: frames per second registering and checking a 1080p movie and a 4K
OpenEXR sequence, and each phase's peak resident memory.

The media are made here from the repository's sample photographs: an H.264 1080p movie of
``--seconds`` seconds at 24 fps (shots of slow push-ins on the photographs, one of them a
reference of the set) and a 3840 x 2160 half-float OpenEXR sequence of ``--frames``
frames. Each phase runs the product's command in a process of its own, so its peak
resident memory (``ru_maxrss``) is its own:

- register: hash and store the movie in chunks and decode every frame (a sequence: decode,
  hash and store each frame); ``check_on_register`` off, so the check is timed apart;
- check: the frames a check looks at (one a second and each shot's first frame) searched
  against the reference set (the six sample photographs), verified and judged.

Frames per second are the medium's frames over the phase's wall time; the check's sampled
frames per second are given too. Medians over ``--repeats`` runs.

    python benchmarks/moving.py [--seconds 60] [--frames 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402

SAMPLES = ROOT / "samples" / "images"
PHOTOS = ["coffee.jpg", "rocket.jpg", "camera.png", "astronaut.jpg", "chelsea.png"]
UNRELATED = ROOT / "samples" / "unrelated"


def shot(name: Path, size: tuple[int, int], frames: int) -> Any:
    """A slow push-in on one photograph: ``frames`` RGB arrays of ``size``."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(name) as opened:
        picture = ImageOps.fit(opened.convert("RGB"), size)
    width, height = size
    for i in range(frames):
        zoom = 1.0 + 0.1 * i / max(1, frames)
        w, h = int(width / zoom), int(height / zoom)
        left, top = (width - w) // 2, (height - h) // 2
        yield np.asarray(picture.crop((left, top, left + w, top + h)).resize(size))


def make_movie(path: Path, seconds: int) -> int:
    """A 1080p H.264 movie: two-second shots, the unrelated photographs, with the rocket
    reference in the middle shot. Returns its frame count."""
    import av

    size = (1920, 1080)
    shots = sorted(UNRELATED.glob("*.*"))
    count = seconds * 24
    middle = (count // 48) // 2
    written = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "veryfast"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for number in range(count // 48):
            source = SAMPLES / "rocket.jpg" if number == middle else shots[number % len(shots)]
            for array in shot(source, size, 48):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                written += 1
        for packet in stream.encode():
            container.mux(packet)
    return written


def make_sequence(folder: Path, frames: int) -> Path:
    """A 3840 x 2160 half-float OpenEXR sequence in scene-linear light."""
    import numpy as np
    import OpenEXR

    folder.mkdir()
    size = (3840, 2160)
    source = shot(UNRELATED / "grass.jpg", size, frames)
    for number, array in enumerate(source, start=1001):
        encoded = array.astype(np.float32) / 255.0
        light = np.where(
            encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4
        ).astype(np.float16)
        channels = {name: light[..., i].copy() for i, name in enumerate("RGB")}
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        OpenEXR.File(header, channels).write(str(folder / f"plate.{number}.exr"))
    return folder / "plate.####.exr"


# Starts the command and writes its peak resident memory (KiB) to the file named last. A
# process's peak counts what it held when it was forked: started from this (large)
# benchmark process, the command's peak would be this process's. The launcher is small.
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:-1]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[-1], 'w').write(str(peak))\n"
    "sys.exit(code)\n"
)


def timed(arguments: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run the product's command; (wall seconds, peak resident MiB, stdout)."""
    command = [sys.executable, "-m", "provenance", *arguments]
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        start = time.perf_counter()
        process = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command, peak.name],
            env=env,
            stdout=out,
            stderr=err,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if process.returncode:
            raise SystemExit(f"{' '.join(arguments)} failed: {err.read().strip()}")
        return seconds, int(peak.read()) / 1024, out.read()


def run_once(scratch: Path, movie: Path, movie_frames: int, sequence: Path, frames: int) -> dict:
    env = {**os.environ, "PROVENANCE_CHECK_ON_REGISTER": "false", "PYTHONPATH": str(ROOT)}
    workspace = scratch / f"ws-{time.monotonic_ns()}"
    timed(["init", str(workspace)], env)
    timed(["-w", str(workspace), "refs", "add", "studio-ip", "--from", str(SAMPLES)], env)
    found: dict[str, Any] = {}
    for label, target, count in (("movie", movie, movie_frames), ("sequence", sequence, frames)):
        seconds, peak, out = timed(["-w", str(workspace), "register", str(target), "--json"], env)
        asset = json.loads(out)["results"][0]["asset"]
        register = {"seconds": seconds, "frames_per_s": count / seconds, "peak_mib": peak}
        seconds, peak, out = timed(["-w", str(workspace), "check", str(asset["id"]), "--json"], env)
        check = json.loads(out)["checks"][0]
        sampled = len(check["frames"]["sampled"])
        found[label] = {
            "frames": count,
            "register": register,
            "check": {
                "seconds": seconds,
                "frames_per_s": count / seconds,
                "sampled_frames": sampled,
                "sampled_frames_per_s": sampled / seconds,
                "peak_mib": peak,
                "verdict": check["verdict"],
                "ranges": [
                    f"frames {r['first']}-{r['last']}: item {r['item_id']}"
                    for r in check["frames"]["ranges"]
                ],
            },
        }
    return found


def median_of(runs: list[dict], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return round(statistics.median(values), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the 1080p movie")
    parser.add_argument("--frames", type=int, default=100, help="frames of the 4K sequence")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/moving.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        scratch = Path(name)
        movie = scratch / "take.mp4"
        movie_frames = make_movie(movie, args.seconds)
        sequence = make_sequence(scratch / "plate", args.frames)
        sizes = {
            "movie_mib": round(movie.stat().st_size / 2**20, 1),
            "sequence_mib": round(
                sum(p.stat().st_size for p in (scratch / "plate").iterdir()) / 2**20, 1
            ),
        }
        runs = [
            run_once(scratch, movie, movie_frames, sequence, args.frames)
            for _ in range(args.repeats)
        ]
    summary: dict[str, Any] = {
        "schema": "provenance.benchmark.moving/1",
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/moving.py "
        f"--seconds {args.seconds} --frames {args.frames} --repeats {args.repeats}",
        "machine": describe(),
        "repeats": args.repeats,
        "media": {
            "movie": f"H.264 1920x1080, 24 fps, {movie_frames} frames",
            "sequence": f"OpenEXR half RGB 3840x2160, {args.frames} frames",
            **sizes,
        },
    }
    for label in ("movie", "sequence"):
        summary[label] = {
            "register_frames_per_s": median_of(runs, label, "register", "frames_per_s"),
            "register_peak_mib": median_of(runs, label, "register", "peak_mib"),
            "check_frames_per_s": median_of(runs, label, "check", "frames_per_s"),
            "check_sampled_frames": runs[0][label]["check"]["sampled_frames"],
            "check_sampled_frames_per_s": median_of(runs, label, "check", "sampled_frames_per_s"),
            "check_peak_mib": median_of(runs, label, "check", "peak_mib"),
            "verdict": runs[0][label]["check"]["verdict"],
            "ranges": runs[0][label]["check"]["ranges"],
        }
    summary["runs"] = runs
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    for label in ("movie", "sequence"):
        print(label, json.dumps(summary[label]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
