"""What a run of checks shares: the active reference sets, their loaded indexes (rebuilt
first when stale) and the reference items' local features fetched so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from provenance import reference_sets
from provenance.db.session import read_session
from provenance.db.tables import ReferenceItem, ReferenceSet
from provenance.detectors.base import Detector
from provenance.detectors.geometric import LocalFeatures
from provenance.errors import IndexMissing, IndexProblem, ProvenanceError
from provenance.index.faiss_index import VectorIndex, ids_checksum, load_index
from provenance.locks import SetBusy, reference_set_lock
from provenance.workspace import Workspace


@dataclass
class SearchContext:
    """Reference sets, loaded indexes and item details, shared by the assets of one run."""

    sets: list[dict[str, Any]] = field(default_factory=list)
    indexes: dict[tuple[str, str], VectorIndex] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    # Reference items' local features (or why they cannot be had), by item id.
    features: dict[int, LocalFeatures | str] = field(default_factory=dict)


def prepare(
    workspace: Workspace, detectors: dict[str, Detector], *, actor: str, rebuild: bool = True
) -> SearchContext:
    """Load every active set's index for every detector that can run.

    An index that does not hold exactly the set's items (a ``refs add-items`` killed
    between recording items and rebuilding, or an index file lost) is rebuilt from the
    stored vectors under the set's lock before it is searched, and the check says so in
    the set's problems; one that cannot be rebuilt is not searched, and the check says why.
    With ``rebuild`` false (a check worker, whose parent prepared first) indexes are only
    loaded.
    """
    context = SearchContext()
    with read_session(workspace.engine) as session:
        sets = session.scalars(
            select(ReferenceSet).where(ReferenceSet.removed_at.is_(None)).order_by(ReferenceSet.id)
        ).all()
        context.sets = [{"name": s.name, "rights_status": s.rights_status} for s in sets]
    for reference_set in context.sets:
        name = reference_set["name"]
        problems = context.problems.setdefault(name, [])
        loaded, missing = _load_indexes(workspace, name, detectors, problems)
        stale = _stale(workspace, name, loaded, missing) if rebuild else {}
        if stale:
            try:
                # Not waiting: an ingest holding the lock may run for minutes.
                with reference_set_lock(workspace.root, name, wait=False):
                    built = reference_sets.rebuild_indexes(
                        workspace, name, [detectors[d] for d in stale], actor=actor
                    )
            except SetBusy:
                problems.extend(
                    f"{d}: the index is stale ({stale[d]}) while another process changes the "
                    "set; this check searched the index as it was"
                    for d in stale
                )
            except ProvenanceError as exc:
                for detector_name in stale:
                    loaded.pop(detector_name, None)
                    problems.append(
                        f"{detector_name}: the index is stale ({stale[detector_name]}) and could "
                        f"not be rebuilt, so it was not searched: {exc}"
                    )
            else:
                fresh: list[str] = []
                reloaded, _ = _load_indexes(
                    workspace, name, {d: detectors[d] for d in stale}, fresh
                )
                loaded.update(reloaded)
                problems.extend(
                    f"{d}: the index was stale ({stale[d]}); rebuilt with "
                    f"{built[d]['count']} items before this check"
                    for d in stale
                )
                problems.extend(fresh)
        for detector_name, index in loaded.items():
            context.indexes[(name, detector_name)] = index
    return context


def _load_indexes(
    workspace: Workspace, name: str, detectors: dict[str, Detector], problems: list[str]
) -> tuple[dict[str, VectorIndex], list[str]]:
    """Set ``name``'s index of each detector that loads, and the detectors that have none
    yet; why any other one cannot be used goes to ``problems``."""
    loaded: dict[str, VectorIndex] = {}
    missing: list[str] = []
    for detector_name, detector in detectors.items():
        try:
            loaded[detector_name] = load_index(
                workspace.root / "indexes" / name,
                detector_name,
                detector.spec,
                nprobe=int(workspace.settings["search_nprobe"]) or None,
            )
        except IndexMissing:
            missing.append(detector_name)
        except IndexProblem as exc:
            problems.append(f"{detector_name}: {exc}")
    return loaded, missing


def _stale(
    workspace: Workspace, name: str, loaded: dict[str, VectorIndex], missing: list[str]
) -> dict[str, str]:
    """Each detector whose index is missing or does not hold the set's items, with why."""
    with read_session(workspace.engine) as session:
        item_ids = list(
            session.scalars(
                select(ReferenceItem.id)
                .join(ReferenceSet)
                .where(ReferenceSet.name == name, ReferenceSet.removed_at.is_(None))
            )
        )
    expected = ids_checksum(item_ids)
    stale = {detector_name: f"missing, for {len(item_ids)} items" for detector_name in missing}
    for detector_name, index in loaded.items():
        if index.count != len(item_ids) or index.ids_sha256 != expected:
            stale[detector_name] = f"{index.count} vectors for {len(item_ids)} items"
    return stale
