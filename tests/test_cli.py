"""Tests of the ``mlpilot`` command line: ``run``, ``leaderboard``, ``predict`` and ``version``
through Typer's CliRunner, and the benchmark harness's contract through real subprocesses of the
installed console script (as ``../shared/bench/systems.py`` calls it)."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score
from typer.testing import CliRunner, Result

import helpers_models
import mlpilot
from helpers_algorithms import CRASH_MESSAGE
from helpers_data import ABALONE, PIMA, TELCO, TOURISM, WINE
from helpers_forecast import TOURISM_SETTINGS, fit_predictor, job_folder, save_package, table
from helpers_models import TrainedModel, csv_lines, with_recorded_version
from mlpilot.cli.main import app
from mlpilot.package import InferenceModel, installed_versions

REPO = Path(__file__).resolve().parents[1]
CHURN = TELCO  # the bundled examples/churn.csv
#: The console script installed beside this interpreter (else the one on PATH).
_BESIDE = Path(sys.executable).parent / "mlpilot"
MLPILOT = str(_BESIDE) if _BESIDE.exists() else (shutil.which("mlpilot") or "mlpilot")


def invoke(*args: str | Path, **kwargs: Any) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    """stderr is exactly one line, ``Error: ...``, holding every fragment, and no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    (line,) = lines
    assert line.startswith("Error: "), line
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


@pytest.fixture(scope="module")
def churn_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled examples/churn.csv, first 1,500 rows (with the target column)."""
    with CHURN.open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(1501)]
    path = tmp_path_factory.mktemp("cli-data") / "churn.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli_job(churn_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``mlpilot run`` through CliRunner: three candidates of two algorithms."""
    output = tmp_path_factory.mktemp("cli-job") / "job"
    started = time.monotonic()
    result = invoke(
        "run",
        churn_slice,
        "--target",
        "Churn",
        "--mode",
        "HYPERPARAMETER_TUNING",
        "--algorithms",
        "lightgbm, linear-learner",
        "--max-candidates",
        "3",
        "--max-runtime",
        "120",
        "--parallelism",
        "2",
        "--seed",
        "3",
        "--name",
        "cli-job",
        "--output",
        output,
    )
    wall = time.monotonic() - started
    return {"output": output, "result": result, "wall": wall}


def job_record(output: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((output / "job.json").read_text())
    return record


# -- mlpilot run -----------------------------------------------------------------------------
@pytest.mark.slow
def test_run_trains_and_reports(cli_job: dict[str, Any]) -> None:
    result: Result = cli_job["result"]
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # progress and summary go to stderr
    assert "Job cli-job →" in result.stderr
    assert "Completed (Completed)" in result.stderr
    assert "3 candidate(s)" in result.stderr
    record = job_record(cli_job["output"])
    assert record["AutoMLJobName"] == "cli-job"
    assert record["AutoMLJobStatus"] == "Completed"
    best = record["BestCandidate"]
    assert f"Best candidate {best['CandidateName']}" in result.stderr
    assert f"Model: {best['Mlpilot']['FinalModel']}" in result.stderr
    tabular = record["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    assert tabular["Mode"] == "HYPERPARAMETER_TUNING"
    assert tabular["CompletionCriteria"] == {
        "MaxCandidates": 3,
        "MaxAutoMLJobRuntimeInSeconds": 120,
    }
    algorithms = tabular["CandidateGenerationConfig"]["AlgorithmsConfig"][0]["AutoMLAlgorithms"]
    assert algorithms == ["lightgbm", "linear-learner"]
    assert record["Mlpilot"]["Seed"] == 3
    candidates = mlpilot.load_job(cli_job["output"]).candidates()
    assert {c["Mlpilot"]["Algorithm"] for c in candidates} <= {"lightgbm", "linear-learner"}


@pytest.mark.slow
def test_run_clock_starts_when_the_command_is_invoked(cli_job: dict[str, Any]) -> None:
    """In-process, the runtime limit counts from the call, not from when mlpilot.cli was
    imported (which, here, was at collection)."""
    record = job_record(cli_job["output"])
    assert record["Mlpilot"]["ElapsedSeconds"] <= cli_job["wall"] + 0.05


@pytest.mark.slow
def test_run_refuses_an_output_folder_holding_a_job(
    cli_job: dict[str, Any], churn_slice: Path
) -> None:
    output: Path = cli_job["output"]
    before = (output / "job.json").read_bytes()
    result = invoke("run", churn_slice, "--target", "Churn", "--output", output, "--quiet")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, str(output), "already holds a job")
    assert (output / "job.json").read_bytes() == before


def test_run_help_shows_the_defaults() -> None:
    result = invoke("run", "--help", env={"TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for default in ("runs/<job-name>", "inferred", "F1 / Accuracy / MSE", "the number of cores"):
        assert default in text, default


def test_run_refuses_a_latency_limit_it_cannot_use(tmp_path: Path) -> None:
    """--max-latency-ms is checked before any data is read."""
    data = tmp_path / "absent.csv"
    cases = [
        (["--max-latency-ms", "0"], ["latency limit must be positive", "0.0 ms"]),
        (
            [
                "--problem-type",
                "forecasting",
                "--timestamp",
                "t",
                "--item-id",
                "i",
                "--frequency",
                "D",
                "--horizon",
                "2",
                "--max-latency-ms",
                "2",
            ],
            ["--max-latency-ms applies to tabular jobs only"],
        ),
    ]
    for options, fragments in cases:
        result = invoke("run", data, "--target", "y", "--output", tmp_path / "job", *options)
        assert result.exit_code == 2, result.output
        assert_one_line_error(result.stderr, *fragments)
    assert not (tmp_path / "job").exists()


def test_version() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert result.stdout.strip() == mlpilot.__version__


# -- mlpilot leaderboard ---------------------------------------------------------------------
@pytest.mark.slow
def test_leaderboard_table(cli_job: dict[str, Any]) -> None:
    output: Path = cli_job["output"]
    result = invoke("leaderboard", output)
    assert result.exit_code == 0, result.output
    assert "cli-job — Completed (Completed), objective F1" in result.stdout
    for header in ("rank", "candidate", "algorithm", "objective", "F1", "train_seconds"):
        assert header in result.stdout
    assert "objective_std: the objective's standard deviation over the folds" in result.stdout
    assert "LogLoss" not in result.stdout  # only the objective's metric without --all-metrics
    for name in mlpilot.load_job(output).leaderboard()["candidate"]:
        assert name in result.stdout
    wide = invoke("leaderboard", output, "--all-metrics")
    assert wide.exit_code == 0
    for metric in ("AUC", "LogLoss", "Precision", "Recall"):
        assert metric in wide.stdout


@pytest.mark.slow
def test_leaderboard_csv(cli_job: dict[str, Any]) -> None:
    output: Path = cli_job["output"]
    result = invoke("leaderboard", output, "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    expected = mlpilot.load_job(output).leaderboard()
    assert list(frame["rank"]) == [1, 2, 3]
    assert list(frame["candidate"]) == list(expected["candidate"])
    assert np.allclose(frame["objective"], expected["objective"].astype(float))
    for column in ("AUC", "LogLoss", "InferenceLatency", "steps", "hyperparameters"):
        assert column in frame.columns
    top = pd.read_csv(io.StringIO(invoke("leaderboard", output, "-f", "csv", "--top", "2").stdout))
    assert list(top["candidate"]) == list(expected["candidate"][:2])


@pytest.mark.slow
def test_leaderboard_json(cli_job: dict[str, Any]) -> None:
    output: Path = cli_job["output"]
    result = invoke("leaderboard", output, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    best = job_record(output)["BestCandidate"]
    assert rows[0]["candidate"] == best["CandidateName"]
    assert rows[0]["objective"] == pytest.approx(
        best["FinalAutoMLJobObjectiveMetric"]["Value"], rel=1e-13
    )
    for metric in best["CandidateProperties"]["CandidateMetrics"]:
        assert rows[0][metric["StandardMetricName"]] == pytest.approx(metric["Value"], rel=1e-13)
    assert json.loads(rows[0]["hyperparameters"]) == best["Mlpilot"]["Hyperparameters"]


# -- mlpilot predict -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def new_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Churn rows the job did not see, with the target column still in (predict drops it)."""
    table = pd.read_csv(CHURN, skiprows=range(1, 5001), nrows=120, dtype=str, keep_default_na=False)
    path = tmp_path_factory.mktemp("cli-predict") / "new.csv"
    table.to_csv(path, index=False)
    return path, table


@pytest.mark.slow
def test_predict_writes_labels_and_probabilities(
    cli_job: dict[str, Any], new_rows: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    output: Path = cli_job["output"]
    data, table = new_rows
    expected = mlpilot.load_model(output).predict(table.drop(columns=["Churn"]), probabilities=True)

    plain = tmp_path / "plain.csv"
    result = invoke("predict", output, data, "--output", plain)
    assert result.exit_code == 0, result.output
    assert f"Wrote 120 prediction(s) to {plain}" in result.stderr
    got = pd.read_csv(plain, dtype={"predicted_label": str})
    assert list(got.columns) == ["predicted_label", "probability"]
    assert list(got["predicted_label"]) == list(expected["predicted_label"])
    assert np.allclose(got["probability"], expected["probability"], rtol=0, atol=1e-12)

    full = tmp_path / "full.csv"
    result = invoke("predict", output, data, "--output", full, "--probabilities")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(full, dtype={"predicted_label": str})
    assert list(got.columns) == [
        "predicted_label",
        "probability",
        "probability_No",
        "probability_Yes",
    ]
    assert len(got) == len(table)
    assert np.allclose(got[["probability_No", "probability_Yes"]].sum(axis=1), 1.0)
    assert np.allclose(got["probability_Yes"], expected["probability_Yes"], rtol=0, atol=1e-12)
    truth = (table["Churn"] == "Yes").astype(int)
    assert roc_auc_score(truth, got["probability_Yes"]) > 0.75


@pytest.mark.slow
def test_predict_to_standard_output(
    cli_job: dict[str, Any], new_rows: tuple[Path, pd.DataFrame]
) -> None:
    data, table = new_rows
    result = invoke("predict", cli_job["output"], data, "--probabilities")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout))
    assert len(got) == len(table)
    assert {"predicted_label", "probability_No", "probability_Yes"} <= set(got.columns)


@pytest.mark.slow
def test_predict_with_a_named_candidate_or_a_package(
    cli_job: dict[str, Any], new_rows: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    output: Path = cli_job["output"]
    data, table = new_rows
    results = mlpilot.load_job(output)
    last = results.leaderboard()["candidate"].iloc[-1]
    out = tmp_path / "last.csv"
    result = invoke("predict", output, data, "--candidate", last, "--output", out)
    assert result.exit_code == 0, result.output
    expected = results.model(last).predict(table.drop(columns=["Churn"]))
    assert np.allclose(pd.read_csv(out)["probability"], expected["probability"], atol=1e-12)

    archive = results.record["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"]
    from_archive = invoke("predict", archive, data)
    from_job = invoke("predict", output, data)
    assert from_archive.exit_code == 0, from_archive.output
    assert from_archive.stdout == from_job.stdout


@pytest.mark.slow
def test_predict_version_mismatch_warns_or_refuses(
    cli_job: dict[str, Any], new_rows: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    data, _ = new_rows
    final = Path(job_record(cli_job["output"])["BestCandidate"]["Mlpilot"]["FinalModel"])
    package = with_recorded_version(final, tmp_path / "model", "scikit-learn", "0.24.2")
    installed = installed_versions()["scikit-learn"]

    result = invoke("predict", package, data)
    assert result.exit_code == 0, result.output
    assert "Warning:" in result.stderr
    assert "scikit-learn: saved with 0.24.2, installed " + installed in result.stderr
    assert len(pd.read_csv(io.StringIO(result.stdout))) == 120

    strict = invoke("predict", package, data, "--strict-versions")
    assert strict.exit_code == 2
    assert strict.stdout == ""
    assert_one_line_error(strict.stderr, "scikit-learn", "0.24.2", installed)


# -- mlpilot predict: a CSV with or without a header ----------------------------------------
@pytest.fixture(scope="session")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.numbered_model(tmp_path_factory)


def predicted(result: Result) -> list[float]:
    assert result.exit_code == 0, result.output
    return list(pd.read_csv(io.StringIO(result.stdout))["predicted_label"])


def test_predict_reads_a_csv_with_or_without_a_header(
    numbered: TrainedModel, tmp_path: Path
) -> None:
    rows = numbered.rows  # id (dropped by the profile), 1, 2, 3
    expected = list(numbered.model.predict(rows)["predicted_label"])
    files = {
        "headered.csv": rows.to_csv(index=False),
        "bare.csv": csv_lines(rows).decode(),
        "bare-without-id.csv": csv_lines(rows.drop(columns=["id"])).decode(),
        "shuffled.csv": rows[["3", "id", "1", "2"]].to_csv(index=False),
        "with-target.csv": rows.assign(y="0").to_csv(index=False),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        got = predicted(invoke("predict", numbered.package, path))
        assert got == pytest.approx(expected), name
    # An extra column (not a training column) makes a header that only --header present takes.
    extra = tmp_path / "extra.csv"
    shuffled = rows[["3", "id", "1", "2"]].assign(note="x")
    extra.write_text(shuffled.to_csv(index=False), encoding="utf-8")
    got = predicted(invoke("predict", numbered.package, extra, "--header", "present"))
    assert got == pytest.approx(expected)
    assert_one_line_error(
        invoke("predict", numbered.package, extra).stderr, "pass --header present"
    )


def test_predict_header_absent_reads_a_first_row_of_names_as_data(
    numbered: TrainedModel, tmp_path: Path
) -> None:
    rows = numbered.rows.drop(columns=["id"])
    rows.iloc[0] = ["3", "1", "2"]  # data, but every value is also a column name
    path = tmp_path / "bare.csv"
    path.write_bytes(csv_lines(rows))
    expected = list(numbered.model.predict(rows)["predicted_label"])
    absent = predicted(invoke("predict", numbered.package, path, "--header", "absent"))
    assert absent == pytest.approx(expected)
    # auto takes that row for a header (3, 1, 2): the columns then move and a row is gone
    auto = predicted(invoke("predict", numbered.package, path))
    assert len(auto) == len(expected) - 1
    assert auto != pytest.approx(expected[1:])


def test_predict_header_user_errors(numbered: TrainedModel, tmp_path: Path) -> None:
    rows = numbered.rows
    with_target = tmp_path / "with-target.csv"
    with_target.write_bytes(csv_lines(rows.assign(y="0")))
    lacking = tmp_path / "lacking.csv"
    lacking.write_text(rows.drop(columns=["2"]).to_csv(index=False), encoding="utf-8")
    cases = [
        (["--header", "sometimes"], tmp_path / "any.csv", ["--header 'sometimes'", "auto"]),
        ([], with_target, ["no header row and 5 column(s)", "expected 4", "or 3", "'y'"]),
        ([], lacking, ["'2'"]),
    ]
    for options, data, fragments in cases:
        result = invoke("predict", numbered.package, data, *options)
        assert result.exit_code == 2, result.output
        assert_one_line_error(result.stderr, *fragments)


# -- mlpilot predict with a forecasting model ----------------------------------------------------
@pytest.fixture(scope="module")
def forecast_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A job folder whose best model forecasts the nine tourism series, 8 quarters ahead."""
    root = tmp_path_factory.mktemp("cli-forecast")
    weights = {"ets": 0.5, "seasonal-naive": 0.5}
    predictor = fit_predictor(table(TOURISM), weights, **TOURISM_SETTINGS)
    return job_folder(root / "sales", save_package(predictor, root / "model"))


def test_predict_forecasts_from_a_history_or_the_training_history(
    forecast_job: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history.csv"
    table(TOURISM).to_csv(history, index=False)
    given = tmp_path / "forecast.csv"
    result = invoke("predict", forecast_job, history, "--output", given)
    assert result.exit_code == 0, result.output
    assert (
        f"Wrote 72 forecast row(s) for 9 series, from the given history, to {given}"
        in result.stderr
    )
    got = pd.read_csv(given)
    assert got.columns.tolist() == ["item_id", "timestamp", "mean", "p10", "p50", "p90"]
    assert got["timestamp"].iloc[:8].tolist() == [
        f"{year}-{month:02d}-01" for year in (2018, 2019) for month in (1, 4, 7, 10)
    ]
    assert (got["p10"] <= got["p90"]).all()

    stored = tmp_path / "stored.csv"
    result = invoke("predict", forecast_job, "--output", stored)
    assert result.exit_code == 0, result.output
    assert "from the training history" in result.stderr
    assert stored.read_text() == given.read_text()

    package = Path(job_record(forecast_job)["BestCandidate"]["Mlpilot"]["FinalModel"])
    to_stdout = invoke("predict", package / "model.tar.gz")
    assert to_stdout.exit_code == 0, to_stdout.output
    assert to_stdout.stdout == given.read_text()


def test_predict_forecasting_user_errors(forecast_job: Path, tmp_path: Path) -> None:
    source = table(TOURISM)
    short = tmp_path / "short.csv"
    source.groupby("item_id").tail(3).to_csv(short, index=False)
    tabular = InferenceModel([], {"problem_type": "Regression", "versions": {}})
    tabular.save(tmp_path / "tabular", archive=False)
    cases: list[tuple[list[Any], list[str]]] = [
        (["predict", forecast_job, short], ["Too little history", "3 target value(s)"]),
        (["predict", forecast_job, "--probabilities"], ["--probabilities is for classification"]),
        (["predict", forecast_job, "--header", "absent"], ["--header is for tabular models"]),
        (["predict", tmp_path / "tabular"], ["Missing argument 'DATA'", "Regression model"]),
    ]
    for args, fragments in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "", args
        assert_one_line_error(result.stderr, *fragments)


# -- user errors: one line, exit code 2 ---------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(churn_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-bad")
    table = pd.read_csv(churn_slice, dtype=str, keep_default_na=False).head(50)
    table.drop(columns=["tenure"]).to_csv(root / "no-tenure.csv", index=False)
    (root / "empty-dir").mkdir()
    return {"no-tenure": root / "no-tenure.csv", "empty-dir": root / "empty-dir", "root": root}


RUN_ERRORS: list[Any] = [
    (["--target", "Nope"], ["Target column 'Nope' is not in the data"]),
    (["--objective", "Happiness"], ["Unknown objective metric 'Happiness'"]),
    (["--problem-type", "binary", "--objective", "RMSE"], ["'RMSE' does not apply"]),
    (["--problem-type", "Sometimes"], ["Unknown problem type 'Sometimes'"]),
    (["--algorithms", "lightgbm"], ["AlgorithmsConfig cannot be set when Mode is AUTO"]),
    (["--max-candidates", "0"], ["MaxCandidates must be between 1 and 750"]),
    (["--validation-fraction", "2"], ["ValidationFraction must be between 0 and 1"]),
    (["--name", "bad_name!"], ["Job name 'bad_name!'"]),
    pytest.param(
        [
            "--mode",
            "HYPERPARAMETER_TUNING",
            "--algorithms",
            "helpers_algorithms:Crashing",
            "--max-candidates",
            "1",
        ],
        ["No candidate completed", CRASH_MESSAGE],
        marks=pytest.mark.slow,  # runs the job to its failed candidate
    ),
]


@pytest.mark.parametrize(("extra", "fragments"), RUN_ERRORS)
def test_run_user_errors(
    extra: list[str], fragments: list[str], churn_slice: Path, tmp_path: Path
) -> None:
    args = ["run", str(churn_slice), "--target", "Churn", "--output", str(tmp_path / "job")]
    result = invoke(*args, *extra, "--quiet", "--parallelism", "2")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert_one_line_error(result.stderr, *fragments)


def test_run_missing_data_file(tmp_path: Path) -> None:
    missing = tmp_path / "[data]" / "nowhere.csv"  # brackets are no console markup
    result = invoke("run", missing, "--target", "y", "--output", tmp_path / "job", "--quiet")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, str(missing), "does not exist")
    record = job_record(tmp_path / "job")
    assert record["AutoMLJobStatus"] == "Failed"


@pytest.mark.slow
def test_predict_and_leaderboard_user_errors(
    cli_job: dict[str, Any],
    new_rows: tuple[Path, pd.DataFrame],
    bad_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    output: Path = cli_job["output"]
    data, _ = new_rows
    cases: list[tuple[list[Any], list[str]]] = [
        (["predict", tmp_path / "nothing-here", data], ["No job or model at"]),
        (["predict", bad_files["empty-dir"], data], ["No model package at"]),
        (["predict", output, bad_files["no-tenure"]], ["'tenure'", "missing"]),
        (["predict", output, tmp_path / "no-data.csv"], ["no-data.csv does not exist"]),
        (["predict", output, data, "--candidate", "nope"], ["no candidate named 'nope'"]),
        (["leaderboard", output, "--format", "xml"], ["Unknown format 'xml'"]),
        (["leaderboard", bad_files["empty-dir"]], ["No mlpilot job at"]),
    ]
    for args, fragments in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "", args
        assert_one_line_error(result.stderr, *fragments)


@pytest.mark.slow
def test_output_locations(
    cli_job: dict[str, Any], new_rows: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    output: Path = cli_job["output"]
    data, table = new_rows
    nested = tmp_path / "new" / "folder" / "predictions.csv"
    result = invoke("predict", output, data, "--output", nested)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(nested)) == len(table)

    into_folder = invoke("predict", output, data, "--output", tmp_path)
    assert into_folder.exit_code == 2
    assert_one_line_error(into_folder.stderr, "Cannot write predictions to", "Is a directory")

    below_a_file = tmp_path / "new" / "folder" / "predictions.csv" / "job"
    run = invoke("run", data, "--target", "Churn", "--output", below_a_file, "--quiet")
    assert run.exit_code == 2
    assert_one_line_error(run.stderr, "Cannot create the output folder", "Not a directory")


@pytest.mark.slow
def test_predict_without_a_model_in_a_failed_job(churn_slice: Path, tmp_path: Path) -> None:
    output = tmp_path / "failed"
    invoke("run", churn_slice, "--target", "Nope", "--output", output, "--quiet")
    assert job_record(output)["AutoMLJobStatus"] == "Failed"
    result = invoke("predict", output, churn_slice)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "has no packaged best model", "Failed")
    board = invoke("leaderboard", output, "--format", "csv")
    assert board.exit_code == 0  # an empty leaderboard, not an error


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "fragments"),
    [
        (
            ["run", "{tmp}/nowhere.csv", "--target", "y", "--output", "{tmp}/job", "-q"],
            ["does not exist"],
        ),
        (["predict", "{tmp}/no-job", "{tmp}/rows.csv"], ["No job or model at"]),
        (["leaderboard", "{tmp}"], ["No mlpilot job at"]),
    ],
)
def test_console_script_errors_are_one_line(
    command: list[str], fragments: list[str], tmp_path: Path
) -> None:
    args = [MLPILOT, *[part.format(tmp=tmp_path) for part in command]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert_one_line_error(done.stderr, *fragments)


def interrupt_running_job(
    data: Path, output: Path, *, whole_group: bool
) -> tuple[subprocess.Popen[str], str]:
    """Start ``mlpilot run`` with a long budget, press Ctrl-C (SIGINT) once a best candidate is
    recorded; return the process and its stderr. ``whole_group`` signals the whole process
    group, as a terminal's Ctrl-C does. The job must exit on the signal: waiting for it gives
    up long before its 600 s budget (generously, so that a loaded machine does not fail it)."""
    process = subprocess.Popen(
        [
            MLPILOT,
            "run",
            str(data),
            "--target",
            "Churn",
            "--mode",
            "HYPERPARAMETER_TUNING",
            "--algorithms",
            "lightgbm,xgboost",
            "--max-runtime",
            "600",
            "--parallelism",
            "2",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if "BestCandidate" in job_record(output):
                    break
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            time.sleep(0.2)
        assert process.poll() is None, "the job ended before it could be interrupted"
        if whole_group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        return process, stderr
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


@pytest.mark.slow
def test_ctrl_c_stops_the_job_and_keeps_the_best_model(churn_slice: Path, tmp_path: Path) -> None:
    output = tmp_path / "job"
    process, stderr = interrupt_running_job(churn_slice, output, whole_group=False)
    assert process.returncode == 0, stderr
    assert "Stopping: keeping the best candidate so far" in stderr
    assert "Stopped (Stopped)" in stderr
    record = job_record(output)
    assert record["AutoMLJobStatus"] == "Stopped"
    archive = Path(record["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"])
    assert archive.is_file()
    assert all(c["CandidateStatus"] != "InProgress" for c in mlpilot.load_job(output).candidates())


@pytest.mark.slow
def test_terminal_ctrl_c_stops_running_candidates_without_failures(
    churn_slice: Path, tmp_path: Path
) -> None:
    output = tmp_path / "job"
    process, stderr = interrupt_running_job(churn_slice, output, whole_group=True)
    assert process.returncode == 0, stderr
    record = job_record(output)
    assert record["AutoMLJobStatus"] == "Stopped"
    assert "PartialFailureReasons" not in record
    statuses = {c["CandidateStatus"] for c in mlpilot.load_job(output).candidates()}
    assert statuses <= {"Completed", "Stopped"}
    assert "KeyboardInterrupt" not in stderr


# -- the benchmark harness's contract (real processes) --------------------------------------------
def split(table: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = table.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cut = int(0.8 * len(shuffled))
    return shuffled.iloc[:cut], shuffled.iloc[cut:]


HARNESS = {
    # name: (data set, rows, target, problem type, objective, budget in seconds)
    "binary": (PIMA, None, "Outcome", "BinaryClassification", "AUC", 20),
    "multiclass": (WINE, 1500, "quality", "MulticlassClassification", "LogLoss", 15),
    "regression": (ABALONE, 1500, "Rings", "Regression", "RMSE", 15),
}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(HARNESS))
def test_benchmark_harness_contract(task: str, tmp_path: Path) -> None:
    source, rows, target, problem, objective, budget = HARNESS[task]
    table = pd.read_csv(source)
    if rows:
        table = table.sample(rows, random_state=0)
    train, test = split(table)
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    train.to_csv(train_csv, index=False)
    test.drop(columns=[target]).to_csv(test_csv, index=False)
    job, out = tmp_path / "job", tmp_path / "pred.csv"

    started = time.monotonic()
    fit = subprocess.run(
        [
            MLPILOT,
            "run",
            str(train_csv),
            "--target",
            target,
            "--problem-type",
            problem,
            "--objective",
            objective,
            "--max-runtime",
            str(budget),
            "--output",
            str(job),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=2 * budget + 120,
    )
    fit_seconds = time.monotonic() - started
    assert fit.returncode == 0, fit.stderr[-3000:]
    record = job_record(job)
    assert record["AutoMLJobStatus"] == "Completed"
    assert record["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"] == objective
    # The budget reached the job, whose clock runs within the command's; no model started
    # training after the deadline (the clock starts before CreationTime; the weighted ensemble,
    # layer 3, is assembled from them afterwards) and none was left running. How
    # close a run keeps to its budget is a figure for benchmarks/ (a loaded machine misses any
    # fixed margin).
    criteria = record["ResolvedAttributes"]["CompletionCriteria"]
    assert criteria["MaxAutoMLJobRuntimeInSeconds"] == budget
    assert record["Mlpilot"]["ElapsedSeconds"] <= fit_seconds
    for candidate in mlpilot.load_job(job).candidates():
        if candidate["Mlpilot"].get("Layer", 1) in (1, 2):
            assert candidate["CreationTime"] < record["CreationTime"] + budget
        assert candidate["CandidateStatus"] != "InProgress"
        assert candidate["EndTime"] <= record["EndTime"]

    predict = subprocess.run(
        [MLPILOT, "predict", str(job), str(test_csv), "--output", str(out), "--probabilities"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    got = pd.read_csv(out)
    assert len(got) == len(test)
    assert got.columns[0] == "predicted_label"
    truth = test[target].to_numpy()
    if problem == "Regression":
        assert list(got.columns) == ["predicted_label"]
        predicted = got["predicted_label"].to_numpy(dtype=float)
        rmse = math.sqrt(float(np.mean((predicted - truth) ** 2)))
        assert rmse < 0.85 * float(np.std(truth))  # clearly better than the mean
        return
    labels = sorted(train[target].unique())
    # Labels are spelled as in the CSV: 0/1 and 3..9, not 0.0 or "1.0".
    expected = [f"probability_{label}" for label in labels]
    assert sorted(c for c in got.columns if c.startswith("probability_")) == sorted(expected)
    assert set(got["predicted_label"]) <= set(labels)
    proba = got[[f"probability_{label}" for label in labels]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    if problem == "BinaryClassification":
        assert roc_auc_score(truth == 1, got["probability_1"]) > 0.75
    else:
        prior = train[target].value_counts(normalize=True).reindex(labels).to_numpy()
        constant = log_loss(truth, np.tile(prior, (len(truth), 1)), labels=labels)
        ours = log_loss(truth, np.clip(proba, 1e-15, 1), labels=labels)
        assert ours < constant


CONSOLE_SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path

atexit.register(lambda: print("atexit ran", flush=True))
mark = Path(sys.argv[1])


def late() -> None:
    time.sleep(0.5)
    mark.write_text("the thread finished")


if sys.argv[2] == "thread":
    threading.Thread(target=late).start()
sys.argv = ["mlpilot", *sys.argv[3:]]
from mlpilot.cli.main import main

main()
"""


@pytest.mark.parametrize(
    ("thread", "args", "code"),
    [("none", ["version"], 0), ("none", ["no-such-command"], 2), ("thread", ["version"], 0)],
)
def test_the_console_script_leaves_fast_with_its_status_exit_handlers_and_threads_done(
    tmp_path: Path, thread: str, args: list[str], code: int
) -> None:
    mark = tmp_path / "mark"
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, str(mark), thread, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert "atexit ran" in done.stdout
    if code == 0:
        assert mlpilot.__version__ in done.stdout
    # A thread the command left running is waited for, as Python always does.
    assert mark.exists() == (thread == "thread")
