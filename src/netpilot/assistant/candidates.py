"""The answers a request allows, written out by code: every change over the names it found (one intent, or two on
different objects in the order the request names them), with the request's own numbers as metrics, plus the
question, the refusals and the explanations. The model only scores them; the answer it likes best (by action
first, summed over that action's answers, then within it) is the one given."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from netpilot.assistant.schema import EXPLAIN_TOPICS, REFUSE_REASONS
from netpilot.change.intents import MAX_METRIC

#: Topics that need a link or a node, and which.
_TOPIC_SUBJECT = {"link_load": "link", "failure_what_if": "link", "forecast": "link", "node_load": "node"}


@dataclass(frozen=True)
class Candidate:
    """One allowed answer: its action and its JSON text, written as the prompt's examples write answers."""

    action: str
    text: str


def _dump(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def _intent_options(nodes: list[str], links: dict[str, tuple[str, str]], numbers: list[int],
                    order: dict[str, int]) -> list[tuple[dict, frozenset[str], int]]:
    """Every single intent over the names: (intent, the nodes it touches, where the request first names them)."""
    out = []
    for node in nodes:
        out.append(({"intent": "drain_node", "node": node}, frozenset({node}), order.get(node, 0)))
    metrics = [n for n in dict.fromkeys(numbers) if 1 <= n <= MAX_METRIC]
    for name, (a, b) in links.items():
        where = min(order.get(a, 0), order.get(b, 0))
        touched = frozenset({a, b})
        for state in ("down", "up"):
            out.append(({"intent": "set_link_state", "link": name, "state": state}, touched, where))
        for metric in metrics:
            out.append(({"intent": "set_metric", "link": name, "metric": metric}, touched, where))
    return out


def candidates(nodes: list[str], links: dict[str, tuple[str, str]], numbers: list[int],
               order: dict[str, int]) -> list[Candidate]:
    """All answers the request allows. ``order``: where the request first names each node (two intents are
    written in the order the request names their objects, on objects that share no node)."""
    out: list[Candidate] = []
    singles = _intent_options(nodes, links, numbers, order)
    for intent, _, _ in singles:
        out.append(Candidate("change", _dump({"action": "change", "intents": [intent]})))
    for first, touched_first, where_first in singles:
        for second, touched_second, where_second in singles:
            if where_first < where_second and not touched_first & touched_second:
                out.append(Candidate("change", _dump({"action": "change", "intents": [first, second]})))
    out.append(Candidate("clarify", _dump({"action": "clarify"})))
    for reason in REFUSE_REASONS:
        out.append(Candidate("refuse", _dump({"action": "refuse", "reason": reason})))
    for topic in EXPLAIN_TOPICS:
        subject = _TOPIC_SUBJECT.get(topic)
        if subject == "link":
            out += [Candidate("explain", _dump({"action": "explain", "topic": topic, "link": name}))
                    for name in links]
        elif subject == "node":
            out += [Candidate("explain", _dump({"action": "explain", "topic": topic, "node": node}))
                    for node in nodes]
        else:
            out.append(Candidate("explain", _dump({"action": "explain", "topic": topic})))
    return out


#: How answers are compared: "joint" (log-likelihood of the whole answer), "per_token" (its mean over the
#: answer's tokens, so a short answer is not favoured for its length alone), "calibrated" (the log-likelihood
#: less that of the same answer when the request's words are blanked out: what the words add) and
#: "calibrated_per_token" (that difference per token).
RULES = ("joint", "per_token", "calibrated", "calibrated_per_token")
#: Per token: chosen on dev-held once retrieval finds the right examples (the model alone: 78 % single-intent per
#: token, 72 % joint, 28 % calibrated: calibrating subtracts the very help a well-chosen example gives); it also
#: needs one pass, not two.
RULE = "per_token"


#: How much more likely (the rule's value: mean log-likelihood per token under "per_token") the model must find
#: its choice than code's own answer for its choice to be given: the smallest margin with the best dev-held result
#: (28 requests; BENCHMARKS.md, issue 29).
TRUST_MARGIN = 0.2


def values(scored: list[tuple[float, int]], rule: str = RULE, prior: list[float] | None = None) -> list[float]:
    """Each answer's value under ``rule`` (see RULES): ``scored`` (log-likelihood, tokens) per answer, ``prior``
    each answer's log-likelihood with the request blanked."""
    if rule not in RULES:
        raise ValueError(f"rule: {rule!r} is not one of {RULES}")
    base = prior if prior is not None and rule.startswith("calibrated") else [0.0] * len(scored)
    return [(total - b) / (max(tokens, 1) if rule.endswith("per_token") else 1)
            for (total, tokens), b in zip(scored, base)]


def same_answer(a: str, b: str) -> bool:
    """Whether two answers' JSON texts say the same (key order and spacing aside)."""
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False


def prefer_code(options: list[Candidate], value: list[float], best: int, code: str | None,
                margin: float) -> int:
    """The answer given when code has one of its own (``code``, the nearest example written with the request's
    names): the model's choice ``best`` only when its value exceeds that of code's answer by more than
    ``margin``; code's answer otherwise. Code's answer not among the allowed ones: the model's choice."""
    if code is None:
        return best
    mine = next((i for i, o in enumerate(options) if same_answer(o.text, code)), None)
    if mine is None or value[best] - value[mine] > margin:
        return best
    return mine


def choose(options: list[Candidate], scored: list[tuple[float, int]], rule: str = RULE,
           prior: list[float] | None = None) -> int:
    """The index of the answer given: the action with the highest probability summed over its answers (so an
    action with many answers, a change over several names, is not penalised for spreading its probability),
    then that action's most likely answer. ``scored``: (log-likelihood, tokens) per answer; ``prior``: each
    answer's log-likelihood with the request blanked (the calibrated rules)."""
    values_ = values(scored, rule, prior)
    by_action: dict[str, list[int]] = {}
    for i, option in enumerate(options):
        by_action.setdefault(option.action, []).append(i)

    def total(indices: list[int]) -> float:
        top = max(values_[i] for i in indices)
        if rule != "joint":  # ratios and means do not add up: the action's best answer speaks for it
            return top
        return top + math.log(sum(math.exp(values_[i] - top) for i in indices))

    action = max(by_action, key=lambda a: total(by_action[a]))
    return max(by_action[action], key=lambda i: values_[i])
