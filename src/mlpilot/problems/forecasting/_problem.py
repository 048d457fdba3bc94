"""The time-series forecasting problem type (``TimeSeriesForecastingJobConfig``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mlpilot._layout import write_json_atomic
from mlpilot._types import Mode
from mlpilot.config import ForecastingConfig
from mlpilot.data import parse_frequency, read_table
from mlpilot.metrics import default_forecast_objective, quantile_level, quantile_name
from mlpilot.metrics import season_length as season_of
from mlpilot.package import SeriesModel
from mlpilot.problems._protocol import Analysis, CandidateView, JobSession, PackagedModel
from mlpilot.problems.forecasting._backtest import BacktestPlan, WindowForecast, plan_backtests
from mlpilot.problems.forecasting._ensemble import QuantileSpread
from mlpilot.problems.forecasting._features import series_features
from mlpilot.problems.forecasting._predictor import ForecastPredictor, SeriesSettings
from mlpilot.problems.forecasting._results import write_backtest_results
from mlpilot.problems.forecasting._series import SeriesSet
from mlpilot.problems.forecasting._training import (
    ENSEMBLE,
    candidate_name,
    model_order,
    train_models,
)
from mlpilot.problems.forecasting._trial import BacktestData, ForecastTask, save_series
from mlpilot.problems.forecasting.models import (
    AUTOPILOT_ALGORITHMS,
    FORECASTERS,
    ForecastTimeout,
    get_forecaster,
)
from mlpilot.profile import FeatureSpecification

__all__ = ["DEFAULT_MODELS", "ForecastingProblem"]

#: The models a job backtests when AlgorithmsConfig names none.
DEFAULT_MODELS = ("seasonal-naive", "npts", "theta", "ets", "gbm", "arima", "quantile-net")


def _chosen_models(spec: ForecastingConfig) -> list[str]:
    """The models a job backtests. The config accepts Autopilot's six names, each mapped to a
    model here; two names may map to one model (cnn-qr and deepar): it is backtested once."""
    if spec.algorithms:
        return list(dict.fromkeys(AUTOPILOT_ALGORITHMS[a] for a in spec.algorithms))
    return list(DEFAULT_MODELS)


class ForecastingProblem:
    """Forecasts of many series: the table becomes regular series (:func:`prepare_series`),
    every model is backtested on the end of each series, the backtest forecasts are
    ensembled by forward selection, and the best candidate's models are refit on all history
    and packaged with the series settings."""

    config_name: ClassVar[str] = "TimeSeriesForecasting"
    trial_function: ClassVar[str] = "mlpilot.problems.forecasting._trial:run_forecast_trial"

    def worker_imports(self, config: Any) -> list[str]:
        return [self.trial_function, *self.package_imports(config)]

    def package_imports(self, config: Any) -> list[str]:
        # What the chosen models' fits import: the workers backtest them, and the job's process
        # refits the best on all history.
        imports: list[str] = []
        for name in _chosen_models(config.problem_as(ForecastingConfig)):
            imports.extend(m for m in get_forecaster(name).fit_imports if m not in imports)
        return imports

    def __init__(self) -> None:
        self.series: SeriesSet | None = None
        self.values: list[np.ndarray] = []
        self.plan: BacktestPlan | None = None
        self.season = 1
        self.analysis: Analysis | None = None
        self.models: list[str] = []
        self.quantile_levels: tuple[float, ...] = ()
        #: Model → its backtest forecasts' file, once it completed.
        self.backtests: dict[str, str] = {}
        self.ensemble_weights: dict[str, float] | None = None
        #: What every backtest runs on, once the data is analysed.
        self.data: BacktestData | None = None
        #: Seconds each global model's backtest took (for the final refit's reserve).
        self.global_seconds: dict[str, float] = {}
        #: FeatureSpecification's columns and types, when the job gave one.
        self.features: tuple[str, ...] | None = None
        self.feature_types: dict[str, str] | None = None

    # -- 1. analyse -------------------------------------------------------------------------
    def analyse(self, session: JobSession) -> Analysis:
        cfg = session.config
        spec = cfg.problem_as(ForecastingConfig)
        objective = cfg.objective or default_forecast_objective()  # checked by the config
        table = read_table(
            cfg.training_data,
            content_type=cfg.content_type,
            compression=cfg.compression,
            data_type=cfg.data_type,
        )
        if spec.feature_specification:
            document = FeatureSpecification.load(spec.feature_specification)
            self.features = document.attribute_names
            self.feature_types = document.data_types or None
        # The frequency as given; the preparation resolves its anchors from the data.
        settings = SeriesSettings.of(
            spec,
            parse_frequency(spec.frequency),
            features=self.features,
            feature_types=self.feature_types,
        )
        calendar = settings.holiday_calendar()
        series = settings.prepare(table)
        self.series = series
        self.values = [series.values(i).astype("float64") for i in range(series.n_series)]
        self.season = season_of(series.frequency.alias)
        self.plan = plan_backtests([int(n) for n in series.lengths], spec.horizon)
        self.quantile_levels = tuple(quantile_level(q) for q in spec.quantiles)
        backtests = session.layout.prepared_data / "backtests"
        backtests.mkdir(parents=True, exist_ok=True)
        series_path = session.layout.prepared_data / "series.npz"
        save_series(series_path, self.values)
        features_path = session.layout.prepared_data / "features.npz"
        series_features(series, calendar).save(features_path)
        self.data = BacktestData(
            str(series_path),
            self.plan,
            self.quantile_levels,
            self.season,
            str(backtests),
            cfg.seed,
            features_path=str(features_path),
        )
        summary = {
            **series.summary(),
            "HolidayCalendar": calendar.description if calendar else None,
            "Backtest": self.plan.reason,
            "SeasonLength": self.season,
        }
        self.analysis = Analysis(
            problem_type=self.config_name,
            objective=objective,
            mode=Mode.ENSEMBLING,
            mode_reason="forecasting jobs backtest every model and ensemble their forecasts",
            classification=False,
            summary=summary,
        )
        return self.analysis

    # -- 2. candidates ----------------------------------------------------------------------
    def define_candidates(self, session: JobSession) -> list[str]:
        spec = session.config.problem_as(ForecastingConfig)
        self.models = model_order(_chosen_models(spec))
        definitions = {
            "ProblemType": self.config_name,
            "Objective": self.analysis.objective if self.analysis else None,
            "Backtest": self.plan.reason if self.plan else "",
            "Models": {m: FORECASTERS[m] for m in self.models},
            "AutopilotAlgorithms": AUTOPILOT_ALGORITHMS,
        }
        write_json_atomic(session.layout.candidate_definitions, definitions)
        session.note("CandidateDefinitions", str(session.layout.candidate_definitions))
        return self.models

    def task(
        self, session: JobSession, number: int, model: str, limit: float | None
    ) -> ForecastTask:
        """The worker task that backtests ``model``."""
        assert self.data is not None
        params = self.model_params(session.config.problem_as(ForecastingConfig), model)
        name = candidate_name(session.config.name, number, model, params)
        return ForecastTask(number, name, model, params, self.data, limit)

    def tail_seconds(self) -> float:
        """Seconds kept back from the backtests for refitting and packaging the best: a global
        model's refit takes about what one backtest window took it."""
        windows = self.plan.windows if self.plan else 1
        refit = max((t / windows for t in self.global_seconds.values()), default=0.0)
        return 2.0 + 0.02 * sum(len(v) for v in self.values) / 1000 + refit

    # -- 3. train ---------------------------------------------------------------------------
    def train(self, session: JobSession) -> str:
        return train_models(self, session)

    def save_backtest_results(
        self,
        session: JobSession,
        name: str,
        windows: list[WindowForecast],
        window_metrics: list[dict[str, float]],
    ) -> dict[str, str]:
        """Write candidate ``name``'s BacktestResults; returns its CandidateArtifactLocations
        (Explainability, which the API requires, is the prefix its report would have)."""
        assert self.series is not None and self.plan is not None
        directory = session.layout.backtest_results_for(name)
        write_backtest_results(
            directory,
            name,
            self.series,
            self.plan,
            windows,
            [quantile_name(q) for q in self.quantile_levels],
            window_metrics=window_metrics,
            season=self.season,
        )
        return {
            "Explainability": str(session.layout.explainability_for(name)),
            "BacktestResults": str(directory),
        }

    # -- 4. package -------------------------------------------------------------------------
    def package(self, session: JobSession, best: CandidateView) -> PackagedModel:
        """The best candidate's models (an ensemble's members, with its weights) refit on every
        series' whole history, packaged with the series settings and that history."""
        spec = session.config.problem_as(ForecastingConfig)
        assert self.series is not None
        details = best.details
        spread = QuantileSpread({})
        if details.get("Algorithm") == ENSEMBLE:
            weights = {m: float(w) for m, w in details["Weights"].items()}
            factors = details.get("QuantileSpread") or {}
            spread = QuantileSpread({float(q): float(f) for q, f in factors.items()})
        else:
            weights = {str(details["Algorithm"]): 1.0}
        note = ""
        try:
            predictor = self._fit_final(session, spec, weights, spread, session.budget.deadline())
        except ForecastTimeout:
            # No time to refit the global models: the local ones (fit when forecasting) ship.
            local = {m: w for m, w in weights.items() if get_forecaster(m).local}
            if not local:
                local = {"seasonal-naive": 1.0}
            total = sum(local.values())
            dropped = sorted(set(weights) - set(local))
            weights = {m: w / total for m, w in local.items()}
            note = f"; {', '.join(dropped)} left out: no time left to refit it on all history"
            predictor = self._fit_final(session, spec, weights, spread, None)
        candidate = {"CandidateName": best.name, "Algorithm": details.get("Algorithm")}
        destination = session.layout.final_model(best.name)
        SeriesModel.build(predictor, candidate=candidate).save(destination, archive=False)
        models = " + ".join(f"{m} ({w:.2f})" for m, w in weights.items())
        note = f"refit {models} on the whole history of {self.series.n_series:,} series{note}"
        return PackagedModel(destination, refit=True, note=note, details={"Weights": weights})

    def _fit_final(
        self,
        session: JobSession,
        spec: ForecastingConfig,
        weights: dict[str, float],
        spread: QuantileSpread,
        deadline: float | None,
    ) -> ForecastPredictor:
        assert self.series is not None
        return ForecastPredictor.fit(
            spec,
            self.series,
            weights,
            params={m: self.model_params(spec, m) for m in weights},
            seed=session.config.seed,
            spread=spread,
            deadline=deadline,
            features=self.features,
            feature_types=self.feature_types,
        )

    def minimum_seconds(self, session: JobSession, model: str) -> float:
        """Seconds ``model``'s backtest needs at the least (0: the model does not say)."""
        assert self.plan is not None
        params = self.model_params(session.config.problem_as(ForecastingConfig), model)
        forecaster = get_forecaster(model)(self.season, params, session.config.seed)
        return forecaster.minimum_seconds(len(self.values), self.plan.windows)

    @staticmethod
    def model_params(spec: ForecastingConfig, model: str) -> dict[str, Any]:
        """A model's settings: the global models forecast the job's horizon, and the network
        learns the job's quantiles."""
        if model == "gbm":
            return {"horizon": spec.horizon}
        if model == "quantile-net":
            levels = [quantile_level(q) for q in spec.quantiles]
            return {"horizon": spec.horizon, "quantiles": levels}
        return {}
