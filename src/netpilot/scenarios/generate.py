"""Scenario generation: from any network and a seed, timed faults of every kind in and around the busy hours on
targets weighted by the load they carry, with the demand scaled to a stated load (the LP optimum's MLU at the
peak hour)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import connected_components

from netpilot.errors import InputError
from netpilot.model.faults import Fault
from netpilot.model.network import Network
from netpilot.model.routing import lightest_graph
from netpilot.model.twin import DEFAULT_START, Twin
from netpilot.scenarios.scenario import GeneratedFault, GenerationInfo, Scenario, scenario_network

#: Above this many (source, link) flow variables the peak-hour optimum comes from the path LP over k = 4 paths
#: (an upper bound on the optimum, within a few per cent on these networks) instead of the edge formulation.
EDGE_LP_LIMIT = 400_000
LINK_KINDS = ("link_down", "link_degrade", "link_flap", "misconfig")
#: The kinds generation draws: those with a target of their own (a link or a node) and parameters it sets.
GENERATED_KINDS = (*LINK_KINDS, "router_down", "cell_outage", "flash_crowd", "edge_failure")
HOURS_PER_WEEK = 168


@dataclass(frozen=True)
class PeakOptimum:
    """The LP optimum's MLU for a demand vector, and which LP gave it."""

    mlu: float
    method: str  # "edge LP" (exact over all routings) or "path LP k=4" (over four shortest paths per pair)


def peak_optimum(network: Network, volume: np.ndarray, pairs: np.ndarray) -> PeakOptimum:
    """The optimal MLU of routing ``volume`` between ``pairs`` over ``network``'s links that are up."""
    from netpilot.optimize.te.lp import solve_lp, unrestricted_mlu
    from netpilot.optimize.te.problem import problem_from_pairs

    arrays = network.arrays()
    keep = volume > 0
    problem = problem_from_pairs(arrays, pairs[keep], volume[keep], k=4)
    sources = len(np.unique(pairs[keep, 0]))
    if sources * int(arrays.up.sum()) <= EDGE_LP_LIMIT:
        return PeakOptimum(unrestricted_mlu(problem)[0], "edge LP")
    return PeakOptimum(solve_lp(problem).mlu, "path LP k=4")


def busy_hour(profile: np.ndarray) -> float:
    """The hour of the week (Monday 00:00 = 0) at which the weekly traffic profile (168 hourly values) peaks."""
    return float(np.argmax(profile[:HOURS_PER_WEEK]))


def generate_scenario(network_file: str | Path, *, seed: int = 0, load: float = 0.75, hours: float = 3.0,
                      faults: int = 3, kinds: tuple[str, ...] = GENERATED_KINDS, step_seconds: float = 60.0,
                      demands: str | Path | None = None, relative_to: str | Path | None = None,
                      name: str | None = None) -> Scenario:
    """A scenario on ``network_file`` (with ``demands`` replacing its matrix, if given).

    The run covers the ramp into the weekly busy hour and the peak: it starts ``0.6 * hours`` before the
    profile's peak (``0.8 * hours`` with no faults, so that a ramp past the limit is in the run). The demand is
    scaled so that the optimal routing of the peak hour's noise-free demand has MLU ``load``. ``faults`` faults
    are drawn without repeating a kind until every kind the network has targets for was drawn, at distinct random
    times between 10 % and 80 % of the run, each on a target drawn with probability proportional to the traffic
    it carries under shortest-path routing at the peak. Faults that strand traffic no routing can reach (a
    router down strands its own demand) are kept and reported in ``generated.faults``.
    ``relative_to``: the folder the scenario file will be written to (its network path is made relative to it).
    """
    if not 0 < load <= 10:
        raise InputError.at(f"must be in (0, 10], got {load}", field="load")
    if faults < 0:
        raise InputError.at(f"must be >= 0, got {faults}", field="faults")
    unknown = sorted(set(kinds) - set(GENERATED_KINDS))
    if unknown:
        raise InputError.at(f"cannot generate fault kinds {', '.join(unknown)}; these can be: "
                            f"{', '.join(GENERATED_KINDS)}", field="kinds")
    network_file = Path(network_file).resolve()
    draft = Scenario(network=network_file, demands=Path(demands).resolve() if demands else None, hours=hours,
                     step_seconds=step_seconds, seed=seed)
    network = scenario_network(draft)
    rng = np.random.default_rng([seed, 25])

    sim = Twin(network, seed=seed)  # the scenario's demand without its noise
    if not len(sim.pairs):
        raise InputError.at("the network has no demands to scale", file=network_file, field="demands")
    optimum = peak_optimum(network, sim.base_volume, sim.pairs)
    scale = load / optimum.mlu
    peak_loads = sim.link_loads(sim.base_volume * scale, sim.metric, network.arrays().up)
    static_mlu = float(np.max(peak_loads / np.maximum(network.arrays().capacity, 1e-9)))

    peak = busy_hour(sim.profile)
    lead = 0.6 * hours
    if not faults:
        # The day's ramp alone: shortest paths cross into overload half-way through the run, if they ever do.
        lead = max(lead, _hours_to_overload(sim.profile, peak, static_mlu) + 0.5 * hours)
    start = DEFAULT_START + timedelta(hours=peak - lead)
    start = start.replace(second=0, microsecond=0)
    drawn = _draw_faults(network, sim, peak_loads, scale, rng, count=faults, kinds=kinds,
                         minutes=hours * 60.0)
    stranded = [_stranded_share(network, sim, fault, scale) for fault in drawn]
    base = Path(relative_to).resolve() if relative_to is not None else None

    def where(path: Path | None) -> Path | None:
        return None if path is None or base is None else Path(os.path.relpath(path, base))

    info = GenerationInfo(
        load=load, lp_method=optimum.method, peak_hour_of_week=peak, static_peak_mlu=round(static_mlu, 4),
        faults=[GeneratedFault(id=f.id or "", strands_share=round(s, 6), helpable=s < 1e-9)
                for f, s in zip(drawn, stranded, strict=True)])
    return Scenario(
        name=name or f"{network_file.stem}-load{load:g}-seed{seed}", network=where(network_file) or network_file,
        demands=where(draft.demands) if draft.demands else None, hours=hours, step_seconds=step_seconds,
        seed=seed, start=start.astimezone(UTC), demand_scale=round(scale, 9), faults=drawn, generated=info)


def _hours_to_overload(profile: np.ndarray, peak: float, static_peak_mlu: float) -> float:
    """How long before the peak shortest-path routing's MLU (``static_peak_mlu`` times the profile's level)
    first exceeds 1 on the day's ramp; 0 if it never does."""
    if static_peak_mlu <= 1.0:
        return 0.0
    top = float(profile.max())
    minutes = np.arange(0, 12 * 60)
    hours = peak - minutes / 60.0
    low = np.floor(hours).astype(int) % HOURS_PER_WEEK
    frac = hours - np.floor(hours)
    level = ((1 - frac) * profile[low] + frac * profile[(low + 1) % HOURS_PER_WEEK]) / top
    below = np.flatnonzero(static_peak_mlu * level <= 1.0)
    return float(minutes[below[0]] / 60.0) if len(below) else 0.0


def _draw_faults(network: Network, sim: Twin, peak_loads: np.ndarray, scale: float,
                 rng: np.random.Generator, *, count: int, kinds: tuple[str, ...], minutes: float) -> list[Fault]:
    arrays = network.arrays()
    kind_of = np.array([n.kind for n in network.nodes])
    # Traffic through each node at the peak: what it originates and terminates, and what it forwards.
    volume = sim.base_volume * scale
    through = (np.bincount(sim.pairs[:, 0], weights=volume, minlength=arrays.n_nodes)
               + np.bincount(sim.pairs[:, 1], weights=volume, minlength=arrays.n_nodes)
               + np.bincount(arrays.src, weights=peak_loads, minlength=arrays.n_nodes))
    ends = np.sort(np.stack([arrays.src, arrays.dst], axis=1), axis=1)
    undirected, inverse = np.unique(ends, axis=0, return_inverse=True)
    link_weight = np.bincount(inverse.ravel(), weights=peak_loads, minlength=len(undirected))
    targets: dict[str, tuple[list, np.ndarray]] = {}
    if link_weight.sum() > 0:
        for kind in LINK_KINDS:
            targets[kind] = ([[arrays.node_ids[a], arrays.node_ids[b]] for a, b in undirected], link_weight)
    for kind, node_kind in (("router_down", "router"), ("flash_crowd", "router"), ("cell_outage", "cell_site"),
                            ("edge_failure", "edge_site")):
        nodes = np.flatnonzero(kind_of == node_kind)
        if len(nodes) and through[nodes].sum() > 0:
            targets[kind] = ([arrays.node_ids[i] for i in nodes], through[nodes])
    available = [k for k in kinds if k in targets]
    if count and not available:
        raise InputError.at("the network has no targets for the fault kinds asked for", field="kinds")
    order: list[str] = []
    while len(order) < count:
        order += list(rng.permutation(available))
    # Distinct start times: the run between 10 % and 80 % cut into ``count`` slots, one fault in each.
    slots = np.linspace(0.1 * minutes, 0.8 * minutes, count + 1)
    out = []
    for i, kind in enumerate(order[:count]):
        choices, weight = targets[kind]
        target = choices[int(rng.choice(len(choices), p=weight / weight.sum()))]
        at = float(np.floor(rng.uniform(slots[i], slots[i + 1])))
        duration = float(np.floor(rng.uniform(0.25, 0.5) * minutes))
        params: dict = {}
        if kind == "link_degrade":
            params = {"capacity_factor": round(float(rng.uniform(0.3, 0.6)), 2),
                      "loss": round(float(rng.uniform(0.005, 0.03)), 3)}
        elif kind == "link_flap":
            params = {"period_minutes": float(rng.integers(2, 7))}
        elif kind == "flash_crowd":
            params = {"multiplier": round(float(rng.uniform(1.5, 3.0)), 2)}
        fault = Fault(kind=kind, target=target, at_minute=at, duration_minutes=duration,
                      id=f"F{i + 1}-{kind}@{at:g}", **params)
        out.append(fault)
    return out


def _stranded_share(network: Network, sim: Twin, fault: Fault, scale: float) -> float:
    """The share of the peak demand that this fault alone leaves with no path at all (its own node's demand when
    a node fails, or traffic across a cut): what no routing can carry."""
    probe = Twin(network, seed=0, faults=[fault.model_copy(update={"at_minute": 0.0, "duration_minutes": None})])
    state = probe.state()
    volume = sim.base_volume * scale
    total = float(volume.sum())
    arrays = probe.arrays
    up = state.link_up
    graph = lightest_graph(arrays.src[up], arrays.dst[up], np.ones(int(up.sum())), arrays.n_nodes)
    _, label = connected_components(graph, directed=True, connection="strong")
    node_up = state.node_up  # a node the fault takes down takes its demand with it
    alive = node_up[sim.pairs[:, 0]] & node_up[sim.pairs[:, 1]]
    joined = label[sim.pairs[:, 0]] == label[sim.pairs[:, 1]]
    lost = float(volume[~(alive & joined)].sum())
    return lost / total if total > 0 else 0.0


def write_scenario(scenario: Scenario, path: str | Path) -> Path:
    """The scenario as YAML (the format of ``examples/scenarios``), with a comment saying how it was made."""
    import yaml

    path = Path(path)
    data = scenario.model_dump(mode="json", exclude_defaults=False)
    data["faults"] = [f.model_dump(mode="json", exclude_defaults=True) for f in scenario.faults]
    if isinstance(scenario.start, datetime):
        data["start"] = scenario.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    if data.get("demands") is None:
        data.pop("demands", None)
    info = scenario.generated
    header = "# Generated by `netpilot scenario generate`"
    if info is not None:
        hard = [f.id for f in info.faults if not f.helpable]
        header += (f": demand scaled so the {info.lp_method} optimum's MLU at the peak hour is {info.load:g} "
                   f"(shortest paths: {info.static_peak_mlu:g}).")
        if hard:
            header += f"\n# Faults that strand traffic no routing can reach: {', '.join(hard)}."
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    return path


def scale_demands(network: Network, factor: float) -> Network:
    return network.model_copy(update={"demands": [d.model_copy(update={"volume": d.volume * factor})
                                                  for d in network.demands]})


def network_optimum(network: Network) -> PeakOptimum:
    pairs, volume = network.arrays().demand_pairs()
    return peak_optimum(network, volume, pairs)


def sample_at_load(backbone_file: str | Path, backbone_demands: str | Path | None = None, *, load: float = 0.6,
                   cells_per_router: int = 2, edge_sites: int | None = None, gravity_pairs: int = 20_000,
                   seed: int = 7) -> Network:
    """A sample network on any backbone whose whole demand (backbone and cells) has optimal peak MLU ``load``:
    the backbone's matrix (or a gravity matrix) is first scaled so that the backbone alone is at ``load``, the
    access layer is sized to that traffic (``build_sized_sample``), and the whole matrix is scaled once more so
    that the network with its cells is at ``load``."""
    from netpilot.model.formats import attach_demands, import_demands, import_network
    from netpilot.model.io import network_from_data
    from netpilot.model.sample import backbone_name, build_sized_sample, gravity_demands

    if not 0 < load <= 10:
        raise InputError.at(f"must be in (0, 10], got {load}", field="--load")
    backbone = import_network(backbone_file)
    if backbone_demands is not None:
        backbone = attach_demands(backbone, import_demands(backbone_demands, backbone), source=backbone_demands)
        matrix = f"its traffic matrix {Path(backbone_demands).name}"
    else:
        data = backbone.model_dump(mode="json")
        data["demands"] = gravity_demands(backbone, pairs=gravity_pairs, seed=seed)
        backbone = network_from_data(data, file=str(backbone_file))
        matrix = f"a gravity matrix (its {len(data['demands'])} largest pairs, seed {seed})"
    first = network_optimum(backbone)
    backbone = scale_demands(backbone, load / first.mlu)
    origin = (f"backbone: {backbone.origin or Path(backbone_file).name} ({backbone_name(backbone_file)}) with "
              f"{matrix}; access layer sized to it by `netpilot topo sample --load {load:g}` (seed {seed})")
    network = build_sized_sample(backbone, cells_per_router=cells_per_router, edge_sites=edge_sites, seed=seed,
                                 origin=origin)
    whole = network_optimum(network)
    network = scale_demands(network, load / whole.mlu)
    return network.model_copy(update={"notes": [*network.notes, f"whole matrix scaled so the {whole.method} "
                                                f"optimum's MLU is {load:g}"]})
