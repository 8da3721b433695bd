"""Forecasts per series: candidate models (statsforecast's and the simple baselines) picked per series by a
rolling backtest, intervals from that backtest's own errors, and the probability of crossing a threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from netpilot.errors import InputError

#: Candidate name -> factory(season_length, horizon) of a statsforecast model.
ModelFactory = Callable[[int, int], object]


def _naive(season: int, horizon: int):
    from statsforecast.models import Naive
    return Naive()


def _seasonal_naive(season: int, horizon: int):
    from statsforecast.models import SeasonalNaive
    return SeasonalNaive(season_length=season)


def _window_average(season: int, horizon: int):
    from statsforecast.models import WindowAverage
    return WindowAverage(window_size=horizon)


def _seasonal_window_average(season: int, horizon: int):
    from statsforecast.models import SeasonalWindowAverage
    return SeasonalWindowAverage(season_length=season, window_size=SEASONAL_WINDOWS)


def _ses(season: int, horizon: int):
    from statsforecast.models import SimpleExponentialSmoothingOptimized
    return SimpleExponentialSmoothingOptimized()


def _ets(season: int, horizon: int):
    from statsforecast.models import AutoETS
    return AutoETS(season_length=season if 1 < season <= 24 else 1)


def _theta(season: int, horizon: int):
    from statsforecast.models import AutoTheta
    return AutoTheta(season_length=season if 1 < season <= 24 else 1)


def _mstl(season: int, horizon: int):
    from statsforecast.models import MSTL, AutoETS
    return MSTL(season_length=season, trend_forecaster=AutoETS(model="ZZN"))


#: Seasons averaged by the seasonal window average (four weeks of a weekly season).
SEASONAL_WINDOWS = 4

CANDIDATES: dict[str, ModelFactory] = {
    "naive": _naive, "seasonal_naive": _seasonal_naive, "window_average": _window_average,
    "seasonal_window_average": _seasonal_window_average, "ses": _ses,
    "ets": _ets, "theta": _theta, "mstl": _mstl,
}
#: The simple baselines an expert tries first; every candidate set includes them.
BASELINES = ("naive", "seasonal_naive", "window_average")
#: A combination is the mean of its members' forecasts (forecast combination is hard to beat on noisy series).
COMBINATIONS = {"mstl+window_average": ("mstl", "window_average"), "ets+window_average": ("ets", "window_average"),
                "window_average+seasonal_window_average": ("window_average", "seasonal_window_average"),
                "ses+seasonal_window_average": ("ses", "seasonal_window_average")}


def _clean(y: np.ndarray, name: str) -> np.ndarray:
    """Gaps (NaN) are filled by carrying the last value forward; a series with no value at all is an error."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise InputError(f"series {name}: expected one dimension, got shape {y.shape}")
    finite = np.isfinite(y)
    if not finite.any():
        raise InputError(f"series {name}: no finite value to forecast from")
    if finite.all():
        return y
    index = np.where(finite, np.arange(len(y)), 0)
    np.maximum.accumulate(index, out=index)
    filled = y[index]
    filled[: np.argmax(finite)] = y[np.argmax(finite)]
    return filled


def forecast_with(model_name: str, y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """One model's point forecast from a clean (gap-free) history."""
    members = COMBINATIONS.get(model_name)
    if members:
        return np.mean([forecast_with(m, y, horizon, season) for m in members], axis=0)
    if model_name == "seasonal_naive" and len(y) < season:
        return np.repeat(y[-1], horizon)
    if model_name == "seasonal_window_average" and len(y) < SEASONAL_WINDOWS * season:
        return forecast_with("window_average", y, horizon, season)
    if model_name == "mstl" and len(y) < 2 * season + 1:
        return forecast_with("ses", y, horizon, season)
    if np.ptp(y[-max(horizon, 2):]) == 0 and np.ptp(y) == 0:
        return np.repeat(y[-1], horizon)  # a constant series: every model agrees, and some fail on it
    model = CANDIDATES[model_name](season, horizon)
    try:
        mean = np.asarray(model.forecast(y=y, h=horizon)["mean"], dtype=float)
    except Exception:  # statsforecast's optimisers can fail on degenerate input; fall back to the level
        mean = np.repeat(y[-1], horizon)
    return np.where(np.isfinite(mean), mean, y[-1])


@dataclass
class Forecast:
    """Point forecasts (series × horizon), interval bounds per level, and the model chosen per series."""

    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    model: list[str]
    scale: np.ndarray  # the backtest's error scale per series and step
    residuals: list[np.ndarray] = field(repr=False, default_factory=list)  # normalised errors per series

    def exceedance_probability(self, threshold: float | np.ndarray) -> np.ndarray:
        """P(value > threshold) per series and step, from the backtest's normalised errors."""
        threshold = np.broadcast_to(np.asarray(threshold, dtype=float).reshape(-1, 1) if np.ndim(threshold)
                                    else np.asarray(threshold, dtype=float), self.mean.shape)
        out = np.empty_like(self.mean)
        for i, errors in enumerate(self.residuals):
            needed = (threshold[i] - self.mean[i]) / self.scale[i]
            sorted_errors = np.sort(errors)
            out[i] = 1.0 - np.searchsorted(sorted_errors, needed, side="right") / len(sorted_errors)
        return out


class Forecaster:
    """Pick the best candidate per series by a rolling-origin backtest on its own history, then forecast.

    ``season_length`` is in steps (720 for a day of 2-minute samples); ``backtest_windows`` origins, ``horizon``
    steps apart, end at the last observation. ``max_history`` caps the history a model sees (older data adds
    cost, rarely accuracy). ``selection="series"`` picks a model per series; ``"pooled"`` picks one model for
    all series, the one with the smallest geometric-mean backtest MAE: on short noisy series (a few months of
    daily samples) per-series choice mostly fits the noise of a handful of backtest windows."""

    def __init__(self, horizon: int, season_length: int = 1, *, models: Sequence[str] | None = None,
                 levels: Sequence[int] = (80, 95), backtest_windows: int = 4, max_history: int | None = None,
                 selection: str = "series") -> None:
        self.horizon = int(horizon)
        self.season_length = int(season_length)
        self.models = tuple(models) if models is not None else (*BASELINES, "ses")
        self.levels = tuple(levels)
        self.backtest_windows = int(backtest_windows)
        self.max_history = max_history
        self.selection = selection
        if selection not in ("series", "pooled"):
            raise InputError(f"selection must be 'series' or 'pooled', got {selection!r}")
        unknown = [m for m in self.models if m not in CANDIDATES and m not in COMBINATIONS]
        if unknown:
            raise InputError(f"unknown forecast model(s) {unknown}; known: "
                                f"{sorted([*CANDIDATES, *COMBINATIONS])}")
        if self.horizon < 1:
            raise InputError(f"horizon must be at least 1 step, got {horizon}")

    def _history(self, y: np.ndarray) -> np.ndarray:
        return y if self.max_history is None else y[-self.max_history:]

    def backtest(self, y: np.ndarray, name: str = "series") -> dict[str, np.ndarray]:
        """Per model, the errors (windows × horizon) of forecasts made at the backtest origins."""
        y = _clean(y, name)
        h = self.horizon
        origins = [len(y) - h * k for k in range(self.backtest_windows, 0, -1)]
        origins = [o for o in origins if o >= max(2, h)]
        if not origins:
            raise InputError(f"series {name}: {len(y)} points are too few to backtest a {h}-step horizon")
        errors: dict[str, list[np.ndarray]] = {m: [] for m in self.models}
        cache: dict[tuple[str, int], np.ndarray] = {}
        for o in origins:
            history = self._history(y[:o])
            for m in self.models:
                members = COMBINATIONS.get(m, (m,))
                parts = []
                for member in members:
                    key = (member, o)
                    if key not in cache:
                        cache[key] = forecast_with(member, history, h, self.season_length)
                    parts.append(cache[key])
                errors[m].append(y[o:o + h] - np.mean(parts, axis=0))
        return {m: np.array(e) for m, e in errors.items()}

    def fit(self, series: Sequence[np.ndarray], names: Sequence[str] | None = None) -> Forecaster:
        names = list(names) if names is not None else [f"#{i}" for i in range(len(series))]
        self.model_: list[str] = []
        self.scale_ = np.zeros((len(series), self.horizon))
        self.residuals_: list[np.ndarray] = []
        self.backtest_mae_: list[dict[str, float]] = []
        backtests = [self.backtest(y, name) for y, name in zip(series, names, strict=True)]
        maes = [{m: float(np.abs(e).mean()) for m, e in errors.items()} for errors in backtests]
        pooled = None
        if self.selection == "pooled" and maes:
            log_mae = {m: float(np.mean([np.log(max(mae[m], 1e-12)) for mae in maes])) for m in self.models}
            pooled = min(log_mae, key=log_mae.get)
        for i, (y, name, errors, mae) in enumerate(zip(series, names, backtests, maes, strict=True)):
            best = pooled or min(mae, key=mae.get)
            e = errors[best]
            # Error scale per step, never shrinking with the horizon; a floor keeps exact fits usable.
            scale = np.maximum.accumulate(np.sqrt((e ** 2).mean(axis=0)))
            floor = max(1e-9, 1e-6 * float(np.abs(_clean(y, name)).mean()))
            self.model_.append(best)
            self.scale_[i] = np.maximum(scale, floor)
            self.residuals_.append((e / self.scale_[i]).ravel())
            self.backtest_mae_.append(mae)
        return self

    def predict(self, series: Sequence[np.ndarray], names: Sequence[str] | None = None) -> Forecast:
        """Forecast each series (the same series ``fit`` saw, possibly with newer data) with its chosen model."""
        if not hasattr(self, "model_"):
            raise InputError("Forecaster.predict before fit")
        if len(series) != len(self.model_):
            raise InputError(f"fit saw {len(self.model_)} series, predict got {len(series)}")
        names = list(names) if names is not None else [f"#{i}" for i in range(len(series))]
        mean = np.array([forecast_with(m, self._history(_clean(y, n)), self.horizon, self.season_length)
                         for m, y, n in zip(self.model_, series, names, strict=True)]).reshape(len(series), -1)
        lower, upper = {}, {}
        for level in self.levels:
            # Split-conformal: the level's quantile of the absolute normalised backtest errors.
            q = np.array([np.quantile(np.abs(r), level / 100.0, method="higher") for r in self.residuals_])
            lower[level] = mean - q[:, None] * self.scale_
            upper[level] = mean + q[:, None] * self.scale_
        return Forecast(mean, lower, upper, list(self.model_), self.scale_.copy(), list(self.residuals_))


def forecast(series: Sequence[np.ndarray], horizon: int, season_length: int = 1, **kwargs) -> Forecast:
    """Fit and forecast in one call."""
    forecaster = Forecaster(horizon, season_length, **kwargs).fit(series)
    return forecaster.predict(series)


def warm_up_forecasting(models: Sequence[str] = ("naive", "window_average")) -> None:
    """Import and compile ``models`` once (their libraries take over a second the first time), so a caller with
    a deadline, such as the autopilot's tick, does not pay for it on its first forecast."""
    forecast([np.linspace(0.0, 1.0, 12)], 2, models=models, levels=(80,), backtest_windows=1)
