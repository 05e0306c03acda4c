"""Signed documents with pyHanko: PDFs signed in place (PAdES baseline B-B), and detached
CMS signatures (``.p7s``, DER) for JSON records and audit anchors; and their validation.

Validation never reaches the network: the trust roots are the ones given (the studio's root
and its trust list), revocation is not fetched, and a signature's time is the signer's own
claim (no time-stamping authority is asked when signing).
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from provenance.errors import SignatureInvalid
from provenance.signing.keys import StudioKey, subject_text

# pyHanko logs each path it cannot build with a traceback; the reports here say it once.
for _name in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

# The field name of the signature provenance adds to a PDF.
PDF_FIELD = "ProvenanceSignature"


@dataclass(frozen=True)
class SignatureReport:
    """What a signature says and whether it holds."""

    kind: str  # "pdf", "cms" or "c2pa"
    intact: bool  # the bytes are those that were signed
    trusted: bool  # the signer chains to a trusted root
    signer: str
    signed_at: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.intact and self.trusted

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ok": self.ok,
            "intact": self.intact,
            "trusted": self.trusted,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "message": self.message,
        }


def sign_pdf(pdf: bytes, key: StudioKey, *, reason: str) -> bytes:
    """``pdf`` with the studio's PAdES signature added as an incremental update."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    metadata = signers.PdfSignatureMetadata(
        field_name=PDF_FIELD,
        reason=reason,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm=key.digest,
    )
    output = signers.sign_pdf(writer, metadata, signer=_signer(key))
    return bytes(output.getvalue())


def sign_detached(data: bytes, key: StudioKey) -> bytes:
    """A detached CMS SignedData over ``data`` (DER), signed with the studio's key."""
    signer = _signer(key)
    content = asyncio.run(signer.async_sign_general_data(data, key.digest, detached=True))
    return bytes(content.dump())


def verify_pdf(data: bytes, trust: list[x509.Certificate]) -> list[SignatureReport]:
    """Every signature in a PDF, validated against ``trust``; SignatureInvalid when the file
    is no PDF or carries no signature."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise SignatureInvalid(f"not a readable PDF: {_first_line(exc)}") from None
    if not embedded:
        raise SignatureInvalid("the PDF carries no signature")
    reports = []
    for signature in embedded:
        try:
            status = validate_pdf_signature(signature, _context(trust))
        except Exception as exc:  # pyHanko raises many kinds on a damaged signature
            reports.append(SignatureReport("pdf", False, False, "unknown", None, _first_line(exc)))
            continue
        whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
        intact = bool(status.intact and status.valid and whole)
        reports.append(
            SignatureReport(
                "pdf",
                intact,
                bool(status.trusted),
                _signer_name(status.signing_cert),
                _time(signature.self_reported_timestamp),
                _pdf_message(status, whole),
            )
        )
    return reports


def verify_detached(
    data: bytes, signature: bytes, trust: list[x509.Certificate]
) -> SignatureReport:
    """A detached CMS signature over ``data`` validated against ``trust``."""
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    try:
        content = cms.ContentInfo.load(signature)
        signed = content["content"]
        _ = signed["signer_infos"][0]
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise SignatureInvalid(f"not a CMS signature: {_first_line(exc)}") from None
    try:
        status = asyncio.run(
            async_validate_detached_cms(data, signed, signer_validation_context=_context(trust))
        )
    except Exception as exc:  # a damaged signature, whatever pyHanko calls it
        return SignatureReport("cms", False, False, "unknown", None, _first_line(exc))
    intact = bool(status.intact and status.valid)
    message = (
        "the signed bytes are unchanged"
        if intact
        else "the file was changed after it was signed, or the signature is damaged"
    )
    if intact and not status.trusted:
        message += "; the signer does not chain to a trusted root"
    return SignatureReport(
        "cms",
        intact,
        bool(status.trusted),
        _signer_name(status.signing_cert),
        _time(getattr(status, "signer_reported_dt", None)),
        message,
    )


def _signer(key: StudioKey) -> Any:
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    certificates = [asn1_x509.Certificate.load(der) for der in key.chain]
    mechanism = cms.SignedDigestAlgorithm({"algorithm": f"{key.digest}_ecdsa"})

    class StudioSigner(signers.Signer):
        async def async_sign_raw(
            self, data: bytes, digest_algorithm: str, dry_run: bool = False
        ) -> bytes:
            if dry_run:
                return bytes(8 + 2 * 49)  # room for any DER ECDSA signature up to P-384
            return key.sign(data)

    return StudioSigner(
        signing_cert=certificates[0],
        cert_registry=SimpleCertificateStore.from_certs(certificates),  # type: ignore[no-untyped-call]
        signature_mechanism=mechanism,
    )


def _context(trust: list[x509.Certificate]) -> Any:
    from cryptography.hazmat.primitives import serialization
    from pyhanko_certvalidator import ValidationContext

    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in trust]
    return ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")


def _signer_name(certificate: Any) -> str:
    if certificate is None:
        return "unknown"
    return subject_text(x509.load_der_x509_certificate(certificate.dump()))


def _pdf_message(status: Any, whole: bool) -> str:
    if not (status.intact and status.valid):
        return "the PDF was changed after it was signed, or the signature is damaged"
    if not whole:
        return "the PDF was changed after it was signed (content added after the signature)"
    if not status.trusted:
        return "the PDF is unchanged, but the signer does not chain to a trusted root"
    return "the PDF is unchanged since it was signed"


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
