"""The tabular problem (binary, multiclass, regression): one table, one target column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mlpilot._crash import crash_point
from mlpilot._layout import write_json_atomic
from mlpilot._types import Mode, ProblemType, SecondaryStatus
from mlpilot.algorithms import (
    DEFAULT_ALGORITHMS,
    ENSEMBLING_ALGORITHMS,
    algorithm_path,
    algorithm_tags,
)
from mlpilot.config import TabularConfig
from mlpilot.ensemble import (
    BaggingPlan,
    PortfolioEntry,
    build_portfolio,
    plan_bagging,
    sample_rows,
    shipped_portfolio,
)
from mlpilot.metrics import DisparityMeasure, activate_objective, default_objective, get_metric
from mlpilot.problems._protocol import Analysis, CandidateView, JobSession, PackagedModel
from mlpilot.problems.tabular._analysis import (
    choose_mode,
    read_channels,
    row_split,
    sample_weights,
    search_row_cap,
    usable_rows,
)
from mlpilot.problems.tabular._fairness import fairness_measure
from mlpilot.problems.tabular._final import package_best
from mlpilot.problems.tabular._training import train_ensemble, tune
from mlpilot.profile import DatasetProfile, build_profile, label_key
from mlpilot.runtime import default_parallelism
from mlpilot.search import (
    Portfolio,
    RowSplit,
    SearchSpace,
    TrialTask,
    ValidationPlan,
    plan_validation,
    write_prepared,
)

__all__ = ["TabularProblem"]

TRIAL_FUNCTION = "mlpilot.search._trial:run_trial"


def _algorithms(spec: TabularConfig, mode: Mode, own: Portfolio | None = None) -> list[str]:
    """The algorithms a job in ``mode`` trains: those asked for, else (ENSEMBLING) its given
    portfolio's, the problem's ``own`` portfolio's or Autopilot's ensembling set, else the
    tuning defaults."""
    if spec.algorithms:
        return list(spec.algorithms)
    if mode is Mode.ENSEMBLING:
        given = spec.portfolio or own
        return list(given.algorithms if given is not None else ENSEMBLING_ALGORITHMS)
    return list(DEFAULT_ALGORITHMS)


class TabularProblem:
    """Binary and multiclass classification and regression on a table (``TabularJobConfig``).

    Validation is a holdout or k row folds (ENSEMBLING: bagging folds); candidates are the
    registered algorithms' pipelines, searched with Optuna (HYPERPARAMETER_TUNING) or run from
    the learned portfolio, stacked and ensembled (ENSEMBLING); the model is a scikit-learn
    pipeline package.
    """

    config_name: ClassVar[str] = "Tabular"
    trial_function: ClassVar[str] = TRIAL_FUNCTION
    #: ENSEMBLING: whether the boosting stacker reads the original features besides the base
    #: models' predictions (see :class:`mlpilot.ensemble.EnsembleLimits`).
    stack_features: ClassVar[bool] = True

    def __init__(self) -> None:
        self.profile: DatasetProfile | None = None
        self.validation: ValidationPlan | None = None
        self.analysis: Analysis | None = None
        self.space: SearchSpace | None = None
        #: ENSEMBLING: the bagging plan, the portfolio, the rows' targets and weights, and the
        #: builder once it ran.
        self.bagging: BaggingPlan | None = None
        self.portfolio: list[PortfolioEntry] = []
        self.y: np.ndarray | None = None
        self.weight: np.ndarray | None = None
        self.ensemble: Any = None
        #: With a sensitive attribute: how each candidate's disparity is measured.
        self.fairness: DisparityMeasure | None = None

    def package_imports(self, config: Any) -> list[str]:
        return []  # the refit and the ensemble's assembly run in the workers

    def worker_imports(self, config: Any) -> list[str]:
        spec = config.problem_as(TabularConfig)
        # Before the analysis, which chooses an AUTO job's mode: either mode's algorithms count
        # (an unused import costs a worker a few seconds and some memory, once).
        auto = spec.mode is Mode.AUTO
        modes = [Mode.ENSEMBLING, Mode.HYPERPARAMETER_TUNING] if auto else [spec.mode]
        imports = [self.trial_function]
        own = self.default_portfolio()
        for name in dict.fromkeys(n for mode in modes for n in _algorithms(spec, mode, own)):
            try:
                modules = algorithm_tags(name).fit_imports
            except Exception:  # an unknown or broken algorithm fails later, with its reason
                continue
            imports.extend(m for m in modules if m not in imports)
        return imports

    @property
    def problem_type(self) -> ProblemType:
        assert self.profile is not None
        return self.profile.problem_type

    # -- 1. analyse -------------------------------------------------------------------------
    def default_objective(self, problem_type: ProblemType) -> str:
        """The objective when the job names none (Autopilot's default for the problem type)."""
        return default_objective(problem_type)

    def check_columns(self, spec: TabularConfig, table: pd.DataFrame) -> None:
        """Raise DataError naming a column the job's settings need and the table lacks (the
        profile checks the target, the weight and the feature specification's)."""

    def default_portfolio(self) -> Portfolio | None:
        """The portfolio ENSEMBLING trains when the job gives none (None: the shipped one)."""
        return None

    def text_features(
        self, session: JobSession, table: pd.DataFrame, profile: DatasetProfile
    ) -> dict[str, tuple[str, np.ndarray]] | None:
        """Settle how text columns are featurized (on ``profile``'s columns) and compute
        what must be computed once for the whole table: text column -> (encoder, its
        sentence embeddings, a row per row of ``table``). A table job keeps TF-IDF alone."""
        return None

    def analyse(self, session: JobSession) -> Analysis:
        cfg = session.config
        spec = cfg.problem_as(TabularConfig)
        table, n_validation = read_channels(cfg)
        self.check_columns(spec, table)
        profile = build_profile(
            table,
            spec.target,
            problem_type=spec.problem_type,
            sample_weight=spec.sample_weight,
            feature_spec=spec.load_feature_specification(),
        )
        objective = cfg.objective
        custom = activate_objective(
            spec.custom_objective,
            profile.problem_type,
            [label_key(v) for v in profile.target.labels],
        )
        if spec.objective_function is not None:
            spec.objective_function.load()  # an entry point that cannot be imported fails now
        if custom is not None:
            objective = custom.name
            if custom.costs is not None:
                profile.target.decision_costs = custom.costs.tolist()
        elif objective is None:
            objective = self.default_objective(profile.problem_type)
        else:
            get_metric(objective, profile.problem_type)
        rows = usable_rows(table, n_validation, spec, profile)
        table, y = rows.table, rows.y
        mode, mode_reason = choose_mode(spec, table)
        split = row_split(cfg, table)
        if mode is Mode.ENSEMBLING:
            table, y = self._plan_bagging(session, table, y, profile, rows.n_validation, split)
            assert self.validation is not None
        else:
            self.validation = plan_validation(
                len(table),
                y,
                classification=profile.problem_type.is_classification,
                seed=cfg.seed,
                fraction=cfg.validation_fraction,
                n_validation_rows=rows.n_validation,
                search_row_cap=search_row_cap(cfg.max_runtime),
                split=split,
            )
        profile.notes.append(f"validation: {self.validation.reason}")
        self.fairness = fairness_measure(spec, table, y, profile)
        if spec.sensitive_attribute is not None:
            # What the white box's model-quality report reads to compute its group metrics.
            session.note(
                "Fairness",
                {
                    "SensitiveAttribute": spec.sensitive_attribute,
                    "DisparityMetric": spec.disparity_metric,
                    "MaxDisparity": spec.max_disparity,
                },
            )
        self.profile = profile
        embeddings = self.text_features(session, table, profile)
        layout = session.layout
        layout.profile.parent.mkdir(parents=True, exist_ok=True)
        profile.save(layout.profile)
        crash_point("analysis")
        write_prepared(
            layout.prepared_data,
            table,
            profile,
            self.validation.folds,
            spec.custom_objective,
            embeddings=embeddings,
        )
        self.analysis = Analysis(
            problem_type=profile.problem_type.value,
            objective=objective,
            mode=mode,
            mode_reason=mode_reason,
            classification=profile.problem_type.is_classification,
            resolved={"ProblemType": profile.problem_type.value},
            summary={
                "Location": str(layout.profile),
                "ProblemTypeReason": profile.target.reason,
                "Rows": profile.n_rows,
                "Mode": mode.value,
                "ModeReason": mode_reason,
                "Validation": self.validation.method,
                "ValidationReason": self.validation.reason,
            },
        )
        return self.analysis

    def _plan_bagging(
        self,
        session: JobSession,
        table: pd.DataFrame,
        y: np.ndarray,
        profile: DatasetProfile,
        n_validation: int,
        split: RowSplit | None,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """ENSEMBLING's folds, and the sample it trains on when the table is too large for the
        time budget or the machine's memory (the reason goes into the profile's notes)."""
        cfg = session.config
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
            split=split,
        )
        if plan.sample is not None:
            table = table.iloc[plan.sample].reset_index(drop=True)
            y = y[plan.sample]
            profile.notes.append(plan.sample_reason)
            session.note("Sample", plan.sample_reason)
        self.validation = plan.validation
        self.bagging = plan
        self.y = y
        self.weight = sample_weights(cfg.problem_as(TabularConfig), table)
        return table, y

    # -- 2. candidates ----------------------------------------------------------------------
    def define_candidates(self, session: JobSession) -> SearchSpace:
        assert self.profile is not None and self.analysis is not None
        cfg = session.config
        spec = cfg.problem_as(TabularConfig)
        ensembling = self.analysis.mode is Mode.ENSEMBLING
        own = self.default_portfolio()
        names = _algorithms(spec, self.analysis.mode, own)
        space = SearchSpace(
            names,
            self.profile.problem_type,
            self.profile.n_rows,
            definitions=None if ensembling else spec.candidates,
        )
        definitions: dict[str, Any] = {
            "ProblemType": self.profile.problem_type.value,
            "Objective": self.analysis.objective,
            "Seed": cfg.seed,
            "MaxCandidates": cfg.effective_max_candidates,
            "Validation": self.validation.reason if self.validation else "",
            "Algorithms": space.describe(),
        }
        if ensembling:
            self.portfolio = build_portfolio(
                self.profile.problem_type,
                len(self.y) if self.y is not None else self.profile.n_rows,
                len(self.profile.target.labels),
                space.algorithms,
                spec.portfolio or own,
            )
            used = spec.portfolio or own or shipped_portfolio()
            session.note("Portfolio", {**used.summary(), "Given": spec.portfolio is not None})
            definitions["Mode"] = Mode.ENSEMBLING.value
            definitions["PortfolioFile"] = used.summary()
            definitions["Portfolio"] = [
                {"Label": e.label, "Algorithm": e.algorithm, "Parameters": e.params}
                for e in self.portfolio
            ]
        elif spec.portfolio is not None:
            session.note(
                "Portfolio",
                {
                    **spec.portfolio.summary(),
                    "Given": True,
                    "Unused": f"the job runs {self.analysis.mode.value}, which has no portfolio",
                },
            )
        write_json_atomic(session.layout.candidate_definitions, definitions)
        session.note("CandidateDefinitions", str(session.layout.candidate_definitions))
        self.space = space
        return space

    # -- 3. train ---------------------------------------------------------------------------
    def train(self, session: JobSession) -> str:
        assert self.analysis is not None and self.space is not None
        if self.analysis.mode is Mode.ENSEMBLING:
            return train_ensemble(self, session)
        session.set_status(SecondaryStatus.MODEL_TUNING)
        return tune(self, session, self.space)

    # -- 4. package -------------------------------------------------------------------------
    def package(self, session: JobSession, best: CandidateView) -> PackagedModel:
        return package_best(self, session, best)

    def refit_task(
        self, session: JobSession, best: CandidateView, destination: Path, time_limit: float | None
    ) -> TrialTask:
        """The task that refits the best candidate on every row."""
        details = best.details
        assert self.analysis is not None
        return TrialTask(
            number=details["TrialNumber"],
            candidate_name=best.name,
            algorithm=details["Algorithm"],
            algorithm_path=algorithm_path(details["Algorithm"]),
            params=details["RefitParameters"] or details["Hyperparameters"],
            preprocessing=details["Preprocessing"],
            data_dir=str(session.layout.prepared_data),
            objective=self.analysis.objective,
            eval_folds=(),
            seed=session.config.seed,
            time_limit=time_limit,
            model_dir=str(destination),
            refit=True,
            archive=False,  # the job archives its model once the card is sealed in
        )
