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
import io
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

# Real images made by others, from Debian packages: public-domain clip art, game art
# (illustrations, portraits, renders), photographic textures (inside .pk3 zip files), and
# the classic test photographs of scikit-image and OpenCV.
DEFAULT_PACKAGES = (
    "python3-skimage",
    "opencv-doc",
    "openclipart-png",
    "pysiogame",
    "naev-data",
    "boswars-data",
    "hedgewars-data",
    "tuxpaint-stamps-default",
    "freecol",
    "ufoai-textures",
)
MIN_SIDE = 128
SUFFIXES = {".jpg", ".jpeg", ".png"}


def fetch(packages: list[str], out: Path, done: set[str]) -> list[dict[str, str]]:
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    seen: set[str] = {p.name.split("_", 1)[0] for p in images.iterdir()}
    records: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        for package in packages:
            if package in done:
                continue
            subprocess.run(
                ["apt-get", "download", package],
                cwd=scratch_dir,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            [deb] = scratch_dir.glob(f"{package}_*.deb")
            tree = scratch_dir / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
            deb.unlink()
            licence = _licences(tree / "usr" / "share" / "doc" / package / "copyright")
            for member, data in _image_files(tree):
                digest = hashlib.sha256(data).hexdigest()[:16]
                if digest in seen or not _usable(data):
                    continue
                seen.add(digest)
                name = f"{digest}_{Path(member).name}"
                (images / name).write_bytes(data)
                records.append(
                    {"file": name, "package": package, "path": member, "licence": licence}
                )
            shutil.rmtree(tree)
            print(f"{package}: {sum(r['package'] == package for r in records)} images", flush=True)
    return records


def _image_files(tree: Path) -> Iterator[tuple[str, bytes]]:
    """Image files in an unpacked package, including those inside .pk3 (zip) archives."""
    for path in sorted(tree.rglob("*")):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in SUFFIXES:
            yield "/" + path.relative_to(tree).as_posix(), path.read_bytes()
        elif suffix == ".pk3":
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if Path(info.filename).suffix.lower() in SUFFIXES and info.file_size < 50e6:
                        name = f"/{path.relative_to(tree).as_posix()}!{info.filename}"
                        yield name, archive.read(info)


def _licences(copyright_file: Path) -> str:
    """The licence names a Debian copyright file declares (machine-readable format)."""
    try:
        text = copyright_file.read_text(errors="replace")
    except OSError:
        return "unknown (no copyright file)"
    names = [
        line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("License:")
    ]
    return ", ".join(dict.fromkeys(n for n in names if n)) or "see the package's copyright file"


def _usable(data: bytes) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                if min(image.size) < MIN_SIDE or image.width * image.height > 40_000_000:
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
    sources = args.out / "sources.json"
    previous = json.loads(sources.read_text()) if sources.exists() else []
    done = {record["package"] for record in previous}
    records = fetch(args.packages, args.out, done)
    args.out.mkdir(parents=True, exist_ok=True)
    sources.write_text(json.dumps(previous + records, indent=1))
    total = len(list((args.out / "images").iterdir()))
    print(f"{len(records)} new images; {total} in {args.out / 'images'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
