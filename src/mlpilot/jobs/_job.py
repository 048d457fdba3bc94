"""The AutoML job: data → profile → candidates → trials → leaderboard → model package.

:class:`AutoMLJob` runs one job in the calling process, with candidates on an
:class:`~mlpilot.runtime.Executor`. Its state is the job record (DescribeAutoMLJobV2's shape),
rewritten atomically at every change in ``job.json``; observers (the CLI's progress display,
the service's store) are told of each change.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlpilot._types import CandidateStatus, JobStatus, Mode, ProblemType, SecondaryStatus
from mlpilot.algorithms import (
    DEFAULT_ALGORITHMS,
    ENSEMBLING_ALGORITHMS,
    algorithm_path,
    algorithm_tags,
)
from mlpilot.config import JobConfig
from mlpilot.data import read_table
from mlpilot.errors import ConfigError, DataError, MlpilotError
from mlpilot.jobs._layout import JobLayout, write_json_atomic
from mlpilot.jobs._leaderboard import leaderboard_frame
from mlpilot.jobs._records import arn, candidate_record, inference_container
from mlpilot.jobs._split import ValidationPlan, plan_validation
from mlpilot.metrics import default_objective, get_metric
from mlpilot.profile import DatasetProfile, build_profile
from mlpilot.runtime import Executor, LocalProcessExecutor
from mlpilot.search import (
    CandidateSpec,
    SearchLimits,
    SearchSpace,
    TrialResult,
    TrialTask,
    run_search,
    write_prepared,
)

__all__ = ["AutoMLJob", "JobObserver"]

#: Share of the runtime budget kept back for the final refit and packaging (at most).
FINAL_TAIL_SHARE = 0.25
#: Seconds always kept back at the end (writing outputs, stopping workers).
FINAL_TAIL_MIN = 1.5
#: Rough speed of writing a package and its gzip (level 1) archive, for the time budget.
PACKAGE_BYTES_PER_SECOND = 150e6
#: Largest sample the search trains on, by runtime budget (seconds → rows).
SEARCH_ROW_CAPS = ((120, 50_000), (900, 200_000))
#: Above this size (bytes in memory), AUTO mode would pick HYPERPARAMETER_TUNING anyway.
AUTO_ENSEMBLING_MAX_BYTES = 100 * 1024 * 1024


class JobObserver(Protocol):
    def on_status(self, job: AutoMLJob) -> None: ...

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None: ...


class AutoMLJob:
    """One AutoML job.

    Parameters
    ----------
    config:
        What to do (:class:`~mlpilot.config.JobConfig`).
    executor:
        Where candidates run; a local process pool by default.
    started:
        ``time.monotonic()`` when the job's clock started (the CLI passes its own start, so the
        runtime limit covers start-up too).

    Examples
    --------
    >>> job = AutoMLJob(JobConfig(name="churn", training_data="examples/churn.csv",
    ...                           target="Churn", output_path="runs/churn", max_runtime=60))
    >>> job.run()                                     # doctest: +SKIP
    >>> job.leaderboard().head()                      # doctest: +SKIP
    """

    def __init__(
        self,
        config: JobConfig,
        *,
        executor: Executor | None = None,
        observers: list[JobObserver] | None = None,
        started: float | None = None,
    ) -> None:
        self.config = config
        self.layout = JobLayout(config.output_dir, config.name)
        self._executor = executor
        self._owns_executor = executor is None
        self.observers = list(observers or [])
        self._clock0 = started if started is not None else time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.profile: DatasetProfile | None = None
        self.validation: ValidationPlan | None = None
        self.problem_type: ProblemType | None = config.problem_type
        self.objective: str | None = config.objective
        self.mode: Mode = config.mode
        self.mode_reason = ""
        self._ensemble: Any = None  # the ENSEMBLING builder, once it ran
        self._bagging: Any = None  # ENSEMBLING's BaggingPlan
        self._portfolio: list[Any] = []
        self._y: np.ndarray | None = None
        self._weight: np.ndarray | None = None
        self.candidates: dict[str, dict[str, Any]] = {}
        self.best: dict[str, Any] | None = None
        self._best_package_bytes = 0
        self.failures: list[str] = []
        self._white_box: Any = None  # notebooks and reports (mlpilot.reports.WhiteBox)
        now = time.time()
        self.record: dict[str, Any] = {
            **config.to_request(),
            "AutoMLJobArn": arn(config.region, config.account_id, "automl-job", config.name),
            "AutoMLProblemTypeConfigName": "Tabular",
            "CreationTime": now,
            "LastModifiedTime": now,
            "AutoMLJobStatus": JobStatus.IN_PROGRESS.value,
            "AutoMLJobSecondaryStatus": SecondaryStatus.STARTING.value,
        }

    # -- public ---------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self.record["AutoMLJobStatus"])

    @property
    def secondary_status(self) -> str:
        return str(self.record["AutoMLJobSecondaryStatus"])

    def stop(self) -> None:
        """Ask the job to stop: no new candidates; running ones are cancelled; the best
        candidate so far is kept and packaged."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self.record["AutoMLJobStatus"] == JobStatus.IN_PROGRESS.value:
            self.record["AutoMLJobStatus"] = JobStatus.STOPPING.value
            self.record["AutoMLJobSecondaryStatus"] = SecondaryStatus.STOPPING.value
            self._save()

    @property
    def deadline(self) -> float | None:
        if self.config.max_runtime is None:
            return None
        return self._clock0 + self.config.max_runtime

    def elapsed(self) -> float:
        return time.monotonic() - self._clock0

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard_frame(list(self.candidates.values()), self.objective or "F1")

    def best_model(self) -> Any:
        from mlpilot.package import load_model

        return load_model(self.layout.root)

    def run(self) -> dict[str, Any]:
        """Run to the end; returns the final job record. Never raises for candidate failures;
        raises :class:`MlpilotError` only for a bad configuration or unusable data, after
        recording the job as Failed."""
        if self.layout.record.exists():
            # Its records, logs and models would mix with this job's (candidates.jsonl appends).
            raise ConfigError(
                f"{self.layout.root} already holds a job; choose another output folder or remove it"
            )
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self._save()
        try:
            self._run()
        except MlpilotError as exc:
            self._finish(JobStatus.FAILED, SecondaryStatus.FAILED, failure=str(exc))
            raise
        except Exception as exc:
            self._finish(
                JobStatus.FAILED,
                SecondaryStatus.FAILED,
                failure=f"Internal error: {type(exc).__name__}: {exc}",
            )
            raise
        finally:
            if self._owns_executor and self._executor is not None:
                self._executor.shutdown()
            shutil.rmtree(self.layout.work, ignore_errors=True)
        return self.record

    # -- phases ---------------------------------------------------------------------------
    def _run(self) -> None:
        cfg = self.config
        if self._executor is None:
            self._executor = LocalProcessExecutor(cfg.parallelism)
            self._executor.warm_up("mlpilot.search._trial:run_trial")

        self._set_status(SecondaryStatus.ANALYZING_DATA)
        table, n_validation = self._read_data()
        self._analyse(table, n_validation)
        if self._stop.is_set():
            return self._finish(JobStatus.STOPPED, SecondaryStatus.STOPPED)

        # ENSEMBLING goes straight from AnalyzingData to TrainingModels, as Autopilot's does.
        self._set_status(
            SecondaryStatus.TRAINING_MODELS
            if self.mode is Mode.ENSEMBLING
            else SecondaryStatus.FEATURE_ENGINEERING
        )
        space = self._define_candidates()
        from mlpilot.reports._whitebox import WhiteBox

        self._white_box = WhiteBox.start(self, space)
        if cfg.candidates_only:
            return self._finish(
                JobStatus.COMPLETED, SecondaryStatus.CANDIDATE_DEFINITIONS_GENERATED
            )

        if self.mode is Mode.ENSEMBLING:
            reason = self._train_ensemble()
        else:
            self._set_status(SecondaryStatus.MODEL_TUNING)
            reason = self._tune(space)
        ended_by = {
            "MaxCandidatesReached": SecondaryStatus.MAX_CANDIDATES_REACHED,
            "MaxAutoMLJobRuntimeReached": SecondaryStatus.MAX_AUTOML_JOB_RUNTIME_REACHED,
            "Stopped": SecondaryStatus.STOPPING,
        }[reason]
        self._set_status(ended_by)
        if self.best is None:
            if self._stop.is_set():
                return self._finish(JobStatus.STOPPED, SecondaryStatus.STOPPED)
            first = "; ".join(self.failures[:3]) or "no candidate was trained in the time given"
            return self._finish(
                JobStatus.FAILED, SecondaryStatus.FAILED, failure=f"No candidate completed: {first}"
            )
        self._package_best()
        self._white_box.after_packaging()
        self._write_leaderboard()
        if self._stop.is_set():
            return self._finish(JobStatus.STOPPED, SecondaryStatus.STOPPED)
        return self._finish(JobStatus.COMPLETED, SecondaryStatus.COMPLETED)

    def _read_data(self) -> tuple[pd.DataFrame, int]:
        cfg = self.config
        table = read_table(
            cfg.training_data,
            content_type=cfg.content_type,
            compression=cfg.compression,
            data_type=cfg.data_type,
        )
        if len(table) == 0:
            raise DataError("The training data has no rows")
        n_validation = 0
        if cfg.validation_data is not None:
            valid = read_table(
                cfg.validation_data, content_type=cfg.content_type, compression=cfg.compression
            )
            if list(valid.columns) != list(table.columns):
                raise DataError(
                    "The validation channel's columns differ from the training data's: "
                    f"{list(valid.columns)[:10]} vs {list(table.columns)[:10]}"
                )
            if len(valid) == 0:
                raise DataError("The validation data has no rows")
            n_validation = len(valid)
            table = pd.concat([table, valid], ignore_index=True)
        return table, n_validation

    def _analyse(self, table: pd.DataFrame, n_validation: int) -> None:
        cfg = self.config
        profile = build_profile(
            table,
            cfg.target,
            problem_type=cfg.problem_type,
            sample_weight=cfg.sample_weight,
            feature_spec=cfg.load_feature_specification(),
        )
        self.problem_type = profile.problem_type
        if self.objective is None:
            self.objective = default_objective(profile.problem_type)
        else:
            get_metric(self.objective, profile.problem_type)

        # Rows the profile says cannot be used (no target, no weight) leave the table here.
        from mlpilot.profile._target import clean_labels

        labels = clean_labels(table[cfg.target])
        usable = labels.notna()
        if pd.api.types.is_numeric_dtype(labels):  # e.g. inf in a Parquet float target
            usable &= ~np.isinf(labels.astype("float64"))
        if cfg.sample_weight:
            from mlpilot.profile import MISSING_TOKENS, parse_numeric

            usable &= parse_numeric(table[cfg.sample_weight], MISSING_TOKENS).notna()
        keep = usable.to_numpy()
        n_validation = int(keep[len(table) - n_validation :].sum()) if n_validation else 0
        table = table[keep].reset_index(drop=True)
        y = profile.target.encode(table[cfg.target])

        mode = cfg.mode
        if mode is Mode.AUTO and (cfg.candidates_only or cfg.candidates is not None):
            mode = Mode.HYPERPARAMETER_TUNING
            self.mode_reason = (
                "AUTO chose HYPERPARAMETER_TUNING: candidate definitions (candidates-only job, "
                "or candidates given) are tuned candidates"
            )
        elif mode is Mode.AUTO:
            # Autopilot measures the dataset's size in storage: estimate the table's CSV size.
            size = _csv_bytes(table)
            if size < AUTO_ENSEMBLING_MAX_BYTES:
                mode = Mode.ENSEMBLING
                self.mode_reason = (
                    f"AUTO chose ENSEMBLING: {size / 2**20:.1f} MB of data (as CSV), under 100 MB"
                )
            else:
                mode = Mode.HYPERPARAMETER_TUNING
                self.mode_reason = (
                    f"AUTO chose HYPERPARAMETER_TUNING: {size / 2**20:.0f} MB of data (as CSV), "
                    "100 MB or more"
                )
        else:
            self.mode_reason = "set by the job"
        self.mode = mode

        cap = None
        if cfg.max_runtime is not None:
            cap = next(
                (rows for seconds, rows in SEARCH_ROW_CAPS if cfg.max_runtime <= seconds), None
            )
        if mode is Mode.ENSEMBLING:
            table, y = self._plan_bagging(table, y, profile, n_validation)
            assert self.validation is not None
        else:
            self.validation = plan_validation(
                len(table),
                y,
                classification=profile.problem_type.is_classification,
                seed=cfg.seed,
                fraction=cfg.validation_fraction,
                n_validation_rows=n_validation,
                search_row_cap=cap,
            )
        profile.notes.append(f"validation: {self.validation.reason}")
        self.profile = profile
        profile.save(_ensure_parent(self.layout.profile))
        write_prepared(self.layout.prepared_data, table, profile, self.validation.folds)
        self.record["ResolvedAttributes"] = {
            "AutoMLJobObjective": {"MetricName": self.objective},
            "CompletionCriteria": self._criteria(),
            "AutoMLProblemTypeResolvedAttributes": {
                "TabularResolvedAttributes": {"ProblemType": profile.problem_type.value}
            },
        }
        self.record["AutoMLJobArtifacts"] = {}
        self._mlpilot()["Profile"] = {
            "Location": str(self.layout.profile),
            "ProblemTypeReason": profile.target.reason,
            "Rows": profile.n_rows,
            "Mode": self.mode.value,
            "ModeReason": self.mode_reason,
            "Validation": self.validation.method,
            "ValidationReason": self.validation.reason,
        }
        self._save()

    def _plan_bagging(
        self, table: pd.DataFrame, y: np.ndarray, profile: DatasetProfile, n_validation: int
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """ENSEMBLING's folds, and the sample it trains on when the table is too large for the
        time budget or the machine's memory (the reason goes into the profile's notes)."""
        from mlpilot.ensemble import plan_bagging, sample_rows
        from mlpilot.runtime import default_parallelism

        cfg = self.config
        n_outputs = len(profile.target.labels) if profile.problem_type.is_classification else 1
        cap, why = sample_rows(
            len(table),
            int(table.memory_usage(deep=True).sum()),
            n_outputs=n_outputs,
            workers=cfg.parallelism or default_parallelism(),
            budget=cfg.max_runtime,
        )
        plan = plan_bagging(
            len(table),
            y,
            classification=profile.problem_type.is_classification,
            seed=cfg.seed,
            fraction=cfg.validation_fraction,
            n_validation_rows=n_validation,
            budget=cfg.max_runtime,
            row_cap=cap,
            cap_reason=why,
        )
        if plan.sample is not None:
            table = table.iloc[plan.sample].reset_index(drop=True)
            y = y[plan.sample]
            profile.notes.append(plan.sample_reason)
            self._mlpilot()["Sample"] = plan.sample_reason
        self.validation = plan.validation
        self._bagging = plan
        self._y = y
        self._weight = None
        if cfg.sample_weight:
            from mlpilot.profile import MISSING_TOKENS, parse_numeric

            self._weight = parse_numeric(table[cfg.sample_weight], MISSING_TOKENS).to_numpy()
        return table, y

    def _criteria(self) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {"MaxCandidates": cfg.effective_max_candidates}
        if cfg.max_runtime_per_candidate is not None:
            out["MaxRuntimePerTrainingJobInSeconds"] = cfg.max_runtime_per_candidate
        if cfg.max_runtime is not None:
            out["MaxAutoMLJobRuntimeInSeconds"] = cfg.max_runtime
        return out

    def _define_candidates(self) -> SearchSpace:
        assert self.profile is not None
        ensembling = self.mode is Mode.ENSEMBLING
        defaults = ENSEMBLING_ALGORITHMS if ensembling else DEFAULT_ALGORITHMS
        names = list(self.config.algorithms or defaults)
        space = SearchSpace(
            names,
            self.profile.problem_type,
            self.profile.n_rows,
            definitions=None if ensembling else self.config.candidates,
        )
        definitions: dict[str, Any] = {
            "ProblemType": self.profile.problem_type.value,
            "Objective": self.objective,
            "Seed": self.config.seed,
            "MaxCandidates": self.config.effective_max_candidates,
            "Validation": self.validation.reason if self.validation else "",
            "Algorithms": space.describe(),
        }
        if ensembling:
            from mlpilot.ensemble import build_portfolio

            self._portfolio = build_portfolio(
                self.profile.problem_type,
                len(self._y) if self._y is not None else self.profile.n_rows,
                len(self.profile.target.labels),
                space.algorithms,
            )
            definitions["Mode"] = Mode.ENSEMBLING.value
            definitions["Portfolio"] = [
                {"Label": e.label, "Algorithm": e.algorithm, "Parameters": e.params}
                for e in self._portfolio
            ]
        write_json_atomic(self.layout.candidate_definitions, definitions)
        self._mlpilot()["CandidateDefinitions"] = str(self.layout.candidate_definitions)
        self._save()
        return space

    # -- tuning ---------------------------------------------------------------------------
    def _tail(self) -> float:
        """Seconds to keep back after the search: refit of the best so far + packaging."""
        budget = self.config.max_runtime or 0
        from mlpilot.reports._whitebox import report_reserve

        tail = max(FINAL_TAIL_MIN, 0.03 * budget) + report_reserve(self.config)
        if self.best is None:
            return tail
        extra = self.best.get("Mlpilot", {})
        if self._refits():
            per_fit = extra.get("TrainSeconds", 0.0) / max(1, extra.get("Fits", 1))
            tail += min(1.3 * per_fit, FINAL_TAIL_SHARE * budget)
        # Copying and compressing the package; twice, for the trials saving their own as the
        # search ends.
        size = self._best_package_bytes
        return tail + 2 * size / PACKAGE_BYTES_PER_SECOND

    def _refits(self) -> bool:
        """Whether the final model is a refit on all rows.

        A cross-validated candidate of an iterative algorithm (boosting, MLP) is packaged as its
        bag of fold models instead: a refit would have to guess the stopping point, every row
        already trains 4 of the 5 members, and the bag is the model the validation score
        measured (on the shared benchmark's cross-validated datasets it beat a refit on 6 of 7;
        a refit MLP scored LogLoss 0.37 on penguins, its bag 0.06). Forests and linear models
        have no stopping point to guess, and a bag of five forests is five times the size
        (681 MB on wine quality), so they are refit.
        """
        if self.mode is Mode.ENSEMBLING:
            return False  # the ensemble builder refits what the final model needs
        if self.validation is None or len(self.validation.eval_folds) == 1:
            return True
        if self.best is None:
            return False
        return not algorithm_tags(self.best["Mlpilot"]["Algorithm"]).early_stopping

    def _search_deadline(self) -> float | None:
        end = self.deadline
        return None if end is None else end - self._tail()

    def _tune(self, space: SearchSpace) -> str:
        cfg = self.config
        assert self.validation is not None and self.objective is not None
        metric = get_metric(self.objective)
        validation = self.validation

        def make_task(
            *, number: int, name: str, spec: CandidateSpec, time_limit: float | None, prior: Any
        ) -> TrialTask:
            return TrialTask(
                number=number,
                candidate_name=name,
                algorithm=spec.algorithm,
                algorithm_path=algorithm_path(spec.algorithm),
                params=spec.params,
                preprocessing=spec.preprocessing,
                data_dir=str(self.layout.prepared_data),
                objective=metric.name,
                eval_folds=validation.eval_folds,
                seed=cfg.seed,
                time_limit=time_limit,
                model_dir=str(self.layout.candidate_model(name)),
                maximize=metric.maximize,
                prior_trials=prior,
                prune=len(validation.eval_folds) > 1,
            )

        limits = SearchLimits(
            max_candidates=cfg.effective_max_candidates,
            per_candidate_seconds=cfg.max_runtime_per_candidate,
            budget=cfg.max_runtime,
            deadline=self._search_deadline,
            stop_requested=self._stop.is_set,
        )
        assert self._executor is not None
        return run_search(
            job_name=cfg.name,
            space=space,
            executor=self._executor,
            objective=metric,
            limits=limits,
            make_task=make_task,
            seed=cfg.seed,
            prune=len(validation.eval_folds) > 1,
            on_start=self._candidate_started,
            on_result=self._candidate_finished,
        )

    def _candidate_started(self, task: TrialTask) -> None:
        record = self._candidate(task, TrialResult(task.number, task.candidate_name, "InProgress"))
        self.candidates[task.candidate_name] = record

    def _candidate(
        self,
        task: TrialTask,
        result: TrialResult,
        created: float | None = None,
        more: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        assert self.profile is not None and self.objective is not None
        from mlpilot.features import PreprocessingOptions

        done = result.status != "InProgress"
        extra = {
            "TrialNumber": task.number,
            "Algorithm": task.algorithm,
            "Hyperparameters": task.params,
            "Preprocessing": task.preprocessing,
            "PreprocessingSteps": PreprocessingOptions(**task.preprocessing).describe(),
            "TrainSeconds": round(result.train_seconds, 3),
            "Fits": len(task.eval_folds),
            "PredictSecondsPerRow": result.latency_seconds,
            "ModelLocation": result.model_dir,
            "RefitParameters": result.refit_params,
        }
        if result.status == "Failed" and result.detail:
            extra["Traceback"] = result.detail
        extra.update(more or {})
        return candidate_record(
            name=task.candidate_name,
            status=result.status,
            objective=self.objective,
            region=self.config.region,
            account=self.config.account_id,
            processing_job=self.layout.processing_job,
            created=created or time.time(),
            ended=time.time() if done else None,
            objective_value=result.objective_value if result.status == "Completed" else None,
            metrics=result.metrics,
            failure_reason=result.failure_reason,
            classification=self.profile.problem_type.is_classification,
            extra=extra,
        )

    def _candidate_finished(
        self, task: TrialTask, result: TrialResult, more: dict[str, Any] | None = None
    ) -> None:
        created = self.candidates.get(task.candidate_name, {}).get("CreationTime")
        record = self._candidate(task, result, created, more)
        self.candidates[task.candidate_name] = record
        with open(self.layout.candidates_log, "a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
        if result.status == "Failed":
            self.failures.append(f"{task.candidate_name}: {result.failure_reason}")
            partial = self.record.setdefault("PartialFailureReasons", [])
            if len(partial) < 5:
                partial.append(
                    {
                        "PartialFailureMessage": f"{task.candidate_name}: {result.failure_reason}"[
                            :1024
                        ]
                    }
                )
        metric = get_metric(self.objective or "F1")
        value = result.objective_value
        # A stacker's package stands alone only once assembled (its update carries it).
        standalone = (more or {}).get("Layer") != 2 or "PredictSecondsPerRow" in (more or {})
        if (
            standalone
            and result.status == "Completed"
            and value is not None
            and (
                self.best is None
                or metric.is_better(value, self.best["FinalAutoMLJobObjectiveMetric"]["Value"])
            )
        ):
            self.best = record
            self.record["BestCandidate"] = record
            from mlpilot.package._model import package_bytes

            self._best_package_bytes = package_bytes(result.model_dir or "")
        self._save()
        for observer in self.observers:
            observer.on_candidate(self, record)

    # -- ENSEMBLING -----------------------------------------------------------------------
    def _train_ensemble(self) -> str:
        """Bagged base models, stackers, ensemble selection, refit (see mlpilot.ensemble)."""
        from mlpilot.ensemble import EnsembleBuilder, EnsembleLimits
        from mlpilot.reports._whitebox import report_reserve

        cfg = self.config
        assert self.profile is not None and self.objective is not None
        assert self._executor is not None and self._y is not None
        target = self.profile.target
        limits = EnsembleLimits(
            max_candidates=cfg.effective_max_candidates,
            per_candidate_seconds=cfg.max_runtime_per_candidate,
            budget=cfg.max_runtime,
            deadline=lambda: self.deadline,
            stop_requested=self._stop.is_set,
            latency_limit=None if cfg.max_latency_ms is None else cfg.max_latency_ms / 1000,
            end_reserve=report_reserve(cfg),
        )

        def started(task: TrialTask, more: dict[str, Any]) -> None:
            record = self._candidate(
                task, TrialResult(task.number, task.candidate_name, "InProgress"), None, more
            )
            self.candidates[task.candidate_name] = record

        def finished(task: TrialTask, result: TrialResult, more: dict[str, Any]) -> None:
            more = dict(more)
            if more.pop("Update", False):
                more["PredictSecondsPerRow"] = result.latency_seconds
            if more.get("Layer") == 3:
                more["PreprocessingSteps"] = ["each base model's own (see Weights)"]
            self._candidate_finished(task, result, more)

        builder = EnsembleBuilder(
            job_name=cfg.name,
            executor=self._executor,
            data_dir=self.layout.prepared_data,
            work_dir=self.layout.work / "ensemble",
            candidate_dir=self.layout.candidate_model,
            final_dir=self.layout.final_model,
            problem_type=self.profile.problem_type,
            n_classes=len(target.labels) if self.profile.problem_type.is_classification else 0,
            positive_index=target.positive_index,
            y=self._y,
            weight=self._weight,
            plan=self._bagging,
            objective=self.objective,
            portfolio=self._portfolio,
            seed=cfg.seed,
            limits=limits,
            on_start=started,
            on_result=finished,
        )
        self._ensemble = builder
        reason = builder.run()
        final = builder.final
        if final is not None and final.candidate in self.candidates:
            record = self.candidates[final.candidate]
            if record["CandidateStatus"] == CandidateStatus.COMPLETED.value:
                self.best = record
                self.record["BestCandidate"] = record
        if builder.notes:
            self._mlpilot()["EnsembleNotes"] = list(builder.notes)
        self._save()
        return reason

    # -- final model ----------------------------------------------------------------------
    def _package_best(self) -> None:
        """Package the best candidate: refit on every row (holdout validation, time
        permitting), or its cross-validated bag as trained."""
        assert self.best is not None and self.validation is not None
        best = self.best
        extra = best["Mlpilot"]
        name = best["CandidateName"]
        destination = self.layout.final_model(name)
        refit_ok = False
        remaining = None if self.deadline is None else self.deadline - time.monotonic() - 1.0
        refit_note = ""
        final = self._ensemble.final if self._ensemble is not None else None
        if final is not None and final.candidate == name:
            refit_ok = final.refit
            refit_note = final.note
            from mlpilot.package import InferenceModel

            InferenceModel.copy_package(final.package_dir, destination, archive=True)
            extra = {
                **extra,
                "PredictSecondsPerRow": final.latency_seconds,
                "BaggedPredictSecondsPerRow": final.bagged_latency_seconds,
            }
        elif self.mode is Mode.ENSEMBLING:
            refit_note = (
                "the job was stopped: packaged the best candidate as trained"
                if self._stop.is_set()
                else "packaged the best candidate as trained"
            )
        elif not self._refits():
            folds = len(self.validation.eval_folds)
            refit_note = (
                f"packaged the cross-validated bag of {folds} fold models (each trained "
                f"on {folds - 1}/{folds} of the rows), predictions averaged"
            )
        elif self._stop.is_set():
            refit_note = "the job was stopped: packaged the candidate as trained during the search"
        elif remaining is not None and remaining < 1.0:
            refit_note = "no time left to refit: packaged the candidate as trained in the search"
        else:
            task = TrialTask(
                number=extra["TrialNumber"],
                candidate_name=name,
                algorithm=extra["Algorithm"],
                algorithm_path=algorithm_path(extra["Algorithm"]),
                params=extra["RefitParameters"] or extra["Hyperparameters"],
                preprocessing=extra["Preprocessing"],
                data_dir=str(self.layout.prepared_data),
                objective=self.objective or "",
                eval_folds=(),
                seed=self.config.seed,
                time_limit=remaining,
                model_dir=str(destination),
                refit=True,
            )
            assert self._executor is not None
            hard = None if remaining is None else remaining + 1.0
            task_id = self._executor.submit(
                "mlpilot.search._trial:run_trial", task, hard_limit=hard
            )
            outcome = None
            while outcome is None:
                for done in self._executor.wait(timeout=0.5):
                    if done.task_id == task_id:
                        outcome = done
                if self._stop.is_set() and outcome is None:
                    self._executor.cancel(task_id)
            if outcome.state == "ok" and outcome.value.status == "Completed":
                refit_ok = True
                refit_note = (
                    f"refit on all {outcome.value.n_train_rows:,} rows in "
                    f"{outcome.value.train_seconds:.1f} s"
                )
            else:
                why = outcome.error or getattr(outcome.value, "failure_reason", "") or outcome.state
                refit_note = (
                    f"refit failed ({why}): packaged the candidate as trained in the search"
                )
        if not refit_ok and not (final is not None and final.candidate == name):
            from mlpilot.package import InferenceModel

            InferenceModel.copy_package(extra["ModelLocation"], destination, archive=True)
        archive = destination / "model.tar.gz"
        best = dict(best)
        classification = bool(self.problem_type and self.problem_type.is_classification)
        best["InferenceContainers"] = [inference_container(str(archive), classification, name)]
        best["CandidateProperties"] = {
            **best.get("CandidateProperties", {}),
            "CandidateArtifactLocations": {
                "Explainability": str(self.layout.explainability),
                "ModelInsights": str(self.layout.model_insights),
            },
        }
        best["Mlpilot"] = {
            **extra,
            "FinalModel": str(destination),
            "Refit": refit_ok,
            "RefitNote": refit_note,
        }
        self.best = best
        self.candidates[name] = best
        self.record["BestCandidate"] = best
        self._save()

    def _write_leaderboard(self) -> None:
        frame = self.leaderboard()
        frame.to_csv(self.layout.leaderboard_csv, index=False)
        ordered = [self.candidates[n] for n in frame["candidate"]]
        write_json_atomic(self.layout.leaderboard_json, ordered)
        self._mlpilot()["Leaderboard"] = str(self.layout.leaderboard_csv)

    # -- state ----------------------------------------------------------------------------
    def _mlpilot(self) -> dict[str, Any]:
        block: dict[str, Any] = self.record.setdefault("Mlpilot", {})
        return block

    def _set_status(self, secondary: SecondaryStatus) -> None:
        if self._stop.is_set():  # once stopping, the record says so until the job ends
            secondary = SecondaryStatus.STOPPING
        self.record["AutoMLJobSecondaryStatus"] = secondary.value
        self._save()

    def _finish(self, status: JobStatus, secondary: SecondaryStatus, failure: str = "") -> None:
        if self._white_box is not None:
            self._white_box.close()
        now = time.time()
        self.record["AutoMLJobStatus"] = status.value
        self.record["AutoMLJobSecondaryStatus"] = secondary.value
        self.record["EndTime"] = now
        if failure:
            self.record["FailureReason"] = failure[:1024]
        self._mlpilot()["ElapsedSeconds"] = round(self.elapsed(), 3)
        self._mlpilot()["Seed"] = self.config.seed
        for name, record in list(self.candidates.items()):
            if record["CandidateStatus"] == CandidateStatus.IN_PROGRESS.value:
                record = {
                    **record,
                    "CandidateStatus": CandidateStatus.STOPPED.value,
                    "FailureReason": "the job ended before the candidate finished",
                    "EndTime": now,
                    "LastModifiedTime": now,
                }
                self.candidates[name] = record
        self._save()

    def _save(self) -> None:
        with self._lock:
            self.record["LastModifiedTime"] = time.time()
            write_json_atomic(self.layout.record, self.record)
        for observer in self.observers:
            observer.on_status(self)


def _ensure_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _csv_bytes(table: pd.DataFrame) -> int:
    """The table's size written as CSV, estimated from up to 2,000 rows."""
    if len(table) == 0:
        return 0
    sample = table.sample(min(2_000, len(table)), random_state=0) if len(table) > 2_000 else table
    per_row = len(sample.to_csv(index=False, header=False).encode()) / len(sample)
    return int(per_row * len(table))
