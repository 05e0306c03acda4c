"""The studio's signing key, its certificate chain, and the certificates trusted as anchors.

A key is a certificate chain (PEM, the signer's certificate first) and either a private key
file (PEM) or an external signing command. The command stands for a KMS or an HSM: it reads
the bytes to sign on standard input and writes the DER-encoded ECDSA signature on standard
output (``openssl dgst -sha256 -sign key.pem`` does exactly that). Every signature a
command returns is checked against the certificate before it is used, so a command signing
with another key fails at once instead of producing documents nobody can verify.

Keys are ECDSA on P-256 (C2PA's ES256) or P-384 (ES384): the algorithms C2PA, PAdES and
CMS all accept.

``make_development_keys`` makes a root CA and a signing certificate under it for the demo
and tests. The CA's private key is never written: the development CA can sign nothing else.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shlex
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from provenance.atomic import write_atomically
from provenance.errors import SigningError

# id-kp-documentSigning (RFC 9336): C2PA accepts it, with emailProtection, for signers.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# How long an external signing command may take (a KMS round trip, an HSM's PIN prompt).
COMMAND_TIMEOUT_SECONDS = 60

_CURVES = {"secp256r1": ("es256", hashes.SHA256), "secp384r1": ("es384", hashes.SHA384)}


@dataclass(frozen=True)
class StudioKey:
    """The studio's signer: certificate chain (DER, the signer's first), and the private key
    (PEM) or the external signing command that holds it."""

    chain: tuple[bytes, ...]
    key_pem: bytes | None
    command: tuple[str, ...] | None

    # Parsed once per key, not once per signature.
    @functools.cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.chain[0])

    @functools.cached_property
    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        assert self.key_pem is not None
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    @property
    def algorithm(self) -> str:
        """``es256`` or ``es384``, from the certificate's curve."""
        return _curve(self.certificate)[0]

    @property
    def digest(self) -> str:
        """The digest the algorithm signs with: ``sha256`` or ``sha384``."""
        return str(_curve(self.certificate)[1].name)

    @property
    def chain_pem(self) -> str:
        return "".join(_pem(der) for der in self.chain)

    @property
    def signer(self) -> str:
        return subject_text(self.certificate)

    def sign(self, data: bytes) -> bytes:
        """The DER-encoded ECDSA signature of ``data`` (hashed with ``digest``)."""
        hash_type = _curve(self.certificate)[1]
        if self.command is not None:
            signature = _run_command(self.command, data)
            try:
                public = self.certificate.public_key()
                assert isinstance(public, ec.EllipticCurvePublicKey)
                public.verify(signature, data, ec.ECDSA(hash_type()))
            except (InvalidSignature, ValueError):
                raise SigningError(
                    f"signing_command {self.command[0]!r} returned a signature that does not "
                    "verify with signing_certificate: it signs with another key, or does not "
                    "write a DER ECDSA signature"
                ) from None
            return signature
        return self._private_key.sign(data, ec.ECDSA(hash_type()))


def load_key(certificate: Path, key: Path | None, command: str) -> StudioKey:
    """The studio's key from its settings: a certificate chain file and a key file, or a
    certificate chain file and a signing command. SigningError names what is wrong."""
    chain = read_certificates(certificate, "signing_certificate")
    _curve(chain[0])
    der = tuple(c.public_bytes(serialization.Encoding.DER) for c in chain)
    if command.strip():
        try:
            argv = tuple(shlex.split(command))
        except ValueError as exc:
            raise SigningError(f"signing_command cannot be read: {exc}") from None
        return StudioKey(der, None, argv)
    if key is None:
        raise SigningError("signing_certificate is set but neither signing_key nor signing_command")
    try:
        key_pem = key.read_bytes()
    except OSError as exc:
        raise SigningError(f"signing_key {key}: {exc.strerror}") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(
            f"signing_key {key} is not an unencrypted PEM private key ({_first_line(exc)})"
        ) from None
    if not isinstance(
        private, ec.EllipticCurvePrivateKey
    ) or private.public_key().public_numbers() != (
        chain[0].public_key().public_numbers()  # type: ignore[union-attr]
    ):
        raise SigningError(
            f"signing_key {key} is not the key of signing_certificate's first certificate"
        )
    return StudioKey(der, key_pem, None)


def read_certificates(path: Path, setting: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file, in order; SigningError when there is none."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{setting} {path}: {exc.strerror}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise SigningError(f"{setting} {path} holds no PEM certificate") from None
    return certificates


def studio_anchors(key: StudioKey | None) -> list[x509.Certificate]:
    """The studio's own anchor: the self-signed root at the end of its chain, if there."""
    if key is None:
        return []
    root = x509.load_der_x509_certificate(key.chain[-1])
    return [root] if root.issuer == root.subject else []


def anchors_pem(certificates: Iterable[x509.Certificate]) -> str:
    """Certificates as one PEM text, each once."""
    seen: dict[bytes, str] = {}
    for certificate in certificates:
        der = certificate.public_bytes(serialization.Encoding.DER)
        seen.setdefault(der, _pem(der))
    return "".join(seen.values())


def subject_text(certificate: x509.Certificate) -> str:
    """``Common Name (Organisation)``, or the whole subject when it has neither."""
    common = _attribute(certificate.subject, NameOID.COMMON_NAME)
    organisation = _attribute(certificate.subject, NameOID.ORGANIZATION_NAME)
    if common and organisation:
        return f"{common} ({organisation})"
    return common or organisation or certificate.subject.rfc4514_string()


@dataclass(frozen=True)
class DevelopmentKeys:
    """The files ``make_development_keys`` wrote."""

    ca_certificate: Path
    certificate: Path
    key: Path


def make_development_keys(folder: Path, organisation: str, *, days: int = 825) -> DevelopmentKeys:
    """A development root CA and an ES256 signing certificate under it (C2PA's profile:
    digitalSignature, emailProtection and documentSigning), written to ``folder``. The CA's
    key is discarded. Raises OSError."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organisation} development root CA", organisation)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organisation} provenance signing (development)", organisation))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = DevelopmentKeys(
        folder / "development-ca.pem",
        folder / "studio-signing.pem",
        folder / "studio-signing-key.pem",
    )
    ca_der = ca.public_bytes(serialization.Encoding.DER)
    write_atomically(files.ca_certificate, _pem(ca_der).encode("ascii"))
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    write_atomically(files.certificate, (_pem(leaf_der) + _pem(ca_der)).encode("ascii"))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomically(files.key, key_pem)
    os.chmod(files.key, 0o600)
    return files


def _run_command(argv: tuple[str, ...], data: bytes) -> bytes:
    try:
        done = subprocess.run(
            argv, input=data, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError:
        raise SigningError(f"signing_command {argv[0]!r} was not found") from None
    except subprocess.TimeoutExpired:
        raise SigningError(
            f"signing_command {argv[0]!r} gave no signature within {COMMAND_TIMEOUT_SECONDS} s"
        ) from None
    except OSError as exc:
        raise SigningError(f"signing_command {argv[0]!r} cannot run: {exc.strerror}") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SigningError(
            f"signing_command {argv[0]!r} failed (exit {done.returncode})"
            + (f": {said[-1][:200]}" if said else "")
        )
    if not done.stdout:
        raise SigningError(f"signing_command {argv[0]!r} wrote no signature")
    return done.stdout


def _curve(certificate: x509.Certificate) -> tuple[str, type[hashes.HashAlgorithm]]:
    public = certificate.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name in _CURVES:
        return _CURVES[public.curve.name]
    raise SigningError(
        f"the signing certificate of {subject_text(certificate)} holds a "
        f"{type(public).__name__.removeprefix('_')} key; provenance signs with ECDSA P-256 or "
        "P-384 keys (C2PA ES256/ES384)"
    )


def _key_usage(*, certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not certificates,
        content_commitment=not certificates,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _attribute(name: x509.Name, oid: ObjectIdentifier) -> str:
    found = name.get_attributes_for_oid(oid)
    return str(found[0].value) if found else ""


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
