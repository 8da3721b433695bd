"""The assistant's evaluation: the requests of bench/data/assistant_requests.json (written by
bench/assistant_requests.py) through the whole assistant, per backend, scored by twin equivalence (the expected
and the predicted intents applied to the same twin give the same link states and metrics).

    python bench/assistant.py [--backend local|nearest|openai] [--url URL --model NAME --key KEY] [--limit N]

``nearest`` is code alone, no model: the names found and the nearest worked example's answer written with them;
it shows what the model adds.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from _results import OUT, run
from assistant_requests import DEV_HELD, DEV_WORDS, NUMBER_WORDS, networks, spellings, test_wordings
from assistant_requests import OUT as REQUESTS
from netpilot.assistant.backends import Completion, LocalBackend, OpenAIBackend
from netpilot.assistant.candidates import RULE, RULES, TRUST_MARGIN
from netpilot.assistant.core import Assistant
from netpilot.assistant.examples import BANK
from netpilot.assistant.restate import restate
from netpilot.assistant.schema import link_name, parse_answer
from netpilot.assistant.tools import Observations
from netpilot.change.intents import IntentList, apply_intents
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.errors import InputError

console = Console(width=200, soft_wrap=True)
results: dict[str, object] = {}
ACTION_OF = {"proposal": "change", "question": "clarify", "refusal": "refuse", "explanation": "explain"}
PEOPLE = ("alice", "bob", "carol")


class NearestExample:
    """Code alone: the nearest worked example written with the request's names (for a request of two changes,
    each part's), as the assistant's Interpretation.code holds it."""

    name = "nearest-example"
    code_only = True

    def complete(self, messages: list[dict[str, str]], schema: dict) -> Completion:
        return Completion(messages[-2]["content"], "nearest-example (no model)", "copy", 0.0)

    def close(self) -> None:
        """Nothing to release: the replay reads stored scores, it runs no model."""


class Replay:
    """The local model's scores as a run stored them (rows.jsonl), given again: another rule of choosing can be
    scored on the same forward passes without the model."""

    name = "replay"
    model = "replay"

    def __init__(self, rows_path: str) -> None:
        self.scored: dict[str, dict[str, tuple[float, int]]] = {}
        for line in Path(rows_path).read_text().splitlines():
            row = json.loads(line)
            self.scored[row["request"]] = {text: (total, tokens, base) for text, total, tokens, base in row["scored"]}
        self.last = ""

    def score(self, messages: list[dict[str, str]], answers: list[str]) -> list[tuple[float, int]]:
        request = messages[-1]["content"].split("\n")[0].removeprefix("Request: ")
        if request == "N/A":  # the blanked prompt of the request scored just before
            return [(self.scored[self.last][a][2], self.scored[self.last][a][1]) for a in answers]
        self.last = request
        return [self.scored[request][a][:2] for a in answers]

    def close(self) -> None:
        """Nothing to release: the replay reads stored scores, it runs no model."""


def twin_state(network, intents) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        after = apply_intents(network, intents)
    except InputError:
        return None
    arrays = after.arrays()
    return arrays.metric.copy(), arrays.up.copy()


def equivalent(network, expected, predicted) -> bool:
    a, b = twin_state(network, expected), twin_state(network, predicted)
    return a is not None and b is not None and all(np.array_equal(x, y) for x, y in zip(a, b))


def _fill(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\{([A-DM])\}", lambda m: names[m.group(1)], text)


def _routers_and_links(network) -> tuple[list[str], list[tuple[str, str]]]:
    """A network's routers, and the router-to-router links as sorted name pairs (each cable once)."""
    routers = [n.id for n in network.nodes if n.kind == "router"]
    pairs = sorted({tuple(sorted((lk.source, lk.target))) for lk in network.links
                    if lk.source in routers and lk.target in routers})
    return routers, pairs


def dev_cases(nets, seed: int = 7) -> list[dict]:
    """The dev split: the prompt's own worked examples, written with each network's names, each answered with
    itself left out of the prompt. Choices (the scoring rule) are made here, never on the test wordings."""
    rng = random.Random(seed)
    cases = []
    for tag, network in nets.items():
        routers, pairs = _routers_and_links(network)
        for index, (template, answer) in enumerate(BANK):
            (a, b), (c, d) = rng.sample(pairs, 2)
            if "{C}" in template and "{D}" not in template:
                c = rng.choice([x for x in routers if x not in (a, b)])
            names = {"A": a, "B": b, "C": c, "D": d, "M": str(rng.choice([30, 60, 150, 400]))}
            request = _fill(template, names)
            expected, category, setup = _expected(json.loads(_fill(answer, names)), (a, b, c, d), network)
            cases.append({"id": f"dev-{tag}-{index:02d}", "network": tag, "family": f"bank-{index}",
                          "category": category, "request": request, "expected": expected, "setup": setup,
                          "leave_out": index})
    return cases


def _expected(data: dict, names: tuple[str, str, str, str], network) -> tuple[dict, str, list[dict]]:
    """What a case expects from the answer ``data`` written for routers ``names`` (A, B, C, D): the intents it
    parses to (or the action and topic), its category, and the set-up a request to bring a link up needs."""
    a, b, c, d = names
    if data["action"] != "change":
        expected = {k: v for k, v in data.items() if k in ("action", "topic")}
        return expected, {"clarify": "ambiguous", "explain": "explain"}.get(data["action"], data.get("reason")), []
    links = {link_name(x, y): (x, y) for x, y in ((a, b), (c, d))}
    parsed = parse_answer(json.dumps(data), [a, b, c, d], links, network)
    intents = [i.model_dump(exclude_none=True) for i in parsed.intents]
    setup = [{**i, "state": "down"} for i in intents if i.get("state") == "up"]
    return {"action": "change", "intents": intents}, "single" if len(data["intents"]) == 1 else "multi", setup


def dev_word_cases(nets, seed: int = 11, repeats: int = 1, words=DEV_WORDS, prefix: str = "devw") -> list[dict]:
    """The dev split of own wordings (assistant_requests.DEV_WORDS, none a test or prompt wording): names spelled
    as the test spells them (id, country, city, a typo), so candidate writing and when to trust the model are
    chosen on wordings the prompt has not seen, without the test's."""
    overlap = {w.lower() for _, w, _ in words} & (test_wordings() | {b[0].lower() for b in BANK})
    if overlap:
        raise SystemExit(f"dev wordings also test or prompt wordings: {sorted(overlap)}")
    from netpilot.assistant.names import CITIES

    rng = random.Random(seed)
    cases = []
    for tag, network in nets.items():
        _, pairs = _routers_and_links(network)
        for family, template, answer in words:
            for _ in range(repeats):
                (a, b), (c, d) = rng.sample(pairs, 2)
                a, b = (a, b) if rng.random() < 0.5 else (b, a)
                metric = rng.choice(sorted(NUMBER_WORDS))
                names = {"A": a, "B": b, "C": c, "D": d, "M": str(metric)}
                spelled = {k: (rng.choice(spellings(network, v)) if k in "ABCD" else v) for k, v in names.items()}
                request = _fill(template, spelled).replace("{W}", NUMBER_WORDS[metric]).replace(
                    "{Acity}", rng.choice(list(CITIES)).title())
                expected, category, setup = _expected(json.loads(_fill(answer, names)), (a, b, c, d), network)
                cases.append({"id": f"{prefix}-{tag}-{len(cases):03d}", "network": tag, "family": family,
                              "category": category, "request": request, "expected": expected, "setup": setup})
    return cases


def evaluate(backend, label: str, limit: int | None, split: str = "test", rule: str = RULE,
             margin: float | None = TRUST_MARGIN) -> dict:
    nets = networks()
    cases = (json.loads(REQUESTS.read_text()) if split == "test" else dev_cases(nets) if split == "dev"
             else dev_word_cases(nets) if split == "dev-words" else dev_word_cases(nets, 13, 2, DEV_HELD, "held"))
    if limit:
        cases = cases[::max(1, len(cases) // limit)][:limit]
    if isinstance(backend, Replay):
        cases = [c for c in cases if c["request"] in backend.scored]
    assistant = Assistant(backend, rule=rule, trust_margin=margin)
    # A policy that would auto-approve every kind: the assistant's proposals must still wait for a person.
    store = ChangeStore(":memory:", Policy(auto_approve=["set_link_state", "set_metric", "drain_node"]))
    rows = []
    progress = OUT / f"assistant_{label}_{split}.rows.jsonl"
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("")
    try:
        for i, case in enumerate(cases):
            twin = nets[case["network"]]
            if case["setup"]:
                twin = apply_intents(twin, IntentList.model_validate(case["setup"]).root)
            user = PEOPLE[i % len(PEOPLE)]
            started = time.perf_counter()
            seen = assistant.interpret(case["request"], twin, leave_out=case.get("leave_out"))
            model_s = time.perf_counter() - started
            reply = assistant.respond(seen, user, Observations(twin), store=store)
            total_s = time.perf_counter() - started
            expected = case["expected"]
            action = ACTION_OF[reply.kind]
            row = {"id": case["id"], "network": case["network"], "category": case["category"],
                   "family": case["family"], "request": case["request"], "expected": expected["action"],
                   "action": action, "schema_valid": seen.error is None or seen.error.startswith("backend"),
                   "backend_error": seen.error if seen.error and seen.error.startswith("backend") else None,
                   "raw": seen.completion.text if seen.completion else None, "model_s": model_s,
                   "total_s": total_s, "state": reply.state, "change_id": reply.change_id,
                   "scored": list(seen.completion.scored) if seen.completion else []}
            node_ids = set(twin.node_ids())
            predicted = IntentList.model_validate(reply.intents).root if reply.intents else []
            row["invented"] = sum(1 for it in reply.intents for key in ("node", "source", "target")
                                  if key in it and it[key] not in node_ids)
            if expected["action"] == "change":
                wanted = IntentList.model_validate(expected["intents"]).root
                row["correct"] = action == "change" and equivalent(twin, wanted, predicted)
                row["restatement_differs"] = action == "change" and restate(predicted, twin) != restate(wanted,
                                                                                                          twin)
            elif expected["action"] == "explain":
                row["correct"] = action == "explain" and seen.answer is not None and \
                    seen.answer.topic == expected["topic"]
                row["restatement_differs"] = action == "change"
            else:
                row["correct"] = action == expected["action"]
                row["restatement_differs"] = action == "change"
            rows.append(row)
            with progress.open("a") as out:  # kept as it goes: a long run stopped early still has its rows
                out.write(json.dumps(row, default=float) + "\n")
            if i % 20 == 0:
                console.print(f"  {label} {i + 1}/{len(cases)} {case['request']!r} -> {action} "
                              f"({'ok' if row['correct'] else 'wrong'}, {model_s:.2f} s)")
    finally:
        backend.close()
    changes = store.list()
    return score(rows, changes, label)


def score(rows: list[dict], changes, label: str) -> dict:
    def share(part: list[dict], test) -> float:
        return sum(1 for r in part if test(r)) / len(part) if part else float("nan")

    single = [r for r in rows if r["category"] == "single"]
    multi = [r for r in rows if r["category"] == "multi"]
    wrong_proposals = [r for r in rows if r["action"] == "change" and not r["correct"]]
    caught_by_verification = [r for r in wrong_proposals if r["state"] == "rejected"]
    caught = [r for r in wrong_proposals if r["state"] == "rejected" or r["restatement_differs"]]
    wrong = [r for r in rows if not r["correct"]]
    change_expected = [r for r in rows if r["expected"] == "change"]
    clarify_pred = [r for r in rows if r["action"] == "clarify"]
    clarify_true = [r for r in rows if r["expected"] == "clarify"]
    model_s = sorted(r["model_s"] for r in rows)
    figures = {
        "backend": label, "requests": len(rows),
        "schema_valid": share(rows, lambda r: r["schema_valid"]),
        "backend_errors": sum(1 for r in rows if r["backend_error"]),
        "invented_names": sum(r["invented"] for r in rows),
        "twin_equivalent_single": share(single, lambda r: r["correct"]),
        "twin_equivalent_multi": share(multi, lambda r: r["correct"]),
        "correct_by_category": {c: share([r for r in rows if r["category"] == c], lambda r: r["correct"])
                                for c in sorted({r["category"] for r in rows})},
        "correct_by_network": {n: share([r for r in rows if r["network"] == n], lambda r: r["correct"])
                               for n in sorted({r["network"] for r in rows})},
        "correct_all": share(rows, lambda r: r["correct"]),
        "wrong_proposals": len(wrong_proposals),
        "wrong_proposals_refused_by_verification": len(caught_by_verification),
        "wrong_proposals_refused_or_restatement_differs": share(wrong_proposals, lambda r: r in caught),
        "change_requests_turned_into_question": share(change_expected, lambda r: r["action"] == "clarify"),
        "wrong_but_safe": share(wrong, lambda r: r["action"] != "change" or r["state"] == "rejected"),
        "clarify_precision": share(clarify_pred, lambda r: r["expected"] == "clarify"),
        "clarify_recall": share(clarify_true, lambda r: r["action"] == "clarify"),
        "proposals": len(changes),
        "proposals_without_person": sum(1 for c in changes if c.proposer not in PEOPLE),
        "proposals_approved_by_policy": sum(1 for c in changes if c.approver == "policy"),
        "model_p50_s": statistics.median(model_s) if model_s else float("nan"),
        "model_p99_s": model_s[min(len(model_s) - 1, int(0.99 * len(model_s)))] if model_s else float("nan"),
    }
    results[label] = {"figures": figures, "rows": rows}
    console.print_json(json.dumps(figures, default=float))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("local", "nearest", "openai"), action="append")
    parser.add_argument("--url")
    parser.add_argument("--model")
    parser.add_argument("--key", default="none")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--split", choices=("test", "dev", "dev-words", "dev-held"), default="test",
                        help="test: the evaluation's requests; dev: the prompt's examples, each left out in turn; "
                             "dev-words: the dev split's own wordings (DEV_WORDS); dev-held: more, held out (DEV_HELD)")
    parser.add_argument("--replay", help="rows.jsonl of a local run: its scores, chosen again by --rule")
    parser.add_argument("--margin", type=lambda v: None if v == "none" else float(v), default=TRUST_MARGIN,
                        help="the model's choice only when more likely than code's answer by this (none: always)")
    parser.add_argument("--label", help="added to the backend's name in the results and the rows file")
    parser.add_argument("--rule", choices=RULES, default=RULE, help="how the local model's scores choose")
    args = parser.parse_args()
    chosen = args.backend or ["nearest", "local"]

    def section(name: str):
        def go() -> None:
            if name == "local" and args.replay:
                backend = Replay(args.replay)
            elif name == "local":
                # The shared machine ran a request's scoring past the interactive 120 s under a load of 12.
                backend = LocalBackend(timeout_s=900.0)
            elif name == "openai":
                backend = OpenAIBackend(base_url=args.url, model=args.model, api_key=args.key)
            else:
                backend = NearestExample()
            label = f"local-{args.rule}-replayed" if isinstance(backend, Replay) else name
            label = f"{label}-{args.label}" if args.label else label
            evaluate(backend, label, args.limit, args.split, args.rule, args.margin)
        return go

    run({"test": "assistant", "dev": "assistant_dev", "dev-words": "assistant_dev_words",
         "dev-held": "assistant_dev_held"}[args.split],
        {name: section(name) for name in ("nearest", "local", "openai")}, chosen, results)


if __name__ == "__main__":
    main()
