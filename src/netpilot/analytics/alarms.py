"""Alarm correlation: which alarm types cause which, learned from an alarm log and the device topology."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netpilot.errors import InputError


class AlarmCausality:
    """A directed graph over alarm types from "j follows i on the same or an adjacent device more often than
    chance".

    For every alarm of type i on device d, the trial succeeds for type j when an alarm of type j starts on d or
    on a neighbour of d within ``window`` seconds after it. The expected number of successes under independence
    comes from each device's own rate of j (a Poisson clock over the log's span), so busy types and devices do
    not win by volume. The statistic is the excess in standard deviations, ``(observed - expected) /
    sqrt(expected + 1)``, averaged over the ``windows`` (a short and a long one: some causes act in seconds,
    others through a slow degradation). Of i->j and j->i only the stronger can be an edge (a causal graph has
    no two-cycles), and only above ``z_threshold``."""

    def __init__(self, windows: Sequence[float] = (300.0, 1800.0), z_threshold: float = 3.0) -> None:
        self.windows = tuple(float(w) for w in windows)
        self.z_threshold = float(z_threshold)
        if not self.windows or min(self.windows) <= 0:
            raise InputError(f"windows must be positive seconds, got {windows}")

    def fit(self, alarm_type: np.ndarray, device: np.ndarray, start: np.ndarray, *, n_types: int | None = None,
            adjacency: np.ndarray | None = None) -> AlarmCausality:
        """``alarm_type`` and ``device`` are integer codes from 0; ``start`` in seconds; ``adjacency`` an N×N
        0/1 device matrix (read as undirected), or None to correlate within each device only."""
        alarm_type = np.asarray(alarm_type, dtype=np.int64)
        device = np.asarray(device, dtype=np.int64)
        start = np.asarray(start, dtype=float)
        if not (len(alarm_type) == len(device) == len(start)):
            raise InputError("alarm_type, device and start must have the same length")
        if len(start) == 0:
            raise InputError("the alarm log is empty")
        if not np.isfinite(start).all():
            raise InputError(f"start timestamp is not finite at row {int(np.argmin(np.isfinite(start)))}")
        if alarm_type.min() < 0 or device.min() < 0:
            raise InputError("alarm types and devices must be non-negative integer codes")
        self.n_types_ = int(n_types) if n_types is not None else int(alarm_type.max()) + 1
        if alarm_type.max() >= self.n_types_:
            raise InputError(f"alarm type {int(alarm_type.max())} is out of range for n_types={self.n_types_}")
        streams = _device_streams(alarm_type, device, start, self.n_types_)
        neighbours = _neighbourhoods(streams, adjacency)
        span = float(start.max() - start.min()) + 1.0
        self.scores_ = np.mean([_excess(streams, neighbours, w, span, self.n_types_) for w in self.windows],
                               axis=0)
        np.fill_diagonal(self.scores_, -np.inf)
        self.graph_ = (self.scores_ > self.scores_.T) & (self.scores_ > self.z_threshold)
        return self

    def edges(self) -> list[tuple[int, int, float]]:
        """The learned edges (cause, effect, score), strongest first."""
        causes, effects = np.nonzero(self.graph_)
        return sorted(((int(i), int(j), float(self.scores_[i, j])) for i, j in zip(causes, effects, strict=True)),
                      key=lambda e: -e[2])


def edge_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 of predicted directed edges against a ground-truth adjacency matrix (the diagonal ignored)."""
    predicted = np.asarray(predicted, dtype=bool).copy()
    truth = np.asarray(truth).astype(bool).copy()
    np.fill_diagonal(predicted, False)
    np.fill_diagonal(truth, False)
    tp = int((predicted & truth).sum())
    total = int(predicted.sum() + truth.sum())
    return 2 * tp / total if total else 1.0


def _device_streams(alarm_type: np.ndarray, device: np.ndarray, start: np.ndarray,
                    n_types: int) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per device: sorted start times, their types, and cumulative counts per type (row k = before event k)."""
    order = np.lexsort((start, device))
    device, start, alarm_type = device[order], start[order], alarm_type[order]
    bounds = np.flatnonzero(np.diff(device)) + 1
    streams = {}
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(device)], strict=True):
        types = alarm_type[lo:hi]
        counts = np.zeros((hi - lo + 1, n_types))
        counts[np.arange(1, hi - lo + 1), types] = 1.0
        streams[int(device[lo])] = (start[lo:hi], types, np.cumsum(counts, axis=0))
    return streams


def _neighbourhoods(streams: dict, adjacency: np.ndarray | None) -> dict[int, list[int]]:
    if adjacency is None:
        return {d: [d] for d in streams}
    adjacency = np.asarray(adjacency) != 0
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise InputError(f"topology must be a square device matrix, got shape {adjacency.shape}")
    if max(streams) >= adjacency.shape[0]:
        raise InputError(f"device {max(streams)} is outside the {adjacency.shape[0]}-device topology")
    adjacency = adjacency | adjacency.T
    return {d: [d, *(int(b) for b in np.flatnonzero(adjacency[d]) if b != d and int(b) in streams)]
            for d in streams}


def _excess(streams: dict, neighbours: dict[int, list[int]], window: float, span: float,
            n_types: int) -> np.ndarray:
    observed = np.zeros((n_types, n_types))
    expected = np.zeros((n_types, n_types))
    for d, (times, types, _) in streams.items():
        followed = np.zeros((len(times), n_types), dtype=bool)
        rate = np.zeros(n_types)
        for b in neighbours[d]:
            other_times, _, other_counts = streams[b]
            lo = np.searchsorted(other_times, times, side="left")
            hi = np.searchsorted(other_times, times + window, side="right")
            within = other_counts[hi] - other_counts[lo]
            if b == d:
                within[np.arange(len(times)), types] -= 1  # an alarm does not follow itself
            followed |= within > 0
            rate += other_counts[-1] / span
        np.add.at(observed, types, followed.astype(float))
        expected += np.bincount(types, minlength=n_types)[:, None] * (1.0 - np.exp(-rate * window))[None, :]
    return (observed - expected) / np.sqrt(expected + 1.0)
