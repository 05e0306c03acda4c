"""provenance: the production's register of generated assets.

Importing this package loads no heavy library (no torch, onnxruntime or faiss); the
public API is what ``__all__`` lists.
"""

from provenance._version import __version__
from provenance.errors import ProvenanceError
from provenance.registration import RegisterRequest
from provenance.workspace import Workspace

__all__ = ["ProvenanceError", "RegisterRequest", "Workspace", "__version__"]
