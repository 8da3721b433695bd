"""Teal's pickled traffic matrices and path sets, read without executing arbitrary pickle code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from netpilot.errors import InputError
from netpilot.model.demands import DemandSeries
from netpilot.model.formats.common import node_index_map
from netpilot.model.units import rate_to_mbps

# The only globals a pickled ndarray needs. Anything else in a pickle is refused.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _unpickle(path: Path):
    try:
        with path.open("rb") as fh:
            return _SafeUnpickler(fh).load()
    except FileNotFoundError:
        raise InputError.at("no such file", file=path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise InputError.at(f"not a pickle of arrays or paths: {exc}", file=path) from None


def read_matrix_file(path: str | Path, node_ids: list[str], *, unit: str = "Mbit/s") -> DemandSeries:
    """A traffic matrix (N, N) or series (T, N, N) pickled (Teal ``.pkl``) or saved with ``np.save``."""
    path = Path(path)
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError.at("no such file", file=path) from None
        except ValueError as exc:
            raise InputError.at(f"not a readable .npy: {exc}", file=path) from None
    else:
        array = _unpickle(path)
    if not isinstance(array, np.ndarray):
        raise InputError.at(f"expected an array, found {type(array).__name__}", file=path)
    n = len(node_ids)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (n, n):
        raise InputError.at(f"matrix shape {array.shape} does not fit the network's {n} nodes", file=path)
    if not np.isfinite(array).all() or (array < 0).any():
        raise InputError.at("matrix entries must be finite and >= 0", file=path)
    mapping = node_index_map(node_ids)
    volume = array.astype(float) * rate_to_mbps(1.0, unit)
    for t in range(volume.shape[0]):
        np.fill_diagonal(volume[t], 0.0)
    return DemandSeries(nodes=tuple(mapping[i] for i in range(n)), volume=volume, origin=f"Teal {path.name}")


def read_path_dict(path: str | Path, node_ids: list[str]) -> dict[tuple[str, str], list[list[str]]]:
    """Teal's path set: a pickled ``dict[(s, t)] -> list[list[node]]`` with integer nodes."""
    path = Path(path)
    raw = _unpickle(path)
    if not isinstance(raw, dict):
        raise InputError.at(f"expected a dict of paths, found {type(raw).__name__}", file=path)
    mapping = node_index_map(node_ids)
    try:
        return {(mapping[s], mapping[t]): [[mapping[v] for v in p] for p in paths] for (s, t), paths in raw.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError.at(f"path refers to an unknown node: {exc}", file=path) from None
