"""The job spec: built once from a request, the API or the CLI, validated once, written and read
back whole; V1 requests read as the V2 request they amount to."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pandas as pd
import pytest

from mlpilot._types import Mode, ProblemType
from mlpilot.config import JobConfig, TabularConfig, problem_configs, v2_request
from mlpilot.errors import ConfigError
from mlpilot.problems import PROBLEM_TYPES
from mlpilot.profile import FeatureSpecification
from mlpilot.search import CandidateDefinition

ROLE = "arn:aws:iam::123456789012:role/mlpilot"


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AutoMLJobName": "churn",
        "AutoMLJobInputDataConfig": [
            {
                "ChannelType": "training",
                "ContentType": "text/csv;header=present",
                "CompressionType": "None",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/d/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "/out"},
        "AutoMLProblemTypeConfig": {
            "TabularJobConfig": {
                "TargetAttributeName": "Churn",
                "Mode": "HYPERPARAMETER_TUNING",
                "ProblemType": "BinaryClassification",
                "CompletionCriteria": {"MaxCandidates": 7, "MaxAutoMLJobRuntimeInSeconds": 90},
                "CandidateGenerationConfig": {
                    "AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost", "linear-learner"]}]
                },
                "SampleWeightAttributeName": "w",
            }
        },
        "AutoMLJobObjective": {"MetricName": "AUC"},
        "RoleArn": ROLE,
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    body.update(changes)
    return body


def tabular(**changes: Any) -> dict[str, Any]:
    body = request()
    body["AutoMLProblemTypeConfig"]["TabularJobConfig"].update(changes)
    return body


def test_a_request_becomes_one_typed_spec() -> None:
    config = JobConfig.from_request(request(), region="eu-west-1", parallelism=2)
    assert config.name == "churn" and config.output_path == "/out/churn"
    assert config.training_data == "/d/train" and config.validation_data is None
    assert config.objective == "AUC" and config.max_candidates == 7 and config.max_runtime == 90
    assert config.region == "eu-west-1" and config.parallelism == 2
    assert config.tags == ({"Key": "team", "Value": "ml"},)
    table = config.problem
    assert isinstance(table, TabularConfig) and table.config_name == "Tabular"
    assert table.target == "Churn" and table.problem_type is ProblemType.BINARY
    assert table.mode is Mode.HYPERPARAMETER_TUNING
    assert table.algorithms == ("xgboost", "linear-learner") and table.sample_weight == "w"
    # Written back, it is the request it was read from (the edge's shape round-trips).
    again = config.to_request()
    assert again == {**request(), "OutputDataConfig": {"S3OutputPath": "/out"}}


def test_the_reports_tag_turns_reports_off_and_round_trips() -> None:
    off = [{"Key": "mlpilot:GenerateReports", "Value": "False"}]
    config = JobConfig.from_request(request(Tags=off))
    assert config.generate_reports is False
    assert JobConfig.from_request(request()).generate_reports is True
    assert config.to_request()["Tags"] == off
    # Turned off through the API or CLI, the request it amounts to carries the tag.
    cli = JobConfig.from_request(request(Tags=[]), generate_reports=False)
    assert cli.to_request()["Tags"] == [{"Key": "mlpilot:GenerateReports", "Value": "false"}]
    with pytest.raises(ConfigError, match="mlpilot:GenerateReports must be true or false"):
        JobConfig.from_request(request(Tags=[{"Key": "mlpilot:GenerateReports", "Value": "no"}]))


def test_the_spec_file_keeps_every_field_including_mlpilots_own() -> None:
    definition = CandidateDefinition.builtin("lightgbm", "BinaryClassification", 500)
    config = JobConfig(
        name="spec",
        training_data="/d/train.csv",
        output_path="/out/spec",
        problem=TabularConfig(
            target="y",
            mode=Mode.HYPERPARAMETER_TUNING,
            feature_specification=FeatureSpecification(("a", "b"), {"a": "categorical"}),
            max_latency_ms=3.5,
            candidates=(definition,),
        ),
        validation_fraction=0.25,
        seed=7,
        generate_reports=False,
        region="ap-south-1",
        extra={"note": "kept"},
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["problem"]["ConfigName"] == "Tabular"
    back = JobConfig.from_dict(data)
    assert back.to_dict() == config.to_dict()
    table = back.problem
    assert isinstance(table, TabularConfig)
    assert table.candidates == (definition,) and table.max_latency_ms == 3.5
    assert table.feature_specification == FeatureSpecification(("a", "b"), {"a": "categorical"})
    assert back.seed == 7 and back.region == "ap-south-1" and back.extra == {"note": "kept"}


def test_a_dataframe_channel_is_named_but_not_reloaded() -> None:
    config = JobConfig.tabular(
        name="frame",
        training_data=pd.DataFrame({"x": [1, 2], "y": [0, 1]}),
        output_path="/out/frame",
        target="y",
    )
    data = config.to_dict()
    assert data["training_data"] == "dataframe://in-memory"
    with pytest.raises(ConfigError, match="training data was a DataFrame given in memory"):
        JobConfig.from_dict(data)
    with pytest.raises(ConfigError, match="unknown field"):
        JobConfig.from_dict({**data, "training_data": "/d.csv", "colour": "red"})


def test_flat_settings_split_between_the_job_and_the_table() -> None:
    config = JobConfig.tabular(
        name="flat",
        training_data="/d.csv",
        output_path="/out/flat",
        target="y",
        mode="ENSEMBLING",
        max_runtime=60,
        max_latency_ms=2.0,
    )
    assert config.max_runtime == 60
    assert isinstance(config.problem, TabularConfig)
    assert config.problem.mode is Mode.ENSEMBLING and config.problem.max_latency_ms == 2.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            request(AutoMLProblemTypeConfig={"ImageClassificationJobConfig": {}}),
            r"TabularJobConfig \(tabular jobs\), TimeSeriesForecastingJobConfig \(time-series "
            r"forecasting jobs\), TextClassificationJobConfig \(text classification jobs\); "
            r"got ImageClassificationJobConfig",
        ),
        (
            request(
                AutoMLJobInputDataConfig=[
                    {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/a"}}},
                    {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/b"}}},
                ]
            ),
            "exactly one training channel",
        ),
        (
            request(
                AutoMLJobInputDataConfig=[
                    {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/a"}}},
                    {
                        "ChannelType": "validation",
                        "ContentType": "x-application/vnd.amazon+parquet",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/b"}},
                    },
                ]
            ),
            "same ContentType",
        ),
        (
            request(
                AutoMLJobInputDataConfig=[
                    {
                        "ContentType": "application/json",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/a"}},
                    }
                ]
            ),
            "ContentType 'application/json' is not supported for tabular jobs",
        ),
        (
            request(
                AutoMLJobInputDataConfig=[
                    {
                        "DataSource": {
                            "S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": "/a"}
                        }
                    }
                ]
            ),
            "S3DataType must be S3Prefix or ManifestFile for tabular jobs",
        ),
        (
            request(
                AutoMLJobInputDataConfig=[
                    {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/a"}}},
                    {
                        "ChannelType": "validation",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/b"}},
                    },
                ],
                DataSplitConfig={"ValidationFraction": 0.2},
            ),
            "validation channel or DataSplitConfig, not both",
        ),
        (request(DataSplitConfig={"ValidationFraction": 1.0}), "ValidationFraction must be"),
        (request(OutputDataConfig={"S3OutputPath": "https://b.s3/x"}), "give an s3:// URI"),
        (tabular(Mode="AUTO"), "AlgorithmsConfig cannot be set when Mode is AUTO"),
        (
            tabular(
                CandidateGenerationConfig={"AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets"]}]}
            ),
            "ets is for time-series forecasting jobs only",
        ),
        (tabular(ProblemType="Regression"), "'AUC' does not apply to Regression"),
        (tabular(CompletionCriteria={"MaxCandidates": 0}), "MaxCandidates must be between"),
        (tabular(TargetAttributeName=""), "A target column is required"),
    ],
)
def test_each_rule_the_shapes_cannot_state_is_checked_once_when_the_spec_is_built(
    body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        JobConfig.from_request(body, output_path="/out/x")


def test_a_v1_request_reads_as_the_v2_request_it_amounts_to() -> None:
    v1 = {
        "AutoMLJobName": "old",
        "InputDataConfig": [
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/d"}},
                "TargetAttributeName": "y",
                "SampleWeightAttributeName": "w",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "/out"},
        "ProblemType": "Regression",
        "AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 3}, "Mode": "ENSEMBLING"},
        "RoleArn": ROLE,
    }
    v2 = v2_request(copy.deepcopy(v1))
    table = v2["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    assert table == {
        "TargetAttributeName": "y",
        "SampleWeightAttributeName": "w",
        "ProblemType": "Regression",
        "CompletionCriteria": {"MaxCandidates": 3},
        "Mode": "ENSEMBLING",
    }
    config = JobConfig.from_request(v2)
    assert isinstance(config.problem, TabularConfig) and config.problem.sample_weight == "w"
    two_targets = copy.deepcopy(v1)
    two_targets["InputDataConfig"].append({**v1["InputDataConfig"][0], "TargetAttributeName": "z"})
    with pytest.raises(ConfigError, match="same TargetAttributeName"):
        v2_request(two_targets)


def test_every_configurable_problem_type_has_an_implementation() -> None:
    assert set(problem_configs()) == set(PROBLEM_TYPES)
    with pytest.raises(ConfigError, match="problem must be one of TabularConfig"):
        JobConfig(name="x", training_data="/d", output_path="/o", problem="Tabular")  # type: ignore[arg-type]


# -- forecasting ---------------------------------------------------------------------------------
def forecasting_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ForecastFrequency": "W",
        "ForecastHorizon": 4,
        "ForecastQuantiles": ["p50", "p60", "p70", "p80", "p90"],
        "TimeSeriesConfig": {
            "TargetAttributeName": "demand",
            "TimestampAttributeName": "timestamp",
            "ItemIdentifierAttributeName": "product_code",
            "GroupingAttributeNames": ["location_code"],
        },
        "Transformations": {
            "Filling": {
                "demand": {"middlefill": "zero", "backfill": "value", "backfill_value": "2"},
                "price": {"futurefill": "mean", "middlefill": "median"},
            },
            "Aggregation": {"demand": "avg"},
        },
        "HolidayConfig": [{"CountryCode": "US"}],
        "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets", "npts"]}]},
    }
    body.update(changes)
    return body


def test_a_forecasting_request_body_round_trips_and_is_kept_whole() -> None:
    from mlpilot.config import ForecastingConfig

    body = forecasting_body()
    config = ForecastingConfig.from_request(body)
    assert config.config_name == "TimeSeriesForecasting"
    assert config.key_columns == ("product_code", "location_code")
    assert config.quantiles == ("p50", "p60", "p70", "p80", "p90") and config.horizon == 4
    assert config.algorithms == ("ets", "npts") and config.holiday_country == "US"
    assert config.to_request() == body
    again = ForecastingConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.to_dict() == config.to_dict()
    defaults = ForecastingConfig(target="y", timestamp="t", item_id="i", frequency="1D", horizon=7)
    assert defaults.quantiles == ("p10", "p50", "p90") and not defaults.candidates_only


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ForecastHorizon": 501}, "ForecastHorizon must be between 1 and 500"),
        ({"ForecastQuantiles": ["p0"]}, "must be p1 to p99"),
        ({"ForecastQuantiles": ["p100"]}, "must be p1 to p99"),
        ({"ForecastQuantiles": ["p10", "p10"]}, "repeats a quantile"),
        ({"ForecastQuantiles": ["p1", "p2", "p3", "p4", "p5", "p6"]}, "1 to 5 quantiles"),
        ({"HolidayConfig": [{"CountryCode": "usa"}]}, "two capital letters"),
        (
            {
                "CandidateGenerationConfig": {
                    "AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost"]}]
                }
            },
            "xgboost is not a time-series forecasting algorithm",
        ),
        (
            {"Transformations": {"Aggregation": {"price": "sum"}}},
            "Aggregation applies to the target column only; 'price' is not the target",
        ),
        (
            {"Transformations": {"Aggregation": {"demand": "median"}}},
            "Aggregation 'median' for 'demand' is not one of sum",
        ),
        (
            {"Transformations": {"Filling": {"demand": {"frontfill": "zero"}}}},
            "frontfill takes only 'none', for the target column only",
        ),
        (
            {"Transformations": {"Filling": {"demand": {"futurefill": "zero"}}}},
            "futurefill applies to covariates, not the target",
        ),
        (
            {"Transformations": {"Filling": {"price": {"middlefill": "value"}}}},
            "middlefill 'value' and middlefill_value go together",
        ),
        (
            {"Transformations": {"Filling": {"price": {"backfill_value": "3"}}}},
            "backfill_value needs backfill 'value'",
        ),
        (
            {
                "Transformations": {
                    "Filling": {"demand": {"backfill": "value", "backfill_value": "x"}}
                }
            },
            "is not a number",
        ),
        (
            {"Transformations": {"Filling": {"price": {"sidefill": "zero"}}}},
            "unknown key 'sidefill'",
        ),
        (
            {
                "TimeSeriesConfig": {
                    "TargetAttributeName": "demand",
                    "TimestampAttributeName": "demand",
                    "ItemIdentifierAttributeName": "product_code",
                }
            },
            "names a column twice",
        ),
    ],
)
def test_each_forecasting_rule_is_checked_with_a_message_naming_it(
    changes: dict[str, Any], message: str
) -> None:
    from mlpilot.config import ForecastingConfig

    with pytest.raises(ConfigError, match=message):
        ForecastingConfig.from_request(forecasting_body(**changes))


def test_a_forecasting_job_refuses_what_the_api_refuses_for_it() -> None:
    from mlpilot.config import ForecastingConfig

    series = ForecastingConfig(target="y", timestamp="t", item_id="i", frequency="D", horizon=7)
    with pytest.raises(ConfigError, match="DataSplitConfig and a validation channel"):
        series.check(
            JobConfig.tabular(
                name="x", training_data="/d", output_path="/o", target="y", validation_fraction=0.2
            )
        )
    with pytest.raises(ConfigError, match="does not apply to time-series forecasting"):
        series.check(
            JobConfig.tabular(
                name="x", training_data="/d", output_path="/o", target="y", objective="F1"
            )
        )


def latency_tagged(value: str) -> dict[str, Any]:
    return request(
        Tags=[{"Key": "team", "Value": "ml"}, {"Key": "mlpilot:MaxLatencyMs", "Value": value}]
    )


def test_the_latency_limit_travels_as_a_namespaced_tag_both_ways() -> None:
    config = JobConfig.from_request(latency_tagged("2.5"), output_path="/out/churn")
    assert isinstance(config.problem, TabularConfig) and config.problem.max_latency_ms == 2.5
    again = config.to_request()
    assert again["Tags"] == latency_tagged("2.5")["Tags"]  # kept once, not added twice
    assert JobConfig.from_dict(config.to_dict()).problem.max_latency_ms == 2.5  # type: ignore[attr-defined]
    # Set through the Python API (or the CLI), it is written as the tag the API reads.
    flat = JobConfig.tabular(
        name="flat", training_data="/d.csv", output_path="/out/flat", target="y", max_latency_ms=3
    )
    assert {"Key": "mlpilot:MaxLatencyMs", "Value": "3"} in flat.to_request()["Tags"]
    back = JobConfig.from_request(flat.to_request(), output_path="/out/flat")
    assert back.problem.max_latency_ms == 3  # type: ignore[attr-defined]
    assert "Tags" not in JobConfig.from_request(request(Tags=[])).to_request()


@pytest.mark.parametrize("value", ["0", "-1", "fast", "", "nan", "inf"])
def test_a_bad_latency_tag_is_refused_naming_the_tag(value: str) -> None:
    with pytest.raises(ConfigError, match=r"Tag mlpilot:MaxLatencyMs: expected a positive"):
        JobConfig.from_request(latency_tagged(value), output_path="/out/x")


def test_the_latency_tag_is_for_tabular_jobs_and_given_once() -> None:
    twice = latency_tagged("2")
    twice["Tags"].append({"Key": "mlpilot:MaxLatencyMs", "Value": "3"})
    with pytest.raises(ConfigError, match="given 2 times"):
        JobConfig.from_request(twice, output_path="/out/x")
    forecast = request(
        AutoMLProblemTypeConfig={"TimeSeriesForecastingJobConfig": forecasting_body()},
        AutoMLJobObjective=None,
        Tags=[{"Key": "mlpilot:MaxLatencyMs", "Value": "2"}],
    )
    with pytest.raises(ConfigError, match="applies to tabular jobs only"):
        JobConfig.from_request(forecast, output_path="/out/x")
    with pytest.raises(ConfigError, match="latency limit must be positive"):
        TabularConfig(target="y", max_latency_ms=float("inf"))


FAIRNESS_TAGS = [
    {"Key": "mlpilot:SensitiveAttribute", "Value": "gender"},
    {"Key": "mlpilot:MaxDisparity", "Value": "0.05"},
    {"Key": "mlpilot:DisparityMetric", "Value": "equalized_odds"},
]


def test_the_fairness_settings_travel_as_namespaced_tags_both_ways() -> None:
    config = JobConfig.from_request(request(Tags=FAIRNESS_TAGS), output_path="/out/churn")
    problem = config.problem
    assert isinstance(problem, TabularConfig)
    assert (problem.sensitive_attribute, problem.max_disparity, problem.disparity_metric) == (
        "gender",
        0.05,
        "equalized_odds",
    )
    assert config.to_request()["Tags"] == FAIRNESS_TAGS  # kept once, not added twice
    again = JobConfig.from_dict(config.to_dict()).problem
    assert isinstance(again, TabularConfig) and again.max_disparity == 0.05
    # Set through the Python API (or the CLI), they are written as the tags the API reads;
    # the default disparity metric travels too.
    flat = JobConfig.tabular(
        name="flat",
        training_data="/d.csv",
        output_path="/out/flat",
        target="y",
        sensitive_attribute="gender",
        max_disparity=0.1,
    )
    tags = flat.to_request()["Tags"]
    assert {"Key": "mlpilot:MaxDisparity", "Value": "0.1"} in tags
    assert {"Key": "mlpilot:DisparityMetric", "Value": "demographic_parity"} in tags
    back = JobConfig.from_request(flat.to_request(), output_path="/out/flat").problem
    assert isinstance(back, TabularConfig) and back.sensitive_attribute == "gender"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sensitive_attribute": "g", "max_disparity": 1.5}, "between 0 and 1; got 1.5"),
        ({"sensitive_attribute": "g", "max_disparity": -0.01}, "between 0 and 1"),
        ({"sensitive_attribute": "g", "max_disparity": float("nan")}, "between 0 and 1"),
        ({"max_disparity": 0.1}, "needs a sensitive attribute"),
        ({"sensitive_attribute": "g", "disparity_metric": "parity"}, "Unknown disparity metric"),
        ({"sensitive_attribute": "y"}, "cannot be the target"),
        (
            {"sensitive_attribute": "g", "problem_type": "Regression"},
            "apply to classification jobs; this job is a regression",
        ),
        (
            {
                "sensitive_attribute": "g",
                "max_disparity": 0.1,
                "problem_type": "MulticlassClassification",
            },
            "not defined for a multiclass job",
        ),
    ],
)
def test_bad_fairness_settings_are_refused_naming_the_problem(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        TabularConfig(target="y", **settings)


def test_a_bad_fairness_tag_is_refused_naming_the_tag() -> None:
    tags = [FAIRNESS_TAGS[0], {"Key": "mlpilot:MaxDisparity", "Value": "low"}]
    with pytest.raises(ConfigError, match="Tag mlpilot:MaxDisparity: expected a number between 0"):
        JobConfig.from_request(request(Tags=tags), output_path="/out/x")
    with pytest.raises(ConfigError, match="given 2 times"):
        JobConfig.from_request(request(Tags=[*FAIRNESS_TAGS, FAIRNESS_TAGS[0]]), output_path="/x")
    forecast = request(
        AutoMLProblemTypeConfig={"TimeSeriesForecastingJobConfig": forecasting_body()},
        AutoMLJobObjective=None,
        Tags=FAIRNESS_TAGS[:1],
    )
    with pytest.raises(ConfigError, match="apply to tabular jobs only"):
        JobConfig.from_request(forecast, output_path="/out/x")
