"""A forecasting job's settings: CreateAutoMLJobV2's ``TimeSeriesForecastingJobConfig``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from mlpilot.config._channels import CSV, check_table_channels
from mlpilot.errors import ConfigError
from mlpilot.metrics import DEFAULT_QUANTILES, forecast_metric_names

if TYPE_CHECKING:
    from mlpilot.config._job import JobConfig

#: Autopilot's time-series algorithms (``AutoMLAlgorithms`` for this problem type); none given
#: means all of them.
ALGORITHMS = ("cnn-qr", "deepar", "prophet", "npts", "arima", "ets")
_QUANTILE = re.compile(r"^p[1-9]\d?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


MAX_HORIZON = 500


def check_holiday_country(code: str) -> None:
    """:class:`ConfigError` unless ``code`` is a country the ``holidays`` package has a
    calendar of."""
    if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
        raise ConfigError(
            f"HolidayConfig.CountryCode must be two capital letters (ISO 3166-1 alpha-2, "
            f"e.g. US); got {code!r}"
        )
    import holidays

    if code not in holidays.list_supported_countries():
        raise ConfigError(
            f"HolidayConfig.CountryCode {code!r} has no holiday calendar in the holidays "
            f"package {holidays.__version__}: give a country it covers (e.g. US, GB, DE, AU)"
        )


FILL_METHODS = ("zero", "value", "median", "mean", "min", "max")
AGGREGATIONS = ("sum", "avg", "first", "min", "max")
_REGIONS = {"middlefill": "middle", "backfill": "back", "futurefill": "future"}


@dataclass(frozen=True)
class Fill:
    """One filling method: ``zero``, ``value`` (with its value), ``median``, ``mean``, ``min``
    or ``max``."""

    method: str
    value: str | None = None

    def __str__(self) -> str:
        return f"value {self.value}" if self.method == "value" else self.method


@dataclass(frozen=True)
class ColumnFilling:
    """A column's filling; None leaves that region to the defaults."""

    middle: Fill | None = None
    back: Fill | None = None
    future: Fill | None = None


@dataclass(frozen=True)
class Transformations:
    """TimeSeriesTransformations, checked: per-column filling and the target's aggregation."""

    filling: Mapping[str, ColumnFilling] = field(default_factory=dict)
    #: None: not set (sum applies when the data are finer than the frequency).
    aggregation: str | None = None


def parse_transformations(
    filling: Mapping[str, Mapping[str, str]] | None,
    aggregation: Mapping[str, str] | None,
    *,
    target: str,
    reserved: Sequence[str] = (),
) -> Transformations:
    """TimeSeriesTransformations' Filling and Aggregation maps as :class:`Transformations`;
    :class:`ConfigError` for what the API does not allow. ``reserved``: the timestamp, item id
    and grouping columns, which nothing fills."""
    columns: dict[str, ColumnFilling] = {}
    for column, spec in (filling or {}).items():
        if column in reserved:
            raise ConfigError(f"Filling cannot name {column!r}: it is a TimeSeriesConfig column")
        columns[column] = _column_filling(column, dict(spec), column == target)
    method = None
    for column, value in (aggregation or {}).items():
        if column != target:
            raise ConfigError(
                f"Aggregation applies to the target column only; {column!r} is not the target"
            )
        if value not in AGGREGATIONS:
            raise ConfigError(
                f"Aggregation {value!r} for {column!r} is not one of {', '.join(AGGREGATIONS)}"
            )
        method = value
    return Transformations(columns, method)


def _column_filling(column: str, spec: dict[str, str], is_target: bool) -> ColumnFilling:
    where = f"Filling for {column!r}"
    front = spec.pop("frontfill", None)
    if front is not None and (not is_target or front != "none"):
        raise ConfigError(f"{where}: frontfill takes only 'none', for the target column only")
    if spec.pop("frontfill_value", None) is not None:
        raise ConfigError(f"{where}: frontfill takes no value")
    fills: dict[str, Fill] = {}
    for key in list(spec):
        if key.endswith("_value"):
            continue
        if key not in _REGIONS:
            raise ConfigError(
                f"{where}: unknown key {key!r} (frontfill, middlefill, backfill, futurefill, "
                "and <method>_value for a value)"
            )
        if key == "futurefill" and is_target:
            raise ConfigError(f"{where}: futurefill applies to covariates, not the target")
        method = spec[key]
        if method not in FILL_METHODS:
            raise ConfigError(f"{where}: {key} {method!r} is not one of {', '.join(FILL_METHODS)}")
        value = spec.get(f"{key}_value")
        if (method == "value") != (value is not None):
            raise ConfigError(
                f"{where}: {key} 'value' and {key}_value go together"
                if method == "value"
                else f"{where}: {key}_value needs {key} 'value'"
            )
        if is_target and value is not None:
            fill_number(value, f"{where}: {key}_value")
        fills[_REGIONS[key]] = Fill(method, value)
    for key in spec:
        if key.endswith("_value") and key.removesuffix("_value") not in spec:
            raise ConfigError(f"{where}: {key} needs {key.removesuffix('_value')} 'value'")
    return ColumnFilling(**fills)


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
    jobs: ClassVar[str] = "time-series forecasting jobs"

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
    #: ``filling`` and ``aggregation``, checked (see :attr:`transformations`).
    _transformations: Transformations = field(init=False, repr=False)

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
        if self.holiday_country is not None:
            check_holiday_country(self.holiday_country)
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
        # Parsed (and so checked) once; the series preparation applies it.
        parsed = parse_transformations(
            self.filling,
            self.aggregation,
            target=self.target,
            reserved=(self.timestamp, *self.key_columns),
        )
        object.__setattr__(self, "_transformations", parsed)

    @property
    def transformations(self) -> Transformations:
        """``Transformations`` checked: each column's filling and the target's aggregation."""
        return self._transformations

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
        check_table_channels(job, self.jobs)
        if job.validation_fraction is not None or job.validation_data is not None:
            raise ConfigError(
                "DataSplitConfig and a validation channel must not be set for time-series "
                "forecasting: the job backtests on the end of each series"
            )
        if job.split_by_time is not None or job.split_by_group is not None:
            raise ConfigError(
                "A time or group split is for tabular jobs: time-series forecasting backtests "
                "on the end of each series"
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


def fill_number(text: str | None, what: str) -> float:
    """A filling value given as text (``backfill_value``), as a finite number."""
    try:
        value = float(str(text))
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise ConfigError(f"{what} {text!r} is not a number")
    return value
