"""mlservices: padding-free, kernel-fused text embeddings that match sentence-transformers.

Example:
    >>> import mlservices
    >>> encoder = mlservices.Encoder.from_pretrained()  # bundled all-MiniLM-L6-v2
    >>> vectors = encoder.encode(["A cat sits on the mat.", "A dog runs."])
    >>> vectors.shape
    (2, 384)
"""

from mlservices.accelerate import accelerate
from mlservices.encoder import Encoder, EncodeStats

__version__ = "0.1.0"

# The service layer is imported on first use, so `import mlservices` stays light.
_LAZY = {
    "Settings": "mlservices.settings",
    "ServiceFactory": "mlservices.services.factory",
    "EmbeddingService": "mlservices.services.embedding",
    "ProcessingService": "mlservices.services.processing",
    "ResourceManager": "mlservices.optimization.resources",
}
__all__ = ["EncodeStats", "Encoder", "__version__", "accelerate", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlservices' has no attribute {name!r}")
