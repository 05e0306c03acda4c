"""The provenance record of an asset and the disclosure summary of a production.

A record (``provenance.record/1``, JSON Schema in ``schemas/record-1.json``) holds the asset
and its file hashes, the generation record with the source of every field, the tool and its
vetted data handling, every check (detector specs, thresholds, matches, scores), every
review decision, the consents and approvals that bear on it, the policy's requirements on
the day given, and the audit events about the asset with the result of verifying the whole
chain. Nothing in it depends on the moment of export, so exporting twice without changes
gives identical bytes.

A disclosure summary (``provenance.disclosure/1``, ``schemas/disclosure-1.json``) lists
every generated asset of a production by intended-use category, with its tool, verdict,
review status, approvals and whether it is cleared for final.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provenance._version import __version__
from provenance.db import audit
from provenance.db.tables import Asset, AuditEvent
from provenance.domain import IntendedUse
from provenance.export.asset_json import asset_json

RECORD_SCHEMA = "provenance.record/1"
DISCLOSURE_SCHEMA = "provenance.disclosure/1"
# Every row of the spreadsheet carries this in its first column.
DISCLOSURE_CSV_SCHEMA = "provenance.disclosure-csv/1"
DISCLOSURE_CSV_COLUMNS = (
    "schema",
    "production",
    "as_of",
    "asset_id",
    "file",
    "sha256",
    "intended_use",
    "tool",
    "verdict",
    "review_status",
    "cleared_for_final",
    "missing",
    "approvals",
    "findings",
)
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SCHEMAS = Path(__file__).with_name("schemas")


def schema_document(name: str) -> dict[str, Any]:
    """A committed JSON Schema (``record-1`` or ``disclosure-1``)."""
    document: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text("utf-8"))
    return document


def asset_record(
    asset: Asset,
    *,
    today: dt.date,
    status: dict[str, Any],
    tool: dict[str, Any] | None,
    checks: list[dict[str, Any]],
    events: Iterable[AuditEvent],
    chain: audit.ChainReport,
) -> dict[str, Any]:
    """The full provenance record of ``asset`` as of ``today``, from its status
    (``provenance.status/1``), its tool's vetting (``provenance.tool/1``), its checks, the
    audit events about it (``subjects``) and the audit log's verification."""
    record = asset_json(asset)
    if tool is not None:
        tool = {key: value for key, value in tool.items() if key not in ("schema", "assets")}
    return {
        "schema": RECORD_SCHEMA,
        "produced_by": {"product": "provenance", "version": __version__},
        "as_of": today.isoformat(),
        "asset": {
            key: value for key, value in record.items() if key not in ("schema", "checks", "review")
        },
        "tool": tool,
        "checks": checks,
        "reviews": record["review"]["decisions"],
        "review_status": record["review"]["status"],
        "declarations": status["declarations"],
        "consents": status["consents"],
        "approvals": status["approvals"],
        "revisions": status["revisions"],
        "policy": status["policy"],
        "audit": {
            "events": [audit.event_json(event) for event in events],
            "chain": chain.to_json(),
        },
    }


def subjects(asset: Asset, status: dict[str, Any]) -> list[str]:
    """The audit subjects an asset's record shows the events of."""
    subjects = [f"asset:{asset.id}"]
    subjects += [f"consent:{c['consent_id']}" for c in status["consents"]]
    if status["tool"]:
        subjects.append(f"tool:{status['tool']['name']}")
    return subjects


def production_disclosure(
    name: str,
    *,
    today: dt.date,
    statuses: Iterable[tuple[Asset, dict[str, Any]]],
    chain: audit.ChainReport,
) -> dict[str, Any]:
    """Every generated asset of production ``name`` by intended-use category, from each
    asset's status (``provenance.status/1``) as of ``today``."""
    rows = []
    for asset, status in statuses:
        active = [a for a in status["approvals"] if a["withdrawn"] is None]
        rows.append(
            {
                "asset_id": asset.id,
                "sha256": asset.sha256,
                "original_name": asset.original_name,
                "intended_use": asset.intended_use,
                "tool": status["tool"],
                "verdict": status["verdict"],
                "review_status": status["review_status"],
                "approvals": [
                    {
                        "approval_id": a["approval_id"],
                        "approver": a["approver"],
                        "reference": a["reference"],
                    }
                    for a in active
                ],
                "cleared_for_final": status["policy"]["cleared_for_final"],
                "missing": status["policy"]["missing"],
                "findings": [f["key"] for f in status["policy"]["findings"]],
            }
        )
    order = [use.value for use in IntendedUse]
    categories = []
    for use in order:
        members = [r for r in rows if r["intended_use"] == use]
        if members:
            categories.append(
                {
                    "intended_use": use,
                    "description": IntendedUse(use).description,
                    "count": len(members),
                    "assets": members,
                }
            )
    tools = Counter(r["tool"]["name"] if r["tool"] else "(none recorded)" for r in rows)
    return {
        "schema": DISCLOSURE_SCHEMA,
        "produced_by": {"product": "provenance", "version": __version__},
        "production": name,
        "as_of": today.isoformat(),
        "totals": {
            "assets": len(rows),
            "cleared_for_final": sum(1 for r in rows if r["cleared_for_final"]),
            "flagged": sum(1 for r in rows if r["verdict"] in ("review", "high")),
            "with_approval": sum(1 for r in rows if r["approvals"]),
            "by_tool": dict(sorted(tools.items())),
        },
        "categories": categories,
        "chain": chain.to_json(),
    }


def disclosure_csv(summary: dict[str, Any]) -> str:
    """The disclosure summary as a spreadsheet: one row per asset (``DISCLOSURE_CSV_COLUMNS``,
    lists joined with "; "), each labelled ``provenance.disclosure-csv/1``. Text that a
    spreadsheet would run as a formula (a file named ``=HYPERLINK(...).png``) is quoted
    with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(DISCLOSURE_CSV_COLUMNS)
    for category in summary["categories"]:
        for row in category["assets"]:
            approvals = [
                f"{a['approver']} ({a['reference']})" if a["reference"] else a["approver"]
                for a in row["approvals"]
            ]
            cells = (
                DISCLOSURE_CSV_SCHEMA,
                summary["production"],
                summary["as_of"],
                row["asset_id"],
                row["original_name"],
                row["sha256"],
                row["intended_use"],
                row["tool"]["name"] if row["tool"] else "",
                row["verdict"] or "unchecked",
                row["review_status"],
                "yes" if row["cleared_for_final"] else "no",
                "; ".join(row["missing"]),
                "; ".join(approvals),
                "; ".join(row["findings"]),
            )
            writer.writerow([_cell(value) for value in cells])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def dumps(document: dict[str, Any]) -> str:
    """The one JSON spelling of an export (sorted keys, two-space indent, final newline)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
