"""An opened workspace: the resources every use case works with, and who is acting.

A ``Workspace`` holds the root folder, the settings, the database engine, the content
store, the detectors (loaded on first use), the limits a file is read under, and the token
or local user writes are attributed to. It imports no use case: registration, checking,
reference sets, reviews, users, clearance and exports are modules of functions that take
one (see the README's Layout section).
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from provenance.config import (
    WORKSPACE_FILE,
    Settings,
    load_settings,
    read_workspace_file,
    workspace_file_text,
)
from provenance.db import accounts, audit, schema
from provenance.db.session import (
    create_database_engine,
    driver_message,
    read_session,
    resolve_database_url,
    write_transaction,
)
from provenance.detectors import load_detector, parse_detector_names
from provenance.detectors.base import Detector
from provenance.detectors.geometric import GeometricVerifier
from provenance.detectors.hashes import parse_hash_names
from provenance.domain import ColourPolicy, FingerprintLimits, UserInfo
from provenance.errors import (
    AccessDenied,
    DetectorUnavailable,
    ProvenanceError,
    SigningError,
    WorkspaceError,
    WorkspaceExists,
    WorkspaceNotFound,
)
from provenance.store import ContentStore

if TYPE_CHECKING:
    from cryptography import x509

    from provenance.signing.keys import StudioKey

WORKSPACE_ENV = "PROVENANCE_WORKSPACE"
# A user's token (`provenance users token NAME`): writes are attributed to that user.
TOKEN_ENV = accounts.TOKEN_ENV


class Workspace:
    """An opened workspace: settings, database, content store, detectors, who is acting."""

    def __init__(self, root: Path, settings: Settings, engine: Engine) -> None:
        self.root = root
        self.settings = settings
        self.engine = engine
        self.store = ContentStore(root / "store")
        # Reference pictures' local features (FeatureCache): made again when deleted.
        self.features_folder = root / "cache" / "features"
        self._detectors: dict[str, Detector | ProvenanceError] | None = None
        self._verifier: GeometricVerifier | ProvenanceError | None = None
        # Threads of each detector's model; None: one per core. A worker process sharing the
        # cores with others sets 1 before its detectors are made.
        self.threads: int | None = None
        # Set by open() from PROVENANCE_TOKEN; None: the local user of this machine.
        self.token: str | None = None
        self._studio_key: StudioKey | None = None

    @functools.cached_property
    def fingerprint_limits(self) -> FingerprintLimits:
        """What a file is read under: sizes, hashes, colour, the C2PA trust anchors."""
        settings = self.settings
        return FingerprintLimits(
            max_file_bytes=int(settings["max_file_mb"]) * 1024 * 1024,
            max_pixels=int(settings["max_image_pixels"]),
            hash_names=tuple(parse_hash_names(settings["hashes"])),
            max_movie_bytes=int(settings["max_movie_mb"]) * 1024 * 1024,
            colour=ColourPolicy(
                config=_colour_config(self.root, str(settings["colour_config"])),
                linear=str(settings["colour_linear"]),
                log=str(settings["colour_log"]),
                display=str(settings["colour_display"]),
                view=str(settings["colour_view"]),
            ),
            trust_anchors=self.trust_pem(),
        )

    def studio_key(self) -> StudioKey | None:
        """The studio's signing key (settings signing_certificate, signing_key or
        signing_command); None when none is configured. SigningError when it is unusable."""
        if self._studio_key is None:
            certificate = str(self.settings["signing_certificate"]).strip()
            if not certificate:
                return None
            from provenance.signing.keys import load_key

            key = str(self.settings["signing_key"]).strip()
            self._studio_key = load_key(
                self.path_setting(certificate),
                self.path_setting(key) if key else None,
                str(self.settings["signing_command"]),
            )
        return self._studio_key

    def require_studio_key(self) -> StudioKey:
        key = self.studio_key()
        if key is None:
            raise SigningError(
                "no signing key is configured (setting signing_certificate); "
                "`provenance keys init` makes a development key"
            )
        return key

    def trust_certificates(self) -> list[x509.Certificate]:
        """The roots signatures are validated against: the studio's own, then trust_list's."""
        from provenance.signing.keys import read_certificates, studio_anchors

        trusted = studio_anchors(self.studio_key())
        trust_list = str(self.settings["trust_list"]).strip()
        if trust_list:
            trusted += read_certificates(self.path_setting(trust_list), "trust_list")
        return trusted

    def trust_pem(self) -> str:
        """The trusted roots as PEM text; empty, without loading the certificate code, when
        no key and no trust list are configured."""
        if not (
            str(self.settings["signing_certificate"]).strip()
            or str(self.settings["trust_list"]).strip()
        ):
            return ""
        from provenance.signing.keys import anchors_pem

        return anchors_pem(self.trust_certificates())

    def path_setting(self, value: str) -> Path:
        """A file named by a setting: relative paths are from the workspace folder."""
        return (self.root / Path(value).expanduser()).resolve()

    @classmethod
    def create(
        cls,
        directory: Path,
        environ: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
    ) -> Workspace:
        """Create a workspace in ``directory`` (made if missing) and migrate its database
        (``database_url``, written into provenance.toml, else the setting's value)."""
        directory = directory.resolve()
        settings_file = directory / WORKSPACE_FILE
        if settings_file.exists():
            raise WorkspaceExists(f"a workspace already exists in {directory}")
        written = {"database_url": database_url} if database_url else {}
        # Refuse bad settings before anything is written.
        settings = load_settings(written, environ)
        resolve_database_url(settings["database_url"], directory)
        parse_hash_names(settings["hashes"])
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for folder in ("store", "indexes", "reference_sets"):
                (directory / folder).mkdir(exist_ok=True)
        except OSError as exc:
            raise WorkspaceNotFound(
                f"cannot create a workspace in {directory}: {exc.strerror}"
            ) from None
        engine = _engine(directory, settings)
        try:
            existing = schema.current_revision(engine)
        except DBAPIError as exc:
            engine.dispose()
            raise WorkspaceError(f"cannot use the database: {driver_message(exc)}") from None
        if existing is not None:
            engine.dispose()
            raise WorkspaceExists(
                "the configured database already holds a provenance schema; "
                "point database_url elsewhere or open that workspace"
            )
        schema.upgrade(engine)
        workspace = cls(directory, settings, engine)
        with write_transaction(engine) as session:
            audit.start_chain(session)
            audit.append_event(
                session,
                actor=workspace.actor(None),
                action="workspace.created",
                subject="workspace",
                payload={"schema_revision": schema.SCHEMA_HEAD},
            )
        settings_file.write_text(workspace_file_text(written), encoding="utf-8")
        return workspace

    @classmethod
    def in_worker(cls, root: Path, settings: Settings) -> Workspace:
        """The workspace at ``root``, already opened (and its schema checked) by the process
        that started this worker, with that process's ``settings``; models on one thread."""
        workspace = cls(root, settings, _engine(root, settings))
        workspace.threads = 1
        return workspace

    @classmethod
    def open(
        cls, directory: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Workspace:
        """Open the workspace at ``directory``, else ``$PROVENANCE_WORKSPACE``, else the
        current folder or the nearest parent holding ``provenance.toml``."""
        env = os.environ if environ is None else environ
        root = find_workspace(directory, env)
        settings = load_settings(read_workspace_file(root / WORKSPACE_FILE), env)
        engine = _engine(root, settings)
        try:
            schema.ensure_current(engine, auto_upgrade=settings["auto_upgrade"])
        except ProvenanceError:
            engine.dispose()
            raise
        except DBAPIError as exc:
            engine.dispose()
            raise WorkspaceError(
                f"cannot use the workspace database: {driver_message(exc)}"
            ) from None
        workspace = cls(root, settings, engine)
        workspace.token = env.get(TOKEN_ENV) or None
        return workspace

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def actor(
        self,
        by: str | None,
        *,
        role: str | tuple[str, ...] | None = None,
        doing: str = "",
        named: bool = True,
    ) -> str:
        """Who a write is attributed to. With a token (PROVENANCE_TOKEN): its user, who
        must hold ``role`` (or one of them) when given (``doing`` names the write in the
        refusal), and ``by`` may only name that user. Without one, the local user of this
        machine: --by, else the ``user`` setting, else (only while the workspace has no
        users) the login name. Once it has users, a login name is no one's record:
        ``named=False`` lets upkeep that judges nothing (``store gc``) fall back to it."""
        if self.token is not None:
            user = self.authenticate(self.token)
            if role is not None:
                _require_role(user, (role,) if isinstance(role, str) else role, doing)
            if by and by != user.name:
                raise AccessDenied(f"--by {by!r} is not the token's user {user.name!r}")
            return user.name
        if by:
            return by
        if self.settings["user"]:
            return str(self.settings["user"])
        if named:
            with read_session(self.engine) as session:
                if accounts.any_active_user(session):
                    raise AccessDenied(
                        "this workspace has users: say who is acting with --by NAME (or the "
                        f"user setting), or sign in with a token ({accounts.TOKEN_ENV})"
                    )
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    def authenticate(self, token: str) -> UserInfo:
        """The active user holding ``token``; Unauthenticated otherwise."""
        with read_session(self.engine) as session:
            return accounts.by_token(session, token)

    def local_user(self, name: str) -> UserInfo:
        """The active user named ``name``; AccessDenied when there is none."""
        with read_session(self.engine) as session:
            return accounts.active_user(session, name)

    def acting_user(self) -> UserInfo:
        """The user acting: the token's (PROVENANCE_TOKEN) or, without one, the local user
        (the ``user`` setting or the login name), who must be an active user here."""
        if self.token is not None:
            return self.authenticate(self.token)
        return self.local_user(self.actor(None))

    def role_actor(
        self,
        by: str | None,
        roles: tuple[str, ...],
        doing: str,
        user: UserInfo | None = None,
    ) -> str:
        """The actor of a write only some roles may make (a review, a tool vetting, a
        consent, an approval): ``user`` when the web layer signed them in, else the token's
        user holding one of ``roles`` or, without a token, the local user, who must then be
        an active user holding one of them, not merely a login name."""
        if user is None and self.token is not None:
            return self.actor(by, role=roles, doing=doing)
        if user is None:
            user = self.local_user(self.actor(by))
        _require_role(user, roles, doing)
        return user.name

    # -- detectors ------------------------------------------------------------------------

    def detectors(self) -> dict[str, Detector | ProvenanceError]:
        """Each configured detector, or the error saying why it cannot run here."""
        if self._detectors is None:
            loaded: dict[str, Detector | ProvenanceError] = {}
            for name in parse_detector_names(self.settings["detectors"]):
                try:
                    loaded[name] = load_detector(
                        name, self.settings, self.root, threads=self.threads
                    )
                except DetectorUnavailable as exc:
                    loaded[name] = exc
            self._detectors = loaded
        return self._detectors

    def verifier(self) -> GeometricVerifier | ProvenanceError | None:
        """The geometric verifier; the error saying why it cannot run here; None when the
        ``verification`` setting is off."""
        if not self.settings["verification"]:
            return None
        if self._verifier is None:
            try:
                self._verifier = GeometricVerifier(
                    min_inliers=int(self.settings["verify_min_inliers"])
                )
            except DetectorUnavailable as exc:
                self._verifier = exc
        return self._verifier

    def split_detectors(self) -> tuple[dict[str, Detector], dict[str, ProvenanceError]]:
        available: dict[str, Detector] = {}
        unavailable: dict[str, ProvenanceError] = {}
        for name, detector in self.detectors().items():
            if isinstance(detector, ProvenanceError):
                unavailable[name] = detector
            else:
                available[name] = detector
        return available, unavailable


def _colour_config(root: Path, value: str) -> str:
    """The colour_config setting: a built-in OCIO config's name as it is; a config file's
    path made absolute from the workspace folder."""
    if value.endswith(".ocio") or "/" in value or os.sep in value:
        return str((root / value).resolve())
    return value


def _require_role(user: UserInfo, roles: tuple[str, ...], doing: str) -> None:
    if user.role not in roles:
        raise AccessDenied(
            f"{doing} needs the {' or '.join(roles)} role; {user.name!r} is {user.role}"
        )


def upgrade_database(directory: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """Upgrade the workspace's schema to this code's; return the revision reached."""
    env = os.environ if environ is None else environ
    root = find_workspace(directory, env)
    settings = load_settings(read_workspace_file(root / WORKSPACE_FILE), env)
    engine = _engine(root, settings)
    try:
        schema.ensure_current(engine, auto_upgrade=True)
        return schema.SCHEMA_HEAD
    finally:
        engine.dispose()


def find_workspace(directory: Path | None, environ: Mapping[str, str]) -> Path:
    """Locate a workspace folder by the documented rule (flag, env, cwd and parents)."""
    if directory is not None:
        root = directory.resolve()
        if not (root / WORKSPACE_FILE).is_file():
            raise WorkspaceNotFound(
                f"no workspace at {root} (no {WORKSPACE_FILE}); run `provenance init`"
            )
        return root
    if environ.get(WORKSPACE_ENV):
        root = Path(environ[WORKSPACE_ENV]).resolve()
        if not (root / WORKSPACE_FILE).is_file():
            raise WorkspaceNotFound(
                f"{WORKSPACE_ENV}={root} is not a workspace (no {WORKSPACE_FILE})"
            )
        return root
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / WORKSPACE_FILE).is_file():
            return candidate
    raise WorkspaceNotFound(
        "no workspace here or in any parent folder; run `provenance init`, pass --workspace "
        f"or set {WORKSPACE_ENV}"
    )


def _engine(root: Path, settings: Settings) -> Engine:
    url = resolve_database_url(settings["database_url"], root)
    return create_database_engine(url, busy_timeout_seconds=settings["busy_timeout_seconds"])
