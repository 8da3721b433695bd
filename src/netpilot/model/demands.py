"""Series of demand matrices over time (measured traffic matrices) as dense NumPy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netpilot.model.network import Demand


@dataclass(frozen=True)
class DemandSeries:
    """``volume[t, i, j]``: traffic from ``nodes[i]`` to ``nodes[j]`` in interval ``t``, in Mbit/s."""

    nodes: tuple[str, ...]
    volume: np.ndarray
    times: tuple[str, ...] = ()
    interval_seconds: float | None = None
    origin: str = ""
    optimal_mlu: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.nodes)
        if self.volume.ndim != 3 or self.volume.shape[1:] != (n, n):
            raise ValueError(f"volume must have shape (T, {n}, {n}), got {self.volume.shape}")
        if self.times and len(self.times) != self.volume.shape[0]:
            raise ValueError(f"{len(self.times)} timestamps for {self.volume.shape[0]} matrices")

    def __len__(self) -> int:
        return self.volume.shape[0]

    def demands(self, t: int, *, keep_zero: bool = False) -> list[Demand]:
        """Matrix ``t`` as a demand list (zero entries and the diagonal left out unless ``keep_zero``)."""
        matrix = self.volume[t]
        out = []
        n = len(self.nodes)
        for i in range(n):
            for j in range(n):
                if i != j and (keep_zero or matrix[i, j] > 0):
                    out.append(Demand(source=self.nodes[i], target=self.nodes[j], volume=float(matrix[i, j])))
        return out


def matrix_from_demands(nodes: list[str] | tuple[str, ...], demands: list[Demand]) -> np.ndarray:
    """Dense (N, N) matrix of the demand list; demands sharing a pair add up."""
    index = {node: i for i, node in enumerate(nodes)}
    matrix = np.zeros((len(nodes), len(nodes)))
    for d in demands:
        matrix[index[d.source], index[d.target]] += d.volume
    return matrix


def gravity_matrix(capacity_out: np.ndarray, *, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """(N, N) gravity-model traffic: ``d_ij ∝ w_i w_j`` with ``w`` each node's total outgoing capacity (the
    "gravity" model of NCFlow and Teal), times log-normal noise of spread ``noise``; diagonal 0, total 1."""
    weight = np.asarray(capacity_out, dtype=float)
    matrix = np.outer(weight, weight)
    if noise > 0:
        matrix *= np.random.default_rng(seed).lognormal(0.0, noise, matrix.shape)
    np.fill_diagonal(matrix, 0.0)
    total = matrix.sum()
    return matrix / total if total > 0 else matrix
