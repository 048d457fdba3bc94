"""A given portfolio (``--portfolio``, ``TabularConfig.portfolio``, tag ``mlpilot:Portfolio``):
its checks, the spec and request round trips, the record naming it, an ENSEMBLING job training
only its configurations; and ``benchmarks/portfolio/build.py``'s leave-one-dataset-out files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import mlpilot
from helpers_data import PIMA, REPO
from mlpilot._types import ProblemType
from mlpilot.cli.main import app
from mlpilot.config import PORTFOLIO_TAG, JobConfig, TabularConfig
from mlpilot.ensemble import build_portfolio, shipped_portfolio
from mlpilot.errors import ConfigError
from mlpilot.search import Portfolio

BUILD = REPO / "benchmarks" / "portfolio" / "build.py"
LODO = REPO / "benchmarks" / "portfolio" / "lodo"
ONE_ENTRY = {
    "about": "one configuration",
    "datasets": ["somewhere"],
    "entries": [
        {
            "label": "small-lightgbm",
            "algorithm": "lightgbm",
            "params": {"num_leaves": 7, "learning_rate": 0.2},
        }
    ],
}


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def _entry(**changes: Any) -> dict[str, Any]:
    return {**ONE_ENTRY, "entries": [{**ONE_ENTRY["entries"][0], **changes}]}


# -- the file's checks ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (_entry(algorithm="gbm"), "entry 1 (small-lightgbm): unknown algorithm 'gbm'; valid names"),
        (
            _entry(algorithm="mlpilot.algorithms.lightgbm:LightGBM"),
            "unknown algorithm 'mlpilot.algorithms.lightgbm:LightGBM'",
        ),
        (
            _entry(params={"num_leaf": 7}),
            "entry 1 (small-lightgbm): lightgbm has no hyperparameter num_leaf",
        ),
        # The linear learner's C is a classifier's: in 'params' it would reach a regression.
        (
            {"entries": [{"label": "lr", "algorithm": "linear-learner", "params": {"C": 1.0}}]},
            "linear-learner has no hyperparameter C (Regression; 'params')",
        ),
        (
            {
                "entries": [
                    {"label": "x", "algorithm": "lightgbm", "params": {}},
                    {"label": "x", "algorithm": "xgboost", "params": {}},
                ]
            },
            "entry 2 (x): the label is given twice",
        ),
        (_entry(parms={}), "entry 1 (small-lightgbm): unknown field(s) parms"),
        (_entry(params=[1]), "'params' must be an object of hyperparameters"),
        ({"entries": []}, "'entries' must be a non-empty list"),
        ({"entries": [{"algorithm": "lightgbm"}]}, "entry 1: 'label' must be a non-empty string"),
        ([1, 2], "expected a JSON object with 'entries'"),
    ],
)
def test_bad_portfolio_files_are_named(tmp_path: Path, document: Any, fragment: str) -> None:
    path = _write(tmp_path / "bad.json", document)
    with pytest.raises(ConfigError) as caught:
        Portfolio.load(path)
    message = str(caught.value)
    assert fragment in message and str(path) in message
    assert "\n" not in message


def test_unreadable_and_non_json_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.json: cannot read it"):
        Portfolio.load(tmp_path / "nowhere.json")
    (tmp_path / "text.json").write_text("entries: lightgbm")
    with pytest.raises(ConfigError, match=r"text\.json: not JSON"):
        Portfolio.load(tmp_path / "text.json")


def test_a_portfolio_is_for_ensembling(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.json", ONE_ENTRY)
    with pytest.raises(ConfigError, match="not HYPERPARAMETER_TUNING"):
        TabularConfig(target="y", mode="HYPERPARAMETER_TUNING", portfolio=path)  # type: ignore[arg-type]


def test_the_shipped_and_the_held_out_portfolios_pass_the_checks() -> None:
    shipped = shipped_portfolio()
    assert len(shipped.learned_from) == 16
    files = sorted(LODO.glob("*.json"))
    assert [f.stem for f in files] == shipped.learned_from
    for path in files:
        held_out = Portfolio.load(path)
        assert held_out.document["left_out"] == [path.stem]
        assert sorted(held_out.learned_from) == sorted(set(shipped.learned_from) - {path.stem})
        # Every configuration of the sweep, so the algorithms are the shipped portfolio's.
        assert set(held_out.algorithms) == set(shipped.algorithms)
        assert len(held_out.entries) == len(shipped.entries)


# -- the spec, the request, the plan --------------------------------------------------------------
def _request(*tags: dict[str, str]) -> dict[str, Any]:
    return {
        "AutoMLJobName": "held-out",
        "AutoMLJobInputDataConfig": [
            {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/data/in"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "/data/out"},
        "AutoMLProblemTypeConfig": {
            "TabularJobConfig": {"TargetAttributeName": "y", "Mode": "ENSEMBLING"}
        },
        "RoleArn": "arn:aws:iam::000000000000:role/x",
        "Tags": list(tags),
    }


def test_the_tag_reads_the_file_and_the_spec_keeps_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.json", ONE_ENTRY)
    config = JobConfig.from_request(
        _request({"Key": PORTFOLIO_TAG, "Value": f"file://{path}"}), output_path="/tmp/x"
    )
    portfolio = config.problem_as(TabularConfig).portfolio
    assert portfolio is not None
    assert portfolio.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert portfolio.summary()["File"] == "one.json"
    # The spec holds the document itself: the job runs what was checked, whatever the file
    # becomes later.
    path.write_text("changed")
    again = JobConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    kept = again.problem_as(TabularConfig).portfolio
    assert kept is not None and kept.sha256 == portfolio.sha256
    assert kept.entries == ONE_ENTRY["entries"]
    tags = {t["Key"]: t["Value"] for t in config.to_request()["Tags"]}
    assert tags[PORTFOLIO_TAG] == f"file://{path}"
    with pytest.raises(ConfigError, match="give the portfolio file's absolute path"):
        JobConfig.from_request(
            _request({"Key": PORTFOLIO_TAG, "Value": "one.json"}), output_path="/tmp/x"
        )


def test_a_given_portfolio_replaces_the_shipped_plan(tmp_path: Path) -> None:
    two = {
        "entries": [
            {"label": "xgb", "algorithm": "xgboost", "params": {"max_depth": 3}},
            {
                "label": "forest",
                "algorithm": "randomforest",
                "params": {},
                "classification": {"criterion": "entropy"},
                "regression": {"criterion": "squared_error"},
            },
        ]
    }
    portfolio = Portfolio.load(_write(tmp_path / "two.json", two))
    plan = build_portfolio(ProblemType.BINARY, 1_000, 2, portfolio.algorithms, portfolio)
    assert [(e.label, e.params) for e in plan] == [
        ("xgb", {"max_depth": 3}),
        ("forest", {"criterion": "entropy"}),
    ]
    regression = build_portfolio(ProblemType.REGRESSION, 1_000, 0, ["randomforest"], portfolio)
    assert [(e.label, e.params) for e in regression] == [("forest", {"criterion": "squared_error"})]
    # An algorithm the user names that the portfolio lacks gets its defaults, as with the
    # shipped one.
    named = build_portfolio(ProblemType.BINARY, 1_000, 2, ["xgboost", "lightgbm"], portfolio)
    assert [e.label for e in named] == ["xgb", "lightgbm"]


# -- the command line and a whole job -------------------------------------------------------------
def test_the_cli_names_a_bad_portfolio_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.json", _entry(params={"num_leaf": 7}))
    result = CliRunner().invoke(
        app,
        [
            *("run", str(PIMA), "--target", "Outcome"),
            *("--output", str(tmp_path / "job"), "--portfolio", str(path)),
        ],
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "bad.json: entry 1 (small-lightgbm): lightgbm has no hyperparameter num_leaf" in lines[0]
    assert not (tmp_path / "job").exists()


@pytest.mark.slow
def test_an_ensembling_job_trains_only_the_given_configuration(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.json", ONE_ENTRY)
    table = pd.read_csv(PIMA).sample(400, random_state=0)
    job = mlpilot.run_job(
        table,
        target="Outcome",
        output=tmp_path / "job",
        name="one-entry",
        mode="ENSEMBLING",
        problem_type="BinaryClassification",
        portfolio=str(path),
        parallelism=2,
        generate_reports=False,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    base = [c for c in job.candidates.values() if c["Mlpilot"].get("Layer") == 1]
    assert [c["Mlpilot"]["PortfolioEntry"] for c in base] == ["small-lightgbm"]
    params = base[0]["Mlpilot"]["Hyperparameters"]
    assert (params["num_leaves"], params["learning_rate"]) == (7, 0.2)
    used = job.record["Mlpilot"]["Portfolio"]
    assert used["File"] == "one.json" and used["Given"] is True
    assert used["Sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert used["LearnedFrom"] == ["somewhere"]
    board = CliRunner().invoke(app, ["leaderboard", str(tmp_path / "job")])
    assert board.exit_code == 0, board.output
    assert f"portfolio (given): one.json sha256 {used['Sha256'][:12]}" in board.stdout


# -- benchmarks/portfolio/build.py ----------------------------------------------------------------
def _fake_sweep(folder: Path) -> Path:
    """Three datasets, five configurations: ``a`` is best on ``odd`` and fair on the others,
    ``b`` best on the others and poor on ``odd``; ``c``, ``d``, ``e`` fill the median."""
    folder.mkdir()
    labels = {"a": "lightgbm", "b": "xgboost", "c": "extra-trees", "d": "randomforest"}
    labels["e"] = "catboost"
    candidates = [{"label": k, "algorithm": v, "params": {}} for k, v in labels.items()]
    (folder / "candidates.json").write_text(json.dumps(candidates))
    even = {"a": 0.82, "b": 0.90, "c": 0.70, "d": 0.60, "e": 0.50}
    scores = {
        "odd": {"a": 0.99, "b": 0.60, "c": 0.70, "d": 0.65, "e": 0.50},
        "even1": even,
        "even2": even,
    }
    rows = [
        {
            "dataset": dataset,
            "label": label,
            "algorithm": labels[label],
            "status": "Completed",
            "objective": "AUC",
            "score": score,
            "seconds": 1.0,
        }
        for dataset, by_label in scores.items()
        for label, score in by_label.items()
    ]
    (folder / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def build() -> Any:
    """``benchmarks/portfolio/build.py`` as a module (its ``main`` reads ``sys.argv``)."""
    spec = importlib.util.spec_from_file_location("portfolio_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)  # it puts its own folder on sys.path
    finally:
        sys.path[:] = path
    return module


def _run(build: Any, monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> None:
    monkeypatch.setattr(sys, "argv", [str(BUILD), *map(str, args)])
    build.main()


def test_the_committed_held_out_portfolios_are_the_sweeps(build: Any) -> None:
    """benchmarks/portfolio/lodo/ is what --lodo-dir writes from the committed sweep."""
    signed, seconds, candidates = build.load(REPO / "benchmarks" / "results" / "portfolio-sweep")
    for dataset in signed.index:
        order, normalized, cost = build.learn(*build.leave_out(signed, seconds, [dataset]))
        expected = build.document(order, normalized, cost, candidates, [dataset])
        assert json.loads((LODO / f"{dataset}.json").read_text()) == expected, dataset


def test_lodo_builder_learns_each_portfolio_without_its_dataset(
    build: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sweep = _fake_sweep(tmp_path / "sweep")
    _run(build, monkeypatch, sweep, "--lodo-dir", tmp_path / "lodo")
    files = sorted(p.name for p in (tmp_path / "lodo").iterdir())
    assert files == ["even1.json", "even2.json", "odd.json"]
    odd = json.loads((tmp_path / "lodo" / "odd.json").read_text())
    assert odd["datasets"] == ["even1", "even2"] and odd["left_out"] == ["odd"]
    # Learned from all three, a comes first (best on odd, fair elsewhere); without odd's rows, b.
    _run(build, monkeypatch, sweep, "--write", tmp_path / "full.json")
    first = [e["label"] for e in json.loads((tmp_path / "full.json").read_text())["entries"]]
    assert first[:2] == ["a", "b"]
    assert [e["label"] for e in odd["entries"]][:2] == ["b", "a"]
    even = json.loads((tmp_path / "lodo" / "even1.json").read_text())
    assert even["datasets"] == ["even2", "odd"]
    assert [e["label"] for e in even["entries"]][:2] == ["a", "b"]
    # The files are what --portfolio reads.
    Portfolio.load(tmp_path / "lodo" / "odd.json")
    # --leave-out writes the same portfolio as the folder's file.
    _run(build, monkeypatch, sweep, "--leave-out", "odd", "--write", tmp_path / "odd.json")
    assert (tmp_path / "odd.json").read_text() == (tmp_path / "lodo" / "odd.json").read_text()
    with pytest.raises(SystemExit, match="--leave-out: nowhere not in the sweep"):
        _run(build, monkeypatch, sweep, "--leave-out", "nowhere")
