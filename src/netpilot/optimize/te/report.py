"""A routing as a self-contained document: paths with fractions, link loads, metrics and the certificate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from netpilot.optimize.te.failures import FailureReport
    from netpilot.optimize.te.problem import Routing


def routing_document(routing: Routing, *, failures: FailureReport | None = None) -> dict[str, Any]:
    """Everything a third party needs to check the answer: per demand the paths (node lists) and fractions,
    with each pair's volume; per link capacity, load and utilisation. Recomputing the MLU from ``paths`` and
    the network's capacities gives ``mlu``."""
    problem = routing.problem
    arrays = problem.arrays
    x = routing.x
    loads = problem.loads(x) * problem.scale
    finite = np.isfinite(problem.capacity)
    util = np.where(finite, loads / np.where(finite, arrays.capacity, 1.0), 0.0)
    doc: dict[str, Any] = {
        "objective": routing.objective,
        "method": routing.method,
        "unit": "Mbit/s",
        "mlu": routing.mlu,
        "total_flow": routing.total_flow,
        "total_demand": float(problem.volume.sum()),
        "solve_seconds": routing.solve_seconds,
        "iterations": routing.iterations,
        "certificate": routing.certificate(),
    }
    if routing.bound > 0:
        doc["mlu_lower_bound" if routing.objective == "mlu" else "flow_upper_bound"] = routing.bound
        doc["gap"] = routing.gap
    if "unrestricted_bound" in routing.info:
        doc["unrestricted_mlu_lower_bound"] = float(routing.info["unrestricted_bound"])
        doc["paths_added"] = int(routing.info.get("paths_added", 0))
        doc["paths_reused"] = int(routing.info.get("paths_reused", 0))
    if "guaranteed_mlu" in routing.info:
        doc["guaranteed_single_failure_mlu"] = float(routing.info["guaranteed_mlu"])
        doc["unprotected_pairs"] = int(routing.info["unprotected_pairs"])
    doc["paths"] = routing.pair_paths()
    doc["links"] = [
        {"source": arrays.node_ids[arrays.src[e]], "target": arrays.node_ids[arrays.dst[e]],
         "capacity": float(arrays.capacity[e]), "up": bool(arrays.up[e]), "load": float(loads[e]),
         "utilisation": float(util[e])}
        for e in range(arrays.n_links)
    ]
    if "metric" in routing.info:
        metric = routing.info["metric"]
        doc["metrics"] = [
            {"source": arrays.node_ids[arrays.src[e]], "target": arrays.node_ids[arrays.dst[e]],
             "metric": int(metric[e])}
            for e in range(arrays.n_links)
        ]
    if failures is not None:
        worst = failures.worst
        doc["failures"] = {
            "scenarios": len(failures.failed),
            "worst_mlu": float(failures.mlu[worst]),
            "worst_failure": [[arrays.node_ids[arrays.src[e]], arrays.node_ids[arrays.dst[e]]]
                              for e in failures.failed[worst]],
            "scenarios_over_1": int((failures.mlu > 1.0).sum()),
            "scenarios_stranding_demand": int((failures.stranded > 0).sum()),
            "seconds": failures.seconds,
            "per_scenario": [
                {"failed": [[arrays.node_ids[arrays.src[e]], arrays.node_ids[arrays.dst[e]]] for e in failed],
                 "mlu": float(m), "stranded": float(st)}
                for failed, m, st in zip(failures.failed, failures.mlu, failures.stranded)
            ],
        }
    return doc
