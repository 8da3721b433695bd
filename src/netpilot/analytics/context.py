"""Contextual novelty detection: a streaming score of how new the context a value arrives in is, for series whose
anomalies are patterns never seen rather than departures from an expected level."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from netpilot.analytics._context_kernel import (
    BELOW,
    NEURON,
    CompiledContexts,
    fact_mask,
    facts_of,
    rested,
    sample_score,
)
from netpilot.errors import InputError
from netpilot.model.kernels import AVAILABLE as COMPILED

THRESHOLD = 0.75  # the score that alarms and starts the rest (CAD OSE's): the CLI's and the benchmarks' default

# The rows of the NumPy path's table of contexts: a context's left and right sets, whether it was learnt whole (not
# bred), how often it was selected, its facts predicted, how often it was active.
_LEFT, _RIGHT, _FIRST, _SELECTED, _PREDICTED, _ACTIVATIONS = range(6)


class ContextDetector:
    """A streaming score (0 to 1) of how new the context of each value is; the idea of Smirnov's Contextual
    Anomaly Detector (CAD OSE, NAB 2016), written anew over NumPy.

    Each value becomes a few facts: the bits of its bin among ``2 ** bits`` bins spanning the range ``fit``
    learnt (a value above it lights higher bits, one under it a fact of its own). A context pairs a left set of
    facts (the last sample's facts, plus the contexts that were wholly active then: at most ``max_active`` of
    the most often active) with a right set (facts of the next sample). Every sample, the contexts whose left
    set the last sample held are *selected*; those whose right set the new sample holds are *active*; the
    partial matches of a new sample breed new contexts (left sets of at most ``max_left`` facts). A value whose
    facts are all among those the best-predicting contexts foresaw (the union of their right sets) scores 0;
    otherwise the score is the mean of the share of selected contexts that failed and the share of candidate
    contexts that were new. The first ``rest`` samples score 0, and after a score of ``threshold`` or more the
    next ``rest`` do, so one episode raises one alarm. ``compiled``: the whole per-sample loop through Numba
    (None: where it is installed, ``pip install netpilot[fast]``; the NumPy path gives the same scores).
    Where it departs from the original: active contexts that tie on how often they were active are ranked by
    when they were learnt (the original, by their hashes); a flat history spans one unit; a value under the
    range is a fact of its own (the original truncated it into the bottom bin).

    >>> detector = ContextDetector(rest=10).fit(np.tile([0.0, 1.0, 2.0, 3.0], 50))
    >>> scores = detector.score_many(np.r_[np.tile([0.0, 1.0, 2.0, 3.0], 50), [0.0, 3.0, 3.0, 3.0]])
    >>> bool(scores[150:200].max() == 0.0), bool(scores[200:].max() > 0.5)
    (True, True)
    """

    def __init__(self, bits: int = 3, rest: int = 30, threshold: float = THRESHOLD, max_left: int = 7,
                 max_active: int = 15, compiled: bool | None = None) -> None:
        if bits < 1 or rest < 1 or max_left < 1 or max_active < 1:
            raise InputError(f"bits, rest, max_left and max_active must be at least 1, got {bits}, {rest}, "
                             f"{max_left} and {max_active}")
        if bits > 24 or max_active > 39:
            # A left group (a sample's bit facts and the active contexts) is read as a 63-bit mask.
            raise InputError(f"bits must be at most 24 and max_active at most 39, got {bits} and {max_active}")
        if not 0.0 < threshold <= 1.0:
            raise InputError(f"threshold must be in (0, 1], got {threshold}")
        self.bits = int(bits)
        self.rest = int(rest)
        self.threshold = float(threshold)
        self.max_left = int(max_left)
        self.max_active = int(max_active)
        self.compiled = compiled

    def fit(self, history: np.ndarray) -> ContextDetector:
        """Learn the range the bins span from ``history`` (finite values; a flat or empty history spans 1) and
        start with no contexts."""
        history = np.asarray(history, dtype=float)
        finite = history[np.isfinite(history)]
        self.low_ = float(finite.min()) if len(finite) else 0.0
        high = float(finite.max()) if len(finite) else 1.0
        top = 2 ** self.bits - 1
        width = ((high - self.low_) or 1.0) / top
        if not math.isfinite(width):  # a range wider than the largest float: halves that are not
            width = high / top - self.low_ / top
        self.bin_width_ = width if width > 0.0 else 1.0 / top  # a range too narrow to divide reads as flat
        compiled = COMPILED if self.compiled is None else bool(self.compiled and COMPILED)
        self._contexts = (CompiledContexts if compiled else _NumpyContexts)(self)
        return self

    def facts(self, value: float) -> tuple[int, ...]:
        """The facts a value is read as: bit ``s`` of its bin is fact ``2 s + bit`` (a missing value, NaN, is read
        as the bottom of the range; +inf as the top bin, -inf as under the range)."""
        return facts_of(fact_mask(float(value), self.low_, self.bin_width_, self.bits))

    def foreseen(self) -> list[tuple[float, float]]:
        """The values the next sample may take and score 0, as (low, high) spans: the bins of the learnt range
        whose facts the best-predicting contexts all foresee, "under the range" (-inf, low) where that fact is
        foreseen, and (top of the range, inf) where the bits of a bin above it are (values above the range are
        not told apart further). Empty when nothing is foreseen."""
        foreseen, top = self._contexts.foreseen_facts(), 2 ** self.bits
        spans: list[tuple[float, float]] = [(-math.inf, self.low_)] if BELOW in foreseen else []
        for number in range(top):
            if all(2 * s + ((number >> s) & 1) in foreseen for s in range(self.bits)):
                low = self.low_ + number * self.bin_width_
                if spans and spans[-1][1] == low:
                    low = spans.pop()[0]
                spans.append((low, self.low_ + (number + 1) * self.bin_width_))
        if any(f >= 2 * self.bits for f in foreseen):
            spans.append((self.low_ + top * self.bin_width_, math.inf))
        return spans

    def update(self, value: float) -> float:
        """Score one value (read as ``facts`` reads it)."""
        self._fitted()
        return self._contexts.update(float(value))

    def score_many(self, values: Iterable[float]) -> np.ndarray:
        """Score the values in turn, as ``update`` does (the compiled path in one call)."""
        values = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float).ravel()
        if not len(values):
            return np.zeros(0)
        self._fitted()
        return self._contexts.score_many(values)

    def _fitted(self) -> None:
        if not hasattr(self, "low_"):
            raise InputError("ContextDetector.update before fit: call fit(history) first")


class _Growing:
    """Rows of a NumPy array that grow by doubling (the contexts' counters are appended to as they are learnt)."""

    __slots__ = ("data", "size")

    def __init__(self, rows: int = 1) -> None:
        self.data = np.zeros((rows, 64), dtype=np.int64)
        self.size = 0

    def append(self, *column: int) -> int:
        if self.size == self.data.shape[1]:
            self.data = np.concatenate([self.data, np.zeros_like(self.data)], axis=1)
        self.data[:, self.size] = column
        self.size += 1
        return self.size - 1

    @property
    def values(self) -> np.ndarray:
        return self.data[0, :self.size]

    @property
    def columns(self) -> np.ndarray:
        return self.data[:, :self.size]


class _FactSets:
    """One side's distinct fact sets (the left or right halves of contexts), each with an index, and for every
    fact the sets holding it, so that how many of a set's facts are present is one ``bincount``."""

    def __init__(self) -> None:
        self.index: dict[tuple[int, ...], int] = {}
        self.facts: list[tuple[int, ...]] = []
        self.sizes = _Growing()
        self.holding: dict[int, _Growing] = {}
        self._counted: dict[tuple[int, ...], np.ndarray] = {}  # ``present`` of fact tuples since the last add

    def add(self, facts: tuple[int, ...]) -> int:
        known = self.index.get(facts)
        if known is not None:
            return known
        number = self.index[facts] = len(self.facts)
        self.facts.append(facts)
        self.sizes.append(len(facts))
        for fact in facts:
            holders = self.holding.get(fact)
            if holders is None:
                holders = self.holding[fact] = _Growing()
            holders.append(number)
        self._counted.clear()
        return number

    def present(self, facts: tuple[int, ...]) -> np.ndarray:
        """For every set, how many of its facts are among ``facts`` (the caller does not write to it: a sample's
        facts recur, and their count is kept until a set is added)."""
        counted = self._counted.get(facts)
        if counted is not None:
            return counted
        holding = self.holding
        parts = [h.data[0, :h.size] for f in facts if (h := holding.get(f)) is not None]
        counted = (np.bincount(np.concatenate(parts), minlength=len(self.facts)) if parts
                   else np.zeros(len(self.facts), dtype=np.int64))
        if len(self._counted) >= 256:  # a long learnt stretch adds no set: keep the memory bounded
            self._counted.clear()
        self._counted[facts] = counted
        return counted

    def masks(self, facts: tuple[int, ...]) -> np.ndarray:
        """For every set, which of ``facts`` (at most 63) it holds, as the bits of an integer."""
        masks = np.zeros(len(self.facts), dtype=np.int64)
        for j, fact in enumerate(facts):
            holders = self.holding.get(fact)
            if holders is not None:
                masks[holders.values] |= 1 << j
        return masks


class _NumpyContexts:
    """The contexts where Numba is absent: fact sets as tuples in dictionaries, the per-context work vectorised
    over NumPy arrays (the scores are ``CompiledContexts``'s)."""

    def __init__(self, detector: ContextDetector) -> None:
        self.detector = detector
        self.left, self.right = _FactSets(), _FactSets()
        self.pairs: dict[tuple[int, int], int] = {}
        # Per context: its left and right sets, whether it was learnt whole (a sample after the whole group before
        # it, not bred from a partial match), and how often it was selected (its right sets' sizes summed),
        # predicted (facts matched) and active.
        self.contexts = _Growing(rows=6)
        self.last_left = np.zeros(0, dtype=np.int64)  # per left set: its facts the last left group held
        self.left_group: tuple[int, ...] = ()
        self.foreseen: frozenset[int] = frozenset()
        self.samples = 0
        self.last_high = 0  # the last sample that scored ``threshold`` or more (0: before the first, so they rest)

    def foreseen_facts(self) -> frozenset[int]:
        return self.foreseen

    def update(self, value: float) -> float:
        detector = self.detector
        sensed = detector.facts(value)
        surprised = any(fact not in self.foreseen for fact in sensed)
        score = sample_score(surprised, *self._learn(sensed))
        self.samples += 1
        score, self.last_high = rested(score, self.samples, self.last_high, detector.rest, detector.threshold)
        return score

    def score_many(self, values: np.ndarray) -> np.ndarray:
        update = self.update
        return np.fromiter((update(v) for v in values.tolist()), dtype=float, count=len(values))

    def _context(self, left: tuple[int, ...], right: tuple[int, ...], first_sample: bool) -> tuple[int, bool]:
        pair = (self.left.add(left), self.right.add(right))
        number = self.pairs.get(pair)
        if number is None:
            number = self.pairs[pair] = self.contexts.append(pair[0], pair[1], first_sample, 0, 0, 0)
            return number, True
        if first_sample:
            self.contexts.data[_FIRST, number] = 1
        return number, False

    def _learn(self, sensed: tuple[int, ...]) -> tuple[int, int, bool, int, int]:
        """Update the contexts with a new sample and keep what the next one is foreseen to hold; (contexts
        selected, of them active, whether the sample made a new whole context, new contexts, candidates)."""
        group = self.left_group
        candidates: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        whole_new, whole = False, -1
        if group:
            candidates.add((group, sensed))
            whole, whole_new = self._context(group, sensed, True)
        n_selected, winners, parents = _match_numpy(*self.contexts.columns, self.last_left, self.left.sizes.values,
                                                    self.right.present(sensed), self.right.sizes.values, whole,
                                                    whole_new, self.detector.max_left)
        breeding = self._breeding(parents, group, sensed)
        candidates.update(breeding)
        n_active, max_active = len(winners), self.detector.max_active
        if n_active > max_active:
            winners = winners[np.argsort(self.contexts.data[_ACTIVATIONS][winners], kind="stable")[-max_active:]]
        self.left_group = tuple(sorted({*sensed, *(NEURON + c for c in winners.tolist())}))
        added = sum(self._context(left, right, False)[1] for left, right in breeding) + whole_new
        self.last_left = self.left.present(self.left_group)
        self.foreseen = self._foresee()
        return n_selected, n_active, whole_new, added, len(candidates)

    def _breeding(self, parents: np.ndarray, group: tuple[int, ...],
                  sensed: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """The distinct partial matches of ``parents`` (the part of each one's left set the last group held, of its
        right set the sample holds), in the order the parents first give them. Many parents' partial matches
        coincide: each is read as a bit mask over the group's (the sample's) facts and made once per mask."""
        if not len(parents):
            return []
        cuts = []
        for side, sets, held in ((_LEFT, self.left, group), (_RIGHT, self.right, sensed)):
            distinct, inverse = np.unique(sets.masks(held)[self.contexts.data[side][parents]], return_inverse=True)
            cuts.append(([tuple(f for j, f in enumerate(held) if mask >> j & 1) for mask in distinct.tolist()],
                         inverse.ravel()))
        (lefts, left_codes), (rights, right_codes) = cuts
        _, first = np.unique(left_codes * len(rights) + right_codes, return_index=True)
        first = np.sort(first)
        return list(zip([lefts[c] for c in left_codes[first].tolist()],
                        [rights[c] for c in right_codes[first].tolist()], strict=True))

    def _foresee(self) -> frozenset[int]:
        """The right facts of the best-predicting contexts whose left set the current group holds whole."""
        best = _foresee_numpy(*self.contexts.columns, self.last_left == self.left.sizes.values)
        facts = self.right.facts
        return frozenset(f for r in best.tolist() for f in facts[r])


def _match_numpy(lefts, rights, first_sample, selections, predictions, activations, held_by_left, left_sizes,
                 right_present, right_sizes, whole, whole_new, max_left):
    """Count a sample against every context whose left set the last group touched: (how many were selected,
    the active ones, the partial matches that breed when the sample made a new whole context). Updates the
    counters in place."""
    held = np.zeros(len(lefts), dtype=np.int64)
    old = lefts < len(held_by_left)  # left sets learnt after the last group was read held nothing of it
    held[old] = held_by_left[lefts[old]]
    touched = held > 0
    if whole_new:
        touched[whole] = False
    sizes = right_sizes[rights]
    matched = right_present[rights]
    selected = touched & (held == left_sizes[lefts])
    selections[selected] += sizes[selected]
    predicting = selected & (matched > 0)
    predictions[predicting] += matched[predicting]
    active = predicting & (matched == sizes)
    activations[active] += 1
    parents = (np.flatnonzero(touched & (first_sample > 0) & (matched > 0) & (held <= max_left) & ~active)
               if whole_new else np.zeros(0, dtype=np.int64))
    return int(selected.sum()), np.flatnonzero(active), parents


def _foresee_numpy(lefts, rights, first_sample, selections, predictions, activations, whole_left):
    """The right sets (each once, in order) of the contexts with the best prediction rate among those whose left
    set is held whole."""
    ready = np.flatnonzero(whole_left[lefts])
    if not len(ready):
        return np.zeros(0, dtype=np.int64)
    selected = selections[ready]
    weight = np.where(selected > 0, predictions[ready] / np.maximum(selected, 1), 0.0)
    return np.unique(rights[ready[weight == weight.max()]])


def rest_for(samples: int) -> int:
    """Samples to rest after an alarm on a series this long: a fifth of NAB's probation (15 % of the series, at
    most 750 samples), the rest period CAD OSE's authors ran NAB with; at most 150."""
    return max(1, int(min(math.floor(0.15 * samples), 750) / 5))


def context_detector(values: np.ndarray, *, train_fraction: float = 0.5,
                     threshold: float = THRESHOLD) -> ContextDetector:
    """The detector the CLI and the benchmarks score a whole series with: the range learnt from its first
    ``train_fraction`` (the part thresholds are set from), the rest period from its length."""
    values = np.asarray(values, dtype=float)
    history = values[:max(1, int(len(values) * train_fraction))]
    return ContextDetector(rest=rest_for(len(values)), threshold=threshold).fit(history)


def context_scores(values: np.ndarray, *, train_fraction: float = 0.5) -> np.ndarray:
    """``context_detector``'s scores of the whole series."""
    return context_detector(values, train_fraction=train_fraction).score_many(values)


__all__ = ["THRESHOLD", "ContextDetector", "context_detector", "context_scores", "rest_for"]
