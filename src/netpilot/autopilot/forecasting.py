"""The loop's forecast: utilisation of the busiest links some ticks ahead, with 80 % intervals and the chance of
crossing the congestion threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from netpilot.analytics.forecast import Forecaster
from netpilot.autopilot.settings import ForecastSettings

#: Ticks of history a forecast needs at least.
MIN_HISTORY = 30


class LinkForecast:
    """The latest forecast per link id (``links``), refreshed by ``update``."""

    def __init__(self, settings: ForecastSettings, link_ids: list[str], congestion: float) -> None:
        self.settings = settings
        self.link_ids = link_ids
        self.congestion = congestion
        self.links: dict[str, dict[str, Any]] = {}

    def peak(self) -> float:
        """The highest mean utilisation forecast on any link (0 without a forecast)."""
        return max((f["peak"] for f in self.links.values()), default=0.0)

    def update(self, utilisation: Sequence[np.ndarray]) -> None:
        """Utilisation of the five busiest links, ``horizon`` steps ahead, from the utilisation history."""
        if len(utilisation) < MIN_HISTORY:
            return
        history = np.array(utilisation)[-240:]
        busiest = np.argsort(-history[-1], kind="stable")[:5]
        forecaster = Forecaster(self.settings.horizon, models=("naive", "window_average"), levels=(80,),
                                backtest_windows=2)
        series = [history[:, e] for e in busiest]
        try:
            result = forecaster.fit(series).predict(series)
        except Exception:  # too little history for the backtest: no forecast this time
            return
        self.links = {self.link_ids[e]: {"mean": result.mean[i].tolist(), "lower": result.lower[80][i].tolist(),
                                         "upper": result.upper[80][i].tolist(), "model": result.model[i],
                                         "peak": float(result.mean[i].max()),
                                         "p_congested": float(result.exceedance_probability(self.congestion)[i]
                                                              .max())}
                      for i, e in enumerate(busiest)}
