"""Every staged topology and traffic file imports, with counts checked against the files themselves."""

import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from netpilot.model import load_network, save_network
from netpilot.model.formats import (
    attach_demands,
    import_demands,
    import_network,
    load_paths,
    read_demand_npz,
    read_graphml,
    read_hist,
    read_sndlib_series,
)

REPETITA = "repetita"


def _repetita_counts(graph: Path) -> tuple[int, int, int]:
    lines = [ln.split() for ln in graph.read_text().splitlines() if ln.strip()]
    n_nodes = int(lines[0][1])
    start = next(i for i, ln in enumerate(lines) if ln[0] == "EDGES") + 2  # after the column header
    edges = lines[start:]
    self_loops = sum(1 for ln in edges if ln[1] == ln[2])
    return n_nodes, len(edges), self_loops


def _repetita_graphs(te_data):
    return sorted((te_data / REPETITA).rglob("*.graph"))


def test_every_repetita_topology_and_matrix(te_data):
    graphs = _repetita_graphs(te_data)
    assert len(graphs) == 14
    for graph in graphs:
        n_nodes, n_edges, self_loops = _repetita_counts(graph)
        network = import_network(graph)
        assert len(network.nodes) == n_nodes, graph.name
        assert len(network.links) == n_edges - self_loops, graph.name
        for demands_file in sorted(graph.parent.glob(graph.stem + ".*.demands")):
            demands = import_demands(demands_file, network)
            declared = int(demands_file.read_text().split()[1])
            assert len(demands) == declared, demands_file.name
            total_kbps = sum(float(ln.split()[3]) for ln in demands_file.read_text().splitlines()
                             if ln.startswith("demand_"))
            assert sum(d.volume for d in demands) == pytest.approx(total_kbps / 1000)


def test_repetita_units_and_self_loops(te_data):
    abilene = import_network(te_data / REPETITA / "2016TopologyZooUCL_inverseCapacity" / "Abilene.graph")
    first = abilene.links[0]
    # edge_0 0 1 1 9920000 1531: kbit/s and microseconds become Mbit/s and ms.
    raw = (te_data / REPETITA / "2016TopologyZooUCL_inverseCapacity" / "Abilene.graph").read_text().split("\n")
    edge0 = next(ln for ln in raw if ln.startswith("edge_0 ")).split()
    assert first.capacity == pytest.approx(float(edge0[4]) / 1000)
    assert first.latency_ms == pytest.approx(float(edge0[5]) / 1000)
    assert first.metric == int(edge0[3])
    interoute = import_network(te_data / REPETITA / "2016TopologyZooUCL_inverseCapacity" / "Interoute.graph")
    assert any("self-loop" in note for note in interoute.notes)


@pytest.mark.parametrize("name", ["B4", "UsCarrier", "Kdl", "ASN2k"])
def test_teal_topologies(te_data, name):
    path = te_data / "teal" / "topologies" / f"{name}.json"
    raw = json.loads(path.read_text())
    network = import_network(path)
    assert len(network.nodes) == len(raw["nodes"])
    assert len(network.links) == len(raw["links"])
    assert sum(lk.capacity for lk in network.links) == pytest.approx(sum(lk["capacity"] for lk in raw["links"]))


def test_teal_matrices_pickle_matches_derived_npy_and_paths(te_data):
    network = import_network(te_data / "teal" / "topologies" / "B4.json")
    derived = np.load(te_data / "teal" / "derived" / "B4_real_tms_36x12x12.npy")
    for t in (0, 17, 35):
        series = import_demands(te_data / "teal" / "traffic-matrices" / "real" /
                                f"B4.json_real_{t}_1.0_traffic-matrix.pkl", network)
        assert series.volume.shape == (1, 12, 12)
        assert np.array_equal(series.volume[0], derived[t])
        assert len(series.demands(0)) == 132
    stacked = import_demands(te_data / "teal" / "derived" / "B4_real_tms_36x12x12.npy", network)
    assert len(stacked) == 36
    paths = load_paths(te_data / "teal" / "paths" / "B4.json-4-paths_edge-disjoint-True_dist-metric-min-hop-dict.pkl",
                       network)
    assert len(paths) == 132
    links = {(lk.source, lk.target) for lk in network.links}
    for (s, t), candidates in paths.items():
        assert 2 <= len(candidates) <= 4
        for path in candidates:
            assert path[0] == s and path[-1] == t
            assert all((a, b) in links for a, b in itertools.pairwise(path))


def test_refuses_pickles_that_are_not_plain_arrays(tmp_path, te_data):
    import subprocess  # noqa: F401 - the class the malicious pickle would run

    network = import_network(te_data / "teal" / "topologies" / "B4.json")
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Path("/")))
    from netpilot.errors import InputError

    with pytest.raises(InputError, match="refusing to load"):
        import_demands(evil, network)


@pytest.mark.parametrize(("folder", "split", "k"), [
    ("GEANT", "test", 7), ("GEANT", "train", 5), ("Facebook_pod_a", "test", 5), ("Facebook_pod_a", "test", 6),
    ("Facebook_pod_b", "test", 5), ("Facebook_pod_b", "test", 6),
])
def test_figret_histories(te_data, folder, split, k):
    base = te_data / "figret" / folder
    unit = "bit/s" if folder == "GEANT" else "Mbit/s"
    network = import_network(base / f"{folder}.json", unit=unit)
    hist = base / split / f"{k}.hist"
    series = read_hist(hist, network.node_ids(), unit=unit)
    lines = sum(1 for ln in hist.read_text().splitlines() if ln.strip())
    assert len(series) == lines
    assert series.optimal_mlu is not None and len(series.optimal_mlu) == lines
    first = np.array(hist.read_text().split("\n", 1)[0].split(), dtype=float)
    scale = 1e-6 if unit == "bit/s" else 1.0
    assert np.allclose(series.volume[0].ravel(), first * scale)
    tunnels = load_paths(base / "tunnels.txt", network)
    n = len(network.nodes)
    assert len(tunnels) == n * (n - 1)


def test_figret_geant_capacities_in_mbps(te_data):
    network = import_network(te_data / "figret" / "GEANT" / "GEANT.json", unit="bit/s")
    assert sorted({lk.capacity for lk in network.links}) == [155.0, 2400.0, 10000.0]


def test_sndlib_topologies(te_data):
    for name, nodes, links in (("abilene", 12, 15), ("geant", 22, 36), ("germany50", 50, 88)):
        network = import_network(te_data / "sndlib" / "topologies" / f"{name}.xml")
        assert (len(network.nodes), len(network.links)) == (nodes, 2 * links)
        assert all(n.location is not None for n in network.nodes)
    abilene = import_network(te_data / "sndlib" / "topologies" / "abilene.xml")
    assert sorted({lk.capacity for lk in abilene.links}) == [2480.0, 9920.0]


@pytest.mark.slow
@pytest.mark.parametrize(("archive", "derived", "count"), [
    ("directed-abilene-zhang-5min-over-6months-ALL.tar.gz", "abilene_sndlib_5min.npz", 4896),
    ("directed-geant-uhlig-15min-over-4months-ALL.tar.gz", "geant_sndlib_15min.npz", 324),
    ("directed-germany50-DFN-aggregated-1day-over-1month.tar.gz", "germany50_sndlib_1day.npz", 28),
])
def test_sndlib_series_match_their_npz(te_data, archive, derived, count):
    series = read_sndlib_series(te_data / "sndlib" / archive)
    npz = read_demand_npz(te_data / "sndlib" / "derived" / derived)
    assert len(series) == count == len(npz)
    assert series.nodes == npz.nodes and series.times == npz.times
    # The .npz holds float32: equal to its precision.
    assert np.allclose(series.volume, npz.volume, rtol=1e-6, atol=1e-3)


def test_sndlib_series_attach_to_topology(te_data):
    network = import_network(te_data / "sndlib" / "topologies" / "germany50.xml")
    series = import_demands(te_data / "sndlib" / "directed-germany50-DFN-aggregated-1day-over-1month.tar.gz", network)
    with_peak = attach_demands(network, series, matrix="peak")
    peak = int(np.argmax(series.volume.sum(axis=(1, 2))))
    assert sum(d.volume for d in with_peak.demands) == pytest.approx(series.volume[peak].sum())


def test_graphml_abilene_capacities_from_labels(zoo_dir):
    network = read_graphml(zoo_dir / "Abilene.graphml")
    assert (len(network.nodes), len(network.links)) == (11, 28)
    assert all(lk.capacity == pytest.approx(9953.28) for lk in network.links)
    new_york_chicago = next(lk for lk in network.links if (lk.source, lk.target) == ("New_York", "Chicago"))
    assert new_york_chicago.latency_ms == pytest.approx(1144.3 / 200, rel=0.01)
    assert network.node("Washington_DC").name == "Washington DC"


def test_graphml_geant_matches_repetita(zoo_dir, te_data):
    zoo = read_graphml(zoo_dir / "Geant2012.graphml")
    repetita = import_network(te_data / REPETITA / "2016TopologyZooUCL_inverseCapacity" / "Geant2012.graph")
    assert (len(zoo.nodes), len(zoo.links)) == (len(repetita.nodes), len(repetita.links)) == (40, 122)
    pairs = {(lk.source, lk.target) for lk in zoo.links}
    rename = {n.id: n.name for n in repetita.nodes}
    assert pairs == {(rename[lk.source], rename[lk.target]) for lk in repetita.links}
    assert any("22 of 61 edges have no speed" in note for note in zoo.notes)
    assert next(lk for lk in zoo.links if (lk.source, lk.target) == ("BG", "MK")).capacity == 155


def test_imported_files_round_trip_through_yaml_and_json(te_data, tmp_path):
    path = te_data / REPETITA / "2016TopologyZooUCL_inverseCapacity" / "Cogentco.graph"
    network = import_network(path)
    network = attach_demands(network, import_demands(path.with_name("Cogentco.0000.demands"), network))
    for suffix in ("yaml", "json"):
        out = tmp_path / f"cogent.{suffix}"
        save_network(network, out)
        assert load_network(out) == network
