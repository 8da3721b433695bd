"""The answer the model may give, built per request: a JSON schema whose node and link names are enums taken
from the twin, and its conversion into the change pipeline's intents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from netpilot.change.intents import MAX_METRIC, DrainNode, Intent, SetLinkState, SetMetric

#: The intent kinds an operator may ask for in words. apply_metrics (a whole TE solution) and set_policies
#: (explicit paths) stay with the TE engine: their schemas are large, and one holding set_policies crashed the
#: local sampler in a trial.
OPERATOR_KINDS = ("set_link_state", "set_metric", "drain_node")
EXPLAIN_TOPICS = ("link_load", "node_load", "network_state", "incidents", "forecast", "failure_what_if",
                  "change_log")
REFUSE_REASONS = ("unsafe", "out_of_scope")
MAX_INTENTS = 5


class AnswerError(ValueError):
    """The model's answer is not JSON, or does not follow the request's schema (the field is named)."""


def link_name(a: str, b: str) -> str:
    """How the schema spells the link between ``a`` and ``b`` (both directions)."""
    return f"{a} - {b}"


def answer_schema(nodes: list[str], links: list[str], *, kinds: tuple[str, ...] = OPERATOR_KINDS,
                  max_intents: int = MAX_INTENTS) -> dict[str, Any]:
    """The JSON schema of one answer: a change (1..max_intents intents over ``nodes``/``links``), a question, a
    refusal or an explanation. Questions and refusals carry no free text: code words them."""
    node_enum = {"type": "string", "enum": list(nodes)}
    link_enum = {"type": "string", "enum": list(links)}
    shapes = []
    if "set_link_state" in kinds and links:
        shapes.append(_obj({"intent": {"const": "set_link_state"}, "link": link_enum,
                            "state": {"type": "string", "enum": ["up", "down"]}}))
    if "set_metric" in kinds and links:
        shapes.append(_obj({"intent": {"const": "set_metric"}, "link": link_enum,
                            "metric": {"type": "integer", "minimum": 1, "maximum": MAX_METRIC}}))
    if "drain_node" in kinds and nodes:
        shapes.append(_obj({"intent": {"const": "drain_node"}, "node": node_enum}))
    answers = []
    if shapes:
        answers.append(_obj({"action": {"const": "change"},
                             "intents": {"type": "array", "items": {"anyOf": shapes} if len(shapes) > 1 else shapes[0],
                                         "minItems": 1, "maxItems": max_intents}}))
    answers.append(_obj({"action": {"const": "clarify"}}))
    answers.append(_obj({"action": {"const": "refuse"}, "reason": {"type": "string", "enum": list(REFUSE_REASONS)}}))
    subject: dict[str, Any] = {"action": {"const": "explain"},
                               "topic": {"type": "string", "enum": list(EXPLAIN_TOPICS)}}
    if links:
        subject["link"] = link_enum
    if nodes:
        subject["node"] = node_enum
    answers.append(_obj(subject, required=["action", "topic"]))
    return {"anyOf": answers}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties),
            "additionalProperties": False}


@dataclass(frozen=True)
class Answer:
    """One parsed answer: ``action`` is change, clarify, refuse or explain."""

    action: str
    intents: list[Intent]
    reason: str | None = None
    topic: str | None = None
    link: tuple[str, str] | None = None
    node: str | None = None


def parse_answer(raw: str, nodes: list[str], links: dict[str, tuple[str, str]], network=None) -> Answer:
    """The model's raw text as an Answer, checked against the request's enums and the intents' pydantic
    models; ``links`` maps the schema's link names to (source, target). A metric on a link is set in both
    directions, as an operator who names a link means (in the directions ``network`` has, when given)."""
    directed = {(lk.source, lk.target) for lk in network.links} if network is not None else None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AnswerError("not a JSON object")
    action = data.get("action")
    if action == "clarify":
        return Answer("clarify", [])
    if action == "refuse":
        reason = data.get("reason")
        if reason not in REFUSE_REASONS:
            raise AnswerError(f"reason: {reason!r} is not one of {REFUSE_REASONS}")
        return Answer("refuse", [], reason=reason)
    if action == "explain":
        topic = data.get("topic")
        if topic not in EXPLAIN_TOPICS:
            raise AnswerError(f"topic: {topic!r} is not one of {EXPLAIN_TOPICS}")
        link = data.get("link")
        if link is not None and link not in links:
            raise AnswerError(f"link: {link!r} is not a link of the network")
        node = data.get("node")
        if node is not None and node not in nodes:
            raise AnswerError(f"node: {node!r} is not a node of the network")
        return Answer("explain", [], topic=topic, link=links.get(link) if link else None, node=node)
    if action != "change":
        raise AnswerError(f"action: {action!r} is not change, clarify, refuse or explain")
    drafts = data.get("intents")
    if not isinstance(drafts, list) or not 1 <= len(drafts) <= MAX_INTENTS:
        raise AnswerError(f"intents: a list of 1 to {MAX_INTENTS} intents is needed")
    intents: list[Intent] = []
    for i, draft in enumerate(drafts):
        if not isinstance(draft, dict):
            raise AnswerError(f"intents[{i}]: not an object")
        kind = draft.get("intent")
        try:
            if kind == "drain_node":
                if draft.get("node") not in nodes:
                    raise AnswerError(f"intents[{i}].node: {draft.get('node')!r} is not a node of the network")
                intents.append(DrainNode(intent="drain_node", node=draft["node"]))
                continue
            if kind not in ("set_link_state", "set_metric"):
                raise AnswerError(f"intents[{i}].intent: {kind!r} is not one of {OPERATOR_KINDS}")
            if draft.get("link") not in links:
                raise AnswerError(f"intents[{i}].link: {draft.get('link')!r} is not a link of the network")
            a, b = links[draft["link"]]
            if kind == "set_link_state":
                intents.append(SetLinkState(intent="set_link_state", source=a, target=b, state=draft.get("state")))
            else:
                intents += [SetMetric(intent="set_metric", source=s, target=t, metric=draft.get("metric"))
                            for s, t in ((a, b), (b, a)) if directed is None or (s, t) in directed]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise AnswerError(f"intents[{i}].{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return Answer("change", intents)
