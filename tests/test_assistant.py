"""The operator's assistant: names found by code, the per-request schema, the change pipeline's guarantees (the
person who typed proposes, never auto-approved, model and prompt stored), read-only tools, the OpenAI-compatible
backend's fallbacks against a real HTTP endpoint, and the local model loaded from its GGUF for real."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from netpilot.assistant.backends import BackendError, Completion, LocalBackend, OpenAIBackend
from netpilot.assistant.candidates import Candidate, candidates, choose, prefer_code, same_answer
from netpilot.assistant.core import Assistant
from netpilot.assistant.examples import BANK, mask, nearest
from netpilot.assistant.names import NameIndex, typo_distance
from netpilot.assistant.schema import AnswerError, answer_schema, parse_answer
from netpilot.assistant.tools import ChangeEntry, Observations, Tools, plan
from netpilot.assistant.wording import canonical, metric_numbers, number_words
from netpilot.change.intents import IntentList, apply_intents
from netpilot.change.workflow import ChangeStore, Policy, WorkflowError
from netpilot.errors import InputError
from netpilot.model.io import load_network
from netpilot.model.sample import bundled_network_path

ROOT = Path(__file__).resolve().parents[1]
ALL_KINDS = ["set_link_state", "set_metric", "drain_node"]


@pytest.fixture(scope="module")
def network():
    return load_network(bundled_network_path())


class Scripted:
    """A backend that answers with fixed text: for the pipeline's guarantees, which hold whatever a model says
    (the real model is tested below)."""

    name = "scripted"

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[list, dict]] = []

    def complete(self, messages, schema) -> Completion:
        self.seen.append((messages, schema))
        return Completion(self.answers.pop(0), "scripted", "fixed", 0.0)

    def close(self) -> None:
        """Nothing to release: a test double holds no model or connection."""


# --- names and schema ---------------------------------------------------------------------------------------------

def test_names_from_codes_countries_cities_and_typos(network):
    index = NameIndex(network)

    def nodes(text):
        return [m.node for m in index.mentions(text)]

    assert nodes("drain Frankfurt for maintenance tonight") == ["DE"]
    assert nodes("why is DE–AT hot?") == ["DE", "AT"]
    assert nodes("shut Germnay to Austira") == ["DE", "AT"]
    assert nodes("take the DE-edge uplink down") == ["DE-edge"]
    assert nodes("UK cell 2 towards London") == ["UK-cell2", "UK"]
    # Two-letter codes count only written as codes: "it" and "at" are words.
    assert nodes("is it at the limit?") == []
    assert typo_distance("lonodn", "london") == 1 and typo_distance("paris", "berlin") > 2


def test_names_of_several_words_with_a_typo_demonyms_and_local_city_names(network, shared_data):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import assistant_requests
    finally:
        sys.path.remove(str(ROOT / "bench"))
    abilene = NameIndex(assistant_requests.networks()["abilene"])
    index = NameIndex(network)

    def nodes(ix, text):
        return [m.node for m in ix.mentions(text)]

    # A typo inside an id or name of several words: one edit, the words together.
    assert nodes(abilene, "forecast Washington to 0_Nwe_York") == ["2_Washington_DC", "0_New_York"]
    assert nodes(abilene, "between Sunynvale and 5_Lso_Angeles") == ["4_Sunnyvale", "5_Los_Angeles"]
    assert nodes(abilene, "drain Kansas Ctiy") == ["7_Kansas_City"]
    # ... but not a different name of as many words.
    assert nodes(abilene, "drain Kansas State") == []
    assert nodes(abilene, "NYC to Chicago") == ["0_New_York", "1_Chicago"]
    assert nodes(index, "drain the German router") == ["DE"]
    assert nodes(index, "the Polish-Czech link") == ["PL", "CZ"]
    assert nodes(index, "Wien to Praha") == ["AT", "CZ"]
    assert nodes(index, "is it at the limit?") == []


def test_numbers_that_can_be_metrics_leave_out_units_times_and_read_words():
    assert metric_numbers("set the isis metric between BE and IE to thirty") == [30]
    assert metric_numbers("two hundred and fifty on DE-AT") == [250]
    assert number_words("drain the busy one") == "drain the busy one"
    # Capacities, shares, times and dates are no metric; the number after a metric word comes first.
    assert metric_numbers("the 10 Gbit/s link ES-CH should get metric 200") == [200]
    assert metric_numbers("AT-GR runs at 95% utilization, bump its cost to 90") == [90]
    assert metric_numbers("the 100G span DE-AT, cost 40") == [40]
    assert metric_numbers("cost out IE for the maintenance at 23:00 or 2am") == []
    assert metric_numbers("on 2026-12-06 set DE-AT to 1,000") == [1000]
    assert metric_numbers("3_Seattle-6_Denver 40") == [40]
    assert metric_numbers("DE-AT 75, maybe 20") == [75, 20]


def test_synonyms_are_read_in_the_examples_words_so_the_nearest_example_is_the_right_kind():
    assert canonical("kill the A-B circuit") == "shut the A B circuit"
    assert canonical("A/B is flapping, switch it off") == "A B is flapping, disable it"
    assert canonical("un-shut between A and B") == "enable again A B"
    assert canonical("take the MG span A <-> B out of service") == "take the MG span A B down"
    assert canonical("lower the A to B weight to M") == "set the A B cost to M"
    assert canonical("offload A before the upgrade") == "drain A before the upgrade"

    def kind(masked: str, names: int) -> str:
        answer = BANK[nearest(canonical(masked), 1, names)[0]][1]
        data = json.loads(answer.replace("{M}", "1"))
        return data["intents"][0].get("state", data["intents"][0]["intent"]) if data["action"] == "change" \
            else data.get("topic", data["action"])

    assert kind("kill the A-B circuit", 2) == "down"
    assert kind("A to B is fixed, switch it back on", 2) == "up"
    assert kind("the M Gbit/s link A-B should get metric M", 2) == "set_metric"
    assert kind("A to B should cost M", 2) == "set_metric"
    assert kind("steer all flows away from A", 1) == "drain_node"
    assert kind("any active alarms?", 0) == "incidents"
    assert mask("drain DE now", [(6, 8)]) == "drain A now"


def test_code_keeps_its_answer_unless_the_model_is_clearly_surer():
    options = [Candidate("change", '{"action":"change","intents":[{"intent":"drain_node","node":"DE"}]}'),
               Candidate("clarify", '{"action":"clarify"}'),
               Candidate("refuse", '{"action":"refuse","reason":"unsafe"}')]
    code = '{"action": "change", "intents": [{"intent": "drain_node", "node": "DE"}]}'
    assert same_answer(options[0].text, code) and not same_answer(options[1].text, code)
    assert prefer_code(options, [-2.0, -1.5, -9.0], 1, code, margin=1.0) == 0  # 0.5 nats: code's stands
    assert prefer_code(options, [-2.0, -0.5, -9.0], 1, code, margin=1.0) == 1  # 1.5 nats: the model's
    assert prefer_code(options, [-2.0, -1.5, -9.0], 1, None, margin=1.0) == 1  # code has no answer
    assert prefer_code(options, [-2.0, -1.5, -9.0], 1, '{"action":"explain","topic":"incidents"}', 1.0) == 1


def test_schema_names_only_the_twins_nodes_and_links(network):
    schema = answer_schema(["DE", "AT"], ["DE - AT"])
    text = json.dumps(schema)
    assert '"DE - AT"' in text and "set_policies" not in text and "apply_metrics" not in text
    links = {"DE - AT": ("DE", "AT")}
    answer = parse_answer('{"action":"change","intents":[{"intent":"set_metric","link":"DE - AT","metric":40}]}',
                          ["DE", "AT"], links, network)
    assert [(i.source, i.target, i.metric) for i in answer.intents] == [("DE", "AT", 40), ("AT", "DE", 40)]
    with pytest.raises(AnswerError, match="node"):
        parse_answer('{"action":"change","intents":[{"intent":"drain_node","node":"Atlantis"}]}', ["DE"], links)
    with pytest.raises(AnswerError, match="link"):
        parse_answer('{"action":"change","intents":[{"intent":"set_link_state","link":"DE - FR","state":"down"}]}',
                     ["DE"], links)
    with pytest.raises(AnswerError, match="metric"):
        parse_answer('{"action":"change","intents":[{"intent":"set_metric","link":"DE - AT","metric":0}]}',
                     ["DE"], links)
    with pytest.raises(AnswerError, match="1 to 5"):
        parse_answer(json.dumps({"action": "change", "intents": [{"intent": "drain_node", "node": "DE"}] * 6}),
                     ["DE"], links)


def test_the_prompt_gives_the_model_only_the_names_the_request_mentions(network):
    backend = Scripted('{"action":"clarify"}', '{"action":"clarify"}')
    assistant = Assistant(backend)
    reply = assistant.ask("raise the metric on BG-GR to 40", "alice", Observations(network))
    schema = json.dumps(backend.seen[0][1])
    assert '"BG - GR"' in schema and '"DE"' not in schema
    assert reply.kind == "question" and "BG" in reply.text
    # No name at all: no change is possible, the model may only ask, refuse or explain.
    assistant.ask("drain the busy router", "alice", Observations(network))
    assert '"change"' not in json.dumps(backend.seen[1][1])


# --- the pipeline -------------------------------------------------------------------------------------------------

def test_a_proposal_is_the_persons_waits_for_a_second_person_and_keeps_the_models_answer(network):
    raw = '{"action":"change","intents":[{"intent":"set_metric","link":"IT - CH","metric":30}]}'
    store = ChangeStore(":memory:", Policy(auto_approve=ALL_KINDS))
    reply = Assistant(Scripted(raw)).ask("set IT-CH to 30", "carol", Observations(network), store=store,
                                         max_utilisation=2.0)
    assert reply.kind == "proposal" and reply.verification["ok"]
    assert reply.restatement == ["Set the IGP metric of the link IT-CH to 30 in both directions (it is "
                                 f"{network.links[[lk.id for lk in network.links].index('IT->CH')].metric} now)."]
    assert {d["link"] for d in reply.diff} == {"IT->CH", "CH->IT"}
    change = store.get(reply.change_id)
    # The policy would auto-approve set_metric; an assistant's change still waits for a person.
    assert change.state == "verified" and change.proposer == "carol" and change.approver is None
    evidence = store.annotations(reply.change_id)["assistant"]
    assert evidence["raw"] == raw and evidence["model"] == "scripted" and len(evidence["prompt_sha256"]) == 64
    with pytest.raises(WorkflowError, match="two-person"):
        store.approve(reply.change_id, "carol")
    store.approve(reply.change_id, "dave")
    assert store.verify_audit()[0]


def test_machines_cannot_propose_through_the_assistant(network):
    for who in ("policy", "autopilot", " "):
        with pytest.raises(InputError, match="person"):
            Assistant(Scripted("{}")).ask("drain DE", who, Observations(network))


def test_a_harmful_translation_is_refused_by_verification(network):
    store = ChangeStore(":memory:")
    # The only link of a cell site down: the cell is cut off.
    raw = '{"action":"change","intents":[{"intent":"set_link_state","link":"DE-cell1 - DE","state":"down"}]}'
    reply = Assistant(Scripted(raw)).ask("take DE cell 1 offline", "alice", Observations(network), store=store)
    assert reply.kind == "proposal" and not reply.verification["ok"]
    assert store.get(reply.change_id).state == "rejected"
    assert "REFUSED" in reply.text


def test_an_answer_outside_the_schema_becomes_a_question(network):
    reply = Assistant(Scripted('{"action":"change","intents":[{"intent":"drain_node","node":"XX"}]}')).ask(
        "drain DE", "alice", Observations(network), store=ChangeStore(":memory:"))
    assert reply.kind == "question" and reply.change_id is None


def test_refusals_and_explanations(network):
    assistant = Assistant(Scripted('{"action":"refuse","reason":"unsafe"}',
                                   '{"action":"explain","topic":"failure_what_if","link":"DE - AT"}'))
    assert assistant.ask("shut everything", "alice", Observations(network)).kind == "refusal"
    reply = assistant.ask("what if DE-AT breaks", "alice", Observations(network))
    assert reply.kind == "explanation" and reply.text.startswith("If DE-AT failed")
    assert [s["tool"] for s in reply.steps] == ["failure_what_if", "link_load"]


# --- candidates: code writes the answers, a model scores them ----------------------------------------------------

def test_candidates_use_only_the_requests_names_and_numbers_and_all_parse(network):
    index = NameIndex(network)
    request = "raise DE-AT to 40, then drain IT"
    mentions = index.mentions(request)
    nodes = list(dict.fromkeys(m.node for m in mentions))
    links = {"DE - AT": ("DE", "AT")}
    order = {m.node: m.start for m in reversed(mentions)}
    options = candidates(nodes, links, [40], order)
    texts = [o.text for o in options]
    assert len(texts) == len(set(texts))
    assert {o.action for o in options} == {"change", "clarify", "refuse", "explain"}
    for option in options:  # every candidate is a valid answer under the request's own schema
        answer = parse_answer(option.text, nodes, links, network)
        assert answer.action == option.action
        for intent in answer.intents:
            assert {getattr(intent, k, None) for k in ("node", "source", "target")} - {None} <= set(nodes)
            assert getattr(intent, "metric", 40) == 40  # numbers come from the request only
    # Two intents are on objects sharing no node, in the order the request names them.
    assert '{"action":"change","intents":[{"intent":"set_metric","link":"DE - AT","metric":40},' \
           '{"intent":"drain_node","node":"IT"}]}' in texts
    assert not any('"node":"IT"},{' in t for t in texts)
    assert not any('"node":"DE"},{"intent":"set_' in t for t in texts)


def test_choose_sums_an_actions_answers_before_picking_within_it():
    options = [Candidate("change", "a"), Candidate("change", "b"), Candidate("change", "c"),
               Candidate("clarify", "q")]
    # The question alone is likelier than any one change, but less likely than changing at all.
    scored = [(-1.5, 10), (-1.6, 10), (-1.7, 10), (-1.0, 4)]
    assert choose(options, scored, rule="joint") == 0
    assert choose(options, [(-5.0, 10), (-5.0, 10), (-5.0, 10), (-1.0, 4)], rule="joint") == 3
    # Per token: a long change can beat a short question it loses to in total.
    assert choose(options, [(-2.0, 20), (-9.0, 20), (-9.0, 20), (-1.5, 4)], rule="per_token") == 0
    # Calibrated: what the request's words add over the blanked prompt. The question is likelier, but the
    # words made the first change 5 nats likelier and the question less likely.
    blanked = [-7.0, -1.6, -1.7, -0.5]
    assert choose(options, [(-2.0, 10), (-9.0, 10), (-9.0, 10), (-1.0, 4)], rule="calibrated", prior=blanked) == 0
    assert choose(options, [(-2.0, 10), (-9.0, 10), (-9.0, 10), (-1.0, 4)], rule="joint", prior=blanked) == 3
    with pytest.raises(ValueError, match="rule"):
        choose(options, scored, rule="vote")


class Scorer:
    """A backend that scores answers by a fixed preference (the real model is tested below)."""

    name = "scorer"
    model = "scorer"

    def __init__(self, prefer: str) -> None:
        self.prefer = prefer
        self.asked: list[list[str]] = []

    def score(self, messages, answers):
        self.asked.append(answers)
        return [(0.0 if self.prefer in a else -10.0, 10) for a in answers]

    def complete(self, messages, schema):  # a scorer is never asked to write
        raise AssertionError("complete() called on a scoring backend")

    def close(self) -> None:
        """Nothing to release: a test double holds no model or connection."""


def test_a_scored_answer_goes_through_the_same_pipeline(network):
    scorer = Scorer('"drain_node","node":"DE"')
    store = ChangeStore(":memory:", Policy(auto_approve=ALL_KINDS))
    reply = Assistant(scorer).ask("drain Frankfurt for maintenance tonight", "alice", Observations(network),
                                  store=store)
    assert reply.kind == "proposal" and reply.intents == [{"intent": "drain_node", "node": "DE"}]
    assert reply.raw == '{"action":"change","intents":[{"intent":"drain_node","node":"DE"}]}'
    (change,) = store.list()
    assert change.proposer == "alice" and change.approver is None
    # Only names the request mentions were offered.
    assert all('"node":"' not in a or '"node":"DE"' in a for a in scorer.asked[0])
    # Without scoring the backend must write (and this one cannot).
    with pytest.raises(AssertionError, match="complete"):
        Assistant(Scorer("x"), scoring=False).interpret("drain DE", network)


def test_codes_answer_to_a_request_of_two_changes_joins_each_parts_nearest_example(network):
    assistant = Assistant(Scorer("x"))

    def code(request):
        return json.loads(assistant.prepare(request, network).code)

    two = code("offload IT, and after that kill the link DE to AT")
    assert two["intents"] == [{"intent": "drain_node", "node": "IT"},
                              {"intent": "set_link_state", "link": "DE - AT", "state": "down"}]
    # A node named in both parts counts in each; the second part's own number is its metric.
    two = code("give DE-AT a cost of 200 plus re-enable AT to IT")
    assert two["intents"] == [{"intent": "set_metric", "link": "DE - AT", "metric": 200},
                              {"intent": "set_link_state", "link": "AT - IT", "state": "up"}]
    # One change over two names does not divide.
    assert len(code("disable the circuit between DE and AT")["intents"]) == 1
    assert code("drain DE and AT")["intents"] == [{"intent": "drain_node", "node": "DE"},
                                                  {"intent": "drain_node", "node": "AT"}]


class Margin:
    """A scorer whose values (calibrated: the request's words against the blanked request) are set per answer."""

    name = model = "margin"

    def __init__(self, gains: dict[str, float]) -> None:
        self.gains = gains

    def score(self, messages, answers):
        blank = messages[-1]["content"].startswith("Request: N/A")
        return [(-10.0 + (0.0 if blank else next((g for k, g in self.gains.items() if k in a), 0.0)), 10)
                for a in answers]

    def close(self) -> None:
        """Nothing to release: a test double holds no model or connection."""


def test_the_models_choice_needs_a_margin_over_codes_answer(network):
    request = "kill the DE-AT circuit"  # code's answer: the nearest example, a shut link
    down = '"state":"down"'
    small = Margin({down: 1.0, '"action":"clarify"': 1.5})
    assert Assistant(small, rule="calibrated", trust_margin=1.0).interpret(request, network).answer.action == "change"
    assert Assistant(small, rule="calibrated", trust_margin=None).interpret(request, network).answer.action == "clarify"
    large = Margin({down: 1.0, '"action":"clarify"': 2.5})
    assert Assistant(large, rule="calibrated", trust_margin=1.0).interpret(request, network).answer.action == "clarify"
    seen = Assistant(small, rule="calibrated", trust_margin=1.0).interpret(request, network)
    assert [i.model_dump(exclude_none=True)["state"] for i in seen.answer.intents] == ["down"] * len(
        seen.answer.intents)


def test_tools_read_and_never_write(network):
    store = ChangeStore(":memory:")
    store.propose([{"intent": "drain_node", "node": "DE"}], "alice", "maintenance", [])
    before_audit, before_network = store.audit(), network.model_dump()
    entries = tuple(ChangeEntry(c.id, c.state, c.proposer, c.approver, c.why,
                                tuple(i["intent"] for i in c.intents), c.created) for c in store.list())
    tools = Tools(Observations(network, changes=entries,
                               incidents=({"id": "i1", "alarms": ["a"], "causes": [
                                   {"kind": "link_down", "target": "BG--GR", "score": 0.9}]},)))
    texts = [tools.network_state().text, tools.link_load("DE", "AT").text, tools.node_load("DE").text,
             tools.failure_what_if("DE", "AT").text, tools.forecast().text, tools.incidents().text,
             tools.change_log().text]
    assert "link_down on BG--GR (90%)" in texts[5] and "by alice" in texts[6]
    assert store.audit() == before_audit and network.model_dump() == before_network
    assert not [name for name in dir(Tools) if name.startswith(("set", "apply", "propose", "approve", "write"))]
    assert all(len(plan(topic, ("DE", "AT"), "DE")) <= 3 for topic in
               ("link_load", "node_load", "network_state", "incidents", "forecast", "failure_what_if", "change_log"))


# --- evaluation data ----------------------------------------------------------------------------------------------

def test_evaluation_requests_are_many_varied_unseen_and_valid(shared_data):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import assistant_requests
    finally:
        sys.path.remove(str(ROOT / "bench"))
    cases = json.loads(assistant_requests.OUT.read_text())
    nets = assistant_requests.networks()
    assert len(cases) >= 150 and {c["network"] for c in cases} == {"sample", "abilene"}
    assert {"single", "multi", "ambiguous", "unsafe", "out_of_scope", "explain"} <= {c["category"] for c in cases}
    assistant_requests.check_unseen(cases)
    assert not {c["request"].lower() for c in cases} & {b[0].lower() for b in BANK}
    for case in cases:
        twin = nets[case["network"]]
        if case["setup"]:
            twin = apply_intents(twin, IntentList.model_validate(case["setup"]).root)
        if case["expected"]["action"] == "change":
            apply_intents(twin, IntentList.model_validate(case["expected"]["intents"]).root)
    # The dev split's own wordings are neither test nor prompt wordings, and their expected answers apply.
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import assistant as bench_assistant
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for dev in (bench_assistant.dev_word_cases(nets), bench_assistant.dev_word_cases(
            nets, 13, 2, assistant_requests.DEV_HELD, "held")):
        assert not {c["request"].lower() for c in dev} & {c["request"].lower() for c in cases}
        assert {"single", "multi", "ambiguous", "unsafe", "out_of_scope", "explain"} <= {c["category"] for c in dev}
        for case in dev:
            if case["expected"]["action"] == "change":
                twin = nets[case["network"]]
                if case["setup"]:
                    twin = apply_intents(twin, IntentList.model_validate(case["setup"]).root)
                apply_intents(twin, IntentList.model_validate(case["expected"]["intents"]).root)
    # Regenerating gives the same requests (fixed seeds).
    assert assistant_requests.build(nets["sample"], "sample", 29) == [c for c in cases if c["network"] == "sample"]


# --- an OpenAI-compatible endpoint over real HTTP -----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_backend_falls_back_and_remembers_what_the_endpoint_accepts(network):
    pytest.importorskip("openai", reason="the OpenAI client comes with the [llm] extra")
    import uvicorn

    asked: list[str] = []
    endpoint = FastAPI()

    @endpoint.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        mode = (body.get("response_format") or {}).get("type") or ("tool" if body.get("tools") else "text")
        asked.append(mode)
        if mode != "json_object":
            return JSONResponse({"error": {"message": f"{mode} is not supported", "type": "invalid_request"}}, 400)
        answer = {"answer": {"action": "change", "intents": [{"intent": "drain_node", "node": "DE"}]}}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps(answer)}}]}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(endpoint, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        backend = OpenAIBackend(base_url=f"http://127.0.0.1:{port}/v1", model="test-model")
        assistant = Assistant(backend)
        first = assistant.ask("drain Frankfurt", "alice", Observations(network))
        second = assistant.ask("drain Frankfurt", "alice", Observations(network))
        assert first.kind == second.kind == "proposal", first.text
        assert first.intents == [{"intent": "drain_node", "node": "DE"}]
        assert asked == ["json_schema", "json_object", "json_object"] and backend.accepted_mode == "json_object"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- the local model, for real --------------------------------------------------------------------------------------

def _local_model_or_skip():
    pytest.importorskip("llama_cpp", reason="the local model needs the [llm] extra (llama-cpp-python); "
                                            ".ci/run installs it")
    from netpilot.assistant.backends import local_model_path

    try:
        return local_model_path()
    except BackendError as exc:
        pytest.skip(f"{exc}")


@pytest.fixture(scope="module")
def local():
    _local_model_or_skip()
    # Generous: on the shared 2-core machine one request's scoring took up to two minutes under a load of 12;
    # the tests check answers, not speed (bench/assistant.py measures that).
    backend = LocalBackend(timeout_s=900.0)
    yield backend
    backend.close()


def test_the_local_model_answers_within_the_schema(network, local):
    assistant = Assistant(local)
    store = ChangeStore(":memory:", Policy(auto_approve=ALL_KINDS))
    nodes = set(network.node_ids())
    for request in ("drain Frankfurt for maintenance tonight", "set the metric of IT-CH to 30", "tell me a joke"):
        seen = assistant.interpret(request, network)
        assert seen.error is None, seen.error
        assert seen.completion.model.endswith(".gguf")
        reply = assistant.respond(seen, "alice", Observations(network), store=store)
        for intent in reply.intents:
            assert {intent.get(k) for k in ("node", "source", "target")} - {None} <= nodes
    assert all(c.proposer == "alice" and c.approver is None for c in store.list())


def test_the_local_model_scores_every_candidate_and_the_prefix_cache_gives_the_same_scores(network, local):
    assistant = Assistant(local)
    seen = assistant.interpret("set the metric of IT-CH to 30", network)
    assert seen.error is None and seen.completion.mode == "score"
    scored = seen.completion.scored
    assert seen.completion.text in {text for text, *_ in scored}
    assert all(total < 0 and tokens > 0 for _, total, tokens, _ in scored)
    # The calibrated rules also score each answer with the request blanked out.
    calibrated = Assistant(local, rule="calibrated").interpret("set the metric of IT-CH to 30", network)
    assert all(blanked < 0 for *_, blanked in calibrated.completion.scored)
    # The same prompt again reuses the cached prefix; the scores must not move.
    again = local.score(seen.messages, [text for text, *_ in scored[:5]])
    assert [round(t, 3) for t, _ in again] == [round(t, 3) for _, t, _, _ in scored[:5]]


def test_a_crash_of_the_sampler_does_not_take_the_caller_down(network, local):
    local.start()
    # An answer takes seconds here: the kill lands while the sampler works, as a crash of its own would.
    killer = threading.Timer(0.2, os.kill, (local._process.pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(BackendError, match="ended"):
        local.complete([{"role": "user", "content": "Request: drain DE\n" + "Names: DE\n" * 300}],
                       answer_schema(["DE"], []))
    killer.join()
    # The next request starts a new process.
    reply = Assistant(local).ask("drain DE", "alice", Observations(network))
    assert reply.kind in ("proposal", "question", "refusal", "explanation")


def test_netpilot_ask_on_the_command_line_proposes_in_the_askers_name(tmp_path, monkeypatch):
    _local_model_or_skip()
    from typer.testing import CliRunner

    from netpilot.change.identity import cli_identity
    from netpilot.cli import app

    monkeypatch.delenv("NETPILOT_TOKEN", raising=False)
    db = tmp_path / "changes.db"
    me = cli_identity(tmp_path / "changes.db.tokens.json")
    result = CliRunner().invoke(app, ["ask", "drain Frankfurt for maintenance", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    reply = json.loads(result.stdout)
    assert reply["kind"] in ("proposal", "question", "refusal", "explanation") and reply["prompt_sha256"]
    for change in ChangeStore(str(db)).list():
        assert change.proposer == me and change.approver is None
    # A name typed on the command line is checked, not trusted; a machine's name is refused.
    assert CliRunner().invoke(app, ["ask", "drain DE", "--by", "someone-else", "--db", str(db)]).exit_code == 2
    bad = CliRunner().invoke(app, ["ask", "drain DE", "--by", "policy"])
    assert bad.exit_code == 2 and "not a person" in bad.output


def test_api_assistant_route(network):
    _local_model_or_skip()
    from fastapi.testclient import TestClient

    from netpilot.api.app import create_app, make_tokens
    from netpilot.scenarios.live import LiveAutopilot

    live = LiveAutopilot(network, seed=1, policy=Policy(auto_approve=ALL_KINDS))
    live.step()
    tokens = make_tokens({"oscar": "operator", "vera": "viewer"})
    headers = {p.user: {"Authorization": f"Bearer {t}"} for t, p in tokens.items()}
    client = TestClient(create_app(live, tokens))
    assert client.post("/api/assistant", json={"text": "drain DE"}).status_code == 401
    for user in ("oscar", "vera"):
        response = client.post("/api/assistant", json={"text": "drain Frankfurt for maintenance"},
                               headers=headers[user])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["kind"] in ("proposal", "question", "refusal", "explanation")
        if user == "vera":  # a viewer's request is answered, never stored
            assert body["change_id"] is None
    assert all(c.proposer == "oscar" and c.approver is None for c in live.changes.list()
               if c.why.startswith("assistant:"))
