"""Worked examples for the model, and retrieval of the ones nearest a request: requests are compared with the
names masked (A, B for nodes, M for numbers), and the chosen examples are written out with the request's own
names, so a small model sees its answer's shape with the right names in it."""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass

from netpilot.assistant.wording import canonical

# (request with {A}, {B}, {C}, {D} for nodes and {M} for a metric, answer with the same placeholders). These are
# the prompt's examples; the evaluation's requests are worded differently (bench/assistant_requests.py checks it).
BANK: tuple[tuple[str, str], ...] = (
    ("drain {A}", '{"action":"change","intents":[{"intent":"drain_node","node":"{A}"}]}'),
    ("put {A} into maintenance mode", '{"action":"change","intents":[{"intent":"drain_node","node":"{A}"}]}'),
    ("move all traffic away from {A} before the upgrade",
     '{"action":"change","intents":[{"intent":"drain_node","node":"{A}"}]}'),
    ("drain {A} and {B}", '{"action":"change","intents":[{"intent":"drain_node","node":"{A}"},'
                          '{"intent":"drain_node","node":"{B}"}]}'),
    ("shut the link {A}-{B}", '{"action":"change","intents":[{"intent":"set_link_state","link":"{A} - {B}",'
                              '"state":"down"}]}'),
    ("take {A} to {B} down", '{"action":"change","intents":[{"intent":"set_link_state","link":"{A} - {B}",'
                             '"state":"down"}]}'),
    ("disable the circuit between {A} and {B}",
     '{"action":"change","intents":[{"intent":"set_link_state","link":"{A} - {B}","state":"down"}]}'),
    ("bring {A}-{B} back up", '{"action":"change","intents":[{"intent":"set_link_state","link":"{A} - {B}",'
                              '"state":"up"}]}'),
    ("enable the link between {A} and {B} again",
     '{"action":"change","intents":[{"intent":"set_link_state","link":"{A} - {B}","state":"up"}]}'),
    ("set the metric of {A}-{B} to {M}", '{"action":"change","intents":[{"intent":"set_metric","link":"{A} - {B}",'
                                         '"metric":{M}}]}'),
    ("change the IGP cost between {A} and {B} to {M}",
     '{"action":"change","intents":[{"intent":"set_metric","link":"{A} - {B}","metric":{M}}]}'),
    ("make {A}-{B} cost {M} so traffic avoids it",
     '{"action":"change","intents":[{"intent":"set_metric","link":"{A} - {B}","metric":{M}}]}'),
    ("shut {A}-{B} and drain {C}", '{"action":"change","intents":[{"intent":"set_link_state","link":"{A} - {B}",'
                                   '"state":"down"},{"intent":"drain_node","node":"{C}"}]}'),
    ("set {A}-{B} to {M} and bring {C}-{D} up",
     '{"action":"change","intents":[{"intent":"set_metric","link":"{A} - {B}","metric":{M}},'
     '{"intent":"set_link_state","link":"{C} - {D}","state":"up"}]}'),
    ("shut it down", '{"action":"clarify"}'),
    ("fix the congestion", '{"action":"clarify"}'),
    ("drain the router", '{"action":"clarify"}'),
    ("change the metric on that link", '{"action":"clarify"}'),
    ("shut down every link in the network", '{"action":"refuse","reason":"unsafe"}'),
    ("turn off all the routers at once", '{"action":"refuse","reason":"unsafe"}'),
    ("wipe the configuration of {A}", '{"action":"refuse","reason":"unsafe"}'),
    ("what is the weather in {A}", '{"action":"refuse","reason":"out_of_scope"}'),
    ("write me a poem about routers", '{"action":"refuse","reason":"out_of_scope"}'),
    ("order lunch for the team", '{"action":"refuse","reason":"out_of_scope"}'),
    ("why is {A}-{B} so busy", '{"action":"explain","topic":"link_load","link":"{A} - {B}"}'),
    ("how loaded is the link {A} to {B}", '{"action":"explain","topic":"link_load","link":"{A} - {B}"}'),
    ("how much traffic goes through {A}", '{"action":"explain","topic":"node_load","node":"{A}"}'),
    ("what happens if {A}-{B} fails", '{"action":"explain","topic":"failure_what_if","link":"{A} - {B}"}'),
    ("what are the open incidents", '{"action":"explain","topic":"incidents"}'),
    ("show me the change log", '{"action":"explain","topic":"change_log"}'),
    ("will {A}-{B} be congested later", '{"action":"explain","topic":"forecast","link":"{A} - {B}"}'),
    ("how is the network doing", '{"action":"explain","topic":"network_state"}'),
)
_PLACEHOLDER = re.compile(r"\{([A-DM])\}")
_WORD = re.compile(r"[a-z]+|[A-DM]\b")


@dataclass(frozen=True)
class Example:
    request: str
    answer: str


def mask(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the node mentions at ``spans`` as A, B, C, D (in order) and numbers as M."""
    out, last = [], 0
    for i, (start, end) in enumerate(spans):
        out += [re.sub(r"\d+", "M", text[last:start]), "ABCD"[i] if i < 4 else "D"]
        last = end
    out.append(re.sub(r"\d+", "M", text[last:]))
    return "".join(out)


def _features(masked: str) -> set[str]:
    words = [w if len(w) == 1 else w.lower() for w in _WORD.findall(masked)]
    return set(words) | {a + " " + b for a, b in itertools.pairwise(words)}


def _bank_features() -> list[set[str]]:
    return [_features(canonical(_PLACEHOLDER.sub(lambda m: m.group(1), request))) for request, _ in BANK]


_BANK_FEATURES = _bank_features()
# Rare words say more about what is asked than common ones ("drain" against "the").
_WEIGHT = {f: math.log((1 + len(BANK)) / (1 + sum(f in feats for feats in _BANK_FEATURES))) + 1.0
           for feats in _BANK_FEATURES for f in feats}
# The words that say what to do weigh more than those around the names ("the 10 Gbit/s link A-B should get
# metric M" is a metric, however much of it reads like "shut the link A-B"); requests are first written in these
# words (wording.canonical).
ACTION_WORDS = frozenset([
    "drain", "maintenance", "shut", "disable", "down", "enable", "up", "again", "back", "metric", "cost", "igp",
    "why", "how", "what", "will", "busy", "loaded", "fails", "happens", "incidents", "log", "doing", "congested",
    "wipe", "every", "all"
])
ACTION_WEIGHT = 2.5
for _f in list(_WEIGHT):
    if _f in ACTION_WORDS:
        _WEIGHT[_f] *= ACTION_WEIGHT


def _weight(feature: str) -> float:
    return _WEIGHT.get(feature, ACTION_WEIGHT if feature in ACTION_WORDS else 1.0)


def nearest(masked_request: str, count: int = 4, names: int = 0, leave_out: int | None = None) -> list[int]:
    """Indices into BANK of the ``count`` examples nearest the masked request (weighted Jaccard over words and
    word pairs, rarer ones weighing more), preferring those that need no more names than the request has."""
    request = _features(masked_request)

    def score(i: int) -> tuple[bool, bool, float]:
        template = BANK[i][0]
        needed = len(set(_PLACEHOLDER.findall(template)) - {"M"})
        feats = _BANK_FEATURES[i]
        shared = sum(_weight(f) for f in request & feats)
        union = sum(_weight(f) for f in request | feats)
        # A request that names nodes is nearer examples that name some too ("move traffic off the SE router" is
        # a drain, not "drain the router", which names none and asks back).
        return (needed <= max(names, 0), needed >= min(names, 1), shared / max(union, 1e-9))

    kept = [i for i in range(len(BANK)) if i != leave_out]  # leave_out: the dev split's own example
    return sorted(kept, key=score, reverse=True)[:count]


def instantiate(index: int, nodes: list[str], metric: int | None, spare: list[str]) -> Example:
    """Example ``index`` written with ``nodes`` for A, B, ... (``spare`` names when the request has fewer) and
    ``metric`` for M."""
    names = list(nodes) + [s for s in spare if s not in nodes]

    def fill(text: str, as_json: bool) -> str:
        def one(m: re.Match) -> str:
            key = m.group(1)
            if key == "M":
                return str(metric if metric is not None else 50)
            value = names["ABCD".index(key) % max(1, len(names))] if names else key
            return json.dumps(value)[1:-1] if as_json else value
        return _PLACEHOLDER.sub(one, text)

    request, answer = BANK[index]
    return Example(fill(request, False), fill(answer, True))
