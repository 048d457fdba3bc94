"""A forecasting job's settings: CreateAutoMLJobV2's ``TimeSeriesForecastingJobConfig``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from mlpilot.errors import ConfigError
from mlpilot.metrics import forecast_metric_names

if TYPE_CHECKING:
    from mlpilot.config._job import JobConfig

__all__ = ["ForecastingConfig"]

CSV = "text/csv;header=present"
PARQUET = "x-application/vnd.amazon+parquet"
CONTENT_TYPES = (CSV, "text/csv", PARQUET)
DEFAULT_QUANTILES = ("p10", "p50", "p90")
MAX_HORIZON = 500
#: Autopilot's time-series algorithms (``AutoMLAlgorithms`` for this problem type); none given
#: means all of them.
ALGORITHMS = ("cnn-qr", "deepar", "prophet", "npts", "arima", "ets")
_QUANTILE = re.compile(r"^p[1-9]\d?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
#: Transformations.Filling: the ways a gap is filled, by where it is (SageMaker's FillingType).
_FILL_WHERE = ("frontfill", "middlefill", "backfill", "futurefill")
_FILL_METHODS = ("zero", "value", "median", "mean", "min", "max")
AGGREGATIONS = ("sum", "avg", "first", "min", "max")


@dataclass(frozen=True, eq=False)
class ForecastingConfig:
    """Forecasts of one numeric column per item (and grouping), ``horizon`` steps of
    ``frequency`` ahead, as a mean and quantiles.

    Fields mirror ``TimeSeriesForecastingJobConfig``: ``TimeSeriesConfig`` (``target``,
    ``timestamp``, ``item_id``, ``grouping``), ``ForecastFrequency`` (Autopilot's strings, e.g.
    ``1D``, ``W``, ``3M``, ``30min``; pandas offset aliases such as ``MS``, ``QS-JAN`` or
    ``W-FRI`` are accepted too), ``ForecastHorizon``, ``ForecastQuantiles``,
    ``Transformations`` (``filling`` per column, ``aggregation`` of the target),
    ``HolidayConfig`` (``holiday_country``), ``FeatureSpecificationS3Uri`` and
    ``CandidateGenerationConfig.AlgorithmsConfig``.
    """

    config_name: ClassVar[str] = "TimeSeriesForecasting"
    default_content_type: ClassVar[str] = CSV

    target: str
    timestamp: str
    item_id: str
    frequency: str
    horizon: int
    quantiles: tuple[str, ...] = DEFAULT_QUANTILES
    #: GroupingAttributeNames: with the item id, the key of a series.
    grouping: tuple[str, ...] = ()
    #: Transformations.Filling: column → {FillingType: method or value}.
    filling: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Transformations.Aggregation: the target column → sum | avg | first | min | max.
    aggregation: dict[str, str] = field(default_factory=dict)
    holiday_country: str | None = None
    feature_specification: str | None = None
    algorithms: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for label, name in (
            ("TargetAttributeName", self.target),
            ("TimestampAttributeName", self.timestamp),
            ("ItemIdentifierAttributeName", self.item_id),
        ):
            if not isinstance(name, str) or not name:
                raise ConfigError(f"TimeSeriesConfig.{label} is required")
        object.__setattr__(self, "grouping", tuple(self.grouping))
        object.__setattr__(self, "quantiles", tuple(self.quantiles))
        key = [self.item_id, *self.grouping]
        named = [self.target, self.timestamp, *key]
        if len(set(named)) != len(named):
            raise ConfigError(
                "TimeSeriesConfig names a column twice: the target, timestamp, item id and "
                f"grouping columns must differ; got {named}"
            )
        if len(self.grouping) > 5:
            raise ConfigError(
                f"GroupingAttributeNames takes at most 5 columns; got {len(self.grouping)}"
            )
        if not isinstance(self.frequency, str) or not self.frequency.strip():
            raise ConfigError("ForecastFrequency is required (e.g. 1D, W, 1M, 1H, 30min)")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int):
            raise ConfigError(f"ForecastHorizon must be a whole number; got {self.horizon!r}")
        if not 1 <= self.horizon <= MAX_HORIZON:
            raise ConfigError(
                f"ForecastHorizon must be between 1 and {MAX_HORIZON}; got {self.horizon}"
            )
        self._check_quantiles()
        self._check_transformations()
        if self.holiday_country is not None and not _COUNTRY.fullmatch(self.holiday_country):
            raise ConfigError(
                f"HolidayConfig.CountryCode must be two capital letters (ISO 3166-1 alpha-2, "
                f"e.g. US); got {self.holiday_country!r}"
            )
        if self.algorithms is not None:
            object.__setattr__(self, "algorithms", tuple(self.algorithms))
            unknown = [a for a in self.algorithms if a not in ALGORITHMS]
            if unknown:
                raise ConfigError(
                    f"Algorithm {unknown[0]} is not a time-series forecasting algorithm; "
                    f"choose from {', '.join(ALGORITHMS)}"
                )

    def _check_quantiles(self) -> None:
        if not 1 <= len(self.quantiles) <= 5:
            raise ConfigError(
                f"ForecastQuantiles takes 1 to 5 quantiles; got {len(self.quantiles)}"
            )
        for name in self.quantiles:
            if not isinstance(name, str) or not _QUANTILE.fullmatch(name):
                raise ConfigError(
                    f"Forecast quantile {name!r} must be p1 to p99 (e.g. p10, p50, p90)"
                )
        if len(set(self.quantiles)) != len(self.quantiles):
            raise ConfigError(f"ForecastQuantiles repeats a quantile: {list(self.quantiles)}")

    def _check_transformations(self) -> None:
        if len(self.filling) > 50:
            raise ConfigError(
                f"Transformations.Filling takes at most 50 columns; got {len(self.filling)}"
            )
        for column, rules in self.filling.items():
            _check_filling(column, rules, is_target=column == self.target)
        for column, how in self.aggregation.items():
            if column != self.target:
                raise ConfigError(
                    f"Transformations.Aggregation applies to the target column "
                    f"{self.target!r} only; got {column!r}"
                )
            if how not in AGGREGATIONS:
                raise ConfigError(
                    f"Aggregation {how!r} of {column!r} must be one of {', '.join(AGGREGATIONS)}"
                )

    @property
    def candidates_only(self) -> bool:
        return False  # GenerateCandidateDefinitionsOnly is a tabular setting

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The columns whose values name a series: the item id, then the grouping columns."""
        return (self.item_id, *self.grouping)

    def check(self, job: JobConfig) -> None:
        names = forecast_metric_names()
        if job.objective is not None and job.objective not in names:
            raise ConfigError(
                f"Objective metric {job.objective!r} does not apply to time-series forecasting; "
                f"valid names: {', '.join(names)}"
            )
        if job.content_type not in (None, *CONTENT_TYPES):
            raise ConfigError(
                f"ContentType {job.content_type!r} is not supported for time-series forecasting "
                f"jobs; use {CSV!r} or {PARQUET!r}"
            )
        if job.data_type not in ("S3Prefix", "ManifestFile"):
            raise ConfigError(
                f"S3DataType must be S3Prefix or ManifestFile for time-series forecasting jobs; "
                f"got {job.data_type!r}"
            )
        if job.validation_fraction is not None or job.validation_data is not None:
            raise ConfigError(
                "DataSplitConfig and a validation channel must not be set for time-series "
                "forecasting: the job backtests on the end of each series"
            )

    # -- TimeSeriesForecastingJobConfig -------------------------------------------------------
    @classmethod
    def from_request(cls, body: dict[str, Any]) -> ForecastingConfig:
        series = body.get("TimeSeriesConfig") or {}
        transformations = body.get("Transformations") or {}
        generation = body.get("CandidateGenerationConfig") or {}
        algorithms = None
        if generation.get("AlgorithmsConfig"):
            names = generation["AlgorithmsConfig"][0].get("AutoMLAlgorithms") or []
            algorithms = tuple(names) if names else None
        holidays = body.get("HolidayConfig") or []
        return cls(
            target=series.get("TargetAttributeName", ""),
            timestamp=series.get("TimestampAttributeName", ""),
            item_id=series.get("ItemIdentifierAttributeName", ""),
            grouping=tuple(series.get("GroupingAttributeNames") or ()),
            frequency=body.get("ForecastFrequency", ""),
            horizon=body.get("ForecastHorizon", 0),
            quantiles=tuple(body.get("ForecastQuantiles") or DEFAULT_QUANTILES),
            filling={k: dict(v) for k, v in (transformations.get("Filling") or {}).items()},
            aggregation=dict(transformations.get("Aggregation") or {}),
            holiday_country=holidays[0].get("CountryCode") if holidays else None,
            feature_specification=body.get("FeatureSpecificationS3Uri"),
            algorithms=algorithms,
        )

    def to_request(self) -> dict[str, Any]:
        series: dict[str, Any] = {
            "TargetAttributeName": self.target,
            "TimestampAttributeName": self.timestamp,
            "ItemIdentifierAttributeName": self.item_id,
        }
        if self.grouping:
            series["GroupingAttributeNames"] = list(self.grouping)
        body: dict[str, Any] = {
            "ForecastFrequency": self.frequency,
            "ForecastHorizon": self.horizon,
            "ForecastQuantiles": list(self.quantiles),
            "TimeSeriesConfig": series,
        }
        transformations: dict[str, Any] = {}
        if self.filling:
            transformations["Filling"] = {k: dict(v) for k, v in self.filling.items()}
        if self.aggregation:
            transformations["Aggregation"] = dict(self.aggregation)
        if transformations:
            body["Transformations"] = transformations
        if self.holiday_country:
            body["HolidayConfig"] = [{"CountryCode": self.holiday_country}]
        if self.feature_specification:
            body["FeatureSpecificationS3Uri"] = self.feature_specification
        if self.algorithms is not None:
            body["CandidateGenerationConfig"] = {
                "AlgorithmsConfig": [{"AutoMLAlgorithms": list(self.algorithms)}]
            }
        return body

    # -- the spec file -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "timestamp": self.timestamp,
            "item_id": self.item_id,
            "frequency": self.frequency,
            "horizon": self.horizon,
            "quantiles": list(self.quantiles),
            "grouping": list(self.grouping),
            "filling": {k: dict(v) for k, v in self.filling.items()},
            "aggregation": dict(self.aggregation),
            "holiday_country": self.holiday_country,
            "feature_specification": self.feature_specification,
            "algorithms": None if self.algorithms is None else list(self.algorithms),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForecastingConfig:
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"Job spec: bad forecasting config: {exc}") from None


def _check_filling(column: str, rules: dict[str, str], *, is_target: bool) -> None:
    """One column's Filling rules: ``{"middlefill": "zero", "backfill": "value",
    "backfill_value": "2"}``."""
    if not isinstance(rules, dict) or len(rules) > 6:
        raise ConfigError(f"Filling of {column!r} must map at most 6 filling types to methods")
    valid_keys = {*_FILL_WHERE, *(f"{w}_value" for w in _FILL_WHERE)}
    for key, method in rules.items():
        if key not in valid_keys:
            raise ConfigError(
                f"Filling of {column!r}: unknown filling type {key!r}; use "
                f"{', '.join(_FILL_WHERE)} (or <type>_value with the value)"
            )
        if key.endswith("_value"):
            if rules.get(key[: -len("_value")]) != "value":
                raise ConfigError(
                    f"Filling of {column!r}: {key} is given but {key[: -len('_value')]} is not "
                    "'value'"
                )
            try:
                float(method)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"Filling of {column!r}: {key} must be a number; got {method!r}"
                ) from None
            continue
        if key == "frontfill":
            if method != "none":
                raise ConfigError(
                    f"Filling of {column!r}: frontfill can only be 'none' (series start when "
                    f"their data starts); got {method!r}"
                )
            continue
        if is_target and key == "futurefill":
            raise ConfigError(
                f"Filling of the target {column!r}: futurefill applies to covariates only (the "
                "future target is what is forecast)"
            )
        if method not in _FILL_METHODS:
            raise ConfigError(
                f"Filling of {column!r}: {key} must be one of {', '.join(_FILL_METHODS)}; got "
                f"{method!r}"
            )
        if method == "value" and f"{key}_value" not in rules:
            raise ConfigError(f"Filling of {column!r}: {key} is 'value' but {key}_value is missing")
