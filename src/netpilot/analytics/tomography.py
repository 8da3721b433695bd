"""Traffic-matrix estimation from link counts: the demand per pair that the measured link loads imply."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp


def tomogravity(matrix: sp.spmatrix, loads: np.ndarray, prior: np.ndarray, *, ridge: float = 1e-6) -> np.ndarray:
    """The per-pair demand closest to ``prior`` whose routed loads match the measured ``loads``.

    ``matrix`` (links × pairs) is the share of each pair's traffic on each link under the routing that carried
    the measured loads. Closest is in the weighted sense of tomogravity (Zhang, Roughan, Lund and Donoho,
    SIGMETRICS 2003): a pair may move in proportion to its prior, so a large flow absorbs more of a link's surplus
    than a small one, and a pair the prior says is empty stays empty. One weighted least-squares step,
    ``x = p + P Aᵀ (A P Aᵀ + λI)⁻¹ (y − A p)`` with ``P = diag(p)``, then clipped at zero; ``ridge`` (λ relative
    to the mean diagonal) keeps links that carry the same pairs (parallel links, both ends of a chain) solvable.
    """
    a = sp.csr_matrix(matrix)
    p = np.maximum(np.asarray(prior, dtype=float), 0.0)
    y = np.asarray(loads, dtype=float)
    if a.shape != (len(y), len(p)):
        raise ValueError(f"matrix is {a.shape}, loads {len(y)}, prior {len(p)}: expected links × pairs")
    gram = (a @ sp.diags(p) @ a.T).toarray()
    scale = float(np.trace(gram)) / max(len(y), 1)
    if scale <= 0:
        return p
    gram[np.diag_indices_from(gram)] += ridge * scale
    step = scipy.linalg.solve(gram, y - a @ p, assume_a="pos")
    return np.maximum(p + p * (a.T @ step), 0.0)
