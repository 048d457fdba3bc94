"""Writes the candidate-definition notebook (``SageMakerAutopilotCandidateDefinitionNotebook``).

Every candidate pipeline is written out as plain Python on mlpilot's public API: a
:class:`~mlpilot.search.CandidateDefinition` with its preprocessing, every hyperparameter's
starting value and the Optuna ranges the search draws from. Further cells hold the other knobs
(the pipelines tried, the number of trials and their parallelism, time limits) and run the
search. Unedited, the notebook repeats the job: same data, seed, validation plan, pipelines,
number of trials and parallelism, hence the same best objective value (when the job ran
without a time limit; with one, trials cut short by the clock may end differently).
"""

from __future__ import annotations

import json
import keyword
import re
import time
from dataclasses import dataclass, field
from typing import Any

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mlpilot._version import __version__
from mlpilot.metrics import get_metric
from mlpilot.reports._build_exploration import KERNELSPEC
from mlpilot.search import CandidateDefinition

__all__ = ["CandidateNotebookFacts", "build_candidate_notebook"]

_OBJECTIVE_MEANING = {
    "Accuracy": "the share of rows whose class is predicted correctly",
    "AUC": "how well the predicted probabilities rank positive rows above negative ones",
    "BalancedAccuracy": "the mean of the per-class recalls, so every class counts equally",
    "F1": "the harmonic mean of precision and recall of the positive class",
    "F1macro": "the F1 score of each class, averaged over the classes",
    "LogLoss": "the cross-entropy of the predicted probabilities (lower is better)",
    "Precision": "the share of predicted positives that are positive",
    "PrecisionMacro": "precision per class, averaged over the classes",
    "Recall": "the share of positive rows predicted positive",
    "RecallMacro": "recall per class, averaged over the classes",
    "MSE": "the mean squared error of the predicted values (lower is better)",
    "RMSE": "the square root of the mean squared error (lower is better)",
    "MAE": "the mean absolute error of the predicted values (lower is better)",
    "R2": "the share of the target's variance the predictions explain",
    "InferenceLatency": "the seconds to predict one row (lower is better)",
}

_OPTION_NOTES = {
    "categorical": '"ordinal" codes (tree models) or "onehot" columns',
    "high_cardinality": 'categoricals with more than max_onehot_levels: "target" or "ordinal"',
    "numeric_scaling": '"none", "standard" or "quantile" (to a normal distribution)',
    "impute": "median-impute numbers and add missing-value indicators",
    "text_svd": "0: sparse TF-IDF; k > 0: k SVD components per text column",
    "max_onehot_levels": "categoricals up to this many levels count as low-cardinality",
    "text_max_features": "TF-IDF vocabulary size per text column",
}


@dataclass
class PipelineFacts:
    """How one pipeline fared in the job (empty before training)."""

    trials: int = 0
    completed: int = 0
    best_value: float | None = None
    best_candidate: str = ""


@dataclass
class CandidateNotebookFacts:
    """What the candidate notebook says about its job."""

    job_name: str
    training_data: str
    target: str
    problem_type: str
    objective: str
    seed: int
    n_rows: int
    n_columns: int
    labels: list[Any]
    validation: str
    definitions: list[CandidateDefinition]
    descriptions: dict[str, str]
    max_candidates: int
    parallelism: int
    max_runtime: int | None
    max_runtime_per_candidate: int | None
    candidates_only: bool
    data_options: dict[str, Any] = field(default_factory=dict)
    #: TabularConfig fields the job set besides the target, problem type and candidates.
    table_options: dict[str, Any] = field(default_factory=dict)
    pipelines: dict[str, PipelineFacts] = field(default_factory=dict)
    trials_run: int | None = None
    best: dict[str, Any] | None = None


def _py(value: Any) -> str:
    """A Python literal that evaluates back to exactly ``value``."""
    if isinstance(value, float) and value != value:
        return 'float("nan")'
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, as code is usually written
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    return repr(value)


def distribution_source(dist: BaseDistribution) -> str:
    if isinstance(dist, FloatDistribution):
        args = [_py(dist.low), _py(dist.high)]
        if dist.log:
            args.append("log=True")
        if dist.step is not None:
            args.append(f"step={_py(dist.step)}")
        return f"FloatDistribution({', '.join(args)})"
    if isinstance(dist, IntDistribution):
        args = [_py(dist.low), _py(dist.high)]
        if dist.log:
            args.append("log=True")
        if dist.step != 1:
            args.append(f"step={_py(dist.step)}")
        return f"IntDistribution({', '.join(args)})"
    if isinstance(dist, CategoricalDistribution):
        return f"CategoricalDistribution({_py(list(dist.choices))})"
    raise TypeError(f"cannot write {dist!r} as Python")


def variable_name(key: str) -> str:
    name = re.sub(r"\W", "_", key)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"candidate_{name}"
    return name


def definition_source(definition: CandidateDefinition) -> str:
    """``<variable> = CandidateDefinition(...)`` with every value written out."""
    assert definition.preprocessing is not None
    assert definition.defaults is not None and definition.ranges is not None
    lines = [f"{variable_name(definition.key)} = CandidateDefinition("]
    lines.append(f"    algorithm={_py(definition.algorithm)},")
    if definition.name is not None:
        lines.append(f"    name={_py(definition.name)},")
    lines.append("    preprocessing=PreprocessingOptions(")
    for option, value in definition.preprocessing.to_dict().items():
        note = _OPTION_NOTES.get(option)
        lines.append(f"        {option}={_py(value)},{f'  # {note}' if note else ''}")
    lines.append("    ),")
    lines.append("    # Every hyperparameter's value in the first trial (and in every trial for")
    lines.append("    # those without a range below).")
    lines.append("    defaults={")
    for param, value in definition.defaults.items():
        lines.append(f"        {_py(param)}: {_py(value)},")
    lines.append("    },")
    lines.append("    # The ranges the search draws from after the first trial.")
    lines.append("    ranges={")
    for param, dist in definition.ranges.items():
        lines.append(f"        {_py(param)}: {distribution_source(dist)},")
    lines.append("    },")
    lines.append(")")
    return "\n".join(lines)


def _knobs(text: str) -> str:
    return f"> **Available knobs.** {text}"


def build_candidate_notebook(facts: CandidateNotebookFacts) -> Any:
    """The notebook object (unexecuted: running it trains models)."""
    metric = get_metric(facts.objective)
    meaning = _OBJECTIVE_MEANING.get(facts.objective, "")
    algorithms = sorted({d.algorithm for d in facts.definitions})
    classes = (
        f" with {len(facts.labels)} classes ({', '.join(map(str, facts.labels[:12]))}"
        + (" ..." if len(facts.labels) > 12 else "")
        + ")"
        if facts.labels
        else ""
    )
    if facts.candidates_only:
        status = (
            "The job stopped after generating these definitions "
            "(`GenerateCandidateDefinitionsOnly` / `--candidates-only`): nothing has been "
            "trained yet. Choose and edit the candidates below, then run the search: the "
            "trained candidates join the job's own leaderboard."
        )
    else:
        best = facts.best or {}
        status = (
            f"The job ran {facts.trials_run} trials; its best candidate is "
            f"`{best.get('name', '?')}` ({best.get('algorithm', '?')}) with {facts.objective} "
            f"= {best.get('value', float('nan')):.6g}. Run the notebook unedited to repeat that "
            "search in a separate folder, or edit it to try something else."
        )
    intro = (
        f"# Candidate Definition Notebook: `{facts.job_name}`\n\n"
        f"The job learns to predict `{facts.target}` from {facts.n_columns - 1:,} columns of "
        f"{facts.n_rows:,} rows: **{facts.problem_type}**{classes}. It "
        f"{'maximizes' if metric.maximize else 'minimizes'} **{facts.objective}**"
        f"{f' ({meaning})' if meaning else ''}. Validation: {facts.validation}.\n\n"
        f"{status}\n\n"
        f"This notebook holds the {len(facts.definitions)} candidate pipeline(s), using "
        f"{len(algorithms)} algorithm(s), as plain Python: each pipeline's preprocessing, "
        "algorithm and hyperparameter ranges. Edit any of them, the pipelines tried, the "
        "number of trials and their parallelism, and run the search from here.\n\n"
        f"Generated by mlpilot {__version__} on {time.strftime('%Y-%m-%d %H:%M')}."
    )
    toc = "\n".join(
        f"{i}. [{title}](#{anchor})"
        for i, (anchor, title) in enumerate(
            [
                ("setup", "Setup"),
                ("candidate-pipelines", "Candidate pipelines"),
                ("tuning", "Hyperparameter tuning settings"),
                ("run", "Run the search"),
                ("results", "Results"),
                ("use", "Use the best model"),
            ],
            1,
        )
    )
    data_lines = [
        "# The job's data, as it read it.",
        f"TRAINING_DATA = {_py(facts.training_data)}",
        f"TARGET = {_py(facts.target)}",
        f"PROBLEM_TYPE = {_py(facts.problem_type)}",
        f"OBJECTIVE = {_py(facts.objective)}",
        f"SEED = {_py(facts.seed)}",
        "# Validation channel or fraction, weights, formats: as the job had them.",
        *(
            [
                "DATA_OPTIONS = {",
                *[f"    {_py(k)}: {_py(v)}," for k, v in facts.data_options.items()],
                "}",
            ]
            if facts.data_options
            else ["DATA_OPTIONS = {}"]
        ),
        *(
            [
                "TABLE_OPTIONS = {",
                *[f"    {_py(k)}: {_py(v)}," for k, v in facts.table_options.items()],
                "}",
            ]
            if facts.table_options
            else ["TABLE_OPTIONS = {}"]
        ),
    ]
    cells: list[Any] = [
        new_markdown_cell(intro),
        new_markdown_cell(f"## Contents\n\n{toc}"),
        new_markdown_cell(
            '<a id="setup"></a>\n## Setup\n\nmlpilot runs the search on this machine: '
            "candidates train in worker processes, as in the job. The paths are relative to "
            "this notebook, which lives in "
            "`<job>/sagemaker-automl-candidates/<analysis>/notebooks/`."
        ),
        new_code_cell(
            "import time\n"
            "import warnings\n"
            "from pathlib import Path\n\n"
            "import pandas as pd\n"
            "from optuna.distributions import (\n"
            "    CategoricalDistribution,\n"
            "    FloatDistribution,\n"
            "    IntDistribution,\n"
            ")\n\n"
            'warnings.filterwarnings("ignore", message="IProgress not found")\n'
            "import mlpilot\n"
            "from mlpilot import AutoMLJob, JobConfig, TabularConfig\n"
            "from mlpilot.features import PreprocessingOptions\n"
            "from mlpilot.notebooks import ProgressPrinter, describe_candidates, "
            "train_candidates\n"
            "from mlpilot.reports import WhiteBox\n"
            "from mlpilot.search import CandidateDefinition\n\n"
            'pd.set_option("display.max_colwidth", 200)\n'
            'JOB_DIR = Path("../../..").resolve()  # the job\'s output folder\n'
            "JOB = mlpilot.load_job(JOB_DIR)\n"
            f"JOB_NAME = {_py(facts.job_name)}",
            metadata={"tags": ["setup"]},
        ),
        new_markdown_cell(
            "### The job's data\n\n"
            + _knobs(
                "Point `TRAINING_DATA` at another file (CSV, Parquet, a folder or an `s3://` "
                "URI) with the same columns to train on new data; `DATA_OPTIONS` takes any "
                "`JobConfig` field (`validation_fraction`, `validation_data`, `content_type`...), "
                "`TABLE_OPTIONS` any `TabularConfig` field (`sample_weight`, "
                "`feature_specification`...)."
            )
        ),
        new_code_cell("\n".join(data_lines), metadata={"tags": ["data"]}),
        new_markdown_cell(
            '<a id="candidate-pipelines"></a>\n## Candidate pipelines\n\n'
            f"{len(facts.definitions)} pipelines using {len(algorithms)} algorithms. A "
            "pipeline is a preprocessing plan (the `PreprocessingOptions`: how categories, "
            "numbers, text and dates become model inputs) followed by an algorithm whose "
            "hyperparameters the search tunes. Each search trial picks a pipeline and draws "
            "its hyperparameters from the ranges; the first trial of each pipeline uses its "
            "`defaults`.\n\n"
            + _knobs(
                "Change any preprocessing option, starting value or range. Ranges are Optuna "
                "distributions: `FloatDistribution(low, high, log=True)`, "
                "`IntDistribution(low, high)`, `CategoricalDistribution([...])`; remove a "
                "parameter from `ranges` to keep it at its default. To try one algorithm with "
                'two preprocessing plans, copy its definition and give the copy a `name="..."`.'
            )
        ),
    ]
    for k, definition in enumerate(facts.definitions):
        assert definition.preprocessing is not None
        steps = "\n".join(f"- {s}" for s in definition.preprocessing.describe())
        stats = facts.pipelines.get(definition.key, PipelineFacts())
        if stats.trials:
            fared = f"In the job: {stats.trials} trial(s), {stats.completed} completed" + (
                f"; best {facts.objective} {stats.best_value:.6g} (`{stats.best_candidate}`)."
                if stats.best_value is not None
                else "."
            )
        elif facts.candidates_only:
            fared = "Not trained yet."
        else:
            fared = "In the job: no trial used this pipeline."
        description = facts.descriptions.get(definition.key, definition.algorithm)
        cells.append(
            new_markdown_cell(
                f"### dpp{k}-{definition.key}: {description}\n\nPreprocessing:\n\n{steps}\n\n"
                f"{fared} {len(definition.ranges or {})} hyperparameters are tuned."
            )
        )
        cells.append(
            new_code_cell(definition_source(definition), metadata={"tags": ["definition"]})
        )
    listed = ", ".join(variable_name(d.key) for d in facts.definitions)
    cells += [
        new_markdown_cell(
            "### Selected candidates\n\n"
            + _knobs(
                "Remove a pipeline from `CANDIDATES` to stop trying it; the order sets which "
                "pipelines' defaults are tried first."
            )
        ),
        new_code_cell(
            f"CANDIDATES = [{listed}]\ndescribe_candidates(CANDIDATES)",
            metadata={"tags": ["selected"]},
        ),
        new_markdown_cell(
            '<a id="tuning"></a>\n## Hyperparameter tuning settings\n\n'
            "The search is Optuna's TPE sampler: after the pipelines' defaults it draws "
            "hyperparameters where earlier trials scored well; cross-validated trials that "
            "trail the median after a fold are stopped early (pruned). Trials are proposed in "
            "a fixed order, so the same settings and seed give the same leaderboard whatever "
            "the timing.\n\n"
            + _knobs(
                "`MAX_CANDIDATES`: the number of trials (the job's own count by default). "
                "`PARALLELISM`: trials trained at once. Keep both, and the seed, to repeat the "
                "job exactly: trial *n* is proposed after the first *n − PARALLELISM* results. "
                "`MAX_RUNTIME` / `MAX_RUNTIME_PER_CANDIDATE`: time limits in seconds (`None`: "
                "none); limits make the result depend on the machine's speed."
            )
        ),
        new_code_cell(
            f"MAX_CANDIDATES = {_py(facts.max_candidates)}\n"
            f"PARALLELISM = {_py(facts.parallelism)}\n"
            f"MAX_RUNTIME = {_py(facts.max_runtime)}\n"
            f"MAX_RUNTIME_PER_CANDIDATE = {_py(facts.max_runtime_per_candidate)}\n"
            "GENERATE_REPORTS = False  # True: explainability and model-quality reports too",
            metadata={"tags": ["tuning"]},
        ),
    ]
    if facts.candidates_only:
        cells += [
            new_markdown_cell(
                '<a id="run"></a>\n## Run the search\n\nTrains the selected candidates as '
                "this job's search: they appear on its leaderboard (`mlpilot leaderboard "
                "<job>`), the best is packaged in the job folder as for any job. This can run "
                "once; start a new job to search again."
            ),
            new_code_cell(
                "job = train_candidates(\n"
                "    JOB_DIR,\n"
                "    candidates=CANDIDATES,\n"
                "    max_candidates=MAX_CANDIDATES,\n"
                "    parallelism=PARALLELISM,\n"
                "    max_runtime=MAX_RUNTIME,\n"
                "    max_runtime_per_candidate=MAX_RUNTIME_PER_CANDIDATE,\n"
                "    generate_reports=GENERATE_REPORTS,\n"
                "    observers=[ProgressPrinter()],\n"
                ")\n"
                "RUN_DIR = JOB_DIR\n"
                'print(f"{job.status}: {len(job.candidates)} candidates in '
                '{job.elapsed():.1f} s")',
                metadata={"tags": ["run"]},
            ),
            new_markdown_cell(
                '<a id="results"></a>\n## Results\n\nThe job\'s leaderboard, best first.'
            ),
            new_code_cell(
                'columns = ["rank", "candidate", "algorithm", "status", "objective", '
                '"train_seconds", "failure_reason"]\n'
                "job.leaderboard()[columns].head(20)",
                metadata={"tags": ["leaderboard"]},
            ),
        ]
    else:
        cells += [
            new_markdown_cell(
                '<a id="run"></a>\n## Run the search\n\nRuns the candidates above as a new '
                "job in `local-runs/` inside this job's folder (the job itself is left as it "
                "is). It takes about as long as the job's search."
            ),
            new_code_cell(
                "RUN_NAME = f\"{JOB_NAME[:17]}-nb-{time.strftime('%m%d%H%M%S')}\"\n"
                'RUN_DIR = JOB_DIR / "local-runs" / RUN_NAME\n'
                "config = JobConfig(\n"
                "    name=RUN_NAME,\n"
                "    training_data=TRAINING_DATA,\n"
                "    output_path=str(RUN_DIR),\n"
                "    problem=TabularConfig(\n"
                "        target=TARGET,\n"
                "        problem_type=PROBLEM_TYPE,\n"
                '        mode="HYPERPARAMETER_TUNING",\n'
                "        candidates=tuple(CANDIDATES),\n"
                "        **TABLE_OPTIONS,\n"
                "    ),\n"
                "    objective=OBJECTIVE,\n"
                "    max_candidates=MAX_CANDIDATES,\n"
                "    parallelism=PARALLELISM,\n"
                "    max_runtime=MAX_RUNTIME,\n"
                "    max_runtime_per_candidate=MAX_RUNTIME_PER_CANDIDATE,\n"
                "    seed=SEED,\n"
                "    generate_reports=GENERATE_REPORTS,\n"
                "    **DATA_OPTIONS,\n"
                ")\n"
                "job = AutoMLJob(config, observers=[ProgressPrinter(), WhiteBox()])\n"
                "job.run()\n"
                'print(f"{job.status}: {len(job.candidates)} candidates in '
                '{job.elapsed():.1f} s -> {RUN_DIR}")',
                metadata={"tags": ["run"]},
            ),
            new_markdown_cell(
                '<a id="results"></a>\n## Results\n\nThis run\'s leaderboard, best first, '
                "then its best objective value beside the job's."
            ),
            new_code_cell(
                'columns = ["rank", "candidate", "algorithm", "status", "objective", '
                '"train_seconds", "failure_reason"]\n'
                "job.leaderboard()[columns].head(20)",
                metadata={"tags": ["leaderboard"]},
            ),
            new_code_cell(
                'this_run = job.record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]'
                '["Value"]\n'
                'the_job = JOB.best_candidate["FinalAutoMLJobObjectiveMetric"]["Value"]\n'
                'print(f"Best {OBJECTIVE}: this run {this_run!r}, the job {the_job!r}")\n'
                "print(\n"
                '    "identical to the job\'s best"\n'
                "    if this_run == the_job\n"
                '    else "different from the job\'s best (edited settings, or time limits)"\n'
                ")",
                metadata={"tags": ["compare"]},
            ),
        ]
    cells += [
        new_markdown_cell(
            '<a id="use"></a>\n## Use the best model\n\nThe best candidate is packaged '
            "(preprocessing and model in one `model.tar.gz`). Predict from Python as below, "
            "from the shell with `mlpilot predict <folder> rows.csv`, or serve it."
        ),
        new_code_cell(
            "model = mlpilot.load_model(RUN_DIR)\n"
            'rows = pd.read_parquet("../data-sample/rows.parquet").head(5)\n'
            "model.predict(rows)",
            metadata={"tags": ["predict"]},
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["mlpilot"] = {
        "job": facts.job_name,
        "kind": "candidate-definition",
        "version": __version__,
        "candidates_only": facts.candidates_only,
    }
    return nb
