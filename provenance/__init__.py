"""provenance: the production's register of generated assets.

Importing this package loads nothing heavy (no SQLAlchemy, torch, onnxruntime or faiss
until they are used); the public API is what ``__all__`` lists.
"""

from typing import TYPE_CHECKING, Any

from provenance._version import __version__
from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance.registration import RegisterRequest
    from provenance.workspace import Workspace

__all__ = ["ProvenanceError", "RegisterRequest", "Workspace", "__version__"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `provenance --version` and other light commands stay fast.
    if name == "Workspace":
        from provenance.workspace import Workspace

        return Workspace
    if name == "RegisterRequest":
        from provenance.registration import RegisterRequest

        return RegisterRequest
    raise AttributeError(f"module 'provenance' has no attribute {name!r}")
