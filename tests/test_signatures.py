"""Content Credentials in and out, signed evidence and anchored audit logs, end to end with
the real libraries: c2pa-python signs and reads the files, pyHanko's own validator checks
the PDFs, openssl stands for a KMS, and the anchors catch a log cut behind our back."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import c2pa
import pytest
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from provenance.db import audit
from provenance.signing import keys
from tests.conftest import run, run_json, snapshot, sql

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "images"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@pytest.fixture
def vendor(tmp_path: Path) -> keys.DevelopmentKeys:
    """A generator vendor's own CA and signing certificate (an Adobe or OpenAI stand-in)."""
    return keys.make_development_keys(tmp_path / "vendor", "Acme Generative")


def vendor_sign(source: Path, target: Path, vendor: keys.DevelopmentKeys) -> None:
    """Sign ``source`` as a generator vendor does: c2pa.created, trainedAlgorithmicMedia."""
    manifest = {
        "claim_generator_info": [{"name": "Acme Imagine", "version": "4.2"}],
        "title": source.name,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED,
                            "softwareAgent": {"name": "Acme Imagine Model 3"},
                        }
                    ]
                },
            }
        ],
    }
    info = c2pa.C2paSignerInfo(
        b"es256", vendor.certificate.read_bytes(), vendor.key.read_bytes(), None
    )
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context) as builder:
        builder.sign_file(str(source), str(target), signer)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at : at + 12 + length]))
        at += 12 + length
    return chunks


def one_pixel_changed(signed: Path, target: Path) -> None:
    """The signed PNG with one pixel changed and its manifest chunk kept as it was."""
    data = signed.read_bytes()
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    r, g, b = picture.getpixel((10, 10))  # type: ignore[misc]
    picture.putpixel((10, 10), (255 - r, g, b))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    manifest = next(chunk for kind, chunk in png_chunks(data) if kind == b"caBX")
    fresh = png_chunks(buffer.getvalue())
    target.write_bytes(
        data[:8] + fresh[0][1] + manifest + b"".join(chunk for _, chunk in fresh[1:])
    )


def a_png(tmp_path: Path, name: str = "chelsea.png") -> Path:
    """A small real PNG (the sample, downscaled: C2PA hashes every byte)."""
    target = tmp_path / f"plain-{name}"
    with Image.open(SAMPLES / name) as picture:
        picture.convert("RGB").resize((160, 120)).save(target)
    return target


def set_setting(workspace_dir: Path, name: str, value: str) -> None:
    path = workspace_dir / "provenance.toml"
    text = path.read_text()
    assert f"# {name} = " in text or f"{name} = " in text
    lines = [
        f'{name} = "{value}"' if line.lstrip("# ").startswith(f"{name} =") else line
        for line in text.splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def studio(workspace_dir: Path, vendor: keys.DevelopmentKeys) -> Path:
    """A workspace with a development studio key that trusts the vendor's root."""
    ok(run("-w", workspace_dir, "keys", "init", "--organisation", "Harbour Pictures"))
    shutil.copy(vendor.ca_certificate, workspace_dir / "keys" / "vendors.pem")
    set_setting(workspace_dir, "trust_list", "keys/vendors.pem")
    return workspace_dir


def credentials_of(workspace_dir: Path, ref: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = run_json("-w", workspace_dir, "show", ref)["content_credentials"]
    return found


def test_vendor_credentials_are_read_valid_invalid_untrusted_or_absent(
    studio: Path, vendor: keys.DevelopmentKeys, tmp_path: Path
) -> None:
    plain = a_png(tmp_path)
    signed = tmp_path / "acme_out.png"
    vendor_sign(plain, signed, vendor)
    changed = tmp_path / "acme_out_retouched.png"
    one_pixel_changed(signed, changed)
    ok(run("-w", studio, "register", signed, changed, plain, "--use", "ideation"))

    valid = credentials_of(studio, "1")
    assert valid is not None
    assert valid["validation_state"] == "valid"
    assert valid["claim_generator"] == "Acme Imagine"
    assert valid["signer"] == "Acme Generative provenance signing (development)"
    assert valid["actions"][0]["action"] == "c2pa.created"
    assert valid["actions"][0]["digital_source_type"] == TRAINED
    generation = run_json("-w", studio, "show", "1")["generation"]
    assert generation["fields"]["tool"] == {"value": "Acme Imagine", "source": "c2pa"}
    assert generation["fields"]["model"] == {"value": "Acme Imagine Model 3", "source": "c2pa"}
    assert generation["settings"]["digital_source_type"]["value"] == TRAINED

    invalid = credentials_of(studio, "2")
    assert invalid is not None
    assert invalid["validation_state"].startswith("invalid: assertion.dataHash.mismatch")
    # A manifest that does not validate is evidence, never a source of generation facts.
    assert run_json("-w", studio, "show", "2")["generation"]["fields"]["tool"] is None

    assert credentials_of(studio, "3") is None
    shown = run("-w", studio, "show", "3").stdout
    assert "content credentials  none (the file carries no C2PA manifest)" in shown
    shown = run("-w", studio, "show", "1").stdout
    assert "content credentials  valid" in shown
    assert "c2pa.created (trainedAlgorithmicMedia) by Acme Imagine Model 3" in shown


def test_a_signer_outside_the_trust_list_is_reported_untrusted(
    workspace_dir: Path, vendor: keys.DevelopmentKeys, tmp_path: Path
) -> None:
    signed = tmp_path / "acme_out.png"
    vendor_sign(a_png(tmp_path), signed, vendor)
    ok(run("-w", workspace_dir, "register", signed))
    found = credentials_of(workspace_dir, "1")
    assert found is not None
    assert found["validation_state"] == "valid but signer not trusted"
    # The signature holds, so what it says is recorded; the record says who is untrusted.
    assert run_json("-w", workspace_dir, "show", "1")["generation"]["fields"]["tool"] == {
        "value": "Acme Imagine",
        "source": "c2pa",
    }


def test_a_c2pa_sidecar_is_read_and_a_broken_one_is_recorded_invalid(
    studio: Path, vendor: keys.DevelopmentKeys, tmp_path: Path
) -> None:
    plain = a_png(tmp_path)
    folder = tmp_path / "renders"
    folder.mkdir()
    shot = folder / "shot010.png"
    shutil.copy(plain, shot)
    info = c2pa.C2paSignerInfo(
        b"es256", vendor.certificate.read_bytes(), vendor.key.read_bytes(), None
    )
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    definition = {
        "claim_generator_info": [{"name": "Acme Imagine", "version": "4.2"}],
        "title": "shot010.png",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": TRAINED}]},
            }
        ],
    }
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition, context) as builder:
        builder.set_no_embed()
        with shot.open("rb") as source, io.BytesIO() as unused:
            manifest = builder.sign(signer, "image/png", source, unused)
    (folder / "shot010.c2pa").write_bytes(manifest)
    broken = folder / "shot020.png"
    shutil.copy(a_png(tmp_path, "camera.png"), broken)
    (folder / "shot020.c2pa").write_bytes(b"not a manifest store")
    result = ok(run("-w", studio, "register", folder))
    assert "skipped" not in result.stderr.lower() or "0 skipped" in result.stdout
    listed = {a["original_name"]: a["id"] for a in run_json("-w", studio, "list")["assets"]}
    assert set(listed) == {"shot010.png", "shot020.png"}
    found = credentials_of(studio, str(listed["shot010.png"]))
    assert found is not None
    assert found["validation_state"] == "valid"
    assert found["sidecar"] == "shot010.c2pa"
    damaged = credentials_of(studio, str(listed["shot020.png"]))
    assert damaged is not None
    assert damaged["validation_state"].startswith("invalid")


def test_export_c2pa_keeps_the_vendor_manifest_and_adds_our_assertion(
    studio: Path, vendor: keys.DevelopmentKeys, tmp_path: Path
) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    shutil.copy(SAMPLES / "camera.png", refs / "camera.png")
    ok(run("-w", studio, "refs", "add", "studio-ip", "--from", refs, "--rights", "third-party",
           "--holder", "A studio"))  # fmt: skip
    signed = tmp_path / "acme_out.png"
    vendor_sign(a_png(tmp_path, "camera.png"), signed, vendor)
    ok(run("-w", studio, "register", signed, "--use", "background"))
    out = tmp_path / "legal"
    ok(run("-w", studio, "export", "asset", "1", "--c2pa", "--out", out))
    copy = out / "asset-1-c2pa.png"
    record_bytes = (out / "asset-1.json").read_bytes()
    assert not list(studio.glob(".c2pa-*"))  # the signing folder is gone

    # Read back with c2pa-python itself, trusting the studio's root and the vendor's.
    studio_root = (studio / "keys" / "development-ca.pem").read_text()
    both = studio_root + vendor.ca_certificate.read_text()

    def read(roots: str) -> tuple[str, dict[str, Any]]:
        context = c2pa.Context.from_dict(
            {"verify": {"remote_manifest_fetch": False}, "trust": {"trust_anchors": roots}}
        )
        with c2pa.Reader(str(copy), context=context) as reader:
            return reader.get_validation_state(), json.loads(reader.json())

    state, store = read(both)
    assert state == "Trusted"
    # Without the vendor's root, our manifest holds but its ingredient's signer is unknown.
    assert read(studio_root)[0] == "Valid"
    active = store["manifests"][store["active_manifest"]]
    ours = next(a["data"] for a in active["assertions"] if a["label"] == "org.provenance.record")
    assert ours["record_sha256"] == hashlib.sha256(record_bytes).hexdigest()
    assert ours["asset_id"] == 1
    assert ours["verdict"] == "high"  # a downscaled copy of the reference
    assert ours["review_status"] == json.loads(record_bytes)["review_status"]
    assert ours["approvals"] == []
    assert ours["digital_source_type"] == TRAINED
    head = sql(studio, "SELECT last_event_id, last_hash FROM audit_head")[0]
    assert ours["audit_head"] == {"event": head[0], "hash": head[1]}
    (ingredient,) = active["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    vendor_manifest = store["manifests"][ingredient["active_manifest"]]
    assert vendor_manifest["claim_generator_info"][0]["name"] == "Acme Imagine"
    assert vendor_manifest["signature_info"]["common_name"].startswith("Acme Generative")
    # The pixels are the registered file's.
    with Image.open(copy) as ours_img, Image.open(signed) as theirs:
        assert ours_img.tobytes() == theirs.convert(ours_img.mode).tobytes()

    # `provenance verify` agrees for every file of the export.
    result = ok(run("-w", studio, "verify", *sorted(out.iterdir())))
    signed = [p for p in out.iterdir() if p.suffix != ".p7s"]  # each checked with its .p7s
    assert len(signed) == 5
    assert result.stdout.count("OK  ") == len(signed)


def test_sign_without_a_key_says_how_to_make_one_and_writes_nothing(
    workspace_dir: Path, tmp_path: Path
) -> None:
    ok(run("-w", workspace_dir, "register", a_png(tmp_path)))
    before = snapshot(workspace_dir)
    out = tmp_path / "delivery"
    result = run("-w", workspace_dir, "sign", "1", "--out", out)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "keys init" in result.output
    assert not out.exists()
    assert not (workspace_dir / "audit-anchors.jsonl").exists()
    assert snapshot(workspace_dir) == before


def test_a_sequence_cannot_carry_content_credentials_and_nothing_is_written(
    studio: Path, tmp_path: Path
) -> None:
    from tests.vfxmakers import write_exr

    folder = tmp_path / "comp"
    folder.mkdir()
    with Image.open(SAMPLES / "camera.png") as picture:
        small = picture.convert("RGB").resize((64, 48))
    for frame in (1001, 1002):
        write_exr(folder / f"comp.{frame}.exr", small)
    ok(run("-w", studio, "register", folder))
    anchors_before = (studio / "audit-anchors.jsonl").exists()
    result = run("-w", studio, "sign", "1", "--out", tmp_path / "delivery")
    assert result.exit_code == 1
    assert "Content Credentials cannot be embedded in .exr files" in result.output
    assert not (tmp_path / "delivery").exists()
    assert (studio / "audit-anchors.jsonl").exists() == anchors_before


def test_a_signed_evidence_pack_validates_with_pyhanko_and_one_byte_breaks_it(
    studio: Path, tmp_path: Path
) -> None:
    ok(run("-w", studio, "register", a_png(tmp_path), "--use", "background"))
    out = tmp_path / "legal"
    ok(run("-w", studio, "export", "asset", "1", "--out", out))
    pdf = (out / "asset-1.pdf").read_bytes()
    root = keys.read_certificates(studio / "keys" / "development-ca.pem", "test")[0]
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization

    trust = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))],
        allow_fetching=False,
    )
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    status = validate_pdf_signature(signature, trust)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert "Harbour Pictures" in status.signing_cert.subject.human_friendly
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES

    # One byte changed inside the signed content (the page's text stream).
    at = pdf.index(b"stream", len(pdf) // 4) + 40
    tampered = bytearray(pdf)
    tampered[at] ^= 0x01
    (out / "tampered.pdf").write_bytes(bytes(tampered))
    (signature,) = PdfFileReader(io.BytesIO(bytes(tampered))).embedded_signatures
    assert not validate_pdf_signature(signature, trust).intact
    result = run("-w", studio, "verify", out / "tampered.pdf")
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    # The record's detached signature, likewise.
    record = out / "asset-1.json"
    ok(run("-w", studio, "verify", record))
    record.write_bytes(record.read_bytes().replace(b'"background"', b'"ideation"  '))
    result = run("-w", studio, "verify", record, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["files"][0]["signatures"][0]["intact"] is False


def test_a_lawyer_outside_the_studio_verifies_with_the_root_certificate_alone(
    studio: Path, tmp_path: Path
) -> None:
    ok(run("-w", studio, "register", a_png(tmp_path)))
    out = tmp_path / "legal"
    ok(run("-w", studio, "export", "asset", "1", "--out", out))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = elsewhere / "harbour-root.pem"
    shutil.copy(studio / "keys" / "development-ca.pem", root)
    result = ok(run("-w", elsewhere, "verify", out / "asset-1.pdf", "--trust", root))
    assert (
        "signer Harbour Pictures provenance signing (development) (Harbour Pictures) (trusted"
        in (result.stdout)
    )
    # Another studio's root does not vouch for it.
    other = keys.make_development_keys(tmp_path / "other", "Other Studio")
    result = run("-w", elsewhere, "verify", out / "asset-1.pdf", "--trust", other.ca_certificate)
    assert result.exit_code == 1
    assert "NOT trusted" in result.stdout


def test_an_external_signing_command_signs_exports(studio: Path, tmp_path: Path) -> None:
    key = studio / "keys" / "studio-signing-key.pem"
    set_setting(studio, "signing_key", "")
    set_setting(studio, "signing_command", f"openssl dgst -sha256 -sign {key}")
    ok(run("-w", studio, "register", a_png(tmp_path)))
    out = tmp_path / "legal"
    ok(run("-w", studio, "export", "asset", "1", "--c2pa", "--out", out))
    ok(run("-w", studio, "verify", *sorted(out.iterdir())))

    # A command that signs with another key is caught before anything is written.
    other = keys.make_development_keys(tmp_path / "other", "Other Studio")
    set_setting(studio, "signing_command", f"openssl dgst -sha256 -sign {other.key}")
    anchors = (studio / "audit-anchors.jsonl").read_bytes()
    result = run("-w", studio, "export", "asset", "1", "--out", tmp_path / "again")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "does not verify with signing_certificate" in result.output
    assert not (tmp_path / "again").exists()
    assert (studio / "audit-anchors.jsonl").read_bytes() == anchors


def test_a_cut_log_with_a_rewritten_head_is_found_by_the_anchors(
    db_workspace_dir: Path, tmp_path: Path
) -> None:
    ws = db_workspace_dir
    ok(run("-w", ws, "keys", "init"))
    ok(run("-w", ws, "register", a_png(tmp_path)))
    ok(run("-w", ws, "export", "asset", "1", "--out", tmp_path / "legal", "--no-pdf"))
    ok(run("-w", ws, "register", a_png(tmp_path, "camera.png")))
    ok(run("-w", ws, "audit", "anchor"))
    anchors = ws / "audit-anchors.jsonl"
    assert len(anchors.read_text().splitlines()) == 2
    ok(run("-w", ws, "audit", "verify", "--anchors", anchors))

    # Whoever can write the database removes the second asset, the events after the export,
    # and rewrites audit_head to match: the chain alone still verifies.
    exported = json.loads((tmp_path / "legal" / "audit-anchor.json").read_text())
    cut_from = exported["event"] + 1
    for table in ("fingerprints", "generation_records", "asset_states"):
        sql(ws, f"DELETE FROM {table} WHERE asset_id = 2")
    sql(ws, "DELETE FROM assets WHERE id = 2")
    sql(ws, "DELETE FROM audit_events WHERE id >= :cut", cut=cut_from)
    sql(
        ws,
        "UPDATE audit_head SET last_event_id = :event, last_hash = :hash",
        event=exported["event"],
        hash=exported["hash"],
    )
    ok(run("-w", ws, "audit", "verify"))

    result = run("-w", ws, "audit", "verify", "--anchors", anchors)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert f"event {cut_from}" in result.output or "is missing" in result.output
    assert "was cut and its head rewritten" in result.output
    # An export refuses to anchor a log that contradicts its anchors.
    result = run("-w", ws, "export", "asset", "1", "--out", tmp_path / "later", "--no-pdf")
    assert result.exit_code == 1
    assert "contradicts its anchor" in result.output


def test_an_altered_anchor_or_a_rewritten_event_is_named(
    workspace_dir: Path, tmp_path: Path
) -> None:
    ws = workspace_dir
    ok(run("-w", ws, "keys", "init"))
    ok(run("-w", ws, "register", a_png(tmp_path)))
    ok(run("-w", ws, "audit", "anchor"))
    anchors = ws / "audit-anchors.jsonl"
    line = json.loads(anchors.read_text())
    forged = dict(line, hash="0" * 64)
    (tmp_path / "forged.jsonl").write_text(json.dumps(forged) + "\n")
    result = run("-w", ws, "audit", "verify", "--anchors", tmp_path / "forged.jsonl")
    assert result.exit_code == 1
    assert "was altered: its signature does not match" in result.output
    (tmp_path / "garbage.jsonl").write_text("{not json\n")
    result = run("-w", ws, "audit", "verify", "--anchors", tmp_path / "garbage.jsonl")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "garbage.jsonl line 1 is not an audit anchor" in result.output

    # The anchored event rewritten (another actor), its hash and the head recomputed: the
    # chain is consistent again, and only the anchor knows.
    event = line["event"]
    row = sql(ws, "SELECT id, occurred_at, actor, action, subject, payload, prev_hash "
                  "FROM audit_events WHERE id = :id", id=event)[0]  # fmt: skip
    fields = dict(zip(audit.HASHED_FIELDS, row, strict=True), actor="someone else")
    digest = audit.event_hash(fields)
    sql(ws, "UPDATE audit_events SET actor = 'someone else', hash = :h WHERE id = :id",
        h=digest, id=event)  # fmt: skip
    sql(ws, "UPDATE audit_head SET last_hash = :h", h=digest)
    ok(run("-w", ws, "audit", "verify"))
    result = run("-w", ws, "audit", "verify", "--anchors", anchors)
    assert result.exit_code == 1
    assert f"event {event} differs from the anchor on line 1" in result.output
    assert "the log was rewritten" in result.output


def test_verify_says_what_carries_no_signature(workspace_dir: Path, tmp_path: Path) -> None:
    plain = a_png(tmp_path)
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(b"%PDF-1.7\n1 0 obj\n<<")
    result = run("-w", workspace_dir, "verify", plain, truncated, tmp_path / "missing.pdf")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("FAIL") for line in lines)
    assert "carries no signature" in lines[0]


def test_the_asset_page_and_the_evidence_pack_show_the_credentials(
    studio: Path, vendor: keys.DevelopmentKeys, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from provenance.web.app import create_app
    from provenance.workspace import Workspace
    from tests.test_web_api import sign_in

    signed = tmp_path / "acme_out.png"
    vendor_sign(a_png(tmp_path), signed, vendor)
    ok(run("-w", studio, "users", "add", "lena", "--role", "legal"))
    token = run("-w", studio, "users", "token", "lena").stdout.strip()
    env = {"PROVENANCE_TOKEN": token}
    ok(run("-w", studio, "register", signed, "--use", "ideation", env=env))
    ok(run("-w", studio, "register", a_png(tmp_path, "camera.png"), env=env))
    with Workspace.open(studio) as workspace, TestClient(create_app(workspace)) as client:
        sign_in(client, token)
        page = client.get("/assets/1").text
        assert 'data-testid="c2pa-state">valid</dd>' in page
        assert "c2pa.created (trainedAlgorithmicMedia) by Acme Imagine Model 3" in page
        assert "None: the file carried no C2PA manifest." in client.get("/assets/2").text
    out = tmp_path / "legal"
    ok(run("-w", studio, "export", "asset", "1", "--out", out, "--no-pdf", env=env))
    pack = (out / "asset-1.html").read_text()
    assert "<h2>Content Credentials (C2PA)</h2>" in pack
    assert "<strong>valid</strong>" in pack
    assert "Acme Generative provenance signing (development)" in pack


def test_a_production_export_signs_the_disclosure_and_every_record(
    studio: Path, tmp_path: Path
) -> None:
    ok(run("-w", studio, "register", a_png(tmp_path), a_png(tmp_path, "camera.png"),
           "--production", "Harbour", "--use", "background"))  # fmt: skip
    out = tmp_path / "legal"
    result = ok(run("-w", studio, "export", "production", "Harbour", "--out", out))
    assert "the records and evidence packs of 2 assets" in result.stdout
    assert "not signed" not in result.output
    files = [out / "disclosure.pdf", out / "disclosure.json", out / "audit-anchor.json"]
    files += sorted((out / "assets").glob("asset-*.json"))
    verified = ok(run("-w", studio, "verify", *files))
    assert verified.stdout.count("OK  ") == 5
    assert "Harbour Pictures" in verified.stdout


def test_store_gc_removes_the_signing_folder_of_a_killed_export(workspace_dir: Path) -> None:
    left = workspace_dir / ".c2pa-killed"
    left.mkdir()
    (left / "signed.png").write_bytes(b"half a copy")
    young = workspace_dir / ".c2pa-running"
    young.mkdir()
    ok(run("-w", workspace_dir, "store", "gc", "--min-age", "3600"))
    assert left.exists()
    os.utime(left, (0, 0))
    ok(run("-w", workspace_dir, "store", "gc", "--min-age", "3600"))
    assert not left.exists()
    assert young.exists()


def test_an_export_of_a_broken_log_writes_no_anchor_and_says_so(
    workspace_dir: Path, tmp_path: Path
) -> None:
    ok(run("-w", workspace_dir, "register", a_png(tmp_path)))
    sql(workspace_dir, "UPDATE audit_events SET actor = 'someone else' WHERE id = 1")
    out = tmp_path / "legal"
    result = ok(run("-w", workspace_dir, "export", "asset", "1", "--out", out, "--no-pdf"))
    assert "its head was not anchored" in result.stderr
    assert not (out / "audit-anchor.json").exists()
    assert not (workspace_dir / "audit-anchors.jsonl").exists()
    assert json.loads((out / "asset-1.json").read_text())["audit"]["chain"]["ok"] is False


def test_damaged_manifests_read_as_invalid_and_never_raise(
    workspace_dir: Path, vendor: keys.DevelopmentKeys, tmp_path: Path
) -> None:
    import random

    from provenance.signing import credentials

    signed = tmp_path / "acme_out.png"
    vendor_sign(a_png(tmp_path), signed, vendor)
    data = signed.read_bytes()
    manifest = next(chunk for kind, chunk in png_chunks(data) if kind == b"caBX")
    start = data.index(manifest) + 8
    end = start + len(manifest) - 12
    rng = random.Random(15)
    states = []
    for trial in range(60):
        damaged = bytearray(data)
        if trial % 2:
            for _ in range(rng.randint(1, 20)):
                damaged[rng.randrange(start, end)] ^= rng.randrange(1, 256)
        else:
            damaged = damaged[: rng.randrange(start, end)]
        found = credentials.read_credentials("x.png", bytes(damaged), None, "")
        assert found is not None
        states.append(found["validation_state"])
    # Flips in a manifest's padding may leave it intact; cuts never do.
    assert sum(state.startswith("invalid") for state in states) >= 55
    assert all(state.startswith("invalid") for state in states[::2])
    # Registered, such a file is kept with its state: the damage is evidence.
    cut = tmp_path / "cut_manifest.png"
    broken = bytearray(data)
    broken[start + 200 : start + 400] = bytes(200)
    # With its chunk's CRC made to match, so that the picture itself still decodes.
    broken[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(broken[start - 4 : end])))
    cut.write_bytes(bytes(broken))
    ok(run("-w", workspace_dir, "register", cut))
    found = credentials_of(workspace_dir, "1")
    assert found is not None
    assert found["validation_state"].startswith("invalid")


def test_a_movie_gets_content_credentials_and_still_plays(studio: Path, tmp_path: Path) -> None:
    import av

    from tests.vfxmakers import write_movie

    with Image.open(SAMPLES / "rocket.jpg") as picture:
        frames = [picture.convert("RGB").rotate(angle) for angle in range(0, 24, 2)]
    movie = write_movie(tmp_path / "anim.mp4", frames)
    ok(run("-w", studio, "register", movie))
    out = tmp_path / "delivery"
    ok(run("-w", studio, "sign", "1", "--out", out))
    copy = out / "asset-1-c2pa.mp4"
    ok(run("-w", studio, "verify", copy))
    with av.open(str(copy)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(frames)
