"""Traffic-matrix estimation from link counts."""

from __future__ import annotations

import numpy as np
import pytest

from netpilot.analytics.tomography import tomogravity
from netpilot.model.io import load_network
from netpilot.model.routing import ecmp_flows
from netpilot.model.sample import bundled_network_path


def test_tomogravity_matches_the_counts_and_moves_toward_the_truth():
    """On the bundled network's routing, a prior that is off per pair (as the twin's profile is) is corrected
    so its routed loads equal the measured ones, and it ends closer to the true demand than it started."""
    network = load_network(bundled_network_path())
    arrays = network.arrays()
    pairs, volume = arrays.demand_pairs()
    matrix = ecmp_flows(arrays, arrays.metric, pairs, volume).routing_matrix()
    rng = np.random.default_rng(5)
    truth = volume * rng.lognormal(0.0, 0.3, len(volume))
    measured = matrix @ truth
    prior = volume * measured.sum() / (matrix @ volume).sum()
    estimate = tomogravity(matrix, measured, prior)
    assert np.all(estimate >= 0)
    busy = measured > 0.01 * measured.max()
    assert np.allclose((matrix @ estimate)[busy], measured[busy], rtol=0.02)
    assert np.abs(matrix @ prior - measured)[busy].max() > 0.1 * measured[busy].mean()  # the prior was off
    # Under-determined (290 links, 1716 pairs): closer, not exact (15 % here).
    assert np.linalg.norm(estimate - truth) < 0.9 * np.linalg.norm(prior - truth)
    assert np.all(estimate[prior == 0] == 0)  # a pair the prior calls empty stays empty


def test_tomogravity_rejects_mismatched_shapes():
    matrix = np.eye(3)
    with pytest.raises(ValueError, match="links × pairs"):
        tomogravity(matrix, np.ones(2), np.ones(3))
