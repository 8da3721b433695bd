"""A thin, typed call into HiGHS through highspy's array API (LP and MIP)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

INF = highspy.kHighsInf


@dataclass(frozen=True)
class LPResult:
    status: str
    objective: float
    x: np.ndarray
    row_dual: np.ndarray
    row_value: np.ndarray
    seconds: float

    @property
    def optimal(self) -> bool:
        return self.status == "Optimal"


def solve(cost: np.ndarray, matrix: sp.spmatrix, row_lower: np.ndarray, row_upper: np.ndarray,
          col_lower: np.ndarray, col_upper: np.ndarray, *, maximize: bool = False,
          integrality: np.ndarray | None = None, time_limit: float | None = None,
          threads: int | None = None, mip_gap: float | None = None,
          mip_abs_gap: float | None = None) -> LPResult:
    """Solve ``min/max cost·x`` subject to ``row_lower <= matrix x <= row_upper`` and column bounds.

    Infinite bounds are given as ``np.inf``. Integer columns are marked by ``integrality`` (1 = integer).
    """
    started = time.perf_counter()
    csc = sp.csc_matrix(matrix)
    csc.sort_indices()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = csc.shape[1], csc.shape[0]
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = _bounds(col_lower)
    lp.col_upper_ = _bounds(col_upper)
    lp.row_lower_ = _bounds(row_lower)
    lp.row_upper_ = _bounds(row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(np.float64)
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    if integrality is not None:
        lp.integrality_ = [highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous
                           for v in integrality]
    h = _quiet_highs()
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    if mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    if mip_abs_gap is not None:
        h.setOptionValue("mip_abs_gap", float(mip_abs_gap))
    h.passModel(lp)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    solution = h.getSolution()
    x = np.array(solution.col_value) if solution.value_valid else np.full(csc.shape[1], np.nan)
    duals = np.array(solution.row_dual) if solution.dual_valid else np.zeros(csc.shape[0])
    rows = np.array(solution.row_value) if solution.value_valid else np.full(csc.shape[0], np.nan)
    return LPResult(status=status, objective=float(h.getInfo().objective_function_value), x=x, row_dual=duals,
                    row_value=rows, seconds=time.perf_counter() - started)


def _quiet_highs() -> highspy.Highs:
    """A Highs instance, without the banner its constructor writes straight to file descriptor 1 (it would
    corrupt JSON written to standard output)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def _bounds(values: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).copy()
    out[np.isposinf(out)] = INF
    out[np.isneginf(out)] = -INF
    return out
