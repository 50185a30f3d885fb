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
__all__ = ["EncodeStats", "Encoder", "__version__", "accelerate"]
