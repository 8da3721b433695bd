"""Intents: what an operator (or the autopilot) wants changed, and the twin as it would be after the change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

from netpilot.errors import InputError
from netpilot.model.network import Link, Network, PathPolicy

MAX_METRIC = 65535


class _Intent(BaseModel):
    # Every text field bounded (a why of megabytes would be stored, hashed and served on every dashboard fetch).
    model_config = ConfigDict(extra="forbid", str_max_length=2000, allow_inf_nan=False)
    why: str | None = Field(default=None, description="The incident, forecast or request behind it.")


class SetLinkState(_Intent):
    """Both directions of the link between ``source`` and ``target`` up or down."""

    intent: Literal["set_link_state"]
    source: str
    target: str
    state: Literal["up", "down"]


class SetMetric(_Intent):
    """The IGP metric of the link ``source`` -> ``target`` (one direction, as on a router interface)."""

    intent: Literal["set_metric"]
    source: str
    target: str
    metric: int = Field(ge=1, le=MAX_METRIC)


class DrainNode(_Intent):
    """Move traffic off a router for maintenance: every link into and out of it at the maximum metric, as OSPF
    max-metric router-lsa or the IS-IS overload bit do. It stays reachable as a last resort."""

    intent: Literal["drain_node"]
    node: str


class ApplyMetrics(_Intent):
    """IGP metrics from the TE engine, by link id ``A->B`` (``A->B#k`` for parallel links)."""

    intent: Literal["apply_metrics"]
    metrics: dict[str, int]


class SetPolicies(_Intent):
    """Explicit paths (SR-TE policies) for the pairs named, replacing their earlier ones; a pair given no paths
    goes back to the IGP. Other pairs' policies stay."""

    intent: Literal["set_policies"]
    policies: list[PathPolicy] = Field(default_factory=list)
    remove: list[tuple[str, str]] = Field(default_factory=list, description="(source, target) pairs back on the IGP.")


class SetSlices(_Intent):
    """Each named cell's PRBs split among its slices: ``shares[i][j]`` of ``cells[i]``'s PRBs to ``slices[j]``
    (a row sums to at most 1). Cells not named keep their split."""

    intent: Literal["set_slices"]
    slices: list[str]
    cells: list[str]
    shares: list[list[float]]


class PlaceInference(_Intent):
    """Where inference runs: per site the GPUs the RAN keeps (``ran_reserved``) and the GPUs powered for AI
    (``gpus_on``), per service the sites its model is loaded at, and per service and cell the share of the cell's
    requests each site serves (``routes[service][cell][site]``; a cell not named is not served)."""

    intent: Literal["place_inference"]
    ran_reserved: dict[str, float]
    gpus_on: dict[str, int]
    loaded: dict[str, list[str]]
    routes: dict[str, dict[str, dict[str, float]]]


Intent = Annotated[Union[SetLinkState, SetMetric, DrainNode, ApplyMetrics, SetPolicies, SetSlices, PlaceInference],
                   Field(discriminator="intent")]


class IntentList(RootModel[list[Intent]]):
    """A file's intents, in the order they apply."""


def load_intents(path: str | Path) -> list[Intent]:
    """Intents from a JSON or YAML file: a list, or an object with ``intents``. Errors name file, line, field."""
    from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

    text = read_text(path)
    data = parse_document(text, path)
    if isinstance(data, dict) and "intents" in data:
        data = data["intents"]
    elif isinstance(data, dict):
        data = [data]
    return list(parse_model(IntentList, data, file=path, locator=LineLocator(text)).root)


def apply_intents(network: Network, intents: list[Intent], *, file: str | Path | None = None) -> Network:
    """The twin after the intents, in order. Refers to nodes and links by id; a missing one is an InputError
    naming the intent. Intents change links and policies only: the twin after them shares the nodes, the
    demands and every link no intent touches with ``network`` (objects that are immutable by convention), which
    are neither copied nor validated again (dumping and validating the whole network took 50 ms of each plan at
    149 routers)."""
    links = list(network.links)
    edited: dict[int, dict] = {}  # position -> the link's fields, for the links an intent changes
    policies: list[dict] | None = None  # as they are, unless an intent sets some
    nodes = {n.id for n in network.nodes}
    where = _intent_locator(file)

    def refuse(message: str, i: int, *keys: str) -> InputError:
        line, shown = where(i, *keys)
        return InputError.at(message, file=file, line=line, field=shown)

    def edit(e: int) -> dict:
        if e not in edited:
            edited[e] = links[e].model_dump(mode="json")
        return edited[e]

    def find(i: int, source: str, target: str) -> list[int]:
        for key, end in (("source", source), ("target", target)):
            if end not in nodes:
                raise refuse(f"no node {end!r} in the network", i, key)
        found = [e for e, lk in enumerate(links) if lk.source == source and lk.target == target]
        if not found:
            raise refuse(f"no link {source}->{target} in the network", i)
        return found

    by_id: dict[str, int] | None = None
    for i, intent in enumerate(intents):
        if isinstance(intent, SetSlices | PlaceInference):
            # The RAN's configuration is not in the network model: its driver (change/ran.py) takes these.
            raise refuse(f"{intent.intent} changes the RAN, not the network: the RAN driver applies it", i,
                         "intent")
        if isinstance(intent, SetLinkState):
            for e in find(i, intent.source, intent.target) + find(i, intent.target, intent.source):
                edit(e)["state"] = intent.state
        elif isinstance(intent, SetMetric):
            for e in find(i, intent.source, intent.target):
                edit(e)["metric"] = intent.metric
        elif isinstance(intent, DrainNode):
            if intent.node not in nodes:
                raise refuse(f"no node {intent.node!r} in the network", i, "node")
            for e, lk in enumerate(links):
                if intent.node in (lk.source, lk.target):
                    edit(e)["metric"] = MAX_METRIC
        elif isinstance(intent, ApplyMetrics):
            by_id = by_id if by_id is not None else {lk.id: e for e, lk in enumerate(links)}
            for link_id, metric in intent.metrics.items():
                if link_id not in by_id:
                    raise refuse(f"no link {link_id!r} in the network", i, "metrics", link_id)
                if not 1 <= int(metric) <= MAX_METRIC:
                    raise refuse(f"metric {metric} outside 1..{MAX_METRIC}", i, "metrics", link_id)
                edit(by_id[link_id])["metric"] = int(metric)
        elif isinstance(intent, SetPolicies):
            named = {(p.source, p.target) for p in intent.policies} | {tuple(ends) for ends in intent.remove}
            current = policies if policies is not None else [p.model_dump(mode="json") for p in network.policies]
            policies = [p for p in current if (p["source"], p["target"]) not in named] + \
                [p.model_dump(mode="json") for p in intent.policies]
    for e, fields in edited.items():
        links[e] = Link.model_validate(fields)
    update: dict = {"links": links, "nodes": list(network.nodes), "demands": list(network.demands),
                    "notes": list(network.notes),
                    "policies": list(network.policies) if policies is None else
                    [PathPolicy.model_validate(p) for p in policies]}
    after = network.model_copy(update=update)
    if any(isinstance(intent, SetPolicies) for intent in intents):
        from netpilot.model.validate import check_policies

        problems = check_policies(after)
        if problems:
            raise refuse(f"set_policies: {problems[0].message} ({problems[0].field})",
                         next(i for i, x in enumerate(intents) if isinstance(x, SetPolicies)), "policies")
    return after


def _intent_locator(file: str | Path | None):
    """``where(i, *keys)`` -> (line, field such as ``intents[2].source``) of the i-th intent of ``file``; the line
    is None when there is no file to read it from."""
    from netpilot.model.io import LineLocator, format_field_path, parse_document, read_text

    prefix: tuple = ()
    locator = None
    if file is not None and Path(file).exists():
        try:
            text = read_text(file)
            data = parse_document(text, file)
        except InputError:
            data = None
        else:
            locator = LineLocator(text)
        if isinstance(data, dict):
            prefix = ("intents",) if "intents" in data else None

    def where(i: int, *keys: str) -> tuple[int | None, str]:
        path = keys if prefix is None else (*prefix, i, *keys)  # a file of one intent has no index
        if locator is None:
            return None, format_field_path(list(path)) or f"[{i}]"
        line, shown = locator.locate(path)
        return line, shown or format_field_path(list(path))

    return where
