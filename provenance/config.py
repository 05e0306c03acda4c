"""Settings, declared once.

Each setting has a name, a default, a type and a help text. The effective value comes from,
in rising order of precedence: the default, the workspace's ``provenance.toml`` (table
``[settings]``), and the environment variable ``PROVENANCE_<NAME>``. ``provenance config``
prints every effective value with where it came from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.errors import ConfigError

ENV_PREFIX = "PROVENANCE_"
WORKSPACE_FILE = "provenance.toml"
WORKSPACE_FORMAT = "provenance.workspace/1"


@dataclass(frozen=True)
class Setting:
    """One declared setting."""

    name: str
    default: Any
    kind: type
    help: str
    minimum: float | None = None  # for numbers: the smallest value accepted
    choices: tuple[str, ...] | None = None  # for text: the values accepted

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def parse(self, raw: Any, origin: str) -> Any:
        """Convert a value from TOML or the environment to this setting's type."""
        try:
            if self.kind is bool:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in {"1", "true", "yes", "on"}:
                    return True
                if text in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(raw)
            if self.kind is int:
                if isinstance(raw, bool):
                    raise ValueError(raw)
                return self._at_least(int(raw), origin)
            if self.kind is float:
                return self._at_least(float(raw), origin)
            if self.kind is str:
                if not isinstance(raw, str | int | float):
                    raise ValueError(raw)
                text = str(raw)
                if self.choices is not None and text not in self.choices:
                    raise ConfigError(
                        f"setting {self.name!r} from {origin}: {text!r} is not one of "
                        f"{', '.join(self.choices)}"
                    )
                return text
        except (TypeError, ValueError):
            raise ConfigError(
                f"setting {self.name!r} from {origin}: {raw!r} is not a valid {self.kind.__name__}"
            ) from None
        raise ConfigError(f"setting {self.name!r} has an unsupported type")  # pragma: no cover

    def _at_least(self, value: float, origin: str) -> Any:
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(
                f"setting {self.name!r} from {origin}: {value!r} is below its minimum "
                f"{self.minimum:g}"
            )
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "sqlite:///provenance.db",
        str,
        "Where records live: a SQLite URL (a relative path is taken from the workspace folder) "
        "or, for a team, a PostgreSQL URL (postgresql://user@host/db; keep the password in "
        "~/.pgpass or PGPASSWORD, not here).",
    ),
    Setting(
        "busy_timeout_seconds",
        30.0,
        float,
        "How long a writer waits for another process's SQLite write to finish before failing. "
        "Several artists or farm nodes registering into one workspace at once rely on it.",
    ),
    Setting(
        "auto_upgrade",
        True,
        bool,
        "Upgrade an older database schema automatically when the workspace is opened. When "
        "false, commands refuse and say to run `provenance db upgrade`.",
    ),
    Setting(
        "max_image_pixels",
        150_000_000,
        int,
        "Largest image (width x height) that is decoded. Larger files are refused as possible "
        "decompression bombs; 150 MP covers 16K plates.",
    ),
    Setting(
        "max_file_mb",
        1024,
        int,
        "Largest file, in MiB, that is read for registration.",
    ),
    Setting(
        "max_movie_mb",
        102_400,
        int,
        "Largest movie, in MiB, that is registered. Movies are hashed and stored in chunks, "
        "never read into memory whole.",
        minimum=1,
    ),
    Setting(
        "frame_step_seconds",
        1.0,
        float,
        "A check of a movie or a frame sequence looks at its first frame, one frame every "
        "this many seconds, and (in a movie) the first frame of every shot.",
        minimum=0.01,
    ),
    Setting(
        "max_sampled_frames",
        600,
        int,
        "Most frames a check of one movie or sequence looks at; the step grows to keep within it.",
        minimum=1,
    ),
    Setting(
        "sequence_frame_rate",
        24.0,
        float,
        "Frame rate of a frame sequence whose first frame does not say (OpenEXR "
        "framesPerSecond), for sampling one frame every frame_step_seconds.",
        minimum=0.01,
    ),
    Setting(
        "colour_config",
        "studio-config-v5.0.0_aces-v2.1_ocio-v2.6",
        str,
        "OpenColorIO config that makes scene-linear and log pictures (OpenEXR, DPX) "
        "display-referred before they are fingerprinted: the name of a config built into "
        "OCIO (default: the ACES studio config) or a config.ocio file (relative paths from "
        "the workspace folder). The transform is recorded with the asset's media facts.",
    ),
    Setting(
        "colour_linear",
        "Linear Rec.709 (sRGB)",
        str,
        "Colourspace of scene-linear pixels (OpenEXR, linear DPX) when the file does not say; "
        "an OpenEXR file's chromaticities choose ACES2065-1, ACEScg or this by themselves.",
    ),
    Setting(
        "colour_log",
        "ADX10",
        str,
        "Colourspace of DPX pixels whose header says printing density or logarithmic.",
    ),
    Setting(
        "colour_display",
        "sRGB - Display",
        str,
        "OCIO display that scene-linear and log pictures are converted to.",
    ),
    Setting(
        "colour_view",
        "Un-tone-mapped",
        str,
        "OCIO view of colour_display: Un-tone-mapped gives back an sRGB picture rendered "
        "linear exactly, so a copy of a reference written as OpenEXR fingerprints like it; "
        "a tone-mapping view (ACES 2.0 - SDR 100 nits (Rec.709)) looks like a review screen.",
    ),
    Setting(
        "hashes",
        "phash,dhash",
        str,
        "Perceptual hashes stored for each asset, comma separated, from: phash, dhash, whash, "
        "colorhash. whash and colorhash cost 5-10x more than phash and dhash.",
    ),
    Setting(
        "jobs",
        0,
        int,
        "Processes that decode and fingerprint files during registration, and that find the "
        "matches of a batch of checks, while one process writes the records. 0: automatic, "
        "one per CPU core for 256 files or more to fingerprint and 32 assets or more to check "
        "(smaller batches finish sooner in one process).",
    ),
    Setting(
        "detectors",
        "phash,sscd",
        str,
        "Detectors that fingerprint reference sets and check assets, comma separated: phash "
        "(re-encodes, resizes, light edits), sscd (copies under crops, overlays, colour "
        "changes), clip (look-alikes; needs the clip extra and weights). A configured "
        "detector that cannot run is reported by every check.",
    ),
    Setting(
        "check_on_register",
        True,
        bool,
        "Check each newly registered asset against every reference set.",
    ),
    Setting(
        "top_k",
        5,
        int,
        "Candidates kept per reference set and detector in each check.",
        minimum=1,
    ),
    Setting(
        "search_nprobe",
        0,
        int,
        "Inverted lists probed per query in indexes of 40,000 or more vectors (IVF); 0: the "
        "index's own choice (a quarter of its lists for IVF-PQ indexes, 64 for the IVF-flat "
        "indexes of earlier versions). More lists find more of the weaker matches in very "
        "large sets and cost time (benchmarks/index_search.py measures recall against exact "
        "search).",
        minimum=0,
    ),
    Setting(
        "region_search",
        True,
        bool,
        "Also search with crops of the asset (four corners, centre), so that a "
        "reference pasted into part of a larger image is found. Skipped when the whole "
        "image already gives a high verdict.",
    ),
    Setting(
        "region_method",
        "crops",
        str,
        "How region search describes parts of the asset: crops (the four corners at 60 % "
        "of each side and the centre, each embedded: five more passes of the model) or "
        "windows (25 squares of 40 % and 60 % pooled from SSCD's feature map of one pass "
        "at region_size px, through the model's own pooling and projection). CLIP always "
        "uses crops.",
        choices=("crops", "windows"),
    ),
    Setting(
        "region_size",
        320,
        int,
        "Input size, in px, of the pass whose feature map the windows are pooled from; at "
        "320 (SSCD's own size) the whole picture's pass serves, at no extra cost.",
        minimum=64,
    ),
    Setting(
        "sscd_high",
        0.75,
        float,
        "SSCD cosine at or over which a match is high. Calibrated for precision >= 0.99 by "
        "benchmarks/quality.py (3 runs; 3,000 real references, 1,400 edited copies, 1,000 "
        "unrelated images): the lowest score keeping precision at 0.99, with region search, "
        "had a median of 0.741, rounded up. At 0.75, 57 % of the copies are high and 0.5 % "
        "of unrelated images. SSCD's authors report about 90 % precision at 0.75 on DISC21.",
    ),
    Setting(
        "sscd_review",
        0.50,
        float,
        "SSCD cosine at or over which a match goes to review. Chosen for recall: the highest "
        "threshold whose F2 score (recall weighted twice as much as precision) is within "
        "0.01 of the best in benchmarks/quality.py. At 0.50 the benchmark catches 84 % of "
        "edited copies (92 % are found at all) and sends 34 % of unrelated images to review "
        "(0.45: 87 % and 47 %; 0.55: 81 % and 22 %). Its unrelated images are clip art and "
        "game art against 3,000 references of the same kind, the worst case; unrelated "
        "photographs score under 0.15, and a centre crop of a quarter of a picture 0.54-0.65.",
    ),
    Setting(
        "verification",
        True,
        bool,
        "Verify a check's strongest candidates geometrically: local features (RootSIFT) of "
        "the asset, as it is and mirrored, matched with the reference's, and a robust "
        "transform (USAC MAGSAC). A verified match gives the matched region on both pictures; "
        "with enough area it is high by itself. Needs OpenCV (opencv-python-headless).",
    ),
    Setting(
        "verify_top",
        2,
        int,
        "Reference items verified in each check besides every one at review or above: the "
        "strongest by SSCD, so that a copy scoring under the review line (a small paste into "
        "a larger picture) can still verify.",
        minimum=0,
    ),
    Setting(
        "verify_floor",
        0.3,
        float,
        "SSCD cosine under which the strongest items of verify_top are not verified: most "
        "unrelated pictures score under it, and in benchmarks/quality.py one of 16 copies "
        "that verified only this way scored under 0.3.",
    ),
    Setting(
        "verify_max",
        8,
        int,
        "Most reference items verified in one check (strongest first).",
        minimum=1,
    ),
    Setting(
        "verify_min_inliers",
        15,
        int,
        "Matched points consistent with one transform at or over which a verification holds.",
        minimum=4,
    ),
    Setting(
        "verify_min_coverage",
        0.2,
        float,
        "Share of the asset or of the reference (whichever is larger) that a verified match "
        "must cover to make the check high by itself.",
    ),
    Setting(
        "sscd_review_unverified",
        0.6,
        float,
        "When verification runs: SSCD cosine at or over which a match that did not verify "
        "still goes to review (at low priority). An unverified match between sscd_review and "
        "this line is recorded but counts as clear.",
    ),
    Setting(
        "clip_model",
        "ViT-B-32",
        str,
        "open_clip architecture of the clip detector.",
    ),
    Setting(
        "clip_pretrained",
        "laion2b_s34b_b79k",
        str,
        "open_clip pretrained tag, downloaded by open_clip where the network allows. Ignored "
        "when clip_checkpoint is set.",
    ),
    Setting(
        "clip_checkpoint",
        "",
        str,
        "Local CLIP weights file (relative paths from the workspace folder), for machines "
        "without network access. Its sha256 becomes part of the detector's spec.",
    ),
    Setting(
        "clip_model_config",
        "",
        str,
        "An open_clip model-config JSON file describing a custom architecture named by "
        "clip_model (relative paths from the workspace folder).",
    ),
    Setting(
        "clip_high",
        0.95,
        float,
        "CLIP cosine at or over which a match is high (provisional, to be calibrated on real "
        "weights: CLIP scores unrelated pictures of one subject around 0.7-0.85).",
    ),
    Setting(
        "clip_review",
        0.88,
        float,
        "CLIP cosine at or over which a match goes to review (provisional, see clip_high).",
    ),
    Setting(
        "phash_high",
        8,
        int,
        "pHash Hamming distance (of 64 bits) at or under which a match is high: the largest "
        "distance keeping precision at 0.99 in benchmarks/quality.py (median of 3 runs).",
    ),
    Setting(
        "phash_review",
        10,
        int,
        "pHash Hamming distance at or under which a match goes to review. Up to 10 bits, "
        "pHash finds 20 of 1,400 edited copies that SSCD misses and flags no unrelated "
        "image; at 12 it finds none more and flags 41 of 1,000 unrelated images.",
    ),
    Setting(
        "production",
        "",
        str,
        "Production that assets are registered under when --production is not given.",
    ),
    Setting(
        "user",
        "",
        str,
        "Name recorded as the actor of every write when --by is not given. Empty: the "
        "operating-system login name.",
    ),
    Setting(
        "signing_certificate",
        "",
        str,
        "The studio's signing certificate chain (PEM, the signer's certificate first; "
        "relative paths from the workspace folder). When set, exports are signed: evidence "
        "packs and disclosure summaries as PAdES PDFs, JSON records with a detached .p7s, "
        "copies with Content Credentials (C2PA). ECDSA P-256 or P-384 keys. "
        "`provenance keys init` makes a development one.",
    ),
    Setting(
        "signing_key",
        "",
        str,
        "The private key (unencrypted PEM) of signing_certificate. Leave empty when "
        "signing_command holds the key.",
    ),
    Setting(
        "signing_command",
        "",
        str,
        "A command that signs with a key kept elsewhere (KMS, HSM): it reads the bytes to sign "
        "on standard input and writes the DER ECDSA signature on standard output, e.g. "
        "`openssl dgst -sha256 -sign key.pem`. Each signature is checked against "
        "signing_certificate before use.",
    ),
    Setting(
        "trust_list",
        "",
        str,
        "PEM file of the certificates trusted as roots besides the studio's own (the root at "
        "the end of signing_certificate): vendors' C2PA signers, other studios. Content "
        "Credentials, signed documents and anchors are validated against these only.",
    ),
    Setting(
        "audit_anchors",
        "audit-anchors.jsonl",
        str,
        "File the audit log's head is anchored in (one signed line per export and per "
        "`provenance audit anchor`), outside the database; keep it where the database's "
        "writers cannot rewrite it. Relative paths from the workspace folder.",
    ),
    Setting(
        "oidc_issuer",
        "",
        str,
        "OpenID Connect issuer URL of the studio's identity provider; when set, the sign-in "
        "page offers single sign-on (empty: tokens only).",
    ),
    Setting("oidc_client_id", "", str, "This server's client id at the identity provider."),
    Setting(
        "oidc_client_secret",
        "",
        str,
        "Its client secret (give it as PROVENANCE_OIDC_CLIENT_SECRET rather than in the file).",
    ),
    Setting(
        "oidc_user_claim",
        "preferred_username",
        str,
        "The ID token claim naming the workspace user who signs in (an active user there).",
    ),
    Setting(
        "oidc_public_url",
        "",
        str,
        "This server's address as browsers reach it, for the sign-in redirect (empty: the "
        "address each request came to).",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class EffectiveSetting:
    """A setting's value and where it came from (default, provenance.toml or an env var)."""

    setting: Setting
    value: Any
    source: str


class Settings(Mapping[str, Any]):
    """The effective settings of one workspace: a read-only mapping of name to value."""

    def __init__(self, effective: dict[str, EffectiveSetting]) -> None:
        self._effective = effective

    def __getitem__(self, name: str) -> Any:
        return self._effective[name].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._effective)

    def __len__(self) -> int:
        return len(self._effective)

    def effective(self) -> list[EffectiveSetting]:
        """Every setting with its value and source, in declaration order."""
        return [self._effective[s.name] for s in SETTINGS]


def parse_name_list(setting: str, text: str, known: Iterable[str]) -> list[str]:
    """A comma-separated setting of names, deduplicated in order; unknown names refused
    with the list of known ones."""
    choices = list(known)
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in choices]
    if unknown:
        raise ConfigError(
            f"unknown name(s) {', '.join(unknown)} in setting {setting!r}; "
            f"known: {', '.join(choices)}"
        )
    if not names:
        raise ConfigError(f"setting {setting!r} names nothing")
    return list(dict.fromkeys(names))


def read_workspace_file(path: Path) -> dict[str, Any]:
    """Read ``provenance.toml`` and return its ``[settings]`` table."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path.name}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}") from None
    label = document.get("format")
    if label != WORKSPACE_FORMAT:
        raise ConfigError(
            f"{path.name} has format {label!r}; this version of provenance reads "
            f"{WORKSPACE_FORMAT!r}"
        )
    table = document.get("settings", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path.name}: [settings] must be a table")
    unknown = sorted(set(table) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"{path.name}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(SETTINGS_BY_NAME)}"
        )
    return table


def load_settings(
    file_values: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting from defaults, file values and the environment."""
    env = os.environ if environ is None else environ
    effective: dict[str, EffectiveSetting] = {}
    for setting in SETTINGS:
        value, source = setting.default, "default"
        if setting.name in file_values:
            value = setting.parse(file_values[setting.name], WORKSPACE_FILE)
            source = WORKSPACE_FILE
        if setting.env_var in env:
            value = setting.parse(env[setting.env_var], setting.env_var)
            source = setting.env_var
        effective[setting.name] = EffectiveSetting(setting, value, source)
    return Settings(effective)


def workspace_file_text(values: Mapping[str, Any] | None = None) -> str:
    """The ``provenance.toml`` written by ``provenance init``: every setting, commented,
    except those given in ``values``, which are set."""
    values = values or {}
    lines = [
        "# provenance workspace settings. Environment variables PROVENANCE_<NAME> override them.",
        f'format = "{WORKSPACE_FORMAT}"',
        "",
        "[settings]",
    ]
    for setting in SETTINGS:
        lines.append(f"# {setting.help}")
        if setting.name in values:
            lines.append(f"{setting.name} = {_toml_literal(values[setting.name])}")
        else:
            lines.append(f"# {setting.name} = {_toml_literal(setting.default)}")
        lines.append("")
    return "\n".join(lines)


def with_settings(text: str, values: Mapping[str, Any]) -> str:
    """``provenance.toml``'s text with ``values`` set: each replaces the setting's line (set
    or commented out) in place, or is added to ``[settings]``; comments are kept."""
    lines = text.splitlines()
    for name, value in values.items():
        if name not in SETTINGS_BY_NAME:
            raise ConfigError(f"unknown setting {name!r}")
        line = f"{name} = {_toml_literal(value)}"
        pattern = re.compile(rf"^\s*#?\s*{re.escape(name)}\s*=")
        for index, existing in enumerate(lines):
            if pattern.match(existing):
                lines[index] = line
                break
        else:
            try:
                at = lines.index("[settings]") + 1
            except ValueError:
                lines.append("[settings]")
                at = len(lines)
            lines.insert(at, line)
    updated = "\n".join(lines) + "\n"
    try:
        tomllib.loads(updated)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{WORKSPACE_FILE} would not be valid TOML: {exc}") from None
    return updated


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
