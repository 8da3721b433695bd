"""The assistant: a request in words becomes a verified proposal (proposed by the person who typed it, never
auto-approved), a question, a refusal or an explanation. Code finds the names, picks the examples, words the
questions, restatements and explanations; the model only chooses among what the request's schema allows."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from netpilot.assistant.backends import Backend, BackendError, Completion
from netpilot.assistant.candidates import RULE, TRUST_MARGIN, candidates, choose, prefer_code, values
from netpilot.assistant.examples import BANK, instantiate, mask, nearest
from netpilot.assistant.names import Mention, NameIndex
from netpilot.assistant.restate import restate
from netpilot.assistant.schema import Answer, AnswerError, answer_schema, link_name, parse_answer
from netpilot.assistant.tools import Observations, Tools, plan, run_plan
from netpilot.assistant.wording import canonical, metric_numbers, number_words
from netpilot.change.intents import Intent, apply_intents
from netpilot.errors import InputError
from netpilot.model.network import Network

SYSTEM = (
    "You are the assistant of a network operations team. Answer each request with one JSON object.\n"
    '- "change": 1 to 5 intents: drain_node (node), set_link_state (link, state up or down), '
    "set_metric (link, metric).\n"
    '- "clarify" when the request does not say which node or link, or what to do with it.\n'
    '- "refuse" with reason "unsafe" for taking many links or routers down at once or wiping configuration, '
    '"out_of_scope" for anything that is not about operating this network.\n'
    '- "explain" with a topic for questions: why, what, how, will.\n'
    "Use only the names given with the request.")
#: Who may not be the proposer of an assistant's change: the machines, so a person always is.
MACHINE_ACTORS = frozenset({"", "policy", "netpilot", "autopilot", "assistant", "verifier"})

Kind = Literal["proposal", "question", "refusal", "explanation"]


@dataclass(frozen=True)
class Interpretation:
    """What the model was given and what it answered: names found by code, the schema, the prompt and its
    hash, the raw answer, the parsed answer (or why it could not be parsed)."""

    request: str
    mentions: list[Mention]
    nodes: list[str]
    links: dict[str, tuple[str, str]]
    schema: dict[str, Any]
    messages: list[dict[str, str]]
    prompt_sha256: str
    completion: Completion | None
    answer: Answer | None
    error: str | None
    examples: list[int] = field(default_factory=list)
    #: Code's own answer: the nearest worked example written with the request's names, or for a request of two
    #: parts ("drain A and shut C-D") the nearest single-change example of each part, joined.
    code: str | None = None


@dataclass
class Reply:
    """What the operator sees. A proposal carries the code's restatement, the twin's diff and the verification
    report, and the change's id and state when it was stored."""

    kind: Kind
    text: str
    request: str
    intents: list[dict] = field(default_factory=list)
    restatement: list[str] = field(default_factory=list)
    diff: list[dict] = field(default_factory=list)
    verification: dict | None = None
    change_id: str | None = None
    state: str | None = None
    steps: list[dict] = field(default_factory=list)
    model: str | None = None
    prompt_sha256: str | None = None
    raw: str | None = None
    seconds: float = 0.0


class Assistant:
    """Requests over one backend. ``examples``: how many worked examples go into the prompt; ``scoring``: let a
    backend that can score answers choose among code's candidates rather than generate; ``trust_margin``: how
    much more likely (calibrated log-likelihood) the model must find its choice than code's own answer (the
    nearest example written with the request's names) for its choice to be given (None: always the model's)."""

    def __init__(self, backend: Backend, *, examples: int = 4, scoring: bool = True,
                 rule: str = RULE, trust_margin: float | None = TRUST_MARGIN) -> None:
        self.trust_margin = trust_margin
        self.backend = backend
        self.example_count = examples
        # A backend that can score answers (the local model) chooses among the answers code writes; one that
        # can only generate (an OpenAI-compatible endpoint) writes its answer under the request's schema.
        self.scoring = scoring
        self.rule = rule
        self._indexes: dict[int, tuple[Network, NameIndex]] = {}

    def names(self, network: Network) -> NameIndex:
        kept = self._indexes.get(id(network))
        if kept is None or kept[0] is not network:
            self._indexes = {id(network): (network, NameIndex(network))}
            kept = self._indexes[id(network)]
        return kept[1]

    # --- understanding ----------------------------------------------------------------------------------------

    def prepare(self, request: str, network: Network, *, leave_out: int | None = None) -> Interpretation:
        """Everything up to the model: names, schema, examples, prompt. ``leave_out``: a worked example kept out
        of the prompt (the evaluation's dev split asks the examples themselves)."""
        index = self.names(network)
        mentions = index.mentions(request)
        nodes = list(dict.fromkeys(m.node for m in mentions))
        links: dict[str, tuple[str, str]] = {}
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:]:
                if index.linked(a, b):
                    links[link_name(a, b)] = (a, b)
        if len(nodes) == 1 and len(index.neighbours(nodes[0])) == 1:
            # A node with one link (a cell's or edge site's uplink): "its link" can only mean that one.
            links[link_name(nodes[0], index.neighbours(nodes[0])[0])] = (nodes[0], index.neighbours(nodes[0])[0])
        schema = answer_schema(nodes, list(links))
        masked = mask(request, [(m.start, m.end) for m in _first_per_node(mentions)])
        # Retrieval reads the request in the examples' words: numbers in words as M, synonyms as the examples'.
        masked = canonical(re.sub(r"\d+", "M", number_words(masked)))
        chosen = nearest(masked, self.example_count, len(nodes), leave_out)
        numbers = metric_numbers(request)
        spare = [n.id for n in network.nodes if n.kind == "router"][:4]
        messages = [{"role": "system", "content": SYSTEM}]
        for i in reversed(chosen):  # nearest last, next to the request
            example = instantiate(i, nodes, numbers[0] if numbers else None, spare)
            used = [n for n in [*nodes, *spare] if n in example.request]
            messages += [{"role": "user", "content": _request_text(example.request, used, [])},
                         {"role": "assistant", "content": example.answer}]
        messages.append({"role": "user", "content": _request_text(request, nodes, list(links))})
        digest = hashlib.sha256(json.dumps({"messages": messages, "schema": schema}, sort_keys=True).encode())
        code = _two_parts(request, mentions, nodes, links, network, spare, leave_out) or (
            messages[-2]["content"] if chosen else None)
        return Interpretation(request, mentions, nodes, links, schema, messages, digest.hexdigest(), None, None,
                              None, chosen, code)

    def interpret(self, request: str, network: Network, *, leave_out: int | None = None) -> Interpretation:
        """The model's answer to ``request``, parsed against the request's own schema."""
        prepared = self.prepare(request, network, leave_out=leave_out)
        try:
            if getattr(self.backend, "code_only", False):  # code alone, no model (the evaluation's baseline)
                completion = Completion(prepared.code or "", "code (no model)", "code", 0.0)
            elif self.scoring and hasattr(self.backend, "score"):
                completion = self._choose(prepared)
            else:
                completion = self.backend.complete(prepared.messages, prepared.schema)
        except BackendError as exc:
            return _replace(prepared, error=f"backend: {exc}")
        try:
            answer = parse_answer(completion.text, prepared.nodes, prepared.links, network)
        except AnswerError as exc:
            return _replace(prepared, completion=completion, error=f"answer: {exc}")
        return _replace(prepared, completion=completion, answer=answer)

    def _choose(self, prepared: Interpretation) -> Completion:
        """The allowed answer the model finds most likely (see candidates.choose): code writes every answer the
        request's names and numbers allow, the model scores each."""
        order: dict[str, int] = {}
        for m in prepared.mentions:
            order.setdefault(m.node, m.start)
        numbers = metric_numbers(prepared.request)
        options = candidates(prepared.nodes, prepared.links, numbers, order)
        started = time.perf_counter()
        texts = [o.text for o in options]
        scored = self.backend.score(prepared.messages, texts)
        # The same prompt with the request's words taken out (its names kept): how likely each answer is from
        # the examples, their order and its length alone. The calibrated rules subtract it (contextual
        # calibration), so what is left is what the request's words add.
        blank = [*prepared.messages[:-1], {"role": "user", "content": _request_text(
            "N/A", prepared.nodes, list(prepared.links))}]
        prior = self.backend.score(blank, texts) if self.rule.startswith("calibrated") else [(0.0, 1)] * len(texts)
        best = choose(options, scored, rule=self.rule, prior=[total for total, _ in prior])
        if self.trust_margin is not None:
            # Code's own answer (the nearest example with the request's names) stands unless the model finds its
            # choice clearly more likely.
            best = prefer_code(options, values(scored, self.rule, [total for total, _ in prior]), best,
                               prepared.code, self.trust_margin)
        return Completion(options[best].text, getattr(self.backend, "model", self.backend.name), "score",
                          time.perf_counter() - started,
                          tuple((o.text, total, tokens, base) for o, (total, tokens), (base, _)
                                in zip(options, scored, prior)))

    # --- answering --------------------------------------------------------------------------------------------

    def ask(self, request: str, user: str, observations: Observations, *, store=None,
            max_utilisation: float = 1.0, propose: bool = True) -> Reply:
        """Answer ``request`` typed by ``user``. A change is applied to the twin, verified and, with a ``store``
        and ``propose``, stored as proposed by ``user`` (never auto-approved) with the model, prompt hash and raw
        answer attached."""
        if not request.strip():
            raise InputError.at("the request is empty", field="request")
        check_person(user)
        started = time.perf_counter()
        network = observations.network
        seen = self.interpret(request, network)
        reply = self.respond(seen, user, observations, store=store, max_utilisation=max_utilisation,
                             propose=propose)
        reply.seconds = time.perf_counter() - started
        return reply

    def respond(self, seen: Interpretation, user: str, observations: Observations, *, store=None,
                max_utilisation: float = 1.0, propose: bool = True) -> Reply:
        """The reply to an interpreted request (see ``ask``)."""
        check_person(user)
        network = observations.network
        meta = {"model": seen.completion.model if seen.completion else getattr(self.backend, "name", None),
                "prompt_sha256": seen.prompt_sha256, "raw": seen.completion.text if seen.completion else None}
        if seen.answer is None:
            return Reply("question", "I could not turn that into a change or a question I can answer ("
                         f"{seen.error}). Which node or link do you mean, and what should happen to it?",
                         seen.request, **meta)
        answer = seen.answer
        if answer.action == "clarify":
            return Reply("question", clarifying_question(seen, self.names(network)), seen.request, **meta)
        if answer.action == "refuse":
            why = ("it would take down or wipe more of the network than a single change should; ask for the links "
                   "or routers one by one" if answer.reason == "unsafe" else
                   "it is not about operating this network")
            return Reply("refusal", f"I won't do that: {why}.", seen.request, **meta)
        if answer.action == "explain":
            tools = Tools(observations)
            steps = plan(answer.topic or "network_state", answer.link, answer.node)
            results = run_plan(tools, steps)
            return Reply("explanation", " ".join(r.text for r in results), seen.request,
                         steps=[{"tool": r.tool, "figures": r.figures} for r in results], **meta)
        return self._propose(seen, answer.intents, user, network, store, max_utilisation, propose, meta)

    def _propose(self, seen: Interpretation, intents: list[Intent], user: str, network: Network, store,
                 max_utilisation: float, propose: bool, meta: dict) -> Reply:
        from netpilot.change.verify import VerificationSettings, verify_change
        from netpilot.change.workflow import twin_diff

        try:
            after = apply_intents(network, intents)
        except InputError as exc:
            return Reply("question", f"That does not fit the network ({exc}). Which link or node do you mean?",
                         seen.request, **meta)
        report = verify_change(network, after, VerificationSettings(max_utilisation=max_utilisation))
        words = restate(intents, network)
        diff = twin_diff(network, after)
        dumped = [i.model_dump(exclude_none=True) for i in intents]
        reply = Reply("proposal", " ".join(words) + (" Verification passed on the twin." if report.ok else
                                                      " Verification REFUSED it on the twin: "
                                                      + "; ".join(c.detail for c in report.checks if not c.ok)),
                      seen.request, intents=dumped, restatement=words, diff=diff, verification=report.as_dict(),
                      **meta)
        if store is not None and propose:
            change_id = store.propose(dumped, user, f"assistant: {seen.request}", diff)
            store.annotate(change_id, user, "assistant", {"request": seen.request, "restatement": words, **meta})
            reply.change_id = change_id
            reply.state = store.record_verification(change_id, report.as_dict(), auto_approve=False)
        return reply


def check_person(user: str) -> None:
    """The proposer of an assistant's change is the person who typed the request, never a machine."""
    if user.strip().lower() in MACHINE_ACTORS:
        raise InputError.at(f"{user!r} is not a person: the one who typed the request proposes the change",
                            field="user")


def clarifying_question(seen: Interpretation, index: NameIndex) -> str:
    """The question code asks back: which names it found, and what is missing."""
    if not seen.nodes:
        return ("Which router, site or link do you mean? Name it as in the network (e.g. "
                f"{', '.join(n.id for n in index.network.nodes[:3])}) or by its city.")
    if len(seen.nodes) >= 2 and not seen.links:
        a, b = seen.nodes[:2]
        return (f"There is no link between {a} and {b}. {a}'s links go to {', '.join(index.neighbours(a)[:8])}. "
                "Which link do you mean?")
    named = ", ".join(seen.nodes) + (f" (links: {', '.join(seen.links)})" if seen.links else "")
    return (f"I found {named}. What should happen: drain a router, take a link down or up, or set a link's "
            "metric (to what value)?")


#: Where a request of two changes divides ("drain A and shut C-D", "set A-B to 40, then drain C").
_JOIN = re.compile(r",?\s+(?:and\s+after\s+that|and\s+then|then|and\s+also|and|plus|as\s+well\s+as)\s+|;\s*|,\s+")
_CHANGE_WORDS = frozenset([
    "drain", "maintenance", "shut", "disable", "down", "enable", "up", "again", "back", "metric", "cost", "igp",
    "set", "take", "bring", "move"
])


def _two_parts(request: str, mentions: list[Mention], nodes: list[str], links: dict[str, tuple[str, str]],
               network: Network, spare: list[str], leave_out: int | None) -> str | None:
    """Code's answer to a request of two changes on different objects: each part's nearest single-change
    example written with that part's names and number, joined in the request's order; None when the request
    does not divide so (each part naming something and saying what to do)."""
    for join in _JOIN.finditer(request):
        parts = [(0, join.start()), (join.end(), len(request))]
        intents: list[dict] = []
        for start, end in parts:
            inside = _first_per_node([m for m in mentions if start <= m.start and m.end <= end])
            if not inside:
                break
            text = request[start:end]
            masked = canonical(re.sub(r"\d+", "M", number_words(
                mask(text, [(m.start - start, m.end - start) for m in inside]))))
            if not set(re.findall(r"[a-z]+", masked)) & _CHANGE_WORDS:
                break
            names = [m.node for m in inside]
            single = next((i for i in nearest(masked, len(BANK), len(names), leave_out)
                           if '"intents":[{' in BANK[i][1] and BANK[i][1].count('"intent":') == 1
                           and len(set(re.findall(r"\{([A-D])\}", BANK[i][0]))) <= len(names)), None)
            if single is None:
                break
            numbers = metric_numbers(text)
            example = instantiate(single, names, numbers[0] if numbers else None, spare)
            intents += json.loads(example.answer)["intents"]
        else:
            text = json.dumps({"action": "change", "intents": intents}, separators=(",", ":"))
            try:
                parse_answer(text, nodes, links, network)
            except AnswerError:
                continue
            return text
    return None


def _request_text(request: str, nodes: list[str], links: list[str]) -> str:
    lines = [f"Request: {request}", f"Names: {', '.join(nodes) if nodes else 'none'}"]
    if links:
        lines.append(f"Links: {', '.join(links)}")
    return "\n".join(lines)


def _first_per_node(mentions: list[Mention]) -> list[Mention]:
    seen: set[str] = set()
    out = []
    for m in mentions:
        if m.node not in seen:
            seen.add(m.node)
            out.append(m)
    return out


def _replace(prepared: Interpretation, **changes) -> Interpretation:
    from dataclasses import replace

    return replace(prepared, **changes)


__all__ = ["BANK", "Assistant", "Interpretation", "Reply", "clarifying_question"]
