"""Fetch a corpus of real images for benchmarks, never committed.

Downloads Debian packages with ``apt-get download`` (no installation), unpacks them, and keeps
the decodable JPEG and PNG images whose shorter side is at least 128 px, deduplicated by
content. Each kept image is recorded in ``sources.json`` with its package and the package's
licence file, so results can be traced to what they were measured on.

    python benchmarks/corpus.py [--out benchmarks/.corpus] [--packages opencv-doc ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from PIL import Image

# Test photographs and illustrations shipped with Debian packages.
DEFAULT_PACKAGES = ("python3-skimage", "opencv-doc")
MIN_SIDE = 128
SUFFIXES = {".jpg", ".jpeg", ".png"}


def fetch(packages: list[str], out: Path) -> list[dict[str, str]]:
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    seen: set[str] = {p.name.split("_", 1)[0] for p in images.iterdir()}
    records: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        for package in packages:
            subprocess.run(
                ["apt-get", "download", package],
                cwd=scratch_dir,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            [deb] = scratch_dir.glob(f"{package}_*.deb")
            tree = scratch_dir / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
            licence = f"/usr/share/doc/{package}/copyright"
            for path in sorted(tree.rglob("*")):
                if path.suffix.lower() not in SUFFIXES or not path.is_file():
                    continue
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()[:16]
                if digest in seen or not _usable(path):
                    continue
                seen.add(digest)
                name = f"{digest}_{path.name}"
                shutil.copyfile(path, images / name)
                records.append(
                    {
                        "file": name,
                        "package": package,
                        "path": "/" + path.relative_to(tree).as_posix(),
                        "licence": licence,
                    }
                )
    return records


def _usable(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                if min(image.size) < MIN_SIDE:
                    return False
                image.load()
                return True
    except Exception:  # any undecodable file is simply not part of the corpus
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".corpus")
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES))
    args = parser.parse_args()
    records = fetch(args.packages, args.out)
    sources = args.out / "sources.json"
    previous = json.loads(sources.read_text()) if sources.exists() else []
    sources.write_text(json.dumps(previous + records, indent=1))
    total = len(list((args.out / "images").iterdir()))
    print(f"{len(records)} new images; {total} in {args.out / 'images'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
