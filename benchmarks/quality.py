"""Detection quality on real images, per edit family and detector, beside peers.

References are corpus images (benchmarks/corpus.py) put in a reference set through the
product's own code; near-duplicates and variants among the corpus images (sprite variants,
re-tiled textures, a flag inside another flag) are dropped first, so that no negative and no
composite's background is in fact a copy of a reference (see load_pool).
Queries are edited copies of sampled references (positives) and corpus images never added
(negatives). Edits are AugLy's image augmentations, the library Meta used to build DISC21,
grouped into families, plus composites of a reference into a larger unrelated image at
10-50 % of its area. AugLy's meme_format and perspective_transform need older Pillow and
numpy releases and are not used.

Methods, each judging a query by its single best-matching reference:
- provenance: phash, sscd (whole image), sscd with region search, and the fused verdict
  that `provenance check` gives (ordered by verdict, then by how far into its band);
- peers: imagededup PHash, DHash, WHash (Hamming) and PDQ (pdqhash, Hamming). imagededup's
  CNN method needs weights from the network and is not run.

Metrics (DISC21's definitions, one prediction per query): micro-average precision (µAP),
recall at precision 0.95 and 0.99, and top-1 accuracy on positives. For calibration: the
score at which precision reaches 0.90/0.95/0.99, and per candidate review threshold the share
of copies caught and of unrelated images sent to a reviewer.

Each of ``--repeats`` runs draws its own references, edits and negatives (seeds seed,
seed+1, ...); the figures written are medians over the runs, with each run's overall
figures beside them.

    python benchmarks/quality.py [--quick] [--refs N --positives N --negatives N] [--repeats N]

``--set NAME=VALUE`` (repeatable) changes a workspace setting for the run, e.g.
``--set verify_top=4``, to compare a setting against the defaults with ``--out`` elsewhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance import Workspace, reference_sets  # noqa: E402
from provenance.checking import (  # noqa: E402
    geometry_rule,
    prepare,
    search,
    thresholds_from,
    verify,
)
from provenance.config import ENV_PREFIX, SETTINGS_BY_NAME, load_settings  # noqa: E402
from provenance.detectors.geometric import (  # noqa: E402
    MIN_MATCHES,
    AssetFeatures,
    FeatureCache,
    GeometricVerifier,
    LocalFeatures,
)
from provenance.detectors.hashes import PHashDetector  # noqa: E402
from provenance.detectors.regions import AssetVectors  # noqa: E402
from provenance.detectors.sscd import SSCDDetector  # noqa: E402
from provenance.errors import ProvenanceError  # noqa: E402
from provenance.media import decode_image  # noqa: E402
from provenance.scoring import Candidate, Verdict, judge, judge_verified, to_verify  # noqa: E402

CORPUS = ROOT / "benchmarks" / ".corpus"
# Sources (corpus packages) whose images are the unrelated negatives: photographs, diagrams
# and stamps, never drawn as references. Hard negatives come from the references' own
# sources (clip art, game art, textures) and are never added.
UNRELATED_SOURCES = frozenset({"opencv-doc", "python3-skimage", "tuxpaint-stamps-default"})
# How many of an image's nearest kept images (by SSCD) are verified to find a variant.
VARIANT_NEIGHBOURS = 3


def source_of() -> dict[str, str]:
    """Each corpus file's source package."""
    records = json.loads((CORPUS / "sources.json").read_text())
    return {r["file"]: r["package"] for r in records}


def _augly() -> Any:
    import augly.image as imaugs

    return imaugs


def families(
    backgrounds: list[Path],
) -> dict[str, list[Callable[[Image.Image, random.Random], Image.Image]]]:
    a = _augly()

    def composite(image: Image.Image, rng: random.Random) -> Image.Image:
        scene = rgb(rng.choice(backgrounds))
        area = rng.uniform(0.10, 0.50)
        side = min(scene.width, scene.height)
        if side < 256:
            scene = scene.resize((int(scene.width * 256 / side), int(scene.height * 256 / side)))
        scale = (area * scene.width * scene.height / (image.width * image.height)) ** 0.5
        pasted = image.resize((max(8, int(image.width * scale)), max(8, int(image.height * scale))))
        pasted = pasted.resize((min(pasted.width, scene.width), min(pasted.height, scene.height)))
        x = rng.randint(0, scene.width - pasted.width)
        y = rng.randint(0, scene.height - pasted.height)
        scene.paste(pasted, (x, y))
        return scene

    geometric = [
        lambda im, r: a.hflip(im),
        lambda im, r: a.rotate(im, degrees=r.uniform(-20, 20)),
        lambda im, r: a.skew(im, skew_factor=r.uniform(-0.4, 0.4)),
        lambda im, r: a.change_aspect_ratio(im, ratio=r.uniform(0.6, 1.6)),
        lambda im, r: a.pad_square(im),
        lambda im, r: a.scale(im, factor=r.uniform(0.3, 0.7)),
    ]
    colour = [
        lambda im, r: a.color_jitter(
            im,
            brightness_factor=r.uniform(0.6, 1.4),
            contrast_factor=r.uniform(0.6, 1.4),
            saturation_factor=r.uniform(0.3, 2.0),
        ),
        lambda im, r: a.grayscale(im),
        lambda im, r: a.saturation(im, factor=r.uniform(0.2, 3.0)),
        lambda im, r: a.opacity(im, level=r.uniform(0.5, 0.9)).convert("RGB"),
    ]
    compression = [
        lambda im, r: a.encoding_quality(im, quality=r.randint(8, 30)),
        lambda im, r: a.blur(im, radius=r.uniform(1, 3)),
        lambda im, r: a.pixelization(im, ratio=r.uniform(0.3, 0.6)),
        lambda im, r: a.random_noise(im, var=r.uniform(0.005, 0.03)),
        lambda im, r: a.sharpen(im, factor=r.uniform(2, 8)),
    ]
    overlay = [
        lambda im, r: a.overlay_text(im),
        lambda im, r: a.overlay_emoji(im, opacity=1.0, emoji_size=r.uniform(0.2, 0.4)),
        lambda im, r: a.overlay_stripes(im, line_width=r.uniform(0.1, 0.4)),
        lambda im, r: a.overlay_onto_screenshot(im),
    ]

    def crop(im: Image.Image, r: random.Random) -> Image.Image:
        keep = r.uniform(0.5, 0.8)
        x, y = r.uniform(0, 1 - keep), r.uniform(0, 1 - keep)
        return a.crop(im, x1=x, y1=y, x2=x + keep, y2=y + keep)

    def combined(im: Image.Image, r: random.Random) -> Image.Image:
        pool = geometric + colour + compression + overlay + [crop]
        for edit in r.sample(pool, 3):
            im = edit(im, r).convert("RGB")
        return im

    return {
        "geometric": geometric,
        "colour": colour,
        "compression": compression,
        "overlay": overlay,
        "crop": [crop],
        "composite": [composite],
        "combined": [combined],
    }


def load_pool(
    limit: int, rng: random.Random, *, unrelated: int = 0
) -> tuple[list[tuple[Path, Image.Image]], dict[str, dict[str, int]]]:
    """Corpus images in random order, decoded as the product decodes them, with
    near-duplicates and variants dropped, and how many were dropped per source and reason.

    An image is dropped when an image already kept is within 10 bits of pHash, scores an
    SSCD cosine of 0.7 or more, or verifies geometrically against it as a check would verify
    a copy (one of its VARIANT_NEIGHBOURS nearest by SSCD, at the default rule: 15 matched
    points covering a fifth of either picture). The corpus has sprite variants, recoloured
    stamps, re-tiled textures and flags that carry another flag: a reviewer should see such a
    pair, so neither may stand as a negative of the other, nor as a composite's background.
    ``limit`` images from the reference sources, then ``unrelated`` from UNRELATED_SOURCES
    (as many as the corpus has)."""
    files = sorted((CORPUS / "images").iterdir())
    rng.shuffle(files)
    sources = source_of()
    wanted = {False: limit, True: unrelated}
    taken = {False: 0, True: 0}
    phash = PHashDetector()
    sscd = SSCDDetector()
    verifier = GeometricVerifier()
    rule = geometry_rule(load_settings({}, environ={}))
    cache = FeatureCache(CORPUS / "features", verifier.features_spec)
    kept: list[tuple[Path, Image.Image]] = []
    kept_features: list[LocalFeatures] = []
    dropped: dict[str, dict[str, int]] = {}
    codes = np.zeros((0, 8), dtype=np.uint8)
    vectors = np.zeros((0, 512), dtype=np.float32)
    for path in files:
        group = sources.get(path.name) in UNRELATED_SOURCES
        if taken[group] >= wanted[group]:
            continue
        try:
            image = rgb(path)
        except ProvenanceError:
            continue
        code = phash.embed([image])
        vector = sscd.embed([image])
        distances = np.unpackbits(np.bitwise_xor(codes, code), axis=1).sum(axis=1)
        similarity = (vectors @ vector.T).ravel()
        reason = None
        if len(codes) and (distances.min() <= 10 or float(similarity.max()) >= 0.7):
            reason = "near-duplicate"
        else:  # features only for what the hashes kept; none to compare the first against
            key = hashlib.sha256(path.name.encode()).hexdigest()
            features = cache.features(key, lambda image=image: verifier.features(image))
            asset = AssetFeatures(features, image)
            for neighbour in np.argsort(-similarity)[:VARIANT_NEIGHBOURS]:
                if rule.decisive(verifier.verify(asset, kept_features[neighbour], "pool", 0)):
                    reason = "variant"
                    break
        if reason is not None:
            counts = dropped.setdefault(sources.get(path.name, "unknown"), {})
            counts[reason] = counts.get(reason, 0) + 1
            continue
        kept.append((path, image))
        kept_features.append(features)
        taken[group] += 1
        codes = np.vstack([codes, code])
        vectors = np.vstack([vectors, vector])
        if taken == wanted:
            break
    # The reference sources' images first, then the unrelated ones.
    ordered = sorted(kept, key=lambda pair: sources.get(pair[0].name) in UNRELATED_SOURCES)
    return ordered, dropped


def setting_overrides(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as the environment variables a workspace reads its settings
    from."""
    environ = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().lower()
        if not sep or name not in SETTINGS_BY_NAME:
            raise SystemExit(f"--set takes NAME=VALUE with a setting's name, not {pair!r}")
        environ[ENV_PREFIX + name.upper()] = value.strip()
    return environ


def rgb(path: Path) -> Image.Image:
    """The canonical pixels provenance registers for a file."""
    return decode_image(path.read_bytes(), max_pixels=150_000_000).pixels


class Peers:
    """imagededup's hashes and PDQ, best match by Hamming distance over the references."""

    def __init__(self, references: list[Image.Image]) -> None:
        from imagededup.methods import DHash, PHash, WHash

        self.methods = {
            "imagededup-phash": PHash(verbose=False),
            "imagededup-dhash": DHash(verbose=False),
            "imagededup-whash": WHash(verbose=False),
        }
        self.codes = {
            name: np.stack([self._code(name, im) for im in references]) for name in self.names
        }

    @property
    def names(self) -> list[str]:
        return [*self.methods, "pdq"]

    def _code(self, name: str, image: Image.Image) -> np.ndarray:
        if name == "pdq":
            import pdqhash

            bits, _quality = pdqhash.compute(np.asarray(image))
            return np.packbits(bits.astype(np.uint8))
        hex_value = self.methods[name].encode_image(image_array=np.asarray(image))
        return np.frombuffer(bytes.fromhex(hex_value), dtype=np.uint8)

    def best(self, image: Image.Image) -> dict[str, tuple[int, float]]:
        found = {}
        for name in self.names:
            code = self._code(name, image)
            distances = np.unpackbits(np.bitwise_xor(self.codes[name], code), axis=1).sum(axis=1)
            index = int(distances.argmin())
            found[name] = (index, -float(distances[index]))
        return found


def metrics(rows: list[dict[str, Any]], method: str) -> dict[str, float]:
    """µAP, recall at precision 0.95/0.99 and top-1 accuracy of one method over ``rows``."""
    predictions = sorted(
        (
            (row[method][1], row["truth"] is not None and row[method][0] == row["truth"])
            for row in rows
        ),
        # Within a tie, wrong predictions first: a tie cannot hide a false flag.
        key=lambda p: (-p[0], p[1]),
    )
    positives = sum(1 for row in rows if row["truth"] is not None)
    if not positives:
        return {}
    hits, ap, best_at = 0, 0.0, {0.95: 0.0, 0.99: 0.0}
    for rank, (_, correct) in enumerate(predictions, start=1):
        if correct:
            hits += 1
            ap += hits / rank
        precision, recall = hits / rank, hits / positives
        for level in best_at:
            if precision >= level:
                best_at[level] = max(best_at[level], recall)
    top1 = sum(1 for row in rows if row["truth"] is not None and row[method][0] == row["truth"])
    return {
        "uap": round(ap / positives, 4),
        "recall_at_p95": round(best_at[0.95], 4),
        "recall_at_p99": round(best_at[0.99], 4),
        "top1": round(top1 / positives, 4),
    }


def threshold_at_precision(rows: list[dict[str, Any]], method: str, level: float) -> float | None:
    """The lowest score ``t`` such that the predictions scoring ``t`` or more are at least
    ``level`` precise (None when no threshold reaches it). Tied scores count together: a
    threshold cannot take half of a tie."""
    predictions = sorted(
        (
            (row[method][1], row["truth"] is not None and row[method][0] == row["truth"])
            for row in rows
        ),
        key=lambda p: -p[0],
    )
    hits, best = 0, None
    for rank, (score, correct) in enumerate(predictions, start=1):
        hits += correct
        last_of_tie = rank == len(predictions) or predictions[rank][0] != score
        if last_of_tie and hits / rank >= level:
            best = score
    return best


def run_once(args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run with its own sample of references, edits and negatives: (figures, rows)."""
    rng = random.Random(seed)
    started = time.perf_counter()
    own = args.refs + args.negatives + 200
    pool, dropped = load_pool(own, rng, unrelated=args.negatives)
    sources = source_of()
    same = [p for p in pool if sources.get(p[0].name) not in UNRELATED_SOURCES]
    unrelated = [p for p in pool if sources.get(p[0].name) in UNRELATED_SOURCES]
    if len(same) < own - 150 or len(unrelated) < args.negatives // 2:
        raise SystemExit(
            f"corpus too small ({len(pool)} distinct images); run benchmarks/corpus.py"
        )
    references = [path for path, _ in same[: args.refs]]
    reference_images = [image for _, image in same[: args.refs]]
    hard = same[args.refs : args.refs + args.negatives]
    backgrounds = [path for path, _ in same[args.refs + args.negatives :]]
    edit_families = families(backgrounds)
    names = list(edit_families)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        folder = scratch / "refs"
        folder.mkdir()
        for path in references:
            shutil.copyfile(path, folder / path.name)
        workspace = Workspace.create(scratch / "ws", environ=setting_overrides(args.set))
        ingest_start = time.perf_counter()
        reference_sets.create(workspace, "bench", [folder], rights="third-party")
        ingest_seconds = time.perf_counter() - ingest_start
        with workspace.engine.connect() as connection:
            item_of = {
                Path(source).name: item_id
                for item_id, source in connection.exec_driver_sql(
                    "SELECT id, source_path FROM reference_items"
                )
            }
        peers = Peers(reference_images)
        available, _ = workspace.split_detectors()
        context = prepare(workspace, available, actor="benchmark")
        bands = thresholds_from(workspace.settings)
        rule = geometry_rule(workspace.settings)
        verifier = workspace.verifier()
        if not isinstance(verifier, GeometricVerifier):
            raise SystemExit(f"geometric verification cannot run: {verifier}")
        top = int(workspace.settings["verify_top"])
        limit = int(workspace.settings["verify_max"])
        floor = float(workspace.settings["verify_floor"])
        position = {item_of[p.name]: i for i, p in enumerate(references)}

        queries: list[tuple[Image.Image, int | None, str, str]] = []
        for i in range(args.positives):
            family = names[i % len(names)]
            source = rng.randrange(len(references))
            edit = rng.choice(edit_families[family])
            try:
                edited = edit(reference_images[source], rng).convert("RGB")
            except Exception as exc:
                print(f"edit failed ({family}): {exc}", file=sys.stderr)
                continue
            queries.append((edited, source, family, "copy"))
        queries += [(im, None, "negative", sources[p.name]) for p, im in unrelated]
        queries += [(im, None, "hard", sources[p.name]) for p, im in hard]

        rows = []
        # Hard negatives flagged at normal priority, beside the reference they matched.
        sheet: list[tuple[Image.Image, Image.Image, str]] = []
        flagged_hard: list[dict[str, Any]] = []
        file_of = {id(image): path.name for path, image in hard}
        verify_ms: list[float] = []
        compared = [
            label
            for label, setting in REGION_METHODS.items()
            if args.compare_regions
            or setting
            == (workspace.settings["region_method"], int(workspace.settings["region_size"]))
        ]
        embed_ms: dict[str, list[float]] = {"whole": [], **{label: [] for label in compared}}
        main = next(
            label
            for label, (method, size) in REGION_METHODS.items()
            if (method, size)
            == (workspace.settings["region_method"], int(workspace.settings["region_size"]))
        )
        query_start = time.perf_counter()
        for image, truth, family, source in queries:
            row: dict[str, Any] = {"truth": truth, "family": family, "source": source}
            clock = time.perf_counter()
            base = AssetVectors(image)
            whole = search(context, available, base, 5, region=False)
            embed_ms["whole"].append((time.perf_counter() - clock) * 1000)
            by_method: dict[str, list[Candidate]] = {}
            for label, (method, size) in REGION_METHODS.items():
                if label != main and not args.compare_regions:
                    continue
                # The whole picture's vectors are shared; a window pass at SSCD's own size
                # reuses that pass (as a check does), so it costs only the pooling.
                vectors = AssetVectors(image, method=method, size=size, whole=dict(base.whole))
                if method == "windows" and size == 320:
                    # The check's own whole pass gives the feature map: run it again here
                    # untimed (it is counted once, above), then time pooling and search.
                    vectors.whole.pop("sscd")
                    _, feature_map = available["sscd"].embed_and_map(image)  # type: ignore[attr-defined]
                    clock = time.perf_counter()
                    vectors.regions["sscd"] = AssetVectors._pooled(available["sscd"], feature_map)
                else:
                    clock = time.perf_counter()
                by_method[label] = search(context, available, vectors, 5, region=True)
                embed_ms[label].append((time.perf_counter() - clock) * 1000)
            for method, candidates in (
                ("phash", [c for c in whole if c.detector == "phash"]),
                ("sscd", [c for c in whole if c.detector == "sscd"]),
                *(
                    (f"sscd+{label}", [c for c in whole + found if c.detector == "sscd"])
                    for label, found in by_method.items()
                ),
            ):
                if not candidates:
                    row[method] = (-1, -1e9)
                    continue
                sign = -1 if method == "phash" else 1
                best = max(candidates, key=lambda c: sign * c.score)
                row[method] = (position[best.item_id], sign * best.score)
            for label, found in by_method.items():
                searched = whole
                verdict = judge(whole, bands)
                if verdict.verdict is not Verdict.HIGH:
                    searched = whole + found
                    verdict = judge(searched, bands)
                name = "fused" if label == main else f"fused+{label}"
                if label == main:
                    row["fused-v1"] = _fused_score(verdict, position)
                    row["fused_v1_verdict"] = verdict.verdict.value
                keys = to_verify(searched, bands, top=top, limit=limit, floor=floor)
                verify_start = time.perf_counter()
                verifications = verify(
                    verifier,
                    context,
                    image,
                    keys,
                    lambda item_id: verifier.features(reference_images[position[item_id]]),
                )
                if keys and label == main:
                    verify_ms.append((time.perf_counter() - verify_start) * 1000 / len(keys))
                verdict, _ = judge_verified(searched, bands, verifications, rule)
                row[name] = _fused_score(verdict, position)
                row[f"{name}_verdict"] = verdict.verdict.value
                row[f"{name}_priority"] = verdict.priority
                if label == main:
                    # The evidence behind the fused prediction, for choosing how verified
                    # matches rank among themselves.
                    best = verdict.best.item_id if verdict.best is not None else None
                    row["fused_evidence"] = {
                        "sscd": max(
                            (
                                c.score
                                for c in searched
                                if c.item_id == best and c.detector == "sscd"
                            ),
                            default=None,
                        ),
                        **next(
                            (
                                {"inliers": v.inliers, "coverage": v.coverage}
                                for v in verifications
                                if v.item_id == best and v.verified
                            ),
                            {"inliers": None, "coverage": None},
                        ),
                    }
                    row["truth_evidence"] = _truth_evidence(
                        truth, references, item_of, searched, verifications
                    )
                    strongest = max(verifications, key=lambda v: v.inliers, default=None)
                    # The strongest fit, verified or not: where a lower inlier line would
                    # put each kind of query.
                    row["strongest_fit"] = (
                        None
                        if strongest is None
                        else {
                            "item": position[strongest.item_id],
                            "inliers": strongest.inliers,
                            "coverage": strongest.coverage,
                            "plausible": bool(strongest.asset_polygon),
                        }
                    )
                    row["verified"] = (
                        (position[strongest.item_id], float(strongest.inliers))
                        if strongest is not None and strongest.verified
                        else (-1, -1e9)
                    )
            row["priority"] = row["fused_priority"]
            row.update(peers.best(image))
            rows.append(row)
            flagged = row["fused_verdict"] == "high" or (
                row["fused_verdict"] == "review" and row["priority"] == "normal"
            )
            if family == "hard" and flagged and row["fused"][0] >= 0:
                inliers = row["verified"][1] if row["verified"][0] == row["fused"][0] else None
                sheet.append(
                    (
                        image,
                        reference_images[row["fused"][0]],
                        f"{source}: {row['fused_verdict']}"
                        + (f", {int(inliers)} points" if inliers else ""),
                    )
                )
                flagged_hard.append(
                    {
                        "file": file_of[id(image)],
                        "reference": references[row["fused"][0]].name,
                        "source": source,
                        "verdict": row["fused_verdict"],
                        "inliers": int(inliers) if inliers else None,
                        "sscd": round(row["sscd+regions"][1], 3),
                    }
                )
        query_seconds = time.perf_counter() - query_start

    variants = [label for label in compared if label != main]
    methods = [
        "phash",
        "sscd",
        *(f"sscd+{label}" for label in compared),
        "verified",
        "fused-v1",
        "fused",
        *(f"fused+{label}" for label in variants),
        *peers.names,
    ]
    figures = {
        "references": len(references),
        "seconds": {
            "ingest": round(ingest_seconds, 1),
            "queries": round(query_seconds, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "dropped_from_pool": {
            reason: {
                source: dropped.get(source, {}).get(reason, 0)
                for source in sorted(set(sources.values()))
            }
            for reason in ("near-duplicate", "variant")
        },
        "region_method": main,
        "embed_and_search_ms": {
            label: round(statistics.median(times), 1) for label, times in embed_ms.items()
        },
        "fused_verdicts_by_region_method": {
            label: verdict_table(
                rows,
                "fused_verdict" if label == main else f"fused+{label}_verdict",
                "fused_priority" if label == main else f"fused+{label}_priority",
            )
            for label in compared
        },
        "verification_ms_per_candidate": {
            "median": round(statistics.median(verify_ms), 1) if verify_ms else None,
            "p95": round(float(np.percentile(verify_ms, 95)), 1) if verify_ms else None,
        },
        **figures_from_rows(rows, methods, names, bands["sscd"].review),
        "thresholds_used": {name: b.to_json() for name, b in bands.items()},
    }
    figures["hard_negatives_flagged"] = flagged_hard
    return figures, rows, sheet


def contact_sheet(pairs: list[tuple[Image.Image, Image.Image, str]], path: Path) -> None:
    """The pairs side by side, two pairs a row, each with its caption, as one JPEG."""
    from PIL import ImageDraw

    tile, caption, columns = 160, 16, 2
    rows = max(1, (len(pairs) + columns - 1) // columns)
    sheet = Image.new("RGB", (columns * (2 * tile + 12), rows * (tile + caption + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (query, reference, text) in enumerate(pairs):
        x = (n % columns) * (2 * tile + 12)
        y = (n // columns) * (tile + caption + 8)
        for offset, picture in ((0, query), (tile, reference)):
            thumb = picture.copy()
            thumb.thumbnail((tile - 4, tile - 4))
            sheet.paste(
                thumb, (x + offset + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2)
            )
        draw.text((x + 2, y + tile + 2), text, fill="black")
    sheet.save(path, quality=80)


def _truth_evidence(
    truth: int | None,
    references: list[Path],
    item_of: dict[str, int],
    searched: list[Candidate],
    verifications: list[Any],
) -> dict[str, Any] | None:
    """For a copy: where its reference ranked among the SSCD candidates (1 = strongest; None
    when no index search returned it) and, when it was verified, how that went. Why a copy
    is missed: not found, or found and not verified."""
    if truth is None:
        return None
    item = item_of[references[truth].name]
    best: dict[int, float] = {}
    for c in searched:
        if c.detector == "sscd":
            best[c.item_id] = max(best.get(c.item_id, -1.0), c.score)
    ranked = sorted(best, key=lambda k: -best[k])
    verification = next((v for v in verifications if v.item_id == item), None)
    return {
        "sscd_rank": ranked.index(item) + 1 if item in best else None,
        "sscd": round(best[item], 4) if item in best else None,
        "verification": None
        if verification is None
        else {
            "verified": verification.verified,
            "inliers": verification.inliers,
            "matches": verification.matches,
            "mirrored": verification.mirrored,
            "note": verification.note,
        },
    }


def _fused_score(verdict: Any, position: dict[int, int]) -> tuple[int, float]:
    """A verdict as a ranked prediction: its best item, then verdict, verified, strength."""
    if verdict.best is None:
        return (-1, -1e9)
    return (
        position[verdict.best.item_id],
        verdict.verdict.rank * 1e6 + verdict.best.verified * 1e3 + verdict.best.strength,
    )


MISSED_REASONS = (
    "reference not among the SSCD candidates",
    "reference found by SSCD, not among those verified",
    "local features do not match",
    "fewer consistent matches than the line",
    "too few local features (reference)",
    "too few local features (copy)",
    "no plausible transform",
    "verified, too small to be high by itself",
    "no evidence recorded",
)


def why_missed(row: dict[str, Any]) -> str:
    """Why a copy did not reach high (one of MISSED_REASONS), from its truth_evidence."""
    evidence = row.get("truth_evidence")
    if evidence is None:
        return "no evidence recorded"
    if evidence["sscd_rank"] is None:
        return "reference not among the SSCD candidates"
    verification = evidence["verification"]
    if verification is None:
        return "reference found by SSCD, not among those verified"
    note = verification["note"]
    if verification["verified"]:
        return "verified, too small to be high by itself"
    if "too few local features" in note:
        return "too few local features (" + ("reference" if "reference" in note else "copy") + ")"
    if verification["inliers"] and "consistent matches" in note:
        return "fewer consistent matches than the line"
    if verification["matches"] < MIN_MATCHES:
        return "local features do not match"
    return "no plausible transform"


def missed_copies(rows: list[dict[str, Any]], family_names: list[str]) -> dict[str, Any]:
    """The copies below high, counted by why (``why_missed``), overall and per family; every
    reason and family is listed, so that runs take medians key by key."""
    missed = [r for r in rows if r["truth"] is not None and r["fused_verdict"] != "high"]
    reasons = {
        reason: {"count": 0, "by_family": dict.fromkeys(family_names, 0)}
        for reason in MISSED_REASONS
    }
    for row in missed:
        entry = reasons[why_missed(row)]
        entry["count"] += 1
        entry["by_family"][row["family"]] += 1
    return {"count": len(missed), "reasons": reasons}


def figures_from_rows(
    rows: list[dict[str, Any]], methods: list[str], family_names: list[str], sscd_review: float
) -> dict[str, Any]:
    """Every quality figure of one run, from its per-query rows."""
    negatives_rows = [r for r in rows if r["truth"] is None]
    return {
        "positives": sum(1 for r in rows if r["truth"] is not None),
        "negatives": sum(1 for r in rows if r["family"] == "negative"),
        "hard_negatives": sum(1 for r in rows if r["family"] == "hard"),
        "overall": {m: metrics(rows, m) for m in methods},
        "by_family": {
            family: {
                m: metrics([r for r in rows if r["family"] == family] + negatives_rows, m)
                for m in methods
            }
            for family in family_names
        },
        "fused_verdicts": verdict_table(rows, "fused_verdict"),
        # Before verification there was no priority: normal means high.
        "fused_v1_verdicts": verdict_table(rows, "fused_v1_verdict", "fused_v1_priority"),
        "copies_high_by_family": {
            family: round(
                sum(1 for r in rows if r["family"] == family and r["fused_verdict"] == "high")
                / max(1, sum(1 for r in rows if r["family"] == family)),
                4,
            )
            for family in family_names
        },
        "negatives_flagged_by_source": {
            kind: flagged_by_source([r for r in rows if r["family"] == kind])
            for kind in ("negative", "hard")
        },
        "score_at_precision": {
            method: {
                f"precision_{level}": threshold_at_precision(rows, method, level)
                for level in (0.9, 0.95, 0.99)
            }
            for method in ("phash", "sscd", "sscd+regions")
        },
        "review_band": {
            "sscd+regions": band_table(rows, "sscd+regions", REVIEW_CANDIDATES["sscd"]),
            "phash": band_table(rows, "phash", REVIEW_CANDIDATES["phash"]),
        },
        "phash_beyond_sscd": phash_beyond_sscd(rows, sscd_review),
        "unverified_line": unverified_line_table(rows, sscd_review),
        "missed_copies": missed_copies(rows, family_names),
    }


KINDS = {"positives": "copy", "unrelated": "negative", "hard_negatives": "hard"}

# Region search methods compared: label -> (region_method, region_size) settings. The label
# matching the workspace's settings gives the `fused` verdicts; the others `fused+label`.
REGION_METHODS = {
    "regions": ("crops", 320),
    "win320": ("windows", 320),
    "win448": ("windows", 448),
}


def _kind(row: dict[str, Any]) -> str:
    return "copy" if row["truth"] is not None else row["family"]


def verdict_table(
    rows: list[dict[str, Any]], key: str, priority: str = "priority"
) -> dict[str, Any]:
    """Per kind of query (copies, unrelated, hard negatives): how many got each verdict, and
    how many were flagged at normal priority (high, or review with geometric support)."""
    table: dict[str, Any] = {}
    for name, kind in KINDS.items():
        chosen = [r for r in rows if _kind(r) == kind]
        table[name] = {v.value: sum(1 for r in chosen if r.get(key) == v.value) for v in Verdict}
        table[name]["normal_priority"] = sum(
            1
            for r in chosen
            if r.get(key) == "high" or (r.get(key) == "review" and r.get(priority) == "normal")
        )
    return table


def flagged_by_source(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per source package: negatives, and the share flagged (review or high) and flagged at
    normal priority."""
    table: dict[str, Any] = {}
    for source in sorted({r.get("source", "") for r in rows}):
        chosen = [r for r in rows if r.get("source", "") == source]
        flagged = [r for r in chosen if r["fused_verdict"] != "clear"]
        normal = [
            r for r in flagged if r["fused_verdict"] == "high" or r.get("priority") == "normal"
        ]
        table[source] = {
            "queries": len(chosen),
            "flagged": round(len(flagged) / max(1, len(chosen)), 4),
            "normal_priority": round(len(normal) / max(1, len(chosen)), 4),
        }
    return table


# Candidate thresholds for the review band: the share of copies caught and of unrelated
# images sent to a reviewer at each (phash scores are minus the Hamming distance).
REVIEW_CANDIDATES = {
    "sscd": [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75],
    "phash": [-8.0, -10.0, -11.0, -12.0, -14.0, -16.0],
}


def band_table(rows: list[dict[str, Any]], method: str, candidates: list[float]) -> dict[str, Any]:
    """Per candidate threshold: recall of copies (right reference at or above it), the
    share of unrelated images at or above it, precision (a copy matched to the wrong
    reference counts as a false flag) and F2, which weighs recall twice as much as
    precision: the measure the review line is chosen by."""
    positives = [r for r in rows if r["truth"] is not None]
    negatives = [r for r in rows if r["truth"] is None]
    table = {}
    for threshold in candidates:
        caught = sum(
            1 for r in positives if r[method][1] >= threshold and r[method][0] == r["truth"]
        )
        wrong = sum(
            1 for r in positives if r[method][1] >= threshold and r[method][0] != r["truth"]
        )
        flagged = sum(1 for r in negatives if r[method][1] >= threshold)
        recall = caught / max(1, len(positives))
        precision = caught / max(1, caught + wrong + flagged)
        f2 = 5 * precision * recall / (4 * precision + recall) if caught else 0.0
        table[str(threshold)] = {
            "recall": round(recall, 4),
            "unrelated_flagged": round(flagged / max(1, len(negatives)), 4),
            "precision": round(precision, 4),
            "f2": round(f2, 4),
        }
    return table


UNVERIFIED_CANDIDATES = [0.50, 0.55, 0.60, 0.65, 0.70]


def unverified_line_table(rows: list[dict[str, Any]], sscd_review: float) -> dict[str, Any]:
    """Per candidate ``sscd_review_unverified`` line: of the queries whose best SSCD item did
    not verify, the share of copies still flagged with the right reference, of unrelated
    images and of hard negatives flagged (SSCD with regions at or over the line; pHash and
    high lines aside). Queries that verified are unaffected by the line."""
    table = {}
    for line in UNVERIFIED_CANDIDATES:
        entry = {}
        for name, kind in KINDS.items():
            chosen = [r for r in rows if _kind(r) == kind]
            unverified = [r for r in chosen if r["verified"][0] != r["sscd+regions"][0]]
            flagged = [
                r
                for r in unverified
                if r["sscd+regions"][1] >= max(line, sscd_review)
                and (kind != "copy" or r["sscd+regions"][0] == r["truth"])
            ]
            entry[name] = round(len(flagged) / max(1, len(chosen)), 4)
        table[str(line)] = entry
    return table


def phash_beyond_sscd(rows: list[dict[str, Any]], sscd_review: float) -> dict[str, Any]:
    """What pHash adds to SSCD: per candidate pHash threshold, the copies only pHash finds
    (SSCD with regions below ``sscd_review``) and the unrelated images only pHash flags."""
    table = {}
    for threshold in REVIEW_CANDIDATES["phash"]:
        sscd_misses = [
            r
            for r in rows
            if not (
                r["sscd+regions"][1] >= sscd_review
                and (r["truth"] is None or r["sscd+regions"][0] == r["truth"])
            )
        ]
        table[str(threshold)] = {
            "copies_only_phash_finds": sum(
                1
                for r in sscd_misses
                if r["truth"] is not None
                and r["phash"][0] == r["truth"]
                and r["phash"][1] >= threshold
            ),
            "unrelated_only_phash_flags": sum(
                1 for r in sscd_misses if r["truth"] is None and r["phash"][1] >= threshold
            ),
        }
    return table


def median_tree(values: list[Any]) -> Any:
    """The element-wise median of equally shaped JSON trees (numbers; None when any is)."""
    first = values[0]
    if isinstance(first, dict):
        return {key: median_tree([v[key] for v in values]) for key in first}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first
    if any(v is None for v in values):
        return None
    middle = statistics.median(values)
    return (
        int(middle)
        if all(isinstance(v, int) for v in values) and middle == int(middle)
        else round(float(middle), 4)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (a few minutes)")
    parser.add_argument("--refs", type=int, default=3000)
    parser.add_argument("--positives", type=int, default=1400)
    parser.add_argument("--negatives", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="runs, each with its own sample")
    parser.add_argument(
        "--compare-regions",
        action="store_true",
        help="also judge every query with each other region method (REGION_METHODS)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the first run")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a workspace setting changed for the run (repeatable)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality.json"
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="recompute the figures in --out from its saved per-query scores (no new run)",
    )
    args = parser.parse_args()
    if args.rescore:
        return rescore(args.out)
    if args.quick:
        args.refs, args.positives, args.negatives = 400, 280, 200
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    all_rows = []
    for number in range(args.repeats):
        figures, rows, sheet = run_once(args, args.seed + number)
        if number == 0:
            contact_sheet(sheet, args.out.with_name(args.out.stem + "-hard-negatives.jpg"))
        runs.append(figures)
        all_rows += [{**row, "run": number} for row in rows]
        print(f"run {number + 1}/{args.repeats}: {json.dumps(figures['overall'])}", flush=True)
    summary = median_tree(runs)
    document = {
        "schema": "provenance.benchmark.quality/3",
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/quality.py"
        + (
            " --quick"
            if args.quick
            else f" --refs {args.refs} --positives {args.positives} --negatives {args.negatives}"
        )
        + f" --repeats {args.repeats}"
        + "".join(f" --set {pair}" for pair in args.set),
        "machine": describe(),
        "settings_changed": setting_overrides(args.set),
        "repeats": args.repeats,
        "note": "figures are medians over the runs; per_run has each run's overall figures",
        **summary,
        "per_run": [
            {"seed": args.seed + n, "overall": run["overall"], "seconds": run["seconds"]}
            for n, run in enumerate(runs)
        ],
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    # Every query's best match and score per method, for the calibration notebook.
    methods = list(summary["overall"])
    scores = {
        "schema": "provenance.benchmark.quality-scores/4",
        "methods": methods,
        "rows": [
            {
                "run": r["run"],
                "family": r["family"],
                "truth": r["truth"],
                "fused_verdict": r["fused_verdict"],
                "fused_v1_verdict": r["fused_v1_verdict"],
                "priority": r["priority"],
                "source": r["source"],
                "fused_evidence": r["fused_evidence"],
                "truth_evidence": r["truth_evidence"],
                "strongest_fit": r["strongest_fit"],
                **{m: [r[m][0], r[m][1]] for m in methods},
            }
            for r in all_rows
        ],
    }
    args.out.with_name(args.out.stem + "-scores.json").write_text(json.dumps(scores) + "\n")
    print(
        f"medians of {args.repeats} runs: {summary['references']} references, "
        f"{summary['positives']} positives, {summary['negatives']} negatives"
    )
    print(f"{'method':<18}{'µAP':>7}{'R@P95':>8}{'R@P99':>8}{'top-1':>8}")
    for method in methods:
        m = summary["overall"][method]
        print(
            f"{method:<18}{m['uap']:>7}{m['recall_at_p95']:>8}{m['recall_at_p99']:>8}{m['top1']:>8}"
        )
    print("fused verdicts:", summary["fused_verdicts"])
    print("before verification:", summary["fused_v1_verdicts"])
    print("copies high by family:", summary["copies_high_by_family"])
    print("verification per candidate (ms):", summary["verification_ms_per_candidate"])
    print("score at precision:", summary["score_at_precision"])
    print("review band:", json.dumps(summary["review_band"]))
    return 0


def rescore(out: Path) -> int:
    """Recompute every figure of ``out`` from ``out``'s -scores.json (after a change to
    the metric code), keeping what only a run can measure (times, thresholds used)."""
    document = json.loads(out.read_text())
    scores = json.loads(out.with_name(out.stem + "-scores.json").read_text())
    methods, family_names = scores["methods"], list(document["by_family"])
    runs = sorted({row["run"] for row in scores["rows"]})
    figures = [
        figures_from_rows(
            [r for r in scores["rows"] if r["run"] == n],
            methods,
            family_names,
            float(document["thresholds_used"]["sscd"]["review"]),
        )
        for n in runs
    ]
    document.update(median_tree(figures))
    for entry, run in zip(document["per_run"], figures, strict=True):
        entry["overall"] = run["overall"]
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{out.name}: figures recomputed from {len(scores['rows'])} saved query scores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
