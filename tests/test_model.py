import json

import jsonschema
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netpilot.errors import InputError
from netpilot.model import (
    CellSite,
    Demand,
    EdgeSite,
    Link,
    Location,
    Network,
    Router,
    check_network,
    dumps_network,
    from_networkx,
    network_json_schema,
    to_networkx,
)
from netpilot.model.io import network_from_data, parse_document
from netpilot.model.sample import bundled_network_path

ids = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_.:/"),
              min_size=1, max_size=12)
finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
capacities = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)  # an up link carries something
names = st.none() | st.text(max_size=20)
locations = st.none() | st.builds(Location, lat=st.floats(-90, 90), lon=st.floats(-180, 180))


@st.composite
def networks(draw):
    node_ids = draw(st.lists(ids, min_size=2, max_size=8, unique=True))
    nodes = []
    for node_id in node_ids:
        kind = draw(st.sampled_from(["router", "cell_site", "edge_site"]))
        common = {"id": node_id, "name": draw(names), "location": draw(locations)}
        if kind == "router":
            nodes.append(Router(**common))
        elif kind == "cell_site":
            nodes.append(CellSite(**common, prbs=draw(st.integers(1, 1000)),
                                  slices=draw(st.lists(st.sampled_from(["eMBB", "URLLC", "mMTC"]), unique=True))))
        else:
            nodes.append(EdgeSite(**common, gpus=draw(st.integers(0, 64)), gpu_memory_gb=draw(finite)))
    # A ring each way keeps it strongly connected; extra links may be parallel.
    links, keys = [], {}

    def next_key(s, t):
        keys[(s, t)] = keys.get((s, t), -1) + 1
        return keys[(s, t)]

    for a, b in zip(node_ids, node_ids[1:] + node_ids[:1]):
        for s, t in ((a, b), (b, a)):
            links.append(Link(source=s, target=t, capacity=draw(capacities), latency_ms=draw(finite),
                              metric=draw(st.integers(1, 65535)), state=draw(st.sampled_from(["up", "down"])),
                              key=next_key(s, t)))
    for _ in range(draw(st.integers(0, 3))):
        s, t = draw(st.sampled_from(node_ids)), draw(st.sampled_from(node_ids))
        if s != t:
            links.append(Link(source=s, target=t, capacity=draw(capacities), key=next_key(s, t)))
    demands = [Demand(source=s, target=t, volume=draw(finite))
               for s, t in draw(st.lists(st.tuples(st.sampled_from(node_ids), st.sampled_from(node_ids)), max_size=6))
               if s != t]
    return Network(name=draw(st.text(max_size=10)), origin=draw(st.text(max_size=10)),
                   notes=draw(st.lists(st.text(max_size=10), max_size=2)), nodes=nodes, links=links, demands=demands)


@settings(max_examples=150, deadline=None)
@given(networks())
def test_yaml_round_trip_is_exact(network):
    text = dumps_network(network, "yaml")
    again = network_from_data(parse_document(text, "x.yaml"), file="x.yaml", text=text)
    assert again == network
    assert dumps_network(again, "yaml") == text


@settings(max_examples=150, deadline=None)
@given(networks())
def test_json_round_trip_is_exact(network):
    text = dumps_network(network, "json")
    again = network_from_data(json.loads(text), file="x.json", text=text)
    assert again == network
    assert [type(n) for n in again.nodes] == [type(n) for n in network.nodes]


@settings(max_examples=60, deadline=None)
@given(networks())
def test_networkx_round_trip(network):
    graph = to_networkx(network)
    assert graph.number_of_nodes() == len(network.nodes)
    assert graph.number_of_edges() == len(network.links)
    again = from_networkx(graph)
    # NetworkX orders edges by adjacency, so only the link order may differ.
    order = lambda links: sorted(links, key=lambda lk: (lk.source, lk.target, lk.key))  # noqa: E731
    assert order(again.links) == order(network.links)
    assert again.model_copy(update={"links": network.links}) == network


def test_from_undirected_networkx_makes_both_directions():
    graph = nx.Graph()
    graph.add_edge("a", "b", capacity=100.0, latency_ms=2.0)
    network = from_networkx(graph)
    assert {(lk.source, lk.target) for lk in network.links} == {("a", "b"), ("b", "a")}
    assert all(lk.capacity == 100.0 and lk.latency_ms == 2.0 for lk in network.links)


def test_published_schema_is_current_and_accepts_the_sample(tmp_path):
    from importlib import resources

    published = json.loads(resources.files("netpilot.data").joinpath("network.schema.json").read_text())
    assert published == network_json_schema(), "run `make schema` to refresh the published schema"
    sample = parse_document(bundled_network_path().read_text(), "sample.yaml")
    jsonschema.validate(sample, published)
    bad = {**sample, "links": [{**sample["links"][0], "capacity": -1}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, published)


def test_node_without_kind_is_a_router_and_kinds_survive_defaults():
    network = network_from_data({"nodes": [{"id": "a"}, {"id": "b", "kind": "cell_site"}],
                                 "links": [{"source": "a", "target": "b", "capacity": 1},
                                           {"source": "b", "target": "a", "capacity": 1}]})
    assert isinstance(network.nodes[0], Router)
    assert isinstance(network.nodes[1], CellSite) and network.nodes[1].prbs == 273
    assert "kind: cell_site" in dumps_network(network)


def test_arrays_match_the_model():
    network = network_from_data(parse_document(bundled_network_path().read_text(), "s.yaml"))
    arrays = network.arrays()
    assert arrays.n_nodes == len(network.nodes) and arrays.n_links == len(network.links)
    link = network.links[7]
    assert arrays.node_ids[arrays.src[7]] == link.source and arrays.capacity[7] == link.capacity
    assert arrays.demand_volume.sum() == pytest.approx(sum(d.volume for d in network.demands))


def test_demand_arrays_are_read_on_first_use_and_survive_a_replace():
    """The demand's arrays are built when first read (the routing loops do not read them), from the demands
    the network had when its arrays were made, and a copy with other link states keeps them."""
    import dataclasses

    network = network_from_data(parse_document(bundled_network_path().read_text(), "s.yaml"))
    arrays = network.arrays()
    assert "_demand_arrays" not in arrays.__dict__
    first = network.demands[0]
    network.demands.append(first.model_copy(update={"volume": 5.0}))  # after the arrays were made: not in them
    index = arrays.index
    assert arrays.demand_src.tolist() == [index[d.source] for d in network.demands[:-1]]
    assert arrays.demand_dst.tolist() == [index[d.target] for d in network.demands[:-1]]
    assert arrays.demand_volume.tolist() == [d.volume for d in network.demands[:-1]]
    down = dataclasses.replace(arrays, up=np.zeros(arrays.n_links, dtype=bool))
    pairs, volume = down.demand_pairs()
    expected_pairs, expected_volume = arrays.demand_pairs()
    assert np.array_equal(pairs, expected_pairs) and np.array_equal(volume, expected_volume)


def test_check_network_names_each_problem():
    network = Network(nodes=[Router(id="a"), Router(id="a"), Router(id="b")],
                      links=[Link(source="a", target="zz", capacity=1), Link(source="b", target="b", capacity=1)],
                      demands=[Demand(source="a", target="q", volume=1)])
    fields = {p.field for p in check_network(network)}
    assert fields == {"nodes[1].id", "links[0].target", "links[1]", "demands[0].target"}


def test_validation_errors_carry_line_numbers():
    text = "nodes:\n- {id: a}\n- {id: b}\nlinks:\n- {source: a, target: b, capacity: 1}\n" \
           "- {source: b, target: a, capacity: -3}\n"
    with pytest.raises(InputError) as info:
        network_from_data(parse_document(text, "n.yaml"), file="n.yaml", text=text)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.field) == ("n.yaml", 6, "links[1].capacity")
    assert "greater than or equal to 0" in problem.message
