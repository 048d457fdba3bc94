"""Candidates-only jobs (GenerateCandidateDefinitionsOnly / ``mlpilot run --candidates-only``):
the job stops after analysis with both notebooks written; the user trains chosen candidates
from the CLI (``mlpilot train``) or from the candidate notebook, and they join the job's own
leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from typer.testing import CliRunner

from helpers_whitebox import output_text, read_notebook, tagged, telco_slice
from mlpilot.cli.main import app
from mlpilot.jobs import load_job
from mlpilot.notebooks import execute_notebook, load_candidate_definitions, train_candidates
from mlpilot.search import CandidateDefinition

# Left out of `make test-fast`: whole jobs.
pytestmark = pytest.mark.slow


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def candidates_only(data: Path, output: Path, name: str, *extra: str) -> dict[str, Any]:
    result = invoke(
        "run", data, "--target", "Churn", "--output", output, "--name", name,
        "--candidates-only", "--parallelism", "2", "--quiet", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads((output / "job.json").read_text())
    return record


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return telco_slice(tmp_path_factory.mktemp("candidates-only") / "telco.csv", 400)


@pytest.fixture(scope="module")
def defined(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    output = tmp_path_factory.mktemp("defined") / "job"
    # AUTO mode: candidate definitions make it a tuning job.
    record = candidates_only(data, output, "defined", "--seed", "5")
    return output, record


def test_candidates_only_job_stops_after_analysis(defined: tuple[Path, dict[str, Any]]) -> None:
    output, record = defined
    assert record["AutoMLJobStatus"] == "Completed"
    assert record["AutoMLJobSecondaryStatus"] == "CandidateDefinitionsGenerated"
    tabular = record["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    assert tabular["GenerateCandidateDefinitionsOnly"] is True
    assert record["Mlpilot"]["Profile"]["Mode"] == "HYPERPARAMETER_TUNING"
    assert "BestCandidate" not in record
    results = load_job(output)
    assert results.candidates() == []
    assert not (output / "tuning").exists()
    artifacts = record["AutoMLJobArtifacts"]
    notebook = Path(artifacts["CandidateDefinitionNotebookLocation"])
    exploration = Path(artifacts["DataExplorationNotebookLocation"])
    assert notebook.exists() and exploration.exists()
    assert record["Mlpilot"]["Reports"]["DataExplorationNotebook"]["Status"] == "Completed"
    nb = read_notebook(notebook)
    assert nb.metadata["mlpilot"]["candidates_only"] is True
    text = "\n".join(c.source for c in nb.cells)
    assert "nothing has been trained yet" in text
    assert "train_candidates(" in text and "JobConfig(" not in text
    names = [d.key for d in load_candidate_definitions(results.layout.candidate_definitions)]
    assert names[:2] == ["lightgbm", "catboost"]  # every default algorithm, in order


def test_train_chosen_candidates_from_the_cli(defined: tuple[Path, dict[str, Any]]) -> None:
    output, before = defined
    wrong = invoke("train", output, "--algorithms", "lightgbm,gbm")
    assert wrong.exit_code == 2
    assert "defines no candidate named gbm" in wrong.output
    assert json.loads((output / "job.json").read_text()) == before  # untouched

    result = invoke(
        "train", output, "--algorithms", "lightgbm,linear-learner", "--max-candidates", "3",
        "--parallelism", "2", "--no-reports", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((output / "job.json").read_text())
    assert record["AutoMLJobStatus"] == "Completed"
    assert record["AutoMLJobSecondaryStatus"] == "Completed"
    assert record["CreationTime"] == before["CreationTime"]
    assert record["Mlpilot"]["CandidateDefinitionsGenerated"]["Trained"] == [
        "lightgbm",
        "linear-learner",
    ]
    assert record["Mlpilot"]["Seed"] == 5
    board = invoke("leaderboard", output, "--format", "json")
    rows = json.loads(board.output)
    assert len(rows) == 3
    assert {r["algorithm"] for r in rows} <= {"lightgbm", "linear-learner"}
    assert rows[0]["candidate"] == record["BestCandidate"]["CandidateName"]
    # The notebooks now describe a trained job.
    nb = read_notebook(Path(record["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"]))
    assert "MAX_CANDIDATES = 3" in "\n".join(c.source for c in nb.cells)
    # A second training is refused: the job has its candidates.
    again = invoke("train", output)
    assert again.exit_code == 2 and "not a candidates-only job" in again.output


def test_train_edited_candidates_from_the_notebook(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "job"
    candidates_only(data, output, "nbtrain", "--algorithms", "lightgbm,xgboost", "--mode",
                    "HYPERPARAMETER_TUNING", "--no-reports")  # fmt: skip
    record = json.loads((output / "job.json").read_text())
    path = Path(record["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"])
    nb = nbformat.read(path, as_version=4)
    # The user's edits: only xgboost, shallower trees, two trials.
    for cell in nb.cells:
        if "xgboost = CandidateDefinition(" in cell.source:
            cell.source = cell.source.replace(
                '"max_depth": IntDistribution(3, 10)', '"max_depth": IntDistribution(2, 3)'
            )
            assert "IntDistribution(2, 3)" in cell.source
        if "selected" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("[lightgbm, xgboost]", "[xgboost]")
        if "tuning" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("MAX_CANDIDATES = 100", "MAX_CANDIDATES = 2")
            cell.source = cell.source.replace("PARALLELISM = 2", "PARALLELISM = 1")
    nbformat.write(nb, path)
    execute_notebook(path, html=False)
    nb = read_notebook(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    results = load_job(output)
    assert results.status == "Completed"
    trained = results.candidates()
    assert len(trained) == 2
    for candidate in trained:
        assert candidate["Mlpilot"]["Algorithm"] == "xgboost"
        assert 2 <= candidate["Mlpilot"]["Hyperparameters"]["max_depth"] <= 3
    assert results.best_candidate["CandidateName"] in output_text(tagged(nb, "leaderboard"))
    assert "predicted_label" in output_text(tagged(nb, "predict"))


def test_train_candidates_api_refuses_unknown_jobs(tmp_path: Path) -> None:
    from mlpilot.errors import JobNotFoundError

    with pytest.raises(JobNotFoundError):
        train_candidates(tmp_path / "nothing")
    definition = CandidateDefinition("lightgbm")
    assert definition.key == "lightgbm" and definition.ranges is None
