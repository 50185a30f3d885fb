"""Comparison helpers for tests against sentence-transformers."""

from __future__ import annotations

import numpy as np


def as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def min_cosine(a, b) -> float:
    """Smallest row-wise cosine similarity of two [n, d] matrices (a zero row pair counts 1)."""
    a, b = as_numpy(a).astype(np.float64), as_numpy(b).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-300)
    return float(np.where(both_zero, 1.0, cos).min())


def max_abs_diff(a, b) -> float:
    return float(np.abs(as_numpy(a).astype(np.float64) - as_numpy(b).astype(np.float64)).max())


def assert_parity(ours, theirs, min_cos: float = 0.99999, max_abs: float = 1e-5) -> None:
    """The acceptance bar against sentence-transformers in fp32."""
    assert as_numpy(ours).shape == as_numpy(theirs).shape
    cos, diff = min_cosine(ours, theirs), max_abs_diff(ours, theirs)
    assert cos >= min_cos, f"min cosine {cos:.7f} < {min_cos}"
    assert diff <= max_abs, f"max abs difference {diff:.3g} > {max_abs}"


def spearman(x, y) -> float:
    """Spearman rank correlation with average ranks for ties."""

    def ranks(v):
        v = np.asarray(v, dtype=np.float64)
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=np.float64)
        _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=r)
        return sums[inverse] / counts[inverse]

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))
