"""The job's white-box outputs: notebooks and reports, made within the job's time budget.

:class:`WhiteBox` observes an :class:`~mlpilot.jobs.AutoMLJob` (one of its ``observers``: the
job knows nothing of notebooks or reports). It keeps :func:`report_reserve` seconds of the
runtime budget back for the reports (``time_reserve``) and acts at three points:

``on_candidates_defined``
    Writes the candidate-definition notebook; in a background thread, saves the data sample
    the notebooks and reports read, writes the data-exploration notebook and starts executing
    it in a child process, beside the search.
``on_packaged`` (best candidate packaged)
    Writes the best candidate's model-quality and explainability reports if the deadline
    allows, and rewrites the candidate notebook with the number of trials the job ran (an
    ENSEMBLING job's is written now, from the ensemble it built: :func:`build_ensemble_notebook`,
    with the job's prepared data copied beside it).
``on_finishing`` (the job ending, whatever the outcome)
    Waits for the exploration notebook (until the deadline, then kills it) and records every
    artifact in the job record: ``AutoMLJobArtifacts``, the best candidate's
    ``CandidateArtifactLocations`` and ``Mlpilot.Reports`` (what was made, skipped or failed,
    and why).

Forecasting jobs get their own exploration notebook (about the series,
:func:`build_series_notebook`) and model-quality report (:func:`write_forecast_insights`, from
the candidate's BacktestResults); their candidate-definition notebook and explainability report
are skipped, with the reason.

Nothing here may fail the job: errors become a "Failed" entry in ``Mlpilot.Reports`` and a
``PartialFailureReasons`` message; what was skipped is made later by
``mlpilot report JOB --generate``.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import shutil
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from mlpilot._crash import crash_point
from mlpilot._types import SecondaryStatus
from mlpilot.algorithms import algorithm_tags
from mlpilot.config import ForecastingConfig, TabularConfig
from mlpilot.explain import OutOfTime
from mlpilot.jobs import JobHooks
from mlpilot.metrics import get_metric
from mlpilot.reports._build_candidates import (
    CandidateNotebookFacts,
    PipelineFacts,
    build_candidate_notebook,
)
from mlpilot.reports._build_ensemble import (
    EnsembleModel,
    EnsembleNotebookFacts,
    build_ensemble_notebook,
)
from mlpilot.reports._build_exploration import (
    build_exploration_notebook,
    profile_digest,
    write_notebook,
)
from mlpilot.reports._build_series_exploration import build_series_notebook, facts_digest
from mlpilot.reports._data import SAMPLE_ROWS, save_data_sample, save_input_frames
from mlpilot.reports._execute import is_executed, start_execution
from mlpilot.reports._forecast_quality import write_forecast_insights
from mlpilot.reports._generate import (
    final_model_dir,
    generate_explainability,
    generate_model_insights,
)
from mlpilot.reports._series_data import FACTS, save_series_sample
from mlpilot.runtime import LocalProcessExecutor

__all__ = ["WhiteBox"]

#: Seconds the two reports need at least (with the imports done in the background).
MIN_EXPLAINABILITY_SECONDS = 3.0
MIN_INSIGHTS_SECONDS = 1.5
#: Seconds kept for drawing and writing the explainability report once SHAP values are in.
REPORT_WRITE_SECONDS = 2.0
#: Seconds before the deadline at which waiting for the exploration notebook stops.
CLOSE_MARGIN = 0.3
#: Seconds a job with a runtime limit keeps back for the reports: at most this, or
#: :data:`REPORT_TAIL_SHARE` of the budget (all 7 s from a 60 s budget on). What they took at
#: the end of 60 s jobs on the project's machine (2 cores at load 7): model quality 2.8 s
#: without its PDF (1.5 s more with it), explainability 3.8 s on a LightGBM model without its
#: PDF (TreeSHAP on 300 rows 0.7 s, the rest drawing; 1.8 s more with it). Drawing is most of
#: it and does not grow with the table (300 rows explained, 10 features shown), so the reserve
#: is a constant; a PDF is left out when its time is not there, and the job's own end reserve
#: (1.5 s + 3 %, of which records and leaderboard take 0.1 s) follows.
REPORT_TAIL_SECONDS = 7.0
REPORT_TAIL_SHARE = 0.12
#: Figures the two reports draw (model quality's and explainability's, HTML and PDF): once the
#: white box has timed drawing one on this machine (beside the search), the reserve grows to
#: what they would take at that speed plus :data:`REPORT_FIXED_SECONDS` (statistics, TreeSHAP,
#: files), within :data:`REPORT_MAX_SHARE` of the budget. On a loaded machine a figure took
#: 0.6-0.8 s, and the reports 14 s at the end of a 60 s job.
REPORT_FIGURES = 16
#: Of which the explainability report's HTML draws (importance, summary, 4 dependence plots,
#: 3 examples).
EXPLAINABILITY_FIGURES = 9
REPORT_FIXED_SECONDS = 2.0
REPORT_MAX_SHARE = 0.2

EXPLORATION = "DataExplorationNotebook"
CANDIDATES = "CandidateDefinitionNotebook"
EXPLAINABILITY = "Explainability"
INSIGHTS = "ModelInsights"


#: Why a job of another problem type gets none of these (yet).
NOT_SUPPORTED = "written for tabular and time-series forecasting jobs only so far"
#: Why a forecasting job has no candidate-definition notebook.
NO_FORECAST_CANDIDATE_NOTEBOOK = (
    "forecasting jobs backtest every model and ensemble them, with no hyperparameter search: "
    "Autopilot writes this notebook for HPO jobs only (the models and settings are in "
    "candidates.json)"
)
#: Why a forecasting job has no explainability report.
NO_FORECAST_EXPLAINABILITY = (
    "not made for forecasting jobs yet: Autopilot's impact scores explain covariates and "
    "holidays through CNN-QR or DeepAR+, and mlpilot's network for those names reads the "
    "target alone; the model-quality report and BacktestResults show how the forecasts did"
)
#: Seconds the forecasting model-quality report needs at least (forecasts a few items too).
MIN_FORECAST_INSIGHTS_SECONDS = 3.0


def report_reserve(config: Any, total: float | None = None) -> float:
    """Seconds of the runtime budget (``total``, default the config's) the search leaves for
    the reports."""
    total = config.max_runtime if total is None else total
    if not getattr(config, "generate_reports", True) or not total:
        return 0.0
    if not isinstance(config.problem, TabularConfig | ForecastingConfig):
        return 0.0
    return float(min(REPORT_TAIL_SECONDS, REPORT_TAIL_SHARE * total))


def timed_reserve(total: float, figure_seconds: float) -> float:
    """The reports' reserve for a budget of ``total`` seconds on a machine that draws a figure
    in ``figure_seconds``: never under :func:`report_reserve`'s, at most REPORT_MAX_SHARE."""
    need = REPORT_FIXED_SECONDS + REPORT_FIGURES * figure_seconds
    static = min(REPORT_TAIL_SECONDS, REPORT_TAIL_SHARE * total)
    return float(max(static, min(need, REPORT_MAX_SHARE * total)))


def _draw_seconds() -> float:
    """Seconds this machine takes now to draw and encode one report figure."""
    import numpy as np

    from mlpilot.reports._render import figure, png

    started = time.monotonic()
    fig, axes = figure(4.5, 3.2)
    values = np.random.default_rng(0).normal(size=(2, 300))
    axes.scatter(values[0], values[1], s=6)
    axes.plot(np.sort(values[0]), np.linspace(0, 1, 300))
    axes.set_title("timing")
    png(fig)
    return time.monotonic() - started


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class WhiteBox(JobHooks):
    """Notebooks and reports of a running job (see the module docstring).

    Attach one to a job as an observer: ``AutoMLJob(config, observers=[WhiteBox()])``
    (:func:`mlpilot.run_job`, the CLI and the service do). It serves one job at a time.
    """

    def __init__(self) -> None:
        self._bind(None)

    def _bind(self, job: Any) -> None:
        """Start afresh for ``job`` (None: no job yet)."""
        self.job = job
        self.layout: Any = getattr(job, "layout", None)
        self.config: Any = getattr(job, "config", None)
        self.enabled = bool(getattr(self.config, "generate_reports", True))
        problem = getattr(self.config, "problem", None)
        self._tabular = isinstance(problem, TabularConfig)
        self._forecasting = isinstance(problem, ForecastingConfig)
        # A resumed job's record holds its first run's entries (the exploration notebook is
        # not run again for the same data): they stand until replaced.
        earlier = (job.record.get("Mlpilot") or {}).get("Reports") if job is not None else None
        self.reports: dict[str, dict[str, Any]] = copy.deepcopy(earlier or {})
        self._lock = threading.Lock()
        self._closed = False
        self._sample_ready = threading.Event()
        #: Seconds this machine took to draw a report figure (timed beside the search).
        self._figure_seconds: float | None = None
        self._run: Any = None
        self._thread: threading.Thread | None = None
        self._definitions: list[Any] = []
        self._descriptions: dict[str, str] = {}
        #: Modules the candidates' models need to load (their ``load_imports``).
        self._model_imports: list[str] = []
        self._input_paths: dict[str, str] = {}

    # -- hooks ----------------------------------------------------------------------------
    def time_reserve(self, job: Any) -> float:
        # The job's budget: a resumed job's is the time it was given more.
        return report_reserve(job.config, getattr(job.budget, "total", None))

    def on_candidates_defined(self, job: Any, space: Any) -> None:
        """The candidate notebook now; the data sample and exploration notebook beside the
        search."""
        self._bind(job)
        if self._forecasting:
            self._skip(CANDIDATES, NO_FORECAST_CANDIDATE_NOTEBOOK)
            self._start_background()
            return
        if not self._tabular:
            for key in (EXPLORATION, CANDIDATES, EXPLAINABILITY, INSIGHTS):
                self._skip(key, NOT_SUPPORTED)
            return
        try:
            self._definitions = space.resolved()
            self._model_imports = list(
                dict.fromkeys(m for a in space.algorithms for m in algorithm_tags(a).load_imports)
            )
            self._descriptions = {k: c.description for k, c in space.classes.items()}
            self._input_paths = self._planned_inputs()
            self._write_candidate_notebook(trials_run=None)
        except Exception as exc:
            self._failed(CANDIDATES, exc)
        self._start_background()

    def _start_background(self) -> None:
        self._thread = threading.Thread(
            target=self._background, name="mlpilot-whitebox", daemon=True
        )
        self._thread.start()

    def on_packaged(self, job: Any) -> None:
        """The best candidate's reports, within the deadline; the final candidate notebook."""
        best = job.best
        if self._forecasting and best is not None:
            self._forecast_reports_for_best(job, best.name)
            return
        if not self._tabular:
            return
        try:
            self._write_candidate_notebook(trials_run=len(job.candidates))
        except Exception as exc:
            self._failed(CANDIDATES, exc)
        if best is None:
            return
        name = best.name
        if not self.enabled:
            why = "report generation is turned off (generate_reports=False / --no-reports)"
            self._skip(EXPLAINABILITY, why, name)
            self._skip(INSIGHTS, why, name)
        elif job.stop_requested:
            self._skip(EXPLAINABILITY, "the job was stopped", name)
            self._skip(INSIGHTS, "the job was stopped", name)
        elif not self._reports_stand(name):
            self._reports_for_best(best.shape())
        # The best candidate's CandidateArtifactLocations name its own report folders.
        job.set_candidate_artifacts(
            name,
            Explainability=str(job.layout.explainability_for(name)),
            ModelInsights=str(job.layout.model_insights_for(name)),
        )

    def _reports_stand(self, name: str) -> bool:
        """Whether the reports of an earlier run (a resumed job whose best did not change:
        the same model on the same data) are ``name``'s and are all there."""
        for key in (EXPLAINABILITY, INSIGHTS):
            entry = self.reports.get(key, {})
            if entry.get("Status") != "Completed" or entry.get("Candidate") != name:
                return False
            if not Path(str(entry.get("Html", ""))).exists():
                return False
        return True

    def on_finishing(self, job: Any) -> None:
        """Wait for (or end) the exploration notebook; write every location into the record."""
        if self.job is not job:
            return  # the job ended before its candidates were defined: nothing was started
        deadline = job.deadline
        if self._thread is not None:
            wait = (
                None if deadline is None else max(0.0, deadline - CLOSE_MARGIN - time.monotonic())
            )
            self._thread.join(timeout=wait)
        with self._lock:  # a thread still saving the sample must not start the notebook now
            self._closed = True
        run = self._run
        if run is not None:
            if job.stop_requested and not run.done():
                run.kill()
                self._skip(EXPLORATION, "the job was stopped before the notebook finished")
            else:
                status, reason = run.wait(None if deadline is None else deadline - CLOSE_MARGIN)
                entry = self.reports.setdefault(EXPLORATION, {})
                entry["Status"] = status
                if reason:
                    entry["Reason"] = reason
                if status == "Completed":
                    entry["Html"] = str(self.layout.exploration_notebook.with_suffix(".html"))
                if status == "Failed":
                    job.add_partial_failure(f"Data exploration notebook failed: {reason}")
        elif self._thread is not None and self._thread.is_alive():
            self._skip(EXPLORATION, "the job's time ran out before the data sample was saved")
        self._record()

    # -- background -----------------------------------------------------------------------
    def _background(self) -> None:
        try:
            self._save_sample()
        except Exception as exc:
            self._failed(EXPLORATION, exc)
            return
        finally:
            self._sample_ready.set()
        try:
            fresh = self._write_exploration_notebook()
        except Exception as exc:
            self._failed(EXPLORATION, exc)
            return
        if not fresh:
            return
        if not self.enabled:
            self._skip(
                EXPLORATION,
                "report generation is turned off: the notebook was written without running it",
            )
            return
        self._wait_for_workers()
        with self._lock:
            if self._closed:
                self._skip(EXPLORATION, "the job ended before the notebook could run")
                return
            self._run = start_execution(self.layout.exploration_notebook)
        # Load the report libraries (seconds of imports) while the search runs, not after it.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # shap's own deprecation notices
                import matplotlib.figure  # noqa: F401

                if self._tabular:
                    import shap  # noqa: F401

                    for module in self._model_imports:
                        importlib.import_module(module)
                    self._size_reserve()
                else:  # the final forecast of the report fits the local models on their history
                    import statsforecast.models  # noqa: F401
        except Exception:
            pass

    def _wait_for_workers(self) -> None:
        """Let the job's workers start first (for a while at most): the notebook's run and the
        report libraries' imports would slow their start-up, whose time the first candidates'
        limits count, and are needed only at the job's end."""
        wait = getattr(self.job, "wait_for_workers", None)
        if wait is not None:
            wait()

    def _size_reserve(self) -> None:
        """Raise the job's reserve for the reports to what drawing their figures takes on this
        machine now (the search reads the budget's ``end_extra`` each time it plans)."""
        job = self.job
        total = getattr(getattr(job, "budget", None), "total", None)
        if job is None or not total or not self.enabled:
            return
        _draw_seconds()  # the first figure loads fonts and the renderer
        self._figure_seconds = min(_draw_seconds() for _ in range(2))
        reserve = timed_reserve(total, self._figure_seconds)
        if reserve > job.budget.end_extra:
            job.budget.end_extra = reserve

    def _save_sample(self) -> None:
        """What the notebooks and reports read once the job's working data are gone."""
        if self._forecasting:
            job = self.job
            analysis = job.analysis
            summary = analysis.summary if analysis is not None else {}
            facts = {
                "backtest": summary.get("Backtest", ""),
                "quantiles": list(self.config.problem.quantiles),
                "objective": job.objective,
            }
            save_series_sample(
                job.series, self.layout.data_sample, seed=self.config.seed, facts=facts
            )
            return
        save_data_sample(
            self.layout.prepared_data,
            self.layout.data_sample,
            seed=self.config.seed,
            sensitive=getattr(self.config.problem, "sensitive_attribute", None),
        )
        save_input_frames(self.config, self.layout.data_sample)

    def _data_digest(self) -> str:
        """The digest of what the exploration notebook describes (the profile, or the series'
        facts)."""
        if self._forecasting:
            return facts_digest(self.layout.data_sample / FACTS)
        return profile_digest(self.layout.profile)

    def _write_exploration_notebook(self) -> bool:
        """Write the notebook; False when an executed one for the same profile is there."""
        path = self.layout.exploration_notebook
        entry = self.reports.setdefault(EXPLORATION, {})
        entry["Location"] = str(path)
        if path.exists() and is_executed(path):
            old = nbformat.read(path, as_version=4).metadata.get("mlpilot", {})
            if old.get("profile") == self._data_digest():
                entry.update({"Status": "Completed", "Reason": "kept: same data as before"})
                html = path.with_suffix(".html")
                if html.exists():
                    entry["Html"] = str(html)
                return False
        if self._forecasting:
            facts_path = self.layout.data_sample / FACTS
            facts = json.loads(facts_path.read_text())
            nb = build_series_notebook(
                job_name=self.config.name, facts=facts, facts_path=facts_path
            )
            write_notebook(nb, path)
            path.with_suffix(".html").unlink(missing_ok=True)
            return True
        profile = self.job.profile
        nb = build_exploration_notebook(
            job_name=self.config.name,
            profile=profile,
            profile_path=self.layout.profile,
            sample_rows=min(profile.n_rows, SAMPLE_ROWS),
        )
        write_notebook(nb, path)
        path.with_suffix(".html").unlink(missing_ok=True)
        return True

    # -- candidate notebook ---------------------------------------------------------------
    def _mode(self) -> str:
        mode = self.job.mode
        return "" if mode is None else str(mode.value)

    def _planned_inputs(self) -> dict[str, str]:
        """Where the candidate notebook finds the job's data."""
        out: dict[str, str] = {}
        for field_name, file_name in (
            ("training_data", "training-data.parquet"),
            ("validation_data", "validation-data.parquet"),
        ):
            value = getattr(self.config, field_name)
            if value is None:
                continue
            if isinstance(value, pd.DataFrame):
                out[field_name] = str((self.layout.data_sample / file_name).resolve())
            elif "://" not in str(value) and Path(str(value)).exists():
                out[field_name] = str(Path(str(value)).resolve())
            else:
                out[field_name] = str(value)
        return out

    def _data_options(self) -> dict[str, Any]:
        """The JobConfig fields the notebook's run repeats (the channels and their formats)."""
        cfg = self.config
        options: dict[str, Any] = {}
        if "validation_data" in self._input_paths:
            options["validation_data"] = self._input_paths["validation_data"]
        for name in ("validation_fraction", "content_type", "compression"):
            value = getattr(cfg, name)
            if value is not None:
                options[name] = value
        if cfg.data_type != "S3Prefix":
            options["data_type"] = cfg.data_type
        return options

    def _table_options(self, table: TabularConfig) -> dict[str, Any]:
        """The TabularConfig fields the notebook's run repeats (weights, feature types)."""
        options: dict[str, Any] = {}
        if table.sample_weight is not None:
            options["sample_weight"] = table.sample_weight
        spec = table.feature_specification
        if isinstance(spec, str):
            options["feature_specification"] = spec
        elif spec is not None:
            path = self.layout.data_sample / "feature-specification.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(spec.to_dict(), indent=1))
            options["feature_specification"] = str(path.resolve())
        return options

    def _pipeline_facts(self) -> dict[str, Any]:
        job = self.job
        metric = get_metric(job.objective or "F1")
        facts: dict[str, Any] = {}
        for record in job.candidates.values():
            extra = record.get("Mlpilot", {})
            key = next(
                (
                    d.key
                    for d in self._definitions
                    if d.algorithm == extra.get("Algorithm")
                    and d.preprocessing.to_dict() == extra.get("Preprocessing")
                ),
                None,
            )
            if key is None:
                continue
            entry = facts.setdefault(key, PipelineFacts())
            entry.trials += 1
            value = record.get("FinalAutoMLJobObjectiveMetric", {}).get("Value")
            if record.get("CandidateStatus") == "Completed" and value is not None:
                entry.completed += 1
                if entry.best_value is None or metric.is_better(value, entry.best_value):
                    entry.best_value = value
                    entry.best_candidate = record["CandidateName"]
        return facts

    def _write_candidate_notebook(self, *, trials_run: int | None) -> None:
        if self._mode() == "ENSEMBLING":
            # Written once the ensemble is built: it defines what the job built.
            if trials_run is None:
                self.reports.pop(CANDIDATES, None)
            else:
                self._write_ensemble_notebook()
            return
        job = self.job
        cfg = self.config
        profile = job.profile
        parallelism = job.parallelism
        if parallelism is None:
            parallelism = LocalProcessExecutor(cfg.parallelism).capacity
        table = cfg.problem
        assert isinstance(table, TabularConfig), "the candidate notebook is a tabular job's"
        best = None
        if job.best is not None:
            best = {
                "name": job.best.name,
                "algorithm": job.best.algorithm,
                "value": job.best.objective_value,
            }
        validation = job.validation.reason if job.validation is not None else ""
        facts = CandidateNotebookFacts(
            job_name=cfg.name,
            training_data=self._input_paths.get("training_data", str(cfg.training_data)),
            target=table.target,
            problem_type=profile.problem_type.value,
            objective=str(job.objective),
            seed=cfg.seed,
            n_rows=profile.n_rows,
            n_columns=profile.n_columns,
            labels=list(profile.target.labels),
            validation=validation,
            definitions=self._definitions,
            descriptions=self._descriptions,
            max_candidates=trials_run if trials_run else cfg.effective_max_candidates,
            parallelism=parallelism,
            max_runtime=cfg.max_runtime,
            max_runtime_per_candidate=cfg.max_runtime_per_candidate,
            candidates_only=table.candidates_only,
            data_options=self._data_options(),
            table_options=self._table_options(table),
            pipelines=self._pipeline_facts(),
            trials_run=trials_run,
            best=best,
        )
        write_notebook(build_candidate_notebook(facts), self.layout.candidate_notebook)
        self.reports[CANDIDATES] = {
            "Status": "Completed",
            "Location": str(self.layout.candidate_notebook),
        }

    def _write_ensemble_notebook(self) -> None:
        """An ENSEMBLING job's notebook: the ensemble's models and weights, rebuilt from the
        job's prepared data (copied beside the notebook: the job's working data go)."""
        job = self.job
        builder = getattr(job.problem, "ensemble", None)
        best = job.best
        if builder is None or best is None or not builder.weights:
            self._skip(CANDIDATES, "no ensemble was built in this run of the job")
            return
        blended = best.name == builder.ensemble_name or list(builder.weights) == [best.name]
        if not blended or best.objective_value is None:
            self._skip(
                CANDIDATES,
                f"the best candidate {best.name} is not the blend the ensemble selected "
                "(its package could not be built)",
            )
            return
        if get_metric(str(job.objective)).fn is None:
            self._skip(
                CANDIDATES,
                f"the {job.objective} objective is timed, not computed from predictions: "
                "no notebook can rebuild its value",
            )
            return
        built = {m.name: m for m in builder.models}
        wanted = list(builder.weights)
        for name in list(wanted):  # a stacker's inputs are models of the ensemble too
            wanted += [n for n in built[name].inputs if n not in wanted]
        values = {
            r["CandidateName"]: r.get("FinalAutoMLJobObjectiveMetric", {}).get("Value")
            for r in job.candidates.values()
        }
        models = [
            EnsembleModel(
                name=name,
                layer=built[name].layer,
                algorithm=built[name].task.algorithm,
                params=dict(built[name].task.params),
                preprocessing=dict(built[name].task.preprocessing),
                out_of_bag=built[name].task.out_of_bag,
                time_cuts=dict(built[name].result.time_cuts),
                inputs=list(built[name].inputs),
                keep_features=built[name].keeps_features,
                job_value=values.get(name),
            )
            for name in wanted
        ]
        models.sort(key=lambda m: (m.layer, wanted.index(m.name)))
        data = self.layout.data_sample / "ensemble-data"
        shutil.copytree(self.layout.prepared_data, data, dirs_exist_ok=True)
        notebook = self.layout.candidate_notebook
        executor = job.executor
        final = builder.final
        facts = EnsembleNotebookFacts(
            job_name=self.config.name,
            data_dir=os.path.relpath(data, notebook.parent),
            problem_type=job.profile.problem_type.value,
            objective=str(job.objective),
            seed=self.config.seed,
            eval_folds=tuple(int(f) for f in builder.eval_folds),
            threads=int(getattr(executor, "threads", 1)),
            validation=job.validation.reason if job.validation is not None else "",
            models=models,
            weights={k: float(v) for k, v in builder.weights.items()},
            threshold=None if builder.threshold is None else float(builder.threshold),
            best_name=best.name,
            best_value=float(best.objective_value),
            final_note=final.note if final is not None else "",
            notes=list(builder.notes),
            # The calibration is the ensemble candidate's (a job that could not build its
            # package ships a model as trained, uncalibrated).
            calibration=(
                builder.calibration.package_entry()
                if builder.calibration is not None
                and not builder.calibration.identity
                and best.name == builder.ensemble_name
                else None
            ),
        )
        write_notebook(build_ensemble_notebook(facts), notebook)
        self.reports[CANDIDATES] = {"Status": "Completed", "Location": str(notebook)}

    # -- reports --------------------------------------------------------------------------
    def _left(self) -> float | None:
        deadline = self.job.deadline
        return None if deadline is None else deadline - time.monotonic()

    def _explainability_seconds(self) -> float:
        """The least time the explainability report needs: a few rows explained and its
        figures drawn."""
        drawing = EXPLAINABILITY_FIGURES * (self._figure_seconds or 0.0)
        return max(MIN_EXPLAINABILITY_SECONDS, 1.0 + drawing)

    def _reports_for_best(self, best: dict[str, Any]) -> None:
        job = self.job
        name = best["CandidateName"]
        left = self._left()
        self._sample_ready.wait(timeout=None if left is None else max(0.0, left - 1.0))
        if not self._sample_ready.is_set():
            self._skip(
                EXPLAINABILITY, "the job's time ran out before the data sample was saved", name
            )
            self._skip(INSIGHTS, "the job's time ran out before the data sample was saved", name)
            return
        # Model quality first: it is cheap and always fits; explanations take what is left.
        job.set_phase(SecondaryStatus.GENERATING_MODEL_INSIGHTS_REPORT)
        crash_point("reports")
        left = self._left()
        if left is not None and left < MIN_INSIGHTS_SECONDS:
            self._skip(INSIGHTS, f"only {max(left, 0):.1f} s of the job's time was left", name)
        else:
            started = time.monotonic()
            # Explainability, next, keeps its least time: the PDF goes first.
            need = self._explainability_seconds()
            deadline = None if job.deadline is None else job.deadline - need
            try:
                stats = generate_model_insights(job.layout, job.record, best, deadline=deadline)
                self._done(INSIGHTS, name, job.layout.model_insights_for(name), started)
                notes = stats.get("mlpilot", {}).get("notes")
                if notes:
                    self.reports[INSIGHTS]["Reason"] = "; ".join(notes)
            except Exception as exc:
                self._failed(INSIGHTS, exc, name)
        job.set_phase(SecondaryStatus.GENERATING_EXPLAINABILITY_REPORT)
        left = self._left()
        if left is not None and left < MIN_EXPLAINABILITY_SECONDS:
            self._skip(
                EXPLAINABILITY, f"only {max(left, 0):.1f} s of the job's time was left", name
            )
            return
        started = time.monotonic()
        # SHAP stops in time for the figures to be drawn at the speed timed beside the search.
        drawing = max(REPORT_WRITE_SECONDS, EXPLAINABILITY_FIGURES * (self._figure_seconds or 0))
        deadline = None if job.deadline is None else job.deadline - drawing
        try:
            document = generate_explainability(
                job.layout, job.record, best, deadline=deadline, report_deadline=job.deadline
            )
            self._done(EXPLAINABILITY, name, job.layout.explainability_for(name), started)
            notes = document["mlpilot"].get("notes")
            if notes:
                self.reports[EXPLAINABILITY]["Reason"] = "; ".join(notes)
        except OutOfTime as exc:
            self._skip(EXPLAINABILITY, str(exc), name)
        except Exception as exc:
            self._failed(EXPLAINABILITY, exc, name)

    def _forecast_reports_for_best(self, job: Any, name: str) -> None:
        """A forecasting job's best candidate: its model-quality report within the deadline;
        no explainability report (:data:`NO_FORECAST_EXPLAINABILITY`)."""
        self._skip(EXPLAINABILITY, NO_FORECAST_EXPLAINABILITY, name)
        if not self.enabled:
            self._skip(
                INSIGHTS,
                "report generation is turned off (generate_reports=False / --no-reports)",
                name,
            )
        elif job.stop_requested:
            self._skip(INSIGHTS, "the job was stopped", name)
        else:
            # The plots draw the series the background thread saved: wait for them.
            left = self._left()
            self._sample_ready.wait(timeout=None if left is None else max(0.0, left - 1.0))
            job.set_phase(SecondaryStatus.GENERATING_MODEL_INSIGHTS_REPORT)
            left = self._left()
            if left is not None and left < MIN_FORECAST_INSIGHTS_SECONDS:
                self._skip(INSIGHTS, f"only {max(left, 0):.1f} s of the job's time was left", name)
            else:
                started = time.monotonic()
                best = job.best.shape()
                try:
                    stats = write_forecast_insights(
                        job.layout,
                        job.record,
                        best,
                        model_dir=final_model_dir(job.layout, best),
                        deadline=job.deadline,
                    )
                    self._done(INSIGHTS, name, job.layout.model_insights_for(name), started)
                    if stats["mlpilot"].get("notes"):
                        self.reports[INSIGHTS]["Reason"] = "; ".join(stats["mlpilot"]["notes"])
                except Exception as exc:
                    self._failed(INSIGHTS, exc, name)
        job.set_candidate_artifacts(
            name,
            Explainability=str(job.layout.explainability_for(name)),
            ModelInsights=str(job.layout.model_insights_for(name)),
        )

    # -- bookkeeping ----------------------------------------------------------------------
    def _done(self, key: str, candidate: str, location: Path, started: float) -> None:
        self.reports[key] = {
            "Status": "Completed",
            "Candidate": candidate,
            "Location": str(location),
            "Html": str(location / "report.html"),
            "Seconds": round(time.monotonic() - started, 3),
        }

    def _skip(self, key: str, reason: str, candidate: str | None = None) -> None:
        entry = self.reports.setdefault(key, {})
        entry.update({"Status": "Skipped", "Reason": reason})
        if candidate:
            entry["Candidate"] = candidate

    def _failed(self, key: str, exc: BaseException, candidate: str | None = None) -> None:
        entry = self.reports.setdefault(key, {})
        entry.update(
            {"Status": "Failed", "Reason": _why(exc), "Traceback": traceback.format_exc()[-3000:]}
        )
        if candidate:
            entry["Candidate"] = candidate

    def _record(self) -> None:
        job = self.job
        artifacts: dict[str, str] = {}
        exploration = self.reports.get(EXPLORATION, {})
        if exploration.get("Location") and Path(exploration["Location"]).exists():
            artifacts["DataExplorationNotebookLocation"] = exploration["Location"]
        candidates = self.reports.get(CANDIDATES, {})
        if candidates.get("Status") == "Completed":
            artifacts["CandidateDefinitionNotebookLocation"] = candidates["Location"]
        job.add_artifacts(**artifacts)
        for key, label in (
            (EXPLAINABILITY, "Explainability report"),
            (INSIGHTS, "Model insights report"),
            (CANDIDATES, "Candidate definition notebook"),
        ):
            entry = self.reports.get(key, {})
            if entry.get("Status") == "Failed":
                job.add_partial_failure(f"{label} failed: {entry.get('Reason', '')}")
        job.note("Reports", self.reports)
