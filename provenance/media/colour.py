"""Scene-linear and log pictures made display-referred for fingerprinting, with OpenColorIO.

A VFX still (OpenEXR, a log DPX) holds light, not a picture on a screen: hashed as stored
numbers it would match nothing. Each such picture goes through one OCIO display/view
transform (by default the ACES studio config built into OCIO, "sRGB - Display" with the
"Un-tone-mapped" view, which gives back an sRGB texture rendered linear exactly), and the
transform is named in full (config, source colourspace and why it was chosen, display,
view, OCIO version) so that the same file always gives the same hashes, and a change of
config shows in the record."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from provenance.domain import ColourPolicy
from provenance.errors import ConfigError


def _ocio() -> Any:
    import PyOpenColorIO

    return PyOpenColorIO


@functools.lru_cache(maxsize=4)
def _config(name: str) -> Any:
    """An OCIO config: a built-in one by name, or a ``config.ocio`` file."""
    ocio = _ocio()
    builtin = {entry[0] for entry in ocio.BuiltinConfigRegistry().getBuiltinConfigs()}
    try:
        if name in builtin:
            return ocio.Config.CreateFromBuiltinConfig(name)
        if not Path(name).is_file():
            raise ConfigError(
                f"colour_config {name!r} is neither a file nor one of OCIO's built-in "
                f"configs ({', '.join(sorted(builtin))})"
            )
        return ocio.Config.CreateFromFile(name)
    except ocio.Exception as exc:
        raise ConfigError(f"colour_config {name!r} cannot be loaded: {exc}") from None


@functools.lru_cache(maxsize=16)
def _processor(config_name: str, source: str, display: str, view: str) -> Any:
    ocio = _ocio()
    config = _config(config_name)
    if config.getColorSpace(source) is None:
        raise ConfigError(f"colourspace {source!r} is not in the OCIO config {config_name!r}")
    if view not in list(config.getViews(display)):
        raise ConfigError(
            f"display {display!r} has no view {view!r} in the OCIO config {config_name!r}"
        )
    transform = ocio.DisplayViewTransform(src=source, display=display, view=view)
    try:
        return config.getProcessor(transform).getDefaultCPUProcessor()
    except ocio.Exception as exc:
        raise ConfigError(f"OCIO cannot convert {source!r} to {display}/{view}: {exc}") from None


def describe(policy: ColourPolicy, source: str, why: str) -> dict[str, Any]:
    """The transform from ``source`` to the policy's display and view, as recorded."""
    found = {
        "config": policy.config,
        "from": source,
        "chosen_by": why,
        "display": policy.display,
        "view": policy.view,
        "ocio": _ocio().__version__,
    }
    if Path(policy.config).is_file():  # a studio's own config: which one, exactly
        found["config_sha256"] = _file_sha256(policy.config)
    return found


@functools.lru_cache(maxsize=4)
def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec(described: dict[str, Any] | None) -> str | None:
    """A recorded transform (``describe``) as one line for a fingerprint's spec; None when
    no transform was applied."""
    if not described or "from" not in described:
        return None
    return (
        f"ocio={described['ocio']}/{described['config']}:{described['from']}"
        f"->{described['display']}/{described['view']}"
    )


def to_display(rgb: NDArray[np.float32], policy: ColourPolicy, source: str) -> NDArray[np.uint8]:
    """``rgb`` (H x W x 3 floats in ``source``) as 8-bit display-referred RGB. ``rgb`` is
    worked on in place (a 4K frame is 100 MB of floats: no copies are made of it)."""
    processor = _processor(policy.config, source, policy.display, policy.view)
    pixels = np.ascontiguousarray(rgb, dtype=np.float32)
    np.nan_to_num(pixels, copy=False, nan=0.0, posinf=65504.0, neginf=0.0)
    processor.applyRGB(pixels)  # in place
    return to_bytes(pixels)


def to_bytes(pixels: NDArray[np.float32]) -> NDArray[np.uint8]:
    """Display-referred floats (0-1) as 8-bit samples, rounded; ``pixels`` is overwritten."""
    np.multiply(pixels, 255.0, out=pixels)
    pixels += 0.5
    np.clip(pixels, 0.0, 255.0, out=pixels)
    display: NDArray[np.uint8] = pixels.astype(np.uint8)
    return display
