"""Objectives beyond SageMaker's list: the cost matrix (Bayes decision, expected cost, the
decision in the package) and a user metric (entry point, direction, failures)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers_data import PIMA
from helpers_models import linear_trial
from mlpilot import load_model
from mlpilot._types import ProblemType
from mlpilot.config import COST_MATRIX_TAG, OBJECTIVE_TAG, JobConfig, TabularConfig
from mlpilot.errors import ConfigError
from mlpilot.jobs import load_job
from mlpilot.metrics import (
    CostMatrix,
    ObjectiveError,
    ObjectiveFunction,
    activate_objective,
    bayes_decision,
    expected_cost,
    get_metric,
    score_all,
)
from mlpilot.package import InferenceModel
from mlpilot.profile import build_profile
from mlpilot.search import run_trial, write_prepared

COSTS = {"labels": ["no", "yes"], "costs": [[0, 1], [5, 0]]}

METRICS_MODULE = """
import numpy as np

def profit(y_true, y_pred, sample_weight):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.sum((y_pred == "yes") & (y_true == "yes")) * 10
                 - np.sum((y_pred == "yes") & (y_true == "no")) * 3)

def seen(y_true, y_pred, sample_weight):
    SEEN.append((y_true, y_pred, sample_weight))
    return 1.0

SEEN = []

def broken(y_true, y_pred, sample_weight):
    raise ValueError("no profit today")

def undefined(y_true, y_pred, sample_weight):
    return float("nan")
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A metrics module importable by name (here and in spawned workers)."""
    name = f"objective_metrics_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(METRICS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    activate_objective(None, ProblemType.BINARY, [])
    sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _no_objective_left() -> Iterator[None]:
    yield
    activate_objective(None, ProblemType.BINARY, [])


# -- the cost matrix ---------------------------------------------------------------------------
def test_bayes_decision_beats_argmax_on_expected_cost_on_held_out_rows() -> None:
    rng = np.random.default_rng(0)
    costs = np.array([[0.0, 1.0, 2.0], [10.0, 0.0, 1.0], [20.0, 4.0, 0.0]])
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=4000)
    # Calibrated by construction: each row's class is drawn from its probabilities.
    y = np.array([rng.choice(3, p=p) for p in proba])
    bayes = expected_cost(y, bayes_decision(proba, costs), costs)
    argmax = expected_cost(y, proba.argmax(axis=1), costs)
    assert bayes < 0.8 * argmax
    # Each row's decision is the column of least expected cost.
    row = proba[0]
    assert bayes_decision(proba[:1], costs)[0] == int(np.argmin(row @ costs))


def test_expected_cost_objective_ranks_lower_first_and_decides_label_metrics() -> None:
    active = activate_objective(CostMatrix.parse(COSTS), ProblemType.BINARY, ["no", "yes"])
    assert active is not None
    metric = get_metric("ExpectedCost", ProblemType.BINARY)
    assert not metric.maximize and metric.is_better(0.1, 0.2)
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.8, 0.2]])
    scores = score_all(ProblemType.BINARY, y, proba, n_classes=2)
    # p(yes) > 1/6 predicts yes: rows 1-3 are predicted yes, row 0 no.
    assert scores["ExpectedCost"] == pytest.approx((0 + 0 + 0 + 1) / 4)
    assert scores["Recall"] == 1.0  # the label metrics score the cost decision, not arg-max
    assert scores["Accuracy"] == pytest.approx(3 / 4)


def test_cost_matrix_is_aligned_to_the_targets_class_order() -> None:
    matrix = CostMatrix.parse({"labels": [1, 0], "costs": [[0, 7], [2, 0]]})
    assert matrix.labels == ("1", "0")
    aligned = matrix.aligned(["0", "1"])
    # costs[actual 1][predicted 0] = 7 stays where actual is "1", predicted "0".
    assert aligned.tolist() == [[0.0, 2.0], [7.0, 0.0]]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"labels": ["no", "yes"]}, 'must be a JSON object with "labels" and "costs"'),
        ({"labels": ["no", "yes"], "costs": [[0, 1, 2], [1, 0, 2]]}, "must be a 2x2 matrix"),
        ({"labels": ["no", "yes"], "costs": [[0, 1]]}, "must be a 2x2 matrix"),
        ({"labels": ["no", "yes"], "costs": [[0, -1], [5, 0]]}, "costs[0][1] is -1"),
        ({"labels": ["no", "yes"], "costs": [[0, "x"], [5, 0]]}, "every cost must be a number"),
        ({"labels": ["no"], "costs": [[0]]}, "two or more class labels"),
        ({"labels": ["no", "no"], "costs": [[0, 1], [1, 0]]}, "labels repeat a class"),
    ],
)
def test_bad_cost_matrix_is_named(document: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        CostMatrix.parse(document)
    assert fragment in str(caught.value)


def test_cost_matrix_labels_must_be_the_targets_classes() -> None:
    with pytest.raises(ConfigError) as caught:
        activate_objective(CostMatrix.parse(COSTS), ProblemType.BINARY, ["No", "Yes"])
    message = str(caught.value)
    assert "['No', 'Yes'] are not in it" in message
    assert "['no', 'yes'] are not classes of the target" in message


def test_cost_matrix_refuses_regression() -> None:
    with pytest.raises(ConfigError, match="binary and multiclass classification"):
        activate_objective(CostMatrix.parse(COSTS), ProblemType.REGRESSION, [])
    with pytest.raises(ConfigError, match="not Regression"):
        TabularConfig(target="y", problem_type="Regression", cost_matrix=CostMatrix.parse(COSTS))


def test_cost_matrix_reads_a_file_and_refuses_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(COSTS))
    assert CostMatrix.load(str(path)) == CostMatrix.load(f"file://{path}")
    assert CostMatrix.load(json.dumps(COSTS)).costs == ((0.0, 1.0), (5.0, 0.0))
    with pytest.raises(ConfigError, match="is not valid JSON"):
        CostMatrix.load("{labels: no}")
    with pytest.raises(ConfigError, match="cannot read it"):
        CostMatrix.load(str(tmp_path / "missing.json"))


def _request(*tags: dict[str, str]) -> dict[str, Any]:
    return {
        "AutoMLJobName": "costly",
        "AutoMLJobInputDataConfig": [
            {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/data/in"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "/data/out"},
        "AutoMLProblemTypeConfig": {"TabularJobConfig": {"TargetAttributeName": "y"}},
        "RoleArn": "arn:aws:iam::000000000000:role/x",
        "Tags": list(tags),
    }


def test_tags_make_the_custom_objectives_and_survive_the_spec_and_the_request(
    tmp_path: Path,
) -> None:
    # A tag value allows no JSON: the matrix goes inline, rows "actual=costs" split by "/".
    config = JobConfig.from_request(
        _request({"Key": COST_MATRIX_TAG, "Value": "no=0:1/yes=5:0"}), output_path="/tmp/x"
    )
    spec = config.problem_as(TabularConfig)
    assert spec.cost_matrix == CostMatrix.parse(COSTS)
    assert JobConfig.from_dict(json.loads(json.dumps(config.to_dict()))).problem_as(
        TabularConfig
    ).cost_matrix == CostMatrix.parse(COSTS)
    tags = {t["Key"]: t["Value"] for t in config.to_request()["Tags"]}
    assert tags[COST_MATRIX_TAG] == "no=0:1/yes=5:0"
    # ... or names its JSON document.
    (tmp_path / "costs.json").write_text(json.dumps(COSTS))
    located = JobConfig.from_request(
        _request({"Key": COST_MATRIX_TAG, "Value": f"file://{tmp_path}/costs.json"}),
        output_path="/tmp/x",
    )
    assert located.problem_as(TabularConfig).cost_matrix == CostMatrix.parse(COSTS)
    user = JobConfig.from_request(
        _request(
            {"Key": OBJECTIVE_TAG, "Value": "mypkg.metrics:profit"},
            {"Key": "mlpilot:ObjectiveDirection", "Value": "Minimize"},
            {"Key": "mlpilot:ObjectiveInput", "Value": "probabilities"},
        ),
        output_path="/tmp/x",
    )
    function = user.problem_as(TabularConfig).objective_function
    assert function == ObjectiveFunction("mypkg.metrics:profit", False, True)
    again = JobConfig.from_request(user.to_request(), output_path="/tmp/x")
    assert again.problem_as(TabularConfig).objective_function == function
    assert "AutoMLJobObjective" not in user.to_request()


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ([{"Key": OBJECTIVE_TAG, "Value": "mypkg:profit"}], "needs tag mlpilot:ObjectiveDirection"),
        (
            [
                {"Key": OBJECTIVE_TAG, "Value": "mypkg:profit"},
                {"Key": "mlpilot:ObjectiveDirection", "Value": "up"},
            ],
            "Maximize or Minimize; got 'up'",
        ),
        (
            [
                {"Key": OBJECTIVE_TAG, "Value": "os.system"},
                {"Key": "mlpilot:ObjectiveDirection", "Value": "Maximize"},
            ],
            "give a Python entry point package.module:function",
        ),
        ([{"Key": "mlpilot:ObjectiveDirection", "Value": "Maximize"}], "goes with tag"),
        ([{"Key": COST_MATRIX_TAG, "Value": "no 0 1"}], 'expected rows "actual=cost:cost:..."'),
        ([{"Key": COST_MATRIX_TAG, "Value": "no=0:x/yes=5:0"}], "cost 'x' in the row of class"),
        ([{"Key": COST_MATRIX_TAG, "Value": "/no/such/costs.json"}], "cannot read"),
        (
            [
                {"Key": COST_MATRIX_TAG, "Value": "no=0:1/yes=5:0"},
                {"Key": OBJECTIVE_TAG, "Value": "mypkg:profit"},
                {"Key": "mlpilot:ObjectiveDirection", "Value": "Maximize"},
            ],
            "either a cost matrix or a user objective",
        ),
    ],
)
def test_bad_objective_tags_are_named(tags: list[dict[str, str]], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JobConfig.from_request(_request(*tags), output_path="/tmp/x")
    assert fragment in str(caught.value)


def test_a_sagemaker_objective_and_a_cost_matrix_do_not_go_together() -> None:
    request = _request({"Key": COST_MATRIX_TAG, "Value": "no=0:1/yes=5:0"})
    request["AutoMLJobObjective"] = {"MetricName": "F1"}
    with pytest.raises(ConfigError, match="either the objective metric F1 or a cost matrix"):
        JobConfig.from_request(request, output_path="/tmp/x")


def test_package_predicts_the_cost_minimising_label(tmp_path: Path) -> None:
    table = pd.DataFrame({"x": np.arange(40.0), "y": ["no", "yes"] * 20})
    profile = build_profile(table, "y")
    profile.target.decision_costs = [[0.0, 1.0], [5.0, 0.0]]  # labels: no, yes

    class Half:
        def predict_proba(self, matrix: Any) -> np.ndarray:
            return np.tile([0.75, 0.25], (len(matrix), 1))

    class Pipe:
        cleaner_ = None

    model = InferenceModel.build([(Pipe(), Half())], profile, candidate={"CandidateName": "c"})
    assert model.info["candidate"]["DecisionCosts"] == [[0.0, 1.0], [5.0, 0.0]]
    # Expected cost of "no": 0.25 * 5; of "yes": 0.75 * 1: "yes" although "no" is likelier.
    assert model.decide(np.array([[0.75, 0.25]])).tolist() == [1]
    assert model.decide(np.array([[0.9, 0.1]])).tolist() == [0]


# -- the user metric ---------------------------------------------------------------------------
def test_user_metric_is_loaded_and_its_direction_respected(user_module: str) -> None:
    function = ObjectiveFunction(f"{user_module}:profit", maximize=True)
    activate_objective(function, ProblemType.BINARY, ["no", "yes"])
    metric = get_metric(function.entry_point, ProblemType.BINARY)
    assert metric.maximize and metric.is_better(10.0, 3.0)
    y = np.array([1, 0, 1])
    proba = np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    scores = score_all(ProblemType.BINARY, y, proba, n_classes=2)
    assert scores[function.entry_point] == 10 - 3  # labels arrive as the target spells them
    minimised = ObjectiveFunction(f"{user_module}:profit", maximize=False)
    activate_objective(minimised, ProblemType.BINARY, ["no", "yes"])
    assert get_metric(function.entry_point).is_better(3.0, 10.0)


def test_user_metric_of_probabilities_gets_a_frame_by_label(user_module: str) -> None:
    function = ObjectiveFunction(f"{user_module}:seen", maximize=True, probabilities=True)
    activate_objective(function, ProblemType.MULTICLASS, ["a", "b", "c"])
    proba = np.array([[0.2, 0.5, 0.3]])
    weight = np.array([2.0])
    score_all(ProblemType.MULTICLASS, np.array([2]), proba, sample_weight=weight, n_classes=3)
    truth, pred, w = sys.modules[user_module].SEEN[-1]
    assert truth.tolist() == ["c"]
    assert list(pred.columns) == ["a", "b", "c"] and pred.iloc[0]["b"] == 0.5
    assert w.tolist() == [2.0]


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        ("broken", "raised ValueError: no profit today"),
        ("undefined", "returned nan, not a finite number"),
    ],
)
def test_failing_user_metric_fails_the_candidate_with_its_reason(
    user_module: str, tmp_path: Path, function: str, fragment: str
) -> None:
    raw = pd.read_csv(PIMA).head(120)
    raw["Outcome"] = raw["Outcome"].map({0: "no", 1: "yes"})
    profile = build_profile(raw, "Outcome")
    entry = f"{user_module}:{function}"
    write_prepared(
        tmp_path / "data",
        raw,
        profile,
        np.arange(len(raw)) % 2,
        ObjectiveFunction(entry, maximize=True),
    )
    result = run_trial(linear_trial(tmp_path / "data", len(raw), entry, (0, 1)))
    assert result.status == "Failed"
    assert result.failure_reason == f"ObjectiveError: objective {entry} {fragment}"


def test_user_metric_module_is_not_imported_until_scored(user_module: str) -> None:
    activate_objective(
        ObjectiveFunction(f"{user_module}:profit", maximize=True), ProblemType.BINARY, ["a", "b"]
    )
    assert user_module not in sys.modules
    with pytest.raises(ObjectiveError, match="raised"):
        activate_objective(
            ObjectiveFunction(f"{user_module}:broken", True), ProblemType.BINARY, ["a", "b"]
        ).fn(np.array([0]), np.array([[1.0, 0.0]]), None, 1, 2)  # type: ignore[union-attr]
    assert user_module in sys.modules


def test_allowed_modules_are_whole_module_prefixes() -> None:
    function = ObjectiveFunction("mypkg.metrics:profit", maximize=True)
    assert function.allowed_by(["mypkg"]) and function.allowed_by(["mypkg.metrics"])
    assert not function.allowed_by(["mypk", "mypkg.metricsx", "other"])
    assert not function.allowed_by([])


def test_user_metric_that_cannot_be_loaded_is_named(user_module: str) -> None:
    with pytest.raises(ConfigError, match="cannot import no_such_module_here"):
        ObjectiveFunction("no_such_module_here:f", maximize=True).load()
    with pytest.raises(ConfigError, match=f"{user_module} has no function missing"):
        ObjectiveFunction(f"{user_module}:missing", maximize=True).load()


# -- one whole job -----------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_job_with_a_cost_matrix_predicts_the_cost_minimising_label(tmp_path: Path) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"labels": [0, 1], "costs": [[0, 1], [4, 0]]}))
    out = tmp_path / "run"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlpilot.cli.main",
            "run",
            str(PIMA),
            "--target",
            "Outcome",
            "--cost-matrix",
            str(costs),
            "--mode",
            "HYPERPARAMETER_TUNING",
            "--algorithms",
            "linear-learner",
            "--max-candidates",
            "2",
            "--max-runtime",
            "30",
            "--no-reports",
            "--quiet",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    record = json.loads((out / "job.json").read_text())
    best = record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]
    assert best["StandardMetricName"] == "ExpectedCost" and best["Type"] == "Minimize"
    rows = load_job(out).leaderboard()
    assert rows.iloc[0]["ExpectedCost"] == pytest.approx(best["Value"])
    # The package (what `mlpilot predict`, endpoints and batch transform load) decides.
    frame = load_model(out).predict(pd.read_csv(PIMA), probabilities=True)
    proba = frame[["probability_0", "probability_1"]].to_numpy()
    cheapest = (proba @ np.array([[0.0, 1.0], [4.0, 0.0]])).argmin(axis=1)
    assert (frame["predicted_label"].astype(int).to_numpy() == cheapest).all()
    # The cost rule is not the arg-max here: rows between 1/5 and 1/2 go positive.
    assert ((proba[:, 1] > 0.2) & (proba[:, 1] < 0.5)).any()
    assert (frame["predicted_label"].astype(int) == 1).sum() > (proba[:, 1] >= 0.5).sum()
