"""How the review and legal read paths grow with the number of assets.

A workspace is filled with N synthetic assets (rows written through the product's own
repository and audit code, no image decoding): 70 % clear, 20 % `review`, 10 % `high`, each
check with three matches against a reference set; a reviewer decides a third of the flagged
ones (through ``Workspace.review``). Then, medians of ``--repeats`` runs:

- the review queue (every open asset, strongest first), as `provenance queue` and the API;
- one page of the asset list (50, from the middle) with its total, as the API serves it;
- one asset's clearance status;
- the production's disclosure summary (every asset's status);
- `audit verify` (the chain, then every row of the record against the event vouching for it).

    python benchmarks/review_scale.py [--sizes 1000 10000] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance import Workspace, admin, assets, compliance, exports, reviews, users  # noqa: E402
from provenance.db import audit, repository  # noqa: E402
from provenance.db.session import write_transaction  # noqa: E402
from provenance.db.tables import Check, Match, ReferenceItem, ReferenceSet, utcnow  # noqa: E402
from provenance.record_digests import check_digest  # noqa: E402
from provenance.reviews import QueueFilter  # noqa: E402

BANDS = {
    "phash": {"review": 10, "high": 8, "higher_is_closer": False},
    "sscd": {"review": 0.5, "high": 0.75, "higher_is_closer": True},
}
BATCH = 500


def fill(workspace: Workspace, count: int, seed: int) -> list[int]:
    """Write ``count`` assets with a check each; return the flagged ones' ids."""
    rng = random.Random(seed)
    with write_transaction(workspace.engine) as session:
        reference_set = ReferenceSet(name="studio-ip", rights_status="third-party")
        session.add(reference_set)
        session.flush()
        items = [
            ReferenceItem(
                set_id=reference_set.id, sha256=f"{i:064x}", source_path=f"r{i}.jpg", media={}
            )
            for i in range(50)
        ]
        session.add_all(items)
        session.flush()
        item_ids = [item.id for item in items]
        audit.append_event(
            session, actor="bench", action="refs.created", subject="refs:x", payload={}
        )
    flagged = []
    for start in range(0, count, BATCH):
        with write_transaction(workspace.engine) as session:
            production = repository.get_or_create_production(session, "Bench")
            tool, _ = repository.get_or_create_tool(session, "bench-tool")
            for number in range(start, min(count, start + BATCH)):
                sha = f"{number + 1:064x}"
                asset_id = repository.insert_registration(
                    session,
                    asset={
                        "sha256": sha, "size_bytes": 1000, "original_name": f"shot{number}.png",
                        "store_path": f"store/{sha[:2]}/{sha}", "media": {"format": "PNG",
                        "width": 64, "height": 64}, "intended_use": "background",
                        "production_id": production.id, "registered_by": "artist",
                        "registered_at": utcnow(),
                    },
                    generation={
                        "tool_id": tool.id, "prompt": f"prompt {number}", "settings": {},
                        "sources": {}, "raw_metadata": {}, "created_at": utcnow(),
                    },
                    fingerprints=[
                        {"kind": "phash", "spec": "bench", "value": sha[:16], "bits": 64,
                         "created_at": utcnow()}
                    ],
                )  # fmt: skip
                audit.append_event(
                    session,
                    actor="artist",
                    action="asset.registered",
                    subject=f"asset:{asset_id}",
                    payload={"sha256": sha},
                )
                roll = rng.random()
                verdict = "high" if roll < 0.1 else "review" if roll < 0.3 else "clear"
                score = {"high": 0.9, "review": 0.6, "clear": 0.3}[verdict] + rng.random() * 0.05
                item = rng.choice(item_ids)
                reason = {
                    "detector": "sscd",
                    "reference_set": "studio-ip",
                    "item_id": item,
                    "region": "whole",
                    "score": score,
                    "verdict": verdict,
                    "thresholds": BANDS["sscd"],
                }
                check = Check(
                    asset_id=asset_id, created_at=utcnow(), actor="artist", verdict=verdict,
                    detectors={"detectors": []}, thresholds=BANDS,
                    reference_sets={"reference_sets": []},
                    reasons={"reasons": [reason] if verdict != "clear" else [], "context": []},
                )  # fmt: skip
                session.add(check)
                session.flush()
                matches = [
                    Match(check_id=check.id, reference_item_id=rng.choice(item_ids),
                          detector="sscd", region="whole", score=score - 0.1 * rank, rank=rank)
                    for rank in (1, 2, 3)
                ]  # fmt: skip
                session.add_all(matches)
                session.flush()
                audit.append_event(
                    session, actor="artist", action="asset.checked", subject=f"asset:{asset_id}",
                    payload={"check_id": check.id, "verdict": verdict,
                             "record_sha256": check_digest(check, matches)},
                )  # fmt: skip
                if verdict != "clear":
                    flagged.append(asset_id)
    return flagged


def median_seconds(action: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int, repeats: int, scratch: Path) -> dict[str, Any]:
    directory = scratch / f"ws-{size}"
    Workspace.create(directory, environ={}).close()
    with Workspace.open(directory, environ={}) as workspace:
        started = time.perf_counter()
        flagged = fill(workspace, size, seed=size)
        users.add_user(workspace, "rosa", "reviewer", by="bench")
        rosa = users.local_user(workspace, "rosa")
        for asset_id in flagged[: len(flagged) // 3]:
            reviews.review(workspace, str(asset_id), "approve", "benchmark decision", user=rosa)
        filled = time.perf_counter() - started
        today = dt.date(2026, 11, 22)
        middle = max(0, size // 2 - 25)
        figures = {
            "queue": median_seconds(lambda: reviews.queue(workspace, QueueFilter()), repeats),
            "asset_page": median_seconds(
                lambda: (
                    assets.list_assets(workspace, limit=50, offset=middle),
                    assets.count_assets(workspace),
                ),
                repeats,
            ),
            "status": median_seconds(
                lambda: compliance.asset_status(workspace, str(flagged[0]), today=today), repeats
            ),
            "disclosure": median_seconds(
                lambda: exports.disclosure(workspace, "Bench", today=today), repeats
            ),
            "audit_verify": median_seconds(lambda: admin.verify_audit(workspace), repeats),
        }
        open_count = reviews.queue(workspace, QueueFilter()).total
        assert admin.verify_audit(workspace).ok
    return {
        "assets": size,
        "flagged": len(flagged),
        "open_in_queue": open_count,
        "fill_seconds": round(filled, 1),
        "median_seconds": {name: round(value, 4) for name, value in figures.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/review_scale.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            result = measure(size, args.repeats, Path(scratch))
            print(json.dumps(result), flush=True)
            results.append(result)
    document = {
        "benchmark": "review_scale",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "repeats": args.repeats,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
