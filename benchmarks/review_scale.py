"""How the review and legal read paths grow with the number of assets.

A workspace is filled with N synthetic assets (rows written through the product's own
repository and audit code, no image decoding): 70 % clear, 20 % `review`, 10 % `high`, each
check with three matches against a reference set; a reviewer decides a third of the flagged
ones (through ``Workspace.review``). Then, medians of ``--repeats`` runs:

- the review queue's first page (50 open assets, strongest first, with the total), as the
  reviewer's page and the API serve it: median and 99th percentile of ``--samples`` runs,
  in a process settled as `provenance serve`'s is (``processes.settle_long_lived``);
- one page of the asset list (50, from the middle) with its total, as the API serves it;
- one asset's clearance status: median and 99th percentile of ``--samples`` runs;
- the production's disclosure summary (every asset's status);
- `audit verify` (the chain, then every row of the record against the event vouching for it,
  then every asset's review status), once, before the others: exports read the chain from
  the checkpoint it leaves;
- `audit verify --incremental` after 1,000 new events (500 assets registered and checked
  through the same code) since the last verify's checkpoint.

On SQLite (the workspace's file) and, with ``--databases sqlite postgresql``, on the
PostgreSQL server ``scripts/postgres.sh`` starts (a database made and dropped per size).

    python benchmarks/review_scale.py [--sizes 1000 10000] [--databases sqlite postgresql]
        [--repeats 3] [--samples 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance import (  # noqa: E402
    Workspace,
    admin,
    assets,
    compliance,
    exports,
    processes,
    reviews,
    users,
)
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


def make_references(workspace: Workspace) -> list[int]:
    """A reference set of 50 items; their ids."""
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
        audit.append_event(
            session, actor="bench", action="refs.created", subject="refs:x", payload={}
        )
        return [item.id for item in items]


def fill(workspace: Workspace, item_ids: list[int], first: int, count: int, seed: int) -> list[int]:
    """Write assets ``first`` to ``first + count - 1`` with a check each; return the
    flagged ones' ids."""
    rng = random.Random(seed)
    flagged = []
    for start in range(first, first + count, BATCH):
        with write_transaction(workspace.engine) as session:
            production = repository.get_or_create_production(session, "Bench")
            tool, _ = repository.get_or_create_tool(session, "bench-tool")
            for number in range(start, min(first + count, start + BATCH)):
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
                repository.settle_state(session, asset_id)  # as recording a check does
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


def spread_seconds(action: Callable[[], Any], samples: int) -> dict[str, float]:
    """Median and 99th percentile of ``samples`` runs (one warm-up run first)."""
    action()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    ordered = sorted(times)
    return {
        "p50": round(statistics.median(times), 4),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
    }


NEW_EVENTS = 1000  # audit verify --incremental reads this many new events


def measure(
    size: int, repeats: int, samples: int, scratch: Path, database_url: str | None
) -> dict[str, Any]:
    directory = scratch / f"ws-{size}"
    Workspace.create(directory, database_url=database_url, environ={}).close()
    with Workspace.open(directory, environ={}) as workspace:
        started = time.perf_counter()
        item_ids = make_references(workspace)
        flagged = fill(workspace, item_ids, 0, size, seed=size)
        users.add_user(workspace, "rosa", "reviewer", by="bench")
        rosa = users.local_user(workspace, "rosa")
        for asset_id in flagged[: len(flagged) // 3]:
            reviews.review(workspace, str(asset_id), "approve", "benchmark decision", user=rosa)
        filled = time.perf_counter() - started
        today = dt.date(2026, 11, 22)
        middle = max(0, size // 2 - 25)
        first_page = QueueFilter(limit=50)
        # As `provenance serve` does once it has started: the heap settled, so that a full
        # garbage collection walks what requests make, not everything the fill left.
        processes.settle_long_lived()
        # A full verify first, as a studio's weekly one: its checkpoint is where exports
        # and the daily incremental verify start reading the chain.
        started = time.perf_counter()
        assert admin.verify_audit(workspace).ok
        verify_full = time.perf_counter() - started
        open_count = reviews.queue(workspace, QueueFilter(limit=1)).total
        figures: dict[str, Any] = {
            "queue_first_page": spread_seconds(
                lambda: reviews.queue(workspace, first_page), samples
            ),
            "status": spread_seconds(
                lambda: compliance.asset_status(workspace, str(flagged[0]), today=today), samples
            ),
            "asset_page": median_seconds(
                lambda: (
                    assets.list_assets(workspace, limit=50, offset=middle),
                    assets.count_assets(workspace),
                ),
                repeats,
            ),
            "disclosure": median_seconds(
                lambda: exports.disclosure(workspace, "Bench", today=today), repeats
            ),
        }
        figures["audit_verify_full"] = verify_full
        incremental = []
        for round_number in range(repeats):
            # 500 assets registered and checked: two events each.
            fill(
                workspace, item_ids, size + round_number * NEW_EVENTS // 2, NEW_EVENTS // 2,
                seed=round_number,
            )  # fmt: skip
            started = time.perf_counter()
            report = admin.verify_audit(workspace, incremental=True)
            incremental.append(time.perf_counter() - started)
            assert report.ok, report.message
            assert report.events == NEW_EVENTS, report.message
        figures["audit_verify_incremental"] = statistics.median(incremental)
    return {
        "assets": size,
        "database": "postgresql" if database_url else "sqlite",
        "flagged": len(flagged),
        "open_in_queue": open_count,
        "fill_seconds": round(filled, 1),
        "seconds": {
            name: value if isinstance(value, dict) else round(value, 4)
            for name, value in figures.items()
        },
    }


def postgres_database(size: int) -> Iterator[str]:
    """A fresh database on the server scripts/postgres.sh starts; dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    admin_url = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    name = f"pvt_bench_{size}_{os.getpid()}"
    server = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/review_scale.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            for database in args.databases:
                with contextlib.ExitStack() as stack:
                    url = (
                        stack.enter_context(contextlib.contextmanager(postgres_database)(size))
                        if database == "postgresql"
                        else None
                    )
                    result = measure(size, args.repeats, args.samples, Path(scratch), url)
                print(json.dumps(result), flush=True)
                results.append(result)
                shutil.rmtree(Path(scratch) / f"ws-{size}", ignore_errors=True)
    document = {
        "benchmark": "review_scale",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/review_scale.py --sizes "
        + " ".join(str(s) for s in args.sizes)
        + " --databases "
        + " ".join(args.databases)
        + f" --repeats {args.repeats} --samples {args.samples}",
        "machine": describe(),
        "repeats": args.repeats,
        "samples": args.samples,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
