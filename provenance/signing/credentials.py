"""Content Credentials (C2PA manifests), read from files and written onto exported copies,
with c2pa-python, the Content Authenticity Initiative's library.

Reading validates the manifest store against the trust anchors given (the studio's own
root and the trust list it provides; nothing built in) and sums it up as JSON
(``provenance.content-credentials/1``): the claim generator, the signer, the signing time,
the actions with their IPTC digital source types, the ingredients, and the validation
state, one of ``valid``, ``valid but signer not trusted`` or ``invalid: <reason>``.

Writing signs a copy of a file with a manifest whose parent ingredient is the file as it
was registered (so a vendor's manifest is kept inside ours), the ``c2pa.actions`` and our
own assertion (``RECORD_ASSERTION``), with the studio's key.

Nothing here reaches the network: remote manifests and OCSP are never fetched, and no
time-stamping authority is asked (a signature carries no trusted time).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import InvalidInput, SigningError, UnsupportedMedia
from provenance.metadata.sidecar import find_sidecar

if TYPE_CHECKING:
    from provenance.signing.keys import StudioKey

SCHEMA = "provenance.content-credentials/1"
# Our assertion in the manifests we write: the provenance record behind the copy.
RECORD_ASSERTION = "org.provenance.record"
RECORD_ASSERTION_SCHEMA = "provenance.c2pa-assertion/1"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED = IPTC + "trainedAlgorithmicMedia"
COMPOSITE_TRAINED = IPTC + "compositeWithTrainedAlgorithmicMedia"
MAX_SIDECAR_BYTES = 16 * 1024 * 1024

STATE_VALID = "valid"
STATE_UNTRUSTED = "valid but signer not trusted"
STATE_INGREDIENT_UNTRUSTED = "valid but an ingredient's signer is not trusted"

# The MIME types c2pa-python reads and writes, by the suffixes provenance registers.
MIME_BY_SUFFIX = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
}

_contexts: dict[str, Any] = {}
# The label the opened action names the parent ingredient by.
_PARENT = "parent"


def read_credentials(
    name: str, data: bytes | None, path: Path | None, trust_pem: str
) -> dict[str, Any] | None:
    """The Content Credentials of a file (its bytes, or its path for a movie), or of its
    ``.c2pa`` sidecar when the file holds none; None when there are none, or the format
    cannot carry them. A manifest that cannot be parsed is read as ``invalid``."""
    mime = MIME_BY_SUFFIX.get(Path(name).suffix.lower())
    if mime is None:
        return None
    sidecar = find_sidecar(path, ".c2pa") if path is not None else None
    # An embedded manifest is a JUMBF box: bytes without one hold none.
    embedded = data is None or b"jumb" in data
    found = _read(name, mime, data, path, None, trust_pem) if embedded else None
    if found is None and sidecar is not None:
        found = _read(name, mime, data, path, _read_sidecar(sidecar), trust_pem)
        if found is not None:
            found["sidecar"] = sidecar.name
    return found


def _read(
    name: str,
    mime: str,
    data: bytes | None,
    path: Path | None,
    manifest_data: bytes | None,
    trust_pem: str,
) -> dict[str, Any] | None:
    """The summary of the manifest store in the file (or in ``manifest_data``, validated
    against the file); None when there is none."""
    import c2pa

    context = _context(trust_pem)
    try:
        if data is not None:
            with c2pa.Reader(mime, io.BytesIO(data), manifest_data, context) as reader:
                return _summary(reader, mime)
        assert path is not None
        with path.open("rb") as handle, c2pa.Reader(mime, handle, manifest_data, context) as reader:
            return _summary(reader, mime)
    except c2pa.C2paError as exc:
        kind = type(exc).__name__.lstrip("_").removeprefix("C2pa")
        if kind in ("ManifestNotFound", "NotSupported", "JumbfNotFound"):
            return None
        return _unreadable(mime, exc)
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot read: {exc.strerror}") from None


def write_credentials(
    source: Path,
    target: Path,
    *,
    title: str,
    key: StudioKey,
    trust_pem: str,
    assertion: dict[str, Any],
    digital_source_type: str,
    generator: tuple[str, str],
) -> str:
    """Sign a copy of ``source`` into ``target`` (a new file): the source as its parent
    ingredient (its own manifest kept), ``c2pa.opened`` and our record assertion. Returns
    the new manifest's label. UnsupportedMedia for formats C2PA cannot carry."""
    mime = _mime_to_write(source)
    import c2pa

    opened = {
        "action": "c2pa.opened",
        "parameters": {"ingredientIds": [_PARENT]},
        "digitalSourceType": digital_source_type,
        "softwareAgent": {"name": generator[0], "version": generator[1]},
    }
    definition = _definition(generator, title, mime, opened)
    definition["assertions"].append({"label": RECORD_ASSERTION, "data": assertion})

    context = _context(trust_pem)
    algorithm = getattr(c2pa.C2paSigningAlg, key.algorithm.upper())
    try:
        with (
            c2pa.Signer.from_callback(key.sign, algorithm, key.chain_pem, None) as signer,
            c2pa.Builder(definition, context) as builder,
        ):
            with source.open("rb") as ingredient:
                builder.add_ingredient(
                    {"title": title, "relationship": "parentOf", "label": _PARENT}, mime, ingredient
                )
            with source.open("rb") as reading, target.open("w+b") as writing:
                builder.sign(signer, mime, reading, writing)
    except c2pa.C2paError as exc:
        target.unlink(missing_ok=True)
        raise SigningError(f"cannot write Content Credentials: {_message(exc)}") from None
    except SigningError:
        target.unlink(missing_ok=True)
        raise
    with target.open("rb") as handle:
        reader = c2pa.Reader(mime, handle, None, context)
        label = str(json.loads(reader.json()).get("active_manifest", ""))
    return label


def write_generated(
    source: Path, target: Path, *, key: StudioKey, generator: tuple[str, str], model: str
) -> None:
    """Sign ``source`` into ``target`` the way a generator vendor's service does: one
    ``c2pa.created`` action, ``trainedAlgorithmicMedia``, the model as its software agent.
    The demo stands in for a vendor with it."""
    mime = _mime_to_write(source)
    import c2pa

    created = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED,
        "softwareAgent": {"name": model},
    }
    definition = _definition(generator, source.name, mime, created)
    algorithm = getattr(c2pa.C2paSigningAlg, key.algorithm.upper())
    with (
        c2pa.Signer.from_callback(key.sign, algorithm, key.chain_pem, None) as signer,
        c2pa.Builder(definition, _context("")) as builder,
        source.open("rb") as reading,
        target.open("w+b") as writing,
    ):
        builder.sign(signer, mime, reading, writing)


def _mime_to_write(source: Path) -> str:
    mime = MIME_BY_SUFFIX.get(source.suffix.lower())
    if mime is None:
        raise UnsupportedMedia(
            f"Content Credentials cannot be embedded in {source.suffix or 'this'} files; "
            f"supported: {', '.join(sorted(set(MIME_BY_SUFFIX)))}"
        )
    return mime


def _definition(
    generator: tuple[str, str], title: str, mime: str, action: dict[str, Any]
) -> dict[str, Any]:
    """A manifest definition with one action."""
    return {
        "claim_generator_info": [{"name": generator[0], "version": generator[1]}],
        "title": title,
        "format": mime,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }


def _summary(reader: Any, mime: str) -> dict[str, Any]:
    store = json.loads(reader.json())
    manifests = store.get("manifests") or {}
    label = store.get("active_manifest")
    active = manifests.get(label) or {}
    results = reader.get_validation_results() or {}
    state = _state(reader.get_validation_state(), results)
    summary = _manifest_summary(active)
    summary.update(
        {
            "schema": SCHEMA,
            "format": mime,
            "validation_state": state,
            "validation_failures": [
                f"{item.get('code')}: {item.get('explanation', '')}".strip()
                for item in (results.get("activeManifest") or {}).get("failure", [])
            ],
            "manifest_label": label,
            "manifests": len(manifests),
        }
    )
    ingredients = []
    for ingredient in active.get("ingredients") or []:
        entry: dict[str, Any] = {
            "title": ingredient.get("title"),
            "relationship": ingredient.get("relationship"),
            "format": ingredient.get("format"),
        }
        inner = manifests.get(ingredient.get("active_manifest"))
        if inner:
            entry["manifest"] = _manifest_summary(inner)
        ingredients.append(entry)
    summary["ingredients"] = ingredients
    return summary


def _manifest_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    generators = manifest.get("claim_generator_info") or []
    generator = generators[0] if generators and isinstance(generators[0], dict) else {}
    signature = manifest.get("signature_info") or {}
    actions = []
    record = None
    for assertion in manifest.get("assertions") or []:
        label = str(assertion.get("label", ""))
        data = assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for action in data.get("actions") or []:
                agent = action.get("softwareAgent")
                if isinstance(agent, dict):
                    agent = " ".join(str(agent.get(k, "")) for k in ("name", "version")).strip()
                actions.append(
                    {
                        "action": action.get("action"),
                        "digital_source_type": action.get("digitalSourceType"),
                        "software_agent": agent or None,
                        "when": action.get("when"),
                    }
                )
        elif label == RECORD_ASSERTION and isinstance(data, dict):
            record = data
    summary = {
        "claim_generator": generator.get("name") or manifest.get("claim_generator"),
        "claim_generator_version": generator.get("version"),
        "title": manifest.get("title"),
        "signer": signature.get("common_name"),
        "issuer": signature.get("issuer"),
        "signing_time": signature.get("time"),
        "actions": actions,
    }
    if record is not None:
        summary["record_assertion"] = record
    return summary


def _state(state: str | None, results: dict[str, Any]) -> str:
    failures = (results.get("activeManifest") or {}).get("failure", [])
    # An untrusted signer is a finding of its own, not a broken manifest.
    broken = [item for item in failures if item.get("code") != "signingCredential.untrusted"]
    ingredient_failures = [
        item
        for delta in (results.get("ingredientDeltas") or [])
        for item in (delta.get("validationDeltas") or {}).get("failure", [])
    ]
    untrusted_ingredient = any(
        item.get("code") == "signingCredential.untrusted" for item in ingredient_failures
    )
    ingredient_failures = [
        item for item in ingredient_failures if item.get("code") != "signingCredential.untrusted"
    ]
    if broken:
        first = broken[0]
        return f"invalid: {first.get('code')} ({first.get('explanation', '')})"
    if ingredient_failures:
        first = ingredient_failures[0]
        return f"invalid: an ingredient's {first.get('code')} ({first.get('explanation', '')})"
    if state == "Trusted":
        return STATE_VALID
    if failures:
        return STATE_UNTRUSTED
    if untrusted_ingredient:
        return STATE_INGREDIENT_UNTRUSTED
    if state == "Valid":
        return STATE_UNTRUSTED
    return f"invalid: validation state {state}"


def _unreadable(mime: str, exc: Exception) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "format": mime,
        "validation_state": f"invalid: the manifest cannot be read ({_message(exc)})",
        "validation_failures": [],
        "manifest_label": None,
        "manifests": 0,
        "claim_generator": None,
        "claim_generator_version": None,
        "title": None,
        "signer": None,
        "issuer": None,
        "signing_time": None,
        "actions": [],
        "ingredients": [],
    }


def _context(trust_pem: str) -> Any:
    """A c2pa Context that trusts exactly ``trust_pem`` and never reaches the network
    (made once per trust list in a process)."""
    found = _contexts.get(trust_pem)
    if found is None:
        import c2pa

        settings: dict[str, Any] = {
            "verify": {
                "remote_manifest_fetch": False,
                "ocsp_fetch": False,
                "verify_trust": True,
            },
            "builder": {"thumbnail": {"enabled": False}},
            "core": {"allowed_network_hosts": []},
        }
        # Without anchors nothing is trusted (the library has no built-in list to fall on).
        settings["trust"] = {"trust_anchors": trust_pem} if trust_pem else {}
        found = _contexts[trust_pem] = c2pa.Context.from_dict(settings)
    return found


def _read_sidecar(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise InvalidInput(f"{path.name}: C2PA sidecar is {size:,} bytes, over 16 MiB")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path.name}: cannot read C2PA sidecar: {exc.strerror}") from None


def _message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
