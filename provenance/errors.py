"""Every failure a user can cause or meet is a ``ProvenanceError``.

The CLI prints ``Error: <message>`` and exits 1; the web layer answers with a JSON error.
Anything that is not a ``ProvenanceError`` is a bug and keeps its traceback.

    ProvenanceError
    ├── WorkspaceError
    │   ├── WorkspaceNotFound
    │   ├── WorkspaceExists
    │   ├── SchemaOutdated
    │   ├── SchemaTooNew
    │   └── DatabaseBusy
    ├── ConfigError
    ├── InvalidInput
    │   ├── UnknownIntendedUse
    │   └── MetadataError
    ├── MediaError
    │   ├── UnsupportedMedia
    │   ├── CorruptMedia
    │   └── ImageTooLarge
    ├── NotFound
    │   └── AmbiguousId
    ├── DetectorUnavailable
    ├── ClusterUnavailable
    ├── IndexProblem
    │   ├── IndexSpecMismatch
    │   └── IndexCorrupt
    │       └── IndexMissing
    ├── StoreError
    ├── PdfUnavailable
    ├── AuditChainBroken
    ├── SigningError
    ├── SignatureInvalid
    ├── AccessDenied
    │   └── Unauthenticated
    └── Conflict
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Base class of every expected failure."""


class WorkspaceError(ProvenanceError):
    """The workspace is missing, malformed or at the wrong schema version."""


class WorkspaceNotFound(WorkspaceError):
    """No workspace at the given place or in any parent folder."""


class WorkspaceExists(WorkspaceError):
    """A workspace already exists where one was to be created."""


class SchemaOutdated(WorkspaceError):
    """The database schema is older than this code and was not upgraded."""


class SchemaTooNew(WorkspaceError):
    """The database schema was written by a newer version of provenance."""


class DatabaseBusy(WorkspaceError):
    """Another process held the database's write lock for longer than the busy timeout."""


class ConfigError(ProvenanceError):
    """A setting has an unknown name or a value of the wrong kind."""


class InvalidInput(ProvenanceError):
    """An argument or a field given by the user is not acceptable."""


class UnknownIntendedUse(InvalidInput):
    """The intended use is not one of the known categories."""


class MetadataError(InvalidInput):
    """Generation metadata (sidecar, --metadata file, embedded chunk) is malformed."""


class MediaError(ProvenanceError):
    """A file could not be decoded as an image."""


class UnsupportedMedia(MediaError):
    """The file is not an image in a supported format."""


class CorruptMedia(MediaError):
    """The file looks like a supported image but its data is damaged or truncated."""


class ImageTooLarge(MediaError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""


class NotFound(ProvenanceError):
    """No record matches the given id or name."""


class AmbiguousId(NotFound):
    """An id prefix matches more than one record."""


class DetectorUnavailable(ProvenanceError):
    """A configured detector cannot run here (missing package or weights); says the fix."""


class ClusterUnavailable(ProvenanceError):
    """A Dask cluster cannot be reached, is not installed, or its workers cannot work."""


class IndexProblem(ProvenanceError):
    """A vector index cannot be used as it is."""


class IndexSpecMismatch(IndexProblem):
    """The index was built by a detector with another spec; it must be rebuilt."""


class IndexCorrupt(IndexProblem):
    """The index file is missing, truncated or does not match its manifest."""


class IndexMissing(IndexCorrupt):
    """No index has been built (no manifest)."""


class StoreError(ProvenanceError):
    """The content store could not read or write a file."""


class PdfUnavailable(ProvenanceError):
    """A PDF cannot be made here (WeasyPrint needs Pango from the system); says the fix."""


class AuditChainBroken(ProvenanceError):
    """An audit event does not verify against its predecessor."""


class SigningError(ProvenanceError):
    """The studio's key or certificate is missing, unusable, or its signing command failed."""


class SignatureInvalid(ProvenanceError):
    """A signed file, record or anchor does not verify: altered, or signed by someone else."""


class AccessDenied(ProvenanceError):
    """An unknown or disabled token, or a role that may not do what was asked."""


class Unauthenticated(AccessDenied):
    """No token, or a token that does not authenticate anyone (the web layer answers 401)."""


class Conflict(ProvenanceError):
    """The record is not in a state that allows this, or changed since it was read (another
    reviewer decided first)."""
