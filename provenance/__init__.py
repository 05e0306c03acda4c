"""provenance: the production's register of generated assets.

Importing this package loads no heavy library (no torch, onnxruntime or faiss); the
public API is what ``__all__`` lists.
"""

from provenance.errors import ProvenanceError
from provenance.registration import RegisterRequest
from provenance.workspace import Workspace

__version__ = "0.1.0"

__all__ = ["ProvenanceError", "RegisterRequest", "Workspace", "__version__"]
