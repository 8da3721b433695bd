"""The context detector's compiled engine (``netpilot.analytics.context``): fact sets interned as integer ids
in NumPy arrays with open-addressing hash tables, and one Numba call that scores a run of samples; with the helpers
both engines share (a value's facts, a sample's score, the rest after an alarm), kept in this one module because
Numba's cache checks only the file that defines a compiled function, not the files of those it calls."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from netpilot.model.kernels import jit as _jit

if TYPE_CHECKING:
    from netpilot.analytics.context import ContextDetector

_inlined = _jit(inline="always")  # inlined where compiled code calls it (a call passing arrays counts references)


BELOW = -1  # the fact of a value under the learnt range
NEURON = 1 << 40  # facts from this on name contexts that were active a sample ago
TOP_BIN = (1 << 24) - 1  # values further above the range share its bin: a sample has at most 24 bit facts

# The compiled path's contexts hold their left and right sets, whether they were learnt whole, and the list of the
# left sets naming them (three columns: see _appended); their counters are entries in the list of their left set's
# contexts, so that the contexts of a left set held whole are read one after another: an entry is the context, its
# right set, how often it was selected, its facts predicted, how often it was active.
_LEFT, _RIGHT, _FIRST, _HOLDERS, _CONTEXT_COLUMNS = 0, 1, 2, 3, 6
_ENTRY_CONTEXT, _ENTRY_RIGHT, _ENTRY_SELECTED, _ENTRY_PREDICTED, _ENTRY_ACTIVATIONS = range(5)
_ENTRY_COLUMNS = 5
# The columns of the compiled path's fact sets: the sample facts (a mask) and the size (all a right set has); a left
# set goes on with how many of its facts the current group holds, where the contexts it names start among the
# members and how many there are, the list of its contexts' entries (three columns), and which of the contexts the
# current group names it names too (bit i: the group's i-th).
_MASK, _SIZE, _HELD, _START, _COUNT, _ENTRIES, _HELD_NAMED = 0, 1, 2, 3, 4, 5, 8
_LEFT_COLUMNS, _RIGHT_COLUMNS = 9, 2
# The columns of its lists: the entries of the contexts whose left set the group holds whole, and the contexts
# learnt whole (ascending) with their left and right sets.
_READY, _FIRST_CONTEXT, _FIRST_LEFT, _FIRST_RIGHT = range(4)
# The columns of its hash tables (each its own, so that the small ones stay in cache): a set's id; a context's left
# and right sets as one key, and its id.
_ID, _CONTEXT_KEY, _CONTEXT_ID = 0, 0, 1
# The compiled path's counters and the state it carries from one sample to the next (the contexts the current left
# group names, ascending, from _GROUP on).
(_N_CONTEXTS, _N_LEFT, _N_MEMBERS, _N_RIGHT, _N_FIRST, _N_READY, _ENTRIES_FILL, _HOLDERS_FILL, _GROUP_SIZE,
 _GROUP_MASK, _HAS_GROUP, _FORESEEN, _SAMPLES, _LAST_HIGH, _GROUP) = range(15)


@_jit
def fact_mask(value, low, width, bits):
    """The facts ``value`` is read as (``ContextDetector.facts``), as the bits of a mask: fact f is bit f + 1 (they
    run from -1, under the range, to 47, the top bit of the top bin)."""
    if value != value:
        value = low
    finite = math.isfinite(value)
    number = (value - low) / width if finite else value
    if number == math.inf and finite:  # the difference overflowed: a range near the float's
        number = value / width - low / width
        if number != number:  # both quotients overflowed too (inf - inf): the value is far above the range
            number = math.inf
    if number < 0:
        return 1 << (BELOW + 1)
    whole = int(min(number, float(TOP_BIN)))
    length = bits
    while whole >> length:
        length += 1
    mask = 0
    for s in range(length):
        mask |= 1 << (2 * s + ((whole >> s) & 1) + 1)
    return mask


def facts_of(mask: int) -> tuple[int, ...]:
    """The facts of a mask ``fact_mask`` made, ascending."""
    facts = []
    while mask:
        lowest = mask & -mask
        facts.append(lowest.bit_length() - 2)
        mask ^= lowest
    return tuple(facts)


@_jit
def sample_score(surprised, n_selected, n_active, whole_new, n_new, n_candidates):
    """The score of a sample: 0 where the facts were all foreseen, else the mean of the share of selected contexts
    that failed and the share of candidate contexts that were new (0 where the sample made no new whole context)."""
    failed = 1.0 - n_active / n_selected if n_selected else 1.0
    new = n_new / n_candidates if whole_new else 0.0
    return (failed + new) / 2.0 if surprised else 0.0


@_jit
def rested(score, samples, last_high, rest, threshold):
    """(``score`` as reported after ``samples`` samples: 0 within ``rest`` of the last high one, that last one)."""
    rested = samples - last_high <= rest
    if score >= threshold:
        last_high = samples
    return (0.0 if rested else score), last_high


class CompiledContexts:
    """The contexts where Numba is installed: every fact set interned as an integer id (a left set as its sample
    facts' mask and the ascending ids of the contexts it names, a right set as a mask), found again through
    open-addressing hash tables, in NumPy arrays of one row per context or set that grow together by doubling; one
    compiled call (``_score_run``) scores a run of samples, learning, breeding and matching in place."""

    def __init__(self, detector: ContextDetector) -> None:
        self.detector = detector
        self.contexts = np.zeros((64, _CONTEXT_COLUMNS), dtype=np.int64)
        self.entries = np.zeros((256, _ENTRY_COLUMNS), dtype=np.int64)  # the left sets' lists (see _appended)
        self.left_sets = np.zeros((64, _LEFT_COLUMNS), dtype=np.int64)
        self.right_sets = np.zeros((64, _RIGHT_COLUMNS), dtype=np.int64)
        self.members = np.zeros(256, dtype=np.int64)  # the contexts each left set names, one set after another
        self.holders = np.zeros(256, dtype=np.int64)  # the lists of the left sets naming each context
        self.lists = np.zeros((64, 4), dtype=np.int64)
        self.left_table, self.right_table = np.full((256, 1), -1, dtype=np.int64), np.full((256, 1), -1, dtype=np.int64)
        self.context_table = np.full((256, 2), -1, dtype=np.int64)
        self.state = np.zeros(_GROUP + detector.max_active, dtype=np.int64)
        self.one_value, self.one_score = np.zeros(1), np.zeros(1)

    def foreseen_facts(self) -> frozenset[int]:
        return frozenset(facts_of(int(self.state[_FORESEEN])))

    def update(self, value: float) -> float:
        self.one_value[0] = value
        self._score_into(self.one_value, self.one_score)
        return float(self.one_score[0])

    def score_many(self, values: np.ndarray) -> np.ndarray:
        scores = np.empty(len(values))
        self._score_into(values, scores)
        return scores

    def _score_into(self, values: np.ndarray, scores: np.ndarray) -> None:
        detector, done = self.detector, 0
        if len(self.state) < _GROUP + detector.max_active:  # max_active raised since fit: room for a larger group
            self.state = np.r_[self.state, np.zeros(_GROUP + detector.max_active - len(self.state), dtype=np.int64)]
        settings = (detector.low_, detector.bin_width_, detector.bits, detector.rest, detector.threshold,
                    detector.max_left, detector.max_active)
        while True:
            done = _score_run(self.contexts, self.entries, self.left_sets, self.right_sets, self.members,
                              self.holders, self.lists, self.left_table, self.right_table, self.context_table,
                              self.state, values, scores, done, *settings)
            if done == len(values):
                return
            self._grow()

    def _grow(self) -> None:
        """Room for the next sample (``_score_run`` stops before a sample that might not have it), and more: every
        array the next sample may fill past half is lengthened at once, so that they grow together and seldom."""
        contexts, lefts, rights, members, entries, holders = _needed(self.state, self.detector.max_left)
        self.contexts = _lengthened(self.contexts, contexts)
        self.lists = _lengthened(self.lists, contexts)
        self.entries = _lengthened(self.entries, entries)
        self.left_sets = _lengthened(self.left_sets, lefts)
        self.right_sets = _lengthened(self.right_sets, rights)
        self.members = _lengthened(self.members, members)
        self.holders = _lengthened(self.holders, holders)
        if (2 * lefts > len(self.left_table) or 2 * rights > len(self.right_table)
                or 2 * contexts > len(self.context_table)):
            self.left_table, self.right_table, self.context_table = (
                np.full((1 << (4 * n - 1).bit_length(), columns), -1, dtype=np.int64)
                for n, columns in ((lefts, 1), (rights, 1), (contexts, 2)))
            _rehash(self.contexts, self.left_sets, self.right_sets, self.members, self.left_table, self.right_table,
                    self.context_table, self.state)


def _lengthened(rows: np.ndarray, length: int) -> np.ndarray:
    """``rows``, or where ``length`` of them would fill more than half, a copy with room for twice as many."""
    if len(rows) >= 2 * length:
        return rows
    longer = np.zeros((max(2 * len(rows), 2 * length), *rows.shape[1:]), dtype=rows.dtype)
    longer[:len(rows)] = rows
    return longer


@_jit
def _needed(state, max_left):  # pragma: no cover - compiled
    """The rows the next sample may need: (contexts, left sets, right sets, members, entries, holders). A sample
    learns one whole context and at most one bred from each context learnt whole before it (naming at most
    ``max_left`` contexts); a list's items never take more than 4 rows each of its pool, plus 8 a list."""
    learnt = state[_N_FIRST] + 1
    contexts, lefts = state[_N_CONTEXTS] + learnt, state[_N_LEFT] + learnt
    members = state[_N_MEMBERS] + state[_GROUP_SIZE] + state[_N_FIRST] * max_left
    return (contexts, lefts, state[_N_RIGHT] + learnt, members, 4 * contexts + 8 * lefts,
            4 * members + 8 * contexts)


@_inlined
def _popcount(bits):  # pragma: no cover - compiled
    bits = bits - ((bits >> 1) & 0x5555555555555555)
    bits = (bits & 0x3333333333333333) + ((bits >> 2) & 0x3333333333333333)
    bits = (bits + (bits >> 4)) & 0x0F0F0F0F0F0F0F0F
    return ((bits * 0x0101010101010101) >> 56) & 0x7F


@_inlined
def _mixed(key):  # pragma: no cover - compiled
    """A hash of an integer key (wrapping int64 arithmetic)."""
    key = key * -7046029254386353131
    return key ^ (key >> 31)


@_inlined
def _appended(rows, row, column, pool, state, fill):  # pragma: no cover - compiled
    """The position of a row appended to the list whose start, length and capacity in ``pool`` are
    ``rows[row, column:column + 3]``; a full list moves to the pool's end (``state[fill]``) with twice the room
    (the pool is never compacted)."""
    start, length, capacity = rows[row, column], rows[row, column + 1], rows[row, column + 2]
    if length == capacity:
        capacity, end = max(4, 2 * capacity), state[fill]
        pool[end:end + length] = pool[start:start + length]
        start = rows[row, column] = end
        rows[row, column + 2] = capacity
        state[fill] = end + capacity
    rows[row, column + 1] = length + 1
    return start + length


@_inlined
def _left_slot(table, left_sets, members, mask, named, begin, count):  # pragma: no cover - compiled
    """The slot of the left sets' ``table`` that holds the set (``mask``, ``named[begin:begin + count]``), or the empty
    slot where it goes."""
    key = _mixed(mask)
    for i in range(begin, begin + count):
        key = _mixed(key ^ named[i])
    last = len(table) - 1
    slot = key & last
    while table[slot, _ID] >= 0:
        known = table[slot, _ID]
        if left_sets[known, _MASK] == mask and left_sets[known, _COUNT] == count:
            start = left_sets[known, _START]
            same = True
            for i in range(count):
                if members[start + i] != named[begin + i]:
                    same = False
                    break
            if same:
                return slot
        slot = (slot + 1) & last
    return slot


@_inlined
def _right_slot(table, right_sets, mask):  # pragma: no cover - compiled
    last = len(table) - 1
    slot = _mixed(mask) & last
    while table[slot, _ID] >= 0 and right_sets[table[slot, _ID], _MASK] != mask:
        slot = (slot + 1) & last
    return slot


@_inlined
def _pair_key(left, right):  # pragma: no cover - compiled
    return (left << 32) | right


@_inlined
def _key_slot(table, column, key):  # pragma: no cover - compiled
    """The slot of ``table`` whose ``column`` holds ``key`` (not negative), or the empty slot where it goes."""
    last = len(table) - 1
    slot = _mixed(key) & last
    while table[slot, column] >= 0 and table[slot, column] != key:
        slot = (slot + 1) & last
    return slot


@_inlined
def _left_set(left_sets, members, contexts, holders, table, state, mask, named, begin,
              count):  # pragma: no cover - compiled
    """The id of the left set of the sample facts ``mask`` and the contexts ``named[begin:begin + count]``
    (ascending), learnt now where it is new (and entered in the lists of the left sets naming each)."""
    slot = _left_slot(table, left_sets, members, mask, named, begin, count)
    if table[slot, _ID] >= 0:
        return table[slot, _ID]
    number = table[slot, _ID] = state[_N_LEFT]
    state[_N_LEFT] += 1
    start = state[_N_MEMBERS]
    state[_N_MEMBERS] += count
    left_sets[number, :] = 0
    left_sets[number, _MASK], left_sets[number, _SIZE] = mask, _popcount(mask) + count
    left_sets[number, _START], left_sets[number, _COUNT] = start, count
    for i in range(count):
        members[start + i] = named[begin + i]
        holders[_appended(contexts, named[begin + i], _HOLDERS, holders, state, _HOLDERS_FILL)] = number
    return number


@_inlined
def _right_set(right_sets, table, state, mask):  # pragma: no cover - compiled
    slot = _right_slot(table, right_sets, mask)
    if table[slot, _ID] >= 0:
        return table[slot, _ID]
    number = table[slot, _ID] = state[_N_RIGHT]
    state[_N_RIGHT] += 1
    right_sets[number, :] = 0
    right_sets[number, _MASK], right_sets[number, _SIZE] = mask, _popcount(mask)
    return number


@_inlined
def _context(contexts, entries, left_sets, table, state, left, right):  # pragma: no cover - compiled
    """(The context pairing ``left`` and ``right``, whether it is learnt now: with an entry in its left set's list)."""
    key = _pair_key(left, right)
    slot = _key_slot(table, _CONTEXT_KEY, key)
    if table[slot, _CONTEXT_KEY] >= 0:
        return table[slot, _CONTEXT_ID], False
    table[slot, _CONTEXT_KEY] = key
    number = table[slot, _CONTEXT_ID] = state[_N_CONTEXTS]
    state[_N_CONTEXTS] += 1
    contexts[number, :] = 0
    contexts[number, _LEFT], contexts[number, _RIGHT] = left, right
    entry = _appended(left_sets, left, _ENTRIES, entries, state, _ENTRIES_FILL)
    entries[entry, :] = 0
    entries[entry, _ENTRY_CONTEXT], entries[entry, _ENTRY_RIGHT] = number, right
    return number, True


@_inlined
def _learnt_whole(contexts, lists, state, number):  # pragma: no cover - compiled
    """Mark context ``number`` learnt whole, keeping the list of those ascending."""
    if contexts[number, _FIRST]:
        return
    contexts[number, _FIRST] = 1
    place = state[_N_FIRST]
    while place > 0 and lists[place - 1, _FIRST_CONTEXT] > number:
        lists[place, _FIRST_CONTEXT:] = lists[place - 1, _FIRST_CONTEXT:]
        place -= 1
    lists[place, _FIRST_CONTEXT] = number
    lists[place, _FIRST_LEFT], lists[place, _FIRST_RIGHT] = contexts[number, _LEFT], contexts[number, _RIGHT]
    state[_N_FIRST] += 1


@_inlined
def _partial_slot(table, left_mask, held_named, right_mask):  # pragma: no cover - compiled
    """The slot of a sample's ``table`` of partial matches that holds the one of the sample facts ``left_mask``, the
    group's contexts ``held_named`` (bits) and the right facts ``right_mask``, or the empty slot where it goes."""
    last = len(table) - 1
    slot = _mixed(_mixed(_mixed(left_mask) ^ held_named) ^ right_mask) & last
    while table[slot, 0] >= 0 and (table[slot, 0] != left_mask or table[slot, 1] != held_named
                                   or table[slot, 2] != right_mask):
        slot = (slot + 1) & last
    return slot


@_jit
def _rehash(contexts, left_sets, right_sets, members, left_table, right_table, context_table,
            state):  # pragma: no cover - compiled
    """Enter every fact set and context into the (larger, empty) tables."""
    for number in range(state[_N_LEFT]):
        left_table[_left_slot(left_table, left_sets, members, left_sets[number, _MASK], members,
                              left_sets[number, _START], left_sets[number, _COUNT]), _ID] = number
    for number in range(state[_N_RIGHT]):
        right_table[_right_slot(right_table, right_sets, right_sets[number, _MASK]), _ID] = number
    for number in range(state[_N_CONTEXTS]):
        key = _pair_key(contexts[number, _LEFT], contexts[number, _RIGHT])
        slot = _key_slot(context_table, _CONTEXT_KEY, key)
        context_table[slot, _CONTEXT_KEY], context_table[slot, _CONTEXT_ID] = key, number


@_inlined
def _kept(top, kept, key):  # pragma: no cover - compiled
    """Enter ``key`` among ``top[:kept]``, the largest keys seen (at most ``len(top)``, ascending); their count."""
    if kept == len(top) and key <= top[0]:
        return kept
    if kept == len(top):  # the smallest leaves
        place = 0
        while place + 1 < kept and top[place + 1] < key:
            top[place] = top[place + 1]
            place += 1
    else:
        place, kept = kept, kept + 1
        while place > 0 and top[place - 1] > key:
            top[place] = top[place - 1]
            place -= 1
    top[place] = key
    return kept


@_inlined
def _weight(entries, entry):  # pragma: no cover - compiled
    """How well a context predicts: its facts predicted over those it was selected for (0 before it was)."""
    selected = entries[entry, _ENTRY_SELECTED]
    return entries[entry, _ENTRY_PREDICTED] / selected if selected > 0 else 0.0


@_jit
def _score_run(contexts, entries, left_sets, right_sets, members, holders, lists, left_table, right_table,
               context_table, state, values, scores, start, low, width, bits, rest, threshold, max_left,
               max_active):  # pragma: no cover - compiled
    """Score ``values[start:]`` into ``scores``, as ``_NumpyContexts.update`` does one at a time; returns where it
    stopped: ``len(values)``, or the first sample the arrays may lack room for (grow them and call again).

    Rather than every context, a sample visits the contexts whose left set the last group held whole (listed once
    a sample, from how many of each left set's facts the group holds: the sample facts by mask, the contexts it
    names through the lists of the left sets naming each) and, where it learns a new whole context, the contexts
    learnt whole before (the parents, a few per cent of all): a parent's partial match is three masks (the last of
    them counted with what the group holds), and only the distinct ones are interned and looked for among all the
    contexts."""
    named = np.empty(len(state) - _GROUP, dtype=np.int64)  # a partial match's contexts: at most the last group's
    top = np.empty(max_active, dtype=np.int64)  # the most often active winners, as keys (see _kept)
    for k in range(start, len(values)):
        need_contexts, need_lefts, need_rights, need_members, need_entries, need_holders = _needed(state, max_left)
        if (len(contexts) < need_contexts or len(lists) < need_contexts or len(left_sets) < need_lefts
                or len(right_sets) < need_rights or len(members) < need_members or len(entries) < need_entries
                or len(holders) < need_holders or 2 * need_lefts > len(left_table)
                or 2 * need_rights > len(right_table) or 2 * need_contexts > len(context_table)):
            return k
        sensed = fact_mask(values[k], low, width, bits)
        surprised = (sensed & ~state[_FORESEEN]) != 0
        n_first, group_mask, group_size = state[_N_FIRST], state[_GROUP_MASK], state[_GROUP_SIZE]
        # The selected contexts (left set held whole by the last group): counted, and the active ones kept by how
        # often they were active, then by number. Before the sample's whole context is learnt: a list that grows
        # may move, and the entries listed are where they were.
        n_selected, n_active, n_top = state[_N_READY], 0, 0
        for i in range(n_selected):
            entry = lists[i, _READY]
            right = entries[entry, _ENTRY_RIGHT]
            size, matched = right_sets[right, _SIZE], _popcount(right_sets[right, _MASK] & sensed)
            entries[entry, _ENTRY_SELECTED] += size
            if matched > 0:
                entries[entry, _ENTRY_PREDICTED] += matched
                if matched == size:
                    entries[entry, _ENTRY_ACTIVATIONS] += 1
                    key = (entries[entry, _ENTRY_ACTIVATIONS] << 32) | entries[entry, _ENTRY_CONTEXT]
                    n_top = _kept(top, n_top, key)
                    n_active += 1

        # The whole context: the last group, then this sample (a new one breeds).
        whole, whole_new, whole_left, whole_right = -1, False, -1, -1
        if state[_HAS_GROUP]:
            whole_left = _left_set(left_sets, members, contexts, holders, left_table, state, group_mask, state,
                                   _GROUP, group_size)
            whole_right = _right_set(right_sets, right_table, state, sensed)
            whole, whole_new = _context(contexts, entries, left_sets, context_table, state, whole_left, whole_right)
            _learnt_whole(contexts, lists, state, whole)

        # A new whole context breeds: the partial matches of the contexts learnt whole before it (the parents), in
        # their order. A partial match is the sample facts and the group's contexts the parent's left set holds (a
        # mask each) and the facts of its right set the sample holds: the candidates (the whole context and the
        # distinct partial matches) are told apart by these in a table of this sample's own, and only they are
        # interned and looked for among all the contexts.
        n_new, n_candidates = int(whole_new), 1
        if whole_new:
            parents = np.empty(n_first, dtype=np.int64)
            n_parents = 0
            for i in range(n_first):
                left, right = lists[i, _FIRST_LEFT], lists[i, _FIRST_RIGHT]
                held, matched = left_sets[left, _HELD], _popcount(right_sets[right, _MASK] & sensed)
                if not (held == 0 or held > max_left or matched == 0
                        or (held == left_sets[left, _SIZE] and matched == right_sets[right, _SIZE])):
                    parents[n_parents] = i  # touched, small enough, predicting, and not active
                    n_parents += 1
            room = 4
            while room <= 2 * n_parents:
                room *= 2
            candidates = np.full((room, 3), -1, dtype=np.int64)
            slot = _partial_slot(candidates, group_mask, (1 << group_size) - 1, sensed)
            candidates[slot, 0], candidates[slot, 1], candidates[slot, 2] = group_mask, (1 << group_size) - 1, sensed
            for i in parents[:n_parents]:
                left, right = lists[i, _FIRST_LEFT], lists[i, _FIRST_RIGHT]
                left_mask, held_named = left_sets[left, _MASK] & group_mask, left_sets[left, _HELD_NAMED]
                right_mask = right_sets[right, _MASK] & sensed
                slot = _partial_slot(candidates, left_mask, held_named, right_mask)
                if candidates[slot, 0] >= 0:
                    continue
                candidates[slot, 0], candidates[slot, 1], candidates[slot, 2] = left_mask, held_named, right_mask
                n_candidates += 1
                count = 0
                for place in range(group_size):
                    if held_named >> place & 1:
                        named[count] = state[_GROUP + place]
                        count += 1
                bred_left = _left_set(left_sets, members, contexts, holders, left_table, state, left_mask, named, 0,
                                      count)
                bred_right = _right_set(right_sets, right_table, state, right_mask)
                n_new += _context(contexts, entries, left_sets, context_table, state, bred_left, bred_right)[1]

        score = sample_score(surprised, n_selected, n_active, whole_new, n_new, n_candidates)
        state[_SAMPLES] += 1
        score, last_high = rested(score, state[_SAMPLES], state[_LAST_HIGH], rest, threshold)
        scores[k], state[_LAST_HIGH] = score, last_high

        # The next left group: the sample's facts and the most often active winners (ties: the later learnt).
        chosen = np.sort(top[:n_top] & 0xFFFFFFFF)
        state[_GROUP:_GROUP + len(chosen)] = chosen
        state[_GROUP_MASK], state[_GROUP_SIZE], state[_HAS_GROUP] = sensed, len(chosen), 1

        # How many of each left set's facts the group holds; the entries of those it holds whole are listed, and
        # the right facts of the best-predicting of them are what the next sample is foreseen to hold.
        n_left = state[_N_LEFT]
        for left in range(n_left):
            left_sets[left, _HELD], left_sets[left, _HELD_NAMED] = _popcount(left_sets[left, _MASK] & sensed), 0
        for place in range(len(chosen)):
            first = contexts[chosen[place], _HOLDERS]
            for i in range(first, first + contexts[chosen[place], _HOLDERS + 1]):
                left_sets[holders[i], _HELD] += 1
                left_sets[holders[i], _HELD_NAMED] |= 1 << place
        n_ready, best = 0, -1.0
        for left in range(n_left):
            if left_sets[left, _HELD] == left_sets[left, _SIZE]:
                first = left_sets[left, _ENTRIES]
                for entry in range(first, first + left_sets[left, _ENTRIES + 1]):
                    lists[n_ready, _READY] = entry
                    n_ready += 1
                    best = max(best, _weight(entries, entry))
        foreseen = 0
        for i in range(n_ready):
            if _weight(entries, lists[i, _READY]) == best:
                foreseen |= right_sets[entries[lists[i, _READY], _ENTRY_RIGHT], _MASK]
        state[_N_READY], state[_FORESEEN] = n_ready, foreseen
    return len(values)
