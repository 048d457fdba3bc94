"""The generated notebooks, executed for real with nbclient.

One small job (a Telco slice with a planted leakage column, an identifier, a constant and a
near-constant column) writes both notebooks; the job itself executes the exploration
notebook. The tests read its outputs, execute the candidate notebook unedited and check that
it reproduces the job's best objective value exactly, and check the override mechanism the
notebook uses (``CandidateDefinition`` / ``JobConfig.candidates``) without a kernel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from optuna.distributions import FloatDistribution, IntDistribution

import mlpilot
from helpers_data import ABALONE, BIKES, PENGUINS, SENTIMENT
from helpers_whitebox import leaky_telco, output_text, read_notebook, run, tagged
from mlpilot.errors import ConfigError
from mlpilot.features import PreprocessingOptions
from mlpilot.notebooks import DataExploration, execute_notebook
from mlpilot.profile import build_profile
from mlpilot.search import CandidateDefinition, SearchSpace

# Left out of `make test-fast`: whole jobs and executed notebooks.
pytestmark = pytest.mark.slow

SEED = 3


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("notebooks")
    data = leaky_telco(root / "leaky.csv", 600)
    return run(
        data,
        root / "job",
        "leaky",
        algorithms=("lightgbm", "linear-learner"),
        max_candidates=4,
        seed=SEED,
    )


# -- the data-exploration notebook ------------------------------------------------------------
def test_job_records_both_notebooks(leaky: Any) -> None:
    record = json.loads(leaky.layout.record.read_text())
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    artifacts = record["AutoMLJobArtifacts"]
    assert artifacts["DataExplorationNotebookLocation"] == str(leaky.layout.exploration_notebook)
    assert artifacts["CandidateDefinitionNotebookLocation"] == str(leaky.layout.candidate_notebook)
    reports = record["Mlpilot"]["Reports"]
    assert reports["DataExplorationNotebook"]["Status"] == "Completed", reports
    assert reports["CandidateDefinitionNotebook"]["Status"] == "Completed"
    assert Path(reports["DataExplorationNotebook"]["Html"]).exists()
    # The job deleted its working data, but kept what the notebooks read.
    assert not leaky.layout.work.exists()
    assert (leaky.layout.data_sample / "rows.parquet").exists()


def test_exploration_notebook_ran_every_cell(leaky: Any) -> None:
    nb = read_notebook(leaky.layout.exploration_notebook)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 20
    for cell in code:
        assert cell.execution_count is not None, cell.source
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    # Markdown explains each section; the plots are images.
    headings = [c.source.splitlines()[-1] for c in nb.cells if c.cell_type == "markdown"]
    assert len(headings) >= 15
    for tag in ("target-plot", "association-plot", "correlations-plot"):
        outputs = tagged(nb, tag).outputs
        assert any("image/png" in o.get("data", {}) for o in outputs), tag
    html = leaky.layout.exploration_notebook.with_suffix(".html").read_text()
    assert "Data Exploration Report" in html and "data:image/png;base64" in html
    assert "exploration.summary()" not in html  # the HTML is the report, without the code


def test_exploration_notebook_flags_the_planted_problems(leaky: Any) -> None:
    nb = read_notebook(leaky.layout.exploration_notebook)
    leakage = output_text(tagged(nb, "leakage"))
    assert "refund_amount" in leakage
    assert "Churn" not in leakage.replace("refund_amount", "")  # nothing else is flagged
    for column in ("tenure", "Contract", "MonthlyCharges"):
        assert column not in leakage
    assert "row_id" in output_text(tagged(nb, "identifiers"))
    constant = output_text(tagged(nb, "constant"))
    assert "region" in constant and "promo_code" in constant
    insights = output_text(tagged(nb, "insights"))
    assert "Possible target leakage: 'refund_amount'" in insights
    assert insights.index("refund_amount") < insights.index("row_id")  # high severity first
    recommendations = output_text(tagged(nb, "recommendations"))
    assert recommendations.lstrip().startswith("1. Remove 'refund_amount'")
    summary = output_text(tagged(nb, "summary"))
    assert "600" in summary and "BinaryClassification" in summary


def test_exploration_prediction_power_ranks_the_leak_first(leaky: Any) -> None:
    exploration = DataExploration.load(leaky.layout.analysis)
    table = exploration.target_association()
    assert table.index[0] == "refund_amount"
    assert float(table.loc["refund_amount", "prediction power"]) > 0.9
    assert float(table.loc["gender", "prediction power"]) < 0.1


@pytest.mark.parametrize(
    ("path", "target", "expect"),
    [
        (ABALONE, "Rings", "Spearman"),
        (PENGUINS, "species", "correlation ratio"),
        (SENTIMENT, "label", "n/a (text)"),
        (BIKES, "cnt", "registered"),
    ],
)
def test_exploration_analysis_on_other_problem_types(path: Path, target: str, expect: str) -> None:
    table = pd.read_csv(path, dtype=str, keep_default_na=False).head(1500)
    profile = build_profile(table, target)
    exploration = DataExploration(profile, table, None, None)
    association = exploration.target_association()
    assert expect in association.to_string() + exploration.leakage().to_string()
    assert len(exploration.column_types()) == len(profile.columns)
    for figure in (
        exploration.plot_target(),
        exploration.plot_association(),
        exploration.plot_correlations(),
        exploration.plot_outliers(),
        exploration.plot_missing(),
    ):
        assert figure is None or figure.get_axes()
    assert exploration.recommendations()
    if target == "cnt":  # casual + registered = cnt: registered alone predicts it
        assert "registered" in exploration.leakage().index


# -- the candidate-definition notebook --------------------------------------------------------
def _namespace(nb: Any, *tags: str) -> dict[str, Any]:
    """Run the notebook's definition cells here (no kernel) and return their variables."""
    namespace: dict[str, Any] = {}
    exec(
        "from optuna.distributions import CategoricalDistribution, FloatDistribution, "
        "IntDistribution\nfrom mlpilot.features import PreprocessingOptions\n"
        "from mlpilot.search import CandidateDefinition\n",
        namespace,
    )
    for cell in nb.cells:
        cell_tags = cell.get("metadata", {}).get("tags", [])
        if any(t in cell_tags for t in tags):
            exec(cell.source.replace("describe_candidates(CANDIDATES)", ""), namespace)
    return namespace


def test_candidate_notebook_writes_the_space_exactly(leaky: Any) -> None:
    nb = read_notebook(leaky.layout.candidate_notebook)
    assert all(c.cell_type == "markdown" or not c.outputs for c in nb.cells)  # unexecuted
    ns = _namespace(nb, "definition", "selected", "tuning", "data")
    n_rows = leaky.profile.n_rows
    expected = [
        CandidateDefinition.builtin(name, "BinaryClassification", n_rows)
        for name in ("lightgbm", "linear-learner")
    ]
    assert ns["CANDIDATES"] == expected
    assert ns["MAX_CANDIDATES"] == len(leaky.candidates) == 4
    assert ns["PARALLELISM"] == 2
    assert ns["SEED"] == SEED
    assert ns["MAX_RUNTIME"] is None
    assert ns["OBJECTIVE"] == "F1"
    assert Path(ns["TRAINING_DATA"]).is_absolute()
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "dpp0-lightgbm" in text and "dpp1-linear-learner" in text
    assert "maximizes **F1**" in text
    assert "Available knobs" in text


def test_candidate_notebook_reproduces_the_job(leaky: Any) -> None:
    path = leaky.layout.candidate_notebook
    execute_notebook(path, html=False)
    nb = read_notebook(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    compare = output_text(tagged(nb, "compare"))
    assert "identical to the job's best" in compare, compare
    runs = list((leaky.layout.root / "local-runs").iterdir())
    assert len(runs) == 1
    rerun = mlpilot.load_job(runs[0])
    job_best = leaky.record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert rerun.best_candidate["FinalAutoMLJobObjectiveMetric"]["Value"] == job_best
    assert len(rerun.candidates()) == len(leaky.candidates)
    ours = sorted(c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in leaky.candidates.values())
    theirs = sorted(c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in rerun.candidates())
    assert ours == theirs
    leaderboard = output_text(tagged(nb, "leaderboard"))
    assert rerun.best_candidate["CandidateName"] in leaderboard
    assert "predicted_label" in output_text(tagged(nb, "predict"))


# -- the override mechanism ----------------------------------------------------------------------
def test_edited_candidates_change_the_search(tmp_path: Path) -> None:
    table = pd.read_csv(ABALONE).head(300)
    narrow = CandidateDefinition(
        "lightgbm",
        name="lightgbm-narrow",
        preprocessing=PreprocessingOptions(categorical="onehot", max_onehot_levels=8),
        defaults={**CandidateDefinition.builtin("lightgbm", "Regression", 300).defaults},
        ranges={
            "learning_rate": FloatDistribution(0.2, 0.25),
            "num_leaves": IntDistribution(4, 6),
        },
    )
    job = run(
        table, tmp_path / "job", "edited", target="Rings", candidates=(narrow,),
        max_candidates=3, generate_reports=False,
    )  # fmt: skip
    assert job.status == "Completed"
    for candidate in job.candidates.values():
        extra = candidate["Mlpilot"]
        assert extra["Algorithm"] == "lightgbm"
        assert extra["Preprocessing"]["categorical"] == "onehot"
        params = extra["Hyperparameters"]
        assert set(params) == set(narrow.defaults or {})
        # Tuned parameters stay in the edited ranges; the others keep their defaults.
        assert 0.2 <= params["learning_rate"] <= 0.25
        assert 4 <= params["num_leaves"] <= 6
        assert params["min_child_samples"] == 20
        assert params["n_estimators"] == 10_000
    saved = json.loads(job.layout.candidate_definitions.read_text())["Algorithms"]
    assert list(saved) == ["lightgbm-narrow"]
    assert saved["lightgbm-narrow"]["ranges"]["num_leaves"]
    assert job.record["Mlpilot"]["Profile"]["Mode"] == "HYPERPARAMETER_TUNING"


def test_candidate_definitions_are_checked() -> None:
    with pytest.raises(ConfigError, match="Unknown algorithm"):
        CandidateDefinition("gbm")
    with pytest.raises(ConfigError, match="must be an Optuna distribution"):
        CandidateDefinition("lightgbm", ranges={"num_leaves": (8, 64)})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="bad preprocessing"):
        CandidateDefinition("lightgbm", preprocessing={"scaling": "none"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unique"):
        SearchSpace(
            [],
            "Regression",  # type: ignore[arg-type]
            100,
            definitions=[CandidateDefinition("lightgbm"), CandidateDefinition("lightgbm")],
        )
    with pytest.raises(ConfigError, match="Give either algorithms or candidates"):
        mlpilot.TabularConfig(
            target="y", mode="HYPERPARAMETER_TUNING", algorithms=("xgboost",),
            candidates=(CandidateDefinition("lightgbm"),),
        )  # fmt: skip
    definition = CandidateDefinition.builtin("mlp", "MulticlassClassification", 500)
    assert CandidateDefinition.from_dict(json.loads(json.dumps(definition.to_dict()))) == definition
