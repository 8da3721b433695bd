"""The fast MLU solver on PyTorch, for a GPU: the same scaled projection as ``fast.solve_fast``, every pair at
every iteration (on a GPU a full sparse product costs less than choosing an active set), with the same
certificate. Needs ``pip install netpilot[gpu]``; runs on the CPU build of PyTorch too."""

from __future__ import annotations

import time
import warnings

import numpy as np

from netpilot.optimize.te.fast import _line_search, initial_split
from netpilot.optimize.te.problem import Routing, TEProblem


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError("the torch backend needs PyTorch: pip install 'netpilot[gpu]'") from exc
    return torch


def default_device() -> str:
    torch = _torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchInstance:
    """A problem's matrices moved to a device once, so that a series of matrices pays the transfer once."""

    def __init__(self, problem: TEProblem, device: str | None = None) -> None:
        torch = _torch()
        self.torch = torch
        self.device = torch.device(device or default_device())
        self.problem = problem
        a = problem.incidence.tocsr()
        at = problem.incidence_t
        f64 = torch.float64
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self.a, self.at = self._csr(a, f64), self._csr(at, f64)
        finite = np.isfinite(problem.capacity)
        cap = np.where(finite, problem.capacity, 1.0)
        self.finite = torch.from_numpy(finite).to(self.device)
        self.cap = torch.from_numpy(cap).to(self.device)
        self.inv_cap = torch.from_numpy(np.where(finite, 1.0 / cap, 0.0)).to(self.device)
        self.owner = torch.from_numpy(problem.paths.path_pair.astype(np.int64)).to(self.device)
        self.n_pairs = problem.paths.n_pairs
        self.log_links = float(np.log(max(2, int(finite.sum()))))

    def _csr(self, matrix, dtype):
        torch = self.torch
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                       torch.from_numpy(matrix.indices.astype(np.int64)),
                                       torch.from_numpy(matrix.data.astype(np.float64)), size=matrix.shape,
                                       dtype=dtype, device=self.device, check_invariants=False)

    def tensor(self, array: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).to(self.device)


def solve_fast_torch(problem: TEProblem, *, x0: np.ndarray | None = None, tolerance: float = 0.005,
                     max_iterations: int = 1000, time_limit: float | None = None, device: str | None = None,
                     instance: TorchInstance | None = None, settle: float = 0.001, stall_ramp: float = 1.6,
                     patience: int = 30) -> Routing:
    """``solve_fast`` on PyTorch (``device``: 'cuda', 'cpu'; default: a GPU when there is one).

    ``instance``: a ``TorchInstance`` of a problem with the same paths, to reuse its device copies.
    """
    started = time.perf_counter()
    inst = instance if instance is not None else TorchInstance(problem, device)
    torch = inst.torch
    owner, n_pairs = inst.owner, inst.n_pairs
    x = inst.tensor(initial_split(problem) if x0 is None else problem.feasible(x0))
    demand = inst.tensor(problem.demand)
    d_path = demand[owner]
    n_paths = x.shape[0]
    path_index = torch.arange(n_paths, device=inst.device)

    def matvec(matrix, vector):
        return (matrix @ vector.unsqueeze(1)).squeeze(1)

    def pair_min(values):
        out = torch.full((n_pairs,), float("inf"), dtype=values.dtype, device=inst.device)
        return out.scatter_reduce(0, owner, values, reduce="amin", include_self=True)

    u = matvec(inst.a, d_path * x) * inst.inv_cap
    sharpness = 4.0 if x0 is None else 32.0
    boldness = 1.0
    best_mlu, best_bound, best_x, best_price = float("inf"), 0.0, x.clone(), inst.inv_cap
    checkpoint, improved_at = float("inf"), 0
    budget_links = inst.finite
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        mlu = float(u.max())
        if mlu < best_mlu:
            if mlu < checkpoint * (1 - tolerance / 10):
                improved_at, checkpoint = iterations, mlu
            best_mlu, best_x = mlu, x.clone()
        beta = sharpness * inst.log_links / max(mlu, 1e-12)
        w = torch.exp(beta * (u - mlu))
        w = w / w.sum()
        price = w * inst.inv_cap
        products = inst.at @ torch.stack([price, beta * w * u * inst.inv_cap], dim=1)
        cost, curvature = products[:, 0], products[:, 1]
        cheapest = pair_min(cost)
        bound = float((demand @ cheapest) / w[budget_links].sum())
        if bound > best_bound:
            best_bound, best_price = bound, price
        if best_mlu <= best_bound * (1 + tolerance):
            break
        if time_limit is not None and time.perf_counter() - started > time_limit:
            break
        if iterations - improved_at > patience:
            break
        excess = cost - cheapest[owner]
        is_target = excess <= 0
        candidate = torch.where(is_target, path_index, torch.full_like(path_index, n_paths))
        first = torch.full((n_pairs,), n_paths, dtype=torch.int64, device=inst.device)
        first = first.scatter_reduce(0, owner, candidate, reduce="amin", include_self=True)
        target_path = first[owner]
        moving = (x > 0) & (excess > 0)
        denom = curvature + curvature[target_path]
        step = torch.where(moving, torch.minimum(x, boldness * excess / denom.clamp_min(1e-300)),
                           torch.zeros_like(x))
        gained = torch.zeros(n_pairs, dtype=x.dtype, device=inst.device).index_add_(0, owner, step)
        dx = -step
        dx = dx.index_add(0, first, gained)
        du = matvec(inst.a, d_path * dx) * inst.inv_cap
        alpha, gain = _line_search(u, du, beta, exp=torch.exp)
        boldness = min(boldness * 2.0, 1e4) if alpha > 0.9 else max(boldness * max(alpha, 0.25) * 1.5, 1e-3)
        if gain < settle * mlu / sharpness:
            sharpness = min(sharpness * stall_ramp, 400.0)
        x = (x + alpha * dx).clamp(0.0, 1.0)
        u = u + alpha * du

    if float(u.max()) < best_mlu:
        best_x = x
    x_out = problem.feasible(best_x.cpu().numpy())
    return Routing(problem, x_out, "mlu", "fast-torch", time.perf_counter() - started, best_bound, iterations,
                   info={"device": str(inst.device), "sharpness": sharpness, "boldness": boldness,
                         "link_price": best_price.cpu().numpy()})
