"""ENSEMBLING, start to finish: bagged base models, a stacking layer, greedy ensemble
selection, refit-on-all-rows, and the final package, all within the job's time budget.

Phases (each on the job's executor, two or more models at a time):

1. **Base models** (layer 1): the portfolio in order, each a k-fold bag with out-of-fold
   predictions (forests: one fit scored out of bag). Each gets a time limit that ends before the
   time the later phases need (the *tail*, re-estimated after every result from the models that
   would be refit); the first model always starts, so some model is always ready.
2. **Stackers** (layer 2): the same folds, on the original features plus the best base models'
   out-of-fold predictions (and a linear stacker on the predictions alone).
3. **Ensemble selection**: greedy selection with replacement on the objective metric over the
   out-of-fold predictions of every base model and stacker.
4. **Final model**: each selected model is refit once on every row with its bag's mean
   iteration count (bag members collapsed); the refit ensemble and the bagged one are packaged,
   their single-row latency measured, and the rule in :func:`choose_final` picks the package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.algorithms import (
    StackerRole,
    algorithm_path,
    algorithm_tags,
    get_algorithm,
    stacker_for,
)
from mlpilot.ensemble._caruana import blend, greedy_selection
from mlpilot.ensemble._plan import BaggingPlan
from mlpilot.ensemble._portfolio import PortfolioEntry, random_entry
from mlpilot.ensemble._predictor import AssembleResult, AssembleTask, UnitSpec
from mlpilot.ensemble._stack import write_stack_data
from mlpilot.metrics import default_objective, get_metric
from mlpilot.runtime import (
    MIN_TASK_SECONDS,
    Budget,
    Executor,
    QueueItem,
    TaskOutcome,
    TaskQueue,
)
from mlpilot.search import CandidateSpec, TrialResult, TrialTask, candidate_name, trial_result
from mlpilot.search import load_validation_predictions as load_oof

__all__ = ["EnsembleBuilder", "EnsembleLimits", "FinalModel", "choose_final"]

TRIAL = "mlpilot.search._trial:run_trial"
ASSEMBLE = "mlpilot.ensemble._predictor:assemble"
#: Largest share of the budget one base model may take.
MAX_MODEL_SHARE = 0.25
#: Base models the final phase's time plan assumes will be selected (and refit).
SELECTION_GUESS = 5
#: A refit on every row takes this much longer than one fold's fit.
REFIT_GROWTH = 1.3
#: Single-row predictions timed per package (median).
LATENCY_REPEATS = 25
#: Share of the budget the stacking layer gets (bounded), and the least budget that stacks.
STACK_SHARE, STACK_MIN_BUDGET = 0.08, 25
#: The bagged ensemble is packaged when it answers a row within this (seconds); otherwise the
#: refit ensemble (see docs/ensembling.md for the evidence).
BAG_LATENCY_TARGET = 0.005
#: Share of the target the bag's timing inside the job must stay under: timings taken while the
#: job runs vary by 10-20 % (churn's bag timed 4.7 ms in the job, 5.2 ms alone), and the
#: shipped model must meet the target when measured on its own.
BAG_LATENCY_MARGIN = 0.8
#: Boosting rounds a LightGBM stacker may take at most.
STACK_MAX_ROUNDS = 2000
#: Base models whose predictions feed the stacker at most (fewer for many classes).
STACK_INPUTS = 8
#: Least out-of-fold gain of the objective for which a decision threshold other than 0.5 is
#: kept (a smaller one is within the noise of choosing the cut on the same rows).
THRESHOLD_GAIN = 0.002
#: With the InferenceLatency objective: the fastest candidate within this relative distance of
#: the most accurate one's validation score is packaged.
LATENCY_TOLERANCE = 0.01


@dataclass
class EnsembleLimits:
    """What bounds the ensemble besides time (the :class:`~mlpilot.runtime.Budget`)."""

    max_candidates: int
    #: Per-row prediction time the packaged model must keep (seconds), if any.
    latency_limit: float | None = None


@dataclass
class _Model:
    """A finished base model or stacker, as the builder tracks it."""

    name: str
    number: int
    layer: int
    algorithm: str
    task: TrialTask
    result: TrialResult
    oof: np.ndarray  # aligned with the builder's evaluation rows
    score: float  # selection metric, larger is better
    per_fit_seconds: float
    inputs: list[str] = field(default_factory=list)

    @property
    def needs_refit(self) -> bool:
        # A forest scored out of bag was already fit on every row.
        return not self.task.out_of_bag


@dataclass
class FinalModel:
    """What the job packages: the chosen candidate and where its package is."""

    candidate: str
    package_dir: Path
    refit: bool
    note: str
    latency_seconds: float | None
    bagged_latency_seconds: float | None = None


def choose_final(
    bagged: AssembleResult | None,
    refit: AssembleResult | None,
    latency_limit: float | None,
) -> tuple[str, str]:
    """``("bagged" | "refit", reason)``.

    The bagged ensemble is the model the validation score measured; the refit one answers a
    row several times faster. Keep the bag when it is fast enough (under the latency limit, or
    under BAG_LATENCY_TARGET without one), else the refit.
    """
    if refit is None:
        return "bagged", "no refit ensemble (no time left to refit): packaged the bagged ensemble"
    if bagged is None:
        return "refit", "packaged the refit ensemble"
    target = latency_limit if latency_limit is not None else BAG_LATENCY_TARGET
    bag_ms, refit_ms = bagged.latency_seconds * 1e3, refit.latency_seconds * 1e3
    if bagged.latency_seconds <= target * BAG_LATENCY_MARGIN:
        return "bagged", (
            f"packaged the bagged ensemble: it answers a row in {bag_ms:.1f} ms, within "
            f"{BAG_LATENCY_MARGIN:.0%} of {target * 1e3:g} ms (refit: {refit_ms:.1f} ms)"
        )
    return "refit", (
        f"packaged the refit ensemble (each selected model refit once on every row): "
        f"{refit_ms:.1f} ms per row against the bagged ensemble's {bag_ms:.1f} ms "
        f"(over {BAG_LATENCY_MARGIN:.0%} of {target * 1e3:g} ms)"
    )


class EnsembleBuilder:
    """Runs the ENSEMBLING phases on ``executor``; reports candidates through callbacks.

    ``on_start(task, extra)`` and ``on_result(task, result, extra)`` receive every base model
    and stacker (``extra`` goes into the candidate record's ``Mlpilot`` block), and the
    weighted ensemble as a pseudo-trial. After :meth:`run`, :attr:`final` says what to package.
    """

    def __init__(
        self,
        *,
        job_name: str,
        executor: Executor,
        data_dir: Path,
        work_dir: Path,
        candidate_dir: Callable[[str], Path],
        final_dir: Callable[[str], Path],
        problem_type: ProblemType,
        n_classes: int,
        positive_index: int,
        y: np.ndarray,
        weight: np.ndarray | None,
        plan: BaggingPlan,
        objective: str,
        portfolio: list[PortfolioEntry],
        seed: int,
        budget: Budget,
        limits: EnsembleLimits,
        on_start: Callable[[TrialTask, dict[str, Any]], None],
        on_result: Callable[[TrialTask, TrialResult, dict[str, Any]], None],
    ) -> None:
        self.job_name = job_name
        self.executor = executor
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.candidate_dir = candidate_dir
        self.final_dir = final_dir
        self.problem_type = problem_type
        self.n_classes = n_classes
        self.positive_index = positive_index
        self.plan = plan
        self.objective = get_metric(objective)
        self.selection_metric = (
            get_metric(default_objective(problem_type))
            if self.objective.fn is None
            else self.objective
        )
        self.portfolio = list(portfolio)
        self.seed = seed
        self.budget = budget
        self.limits = limits
        self.queue = TaskQueue(executor, budget)
        self.on_start = on_start
        self.on_result = on_result
        folds = plan.validation.folds
        self.eval_folds = plan.validation.eval_folds
        self.rows = np.flatnonzero(np.isin(folds, self.eval_folds))
        self.y = y[self.rows]
        self.weight = None if weight is None else weight[self.rows]
        self.n_rows = len(y)
        self.models: list[_Model] = []
        self.number = 0
        self.final: FinalModel | None = None
        self.notes: list[str] = []
        self.ensemble_name: str | None = None
        #: The ensemble's decision threshold (binary label objectives), see _decision_threshold.
        self.threshold: float | None = None
        self._l1_seconds: list[float] = []

    # -- time --------------------------------------------------------------------------------
    def _left(self, reserve: float = 0.0) -> float | None:
        return self.budget.left(reserve)

    def _stacking_planned(self) -> bool:
        total = self.budget.total
        return self.plan.bagged and (total is None or total >= STACK_MIN_BUDGET)

    def _stack_seconds(self) -> float:
        total = self.budget.total
        if not self._stacking_planned() or total is None:
            return 0.0
        return float(min(max(STACK_SHARE * total, 2.0), 0.2 * total))

    def _final_seconds(self, units: list[_Model] | None = None) -> float:
        """Time the final phase needs: refitting ``units`` (default: the models likely to be
        selected), and assembling, timing and writing the bagged and refit packages."""
        if not self.budget.limited:
            return 0.0
        units = units if units is not None else self._top_models(SELECTION_GUESS, layer=1)
        return self._refit_seconds(units) + self._assemble_seconds(units)

    def _refit_seconds(self, units: list[_Model]) -> float:
        refit = sum(REFIT_GROWTH * m.per_fit_seconds for m in units if m.needs_refit)
        return refit / max(1, self.executor.capacity)

    def _assemble_seconds(self, units: list[_Model]) -> float:
        size = 0
        for m in units:
            path = Path(m.result.model_dir or "") / "pipeline.joblib"
            size += path.stat().st_size if path.exists() else 0
        bag_latency = sum(m.result.latency_seconds or 0.0 for m in units)
        refit_latency = sum(self._refit_latency(m) for m in units)
        # Loading and writing the bags; timing each package (LATENCY_REPEATS + 1 calls).
        seconds = 1.0 + 2 * self.budget.package_seconds(size)
        return seconds + (LATENCY_REPEATS + 1) * (bag_latency + refit_latency)

    def _end_reserve(self) -> float:
        return self.budget.end_reserve()

    def _tail(self) -> float:
        return self._end_reserve() + self._stack_seconds() + self._final_seconds()

    # -- candidates --------------------------------------------------------------------------
    def _name(self, algorithm: str, params: dict[str, Any], preprocessing: dict[str, Any]) -> str:
        spec = CandidateSpec(algorithm, params, preprocessing)
        name = candidate_name(self.job_name, self.number, spec)
        self.number += 1
        return name

    def _score(self, oof: np.ndarray) -> float:
        metric = self.selection_metric
        assert metric.fn is not None
        value = float(metric.fn(self.y, oof, self.weight, self.positive_index, self.n_classes))
        if not np.isfinite(value):
            return -np.inf
        return value if metric.maximize else -value

    def _top_models(self, k: int, layer: int | None = None) -> list[_Model]:
        pool = [m for m in self.models if layer is None or m.layer == layer]
        return sorted(pool, key=lambda m: (-m.score, m.number))[:k]

    def _trial_task(
        self,
        *,
        name: str,
        algorithm: str,
        params: dict[str, Any],
        data_dir: Path,
        model_dir: Path,
        limit: float | None,
        left: float | None,
        out_of_bag: bool,
    ) -> TrialTask:
        task = TrialTask(
            number=self.number - 1,
            candidate_name=name,
            algorithm=algorithm,
            algorithm_path=algorithm_path(algorithm),
            params=params,
            preprocessing=get_algorithm(algorithm).preprocessing.to_dict(),
            data_dir=str(data_dir),
            objective=self.objective.name,
            eval_folds=self.eval_folds,
            seed=self.seed,
            time_limit=limit,
            model_dir=str(model_dir),
            maximize=self.objective.maximize,
            keep_all_folds=True,
            out_of_bag=out_of_bag,
            archive=False,
        )
        if left is not None:
            task = replace(task, deadline_at=time.time() + left)
        return task

    def _record(self, task: TrialTask, result: TrialResult, extra: dict[str, Any]) -> _Model | None:
        """Report a finished trial; keep it if its out-of-fold predictions are usable."""
        model = None
        if result.status == "Completed" and result.model_dir:
            try:
                rows, _, predictions = load_oof(result.model_dir)
            except (OSError, KeyError, ValueError):
                rows = np.zeros(0, dtype=np.int64)
                predictions = np.zeros(0)
            if len(rows) == len(self.rows):
                order = np.argsort(rows)
                oof = np.asarray(predictions, dtype=np.float64)[order]
                if np.array_equal(rows[order], self.rows) and np.isfinite(oof).all():
                    fits = 1 if task.out_of_bag else max(1, len(task.eval_folds))
                    model = _Model(
                        name=task.candidate_name,
                        number=task.number,
                        layer=int(extra.get("Layer", 1)),
                        algorithm=task.algorithm,
                        task=task,
                        result=result,
                        oof=oof,
                        score=self._score(oof),
                        per_fit_seconds=result.train_seconds / fits,
                        inputs=list(extra.get("StackInputs", [])),
                    )
                    self.models.append(model)
        self.on_result(task, result, extra)
        return model

    # -- phase 1: base models ----------------------------------------------------------------
    def _entries(self) -> Any:
        yield from self.portfolio
        if not self.budget.limited:
            return  # without a time limit the portfolio is the plan
        rng = np.random.default_rng(self.seed)
        algorithms = list(dict.fromkeys(e.algorithm for e in self.portfolio))
        for number in range(1, 10_000):
            ranked = [m.algorithm for m in self._top_models(len(self.models), layer=1)]
            best = list(dict.fromkeys(ranked))[:3] or algorithms
            yield random_entry(
                best[(number - 1) % len(best)], self.problem_type, self.n_rows, rng, number
            )

    def _base_models(self) -> str:
        entries = self._entries()
        started = 0
        reason = "MaxCandidatesReached"
        exhausted = False

        def fill() -> None:
            nonlocal started, reason, exhausted
            while not exhausted and self.queue.free > 0:
                if started >= self.limits.max_candidates:
                    exhausted, reason = True, "MaxCandidatesReached"
                    return
                left = self._left(self._tail())
                if left is not None:
                    # The first model always starts (on what the budget allows at all).
                    floor = MIN_TASK_SECONDS
                    if self._l1_seconds:
                        floor = max(floor, 0.25 * float(np.median(self._l1_seconds)))
                    if started == 0:
                        left = max(left, min(self._left(self._end_reserve()) or 0.0, 5.0))
                    if left < floor:
                        exhausted, reason = True, "MaxAutoMLJobRuntimeReached"
                        return
                entry = next(entries, None)
                if entry is None:
                    exhausted = True
                    return
                self._start_base(entry, left)
                started += 1

        self.queue.run(fill, self._finish_trial)
        return "Stopped" if self.budget.stop_requested() else reason

    def _start_base(self, entry: PortfolioEntry, left: float | None) -> None:
        params = entry.full_params(self.problem_type, self.n_rows)
        preprocessing = get_algorithm(entry.algorithm).preprocessing.to_dict()
        name = self._name(entry.algorithm, params, preprocessing)
        limit = self.budget.task_limit(left, MAX_MODEL_SHARE)
        out_of_bag = self.plan.bagged and algorithm_tags(entry.algorithm).out_of_bag
        task = self._trial_task(
            name=name,
            algorithm=entry.algorithm,
            params=params,
            data_dir=self.data_dir,
            model_dir=self.candidate_dir(name),
            limit=limit,
            left=None if limit is None else min(limit, left if left is not None else limit),
            out_of_bag=out_of_bag,
        )
        extra = {"Layer": 1, "PortfolioEntry": entry.label}
        self.queue.submit(TRIAL, task, limit=limit, key=(task, extra))
        self.on_start(task, extra)

    def _finish_trial(self, key: tuple[TrialTask, dict[str, Any]], outcome: TaskOutcome) -> None:
        task, extra = key
        result = trial_result(outcome, task)
        if extra.get("Layer") == 1 and outcome.state == "ok":
            self._l1_seconds.append(outcome.seconds)
        self._record(task, result, extra)

    # -- phase 2: stackers -------------------------------------------------------------------
    def _stackers(self) -> None:
        base = self._top_models(len(self.models), layer=1)
        if not self._stacking_planned() or len(base) < 2 or self.budget.stop_requested():
            return
        n_inputs = STACK_INPUTS
        if self.problem_type is ProblemType.MULTICLASS:
            n_inputs = max(2, min(STACK_INPUTS, 60 // max(1, self.n_classes)))
        # The stackers read the models a first greedy selection over the base models picks
        # (diverse, and few: every input is one more model to run at prediction), topped up
        # with the next best to at least three.
        first = greedy_selection(
            [m.oof for m in base],
            self.y,
            self.selection_metric,
            sample_weight=self.weight,
            positive_index=self.positive_index,
            n_classes=self.n_classes,
            seed=self.seed,
        )
        picked = [m for m, w in zip(base, first.weights, strict=True) if w > 0]
        picked += [m for m in base if m not in picked][: max(0, 3 - len(picked))]
        inputs = sorted(picked, key=lambda m: (-m.score, m.number))[:n_inputs]
        window = None
        if self.budget.limited:
            window = self._left(self._end_reserve() + self._final_seconds())
            if window is None or window < 2 * MIN_TASK_SECONDS:
                self.notes.append("no stacking layer: no time left for it")
                return
        allowed = list(dict.fromkeys(e.algorithm for e in self.portfolio))
        booster = stacker_for(StackerRole.BOOSTING, allowed)
        linear = stacker_for(StackerRole.LINEAR, allowed)
        plans: list[tuple[str, str, bool]] = []
        if booster is not None:
            plans.append((booster, "stack-full", True))
        if linear is not None:
            plans.append((linear, "stack-preds", False))
        if not plans:
            plans.append((allowed[0], "stack-full", True))
        tasks = self._stacker_tasks(plans, inputs, window)

        def fill() -> None:
            while self.queue.free > 0:
                planned = next(tasks, None)
                if planned is None:
                    return
                task, extra = planned
                self.queue.submit(TRIAL, task, limit=task.time_limit, key=(task, extra))
                self.on_start(task, extra)

        self.queue.run(fill, self._finish_trial)

    def _stacker_tasks(
        self, plans: list[tuple[str, str, bool]], inputs: list[_Model], window: float | None
    ) -> Iterator[tuple[TrialTask, dict[str, Any]]]:
        """Each planned stacker's task, its data written and its time limit taken when a slot
        is free (the generator stops when the time left is too short)."""
        oof = [m.oof for m in inputs]
        source = self.data_dir
        for algorithm, folder, keep in plans:
            target = self.work_dir / folder
            full = np.zeros((self.n_rows, *oof[0].shape[1:]))
            outputs = []
            for p in oof:
                filled = full.copy()
                filled[self.rows] = p
                outputs.append(filled)
            write_stack_data(source, target, outputs, keep_features=keep)
            params = dict(
                get_algorithm(algorithm).stacker_params(
                    self.problem_type, self.n_rows, STACK_MAX_ROUNDS
                )
            )
            label = f"stack-{algorithm}"
            name = self._name(label, params, get_algorithm(algorithm).preprocessing.to_dict())
            left = (
                None if window is None else self._left(self._end_reserve() + self._final_seconds())
            )
            if left is not None and left < MIN_TASK_SECONDS:
                return
            task = self._trial_task(
                name=name,
                algorithm=algorithm,
                params=params,
                data_dir=target,
                model_dir=self.work_dir / "stackers" / name,
                limit=left,
                left=left,
                out_of_bag=False,
            )
            extra = {
                "Layer": 2,
                "PortfolioEntry": label,
                "StackInputs": [m.name for m in inputs],
                "StackKeepsFeatures": keep,
                "ModelLocation": str(self.candidate_dir(name)),
            }
            yield task, extra

    # -- phase 3: selection ------------------------------------------------------------------
    def _select(self) -> tuple[list[_Model], np.ndarray] | None:
        models = self._top_models(len(self.models))
        if not models:
            return None
        cost = None
        max_cost = self.limits.latency_limit
        if max_cost is not None:
            cost = [self._refit_latency(m) for m in models]
        selection = greedy_selection(
            [m.oof for m in models],
            self.y,
            self.selection_metric,
            sample_weight=self.weight,
            positive_index=self.positive_index,
            n_classes=self.n_classes,
            seed=self.seed,
            cost=cost,
            max_cost=max_cost,
        )
        return models, selection.weights

    def _refit_latency(self, model: _Model) -> float:
        """Estimated per-row time of the model refit (its bag's time over its members)."""
        latency = model.result.latency_seconds or 0.0
        members = 1 if model.task.out_of_bag else max(1, len(model.task.eval_folds))
        if model.layer == 2:
            inputs = [m for m in self.models if m.name in model.inputs]
            return latency / members + sum(self._refit_latency(m) for m in inputs)
        return latency / members

    # -- phase 4: final model ----------------------------------------------------------------
    def _units(self, chosen: list[_Model], weights: dict[str, float]) -> list[_Model]:
        """Chosen models plus the base models their stackers read, base models first."""
        by_name = {m.name: m for m in self.models}
        needed: dict[str, _Model] = {}
        for m in chosen:
            for name in m.inputs:
                needed.setdefault(name, by_name[name])
        for m in chosen:
            needed.setdefault(m.name, m)
        return sorted(needed.values(), key=lambda m: (m.layer, m.number))

    def _unit_specs(self, units: list[_Model], locations: dict[str, str]) -> tuple[UnitSpec, ...]:
        index = {m.name: i for i, m in enumerate(units)}
        return tuple(
            UnitSpec(m.name, locations[m.name], tuple(index[n] for n in m.inputs)) for m in units
        )

    def _bag_location(self, model: _Model) -> str:
        return str(model.result.model_dir)

    def _assemble_task(
        self,
        out_dir: Path,
        units: list[_Model],
        weights: dict[str, float],
        locations: dict[str, str],
        candidate: dict[str, Any],
        validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        archive: bool,
    ) -> AssembleTask:
        return AssembleTask(
            out_dir=str(out_dir),
            data_dir=str(self.data_dir),
            units=self._unit_specs(units, locations),
            weights=tuple(float(weights.get(m.name, 0.0)) for m in units),
            candidate=candidate,
            archive=archive,
            validation=validation,
        )

    def _validation(self, oof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        folds = self.plan.validation.folds[self.rows].astype(np.int16)
        return self.rows, folds, oof

    def _final(self) -> None:
        selected = self._select()
        if selected is None:
            return
        models, weights_array = selected
        weights = {m.name: float(w) for m, w in zip(models, weights_array, strict=True) if w > 0}
        chosen = [m for m in models if m.name in weights]
        best_single = models[0]
        ensemble_score = None
        if len(chosen) > 1:
            oof = blend([m.oof for m in chosen], np.array([weights[m.name] for m in chosen]))
            ensemble_score = self._score(oof)
        if self.objective.fn is None and self.limits.latency_limit is None:
            chosen, weights = self._fastest_within_tolerance(chosen, weights, ensemble_score)
        ensemble = len(chosen) > 1
        units = self._units(chosen, weights)
        final_name = chosen[0].name

        # 1. The weighted ensemble candidate (bags as trained): its package and predictions.
        ens_task: TrialTask | None = None
        ens_oof: np.ndarray | None = None
        first: list[tuple[str, Any, float | None]] = []
        if ensemble:
            ens_oof = blend([m.oof for m in chosen], np.array([weights[m.name] for m in chosen]))
            self.threshold = self._decision_threshold(ens_oof)
            shown = {m.name: round(weights[m.name], 4) for m in chosen}
            final_name = self._name("weighted-ensemble", shown, {})
            self.ensemble_name = final_name
            ens_task = TrialTask(
                number=self.number - 1,
                candidate_name=final_name,
                algorithm="weighted-ensemble",
                algorithm_path="",
                params=shown,
                preprocessing={},
                data_dir=str(self.data_dir),
                objective=self.objective.name,
                eval_folds=self.eval_folds,
                seed=self.seed,
                time_limit=None,
                model_dir=str(self.candidate_dir(final_name)),
            )
            self.on_start(ens_task, {"Layer": 3})
            candidate = {
                "CandidateName": final_name,
                "Algorithm": "weighted-ensemble",
                "Weights": shown,
                "Refit": False,
                "DecisionThreshold": self.threshold,
            }
            bag_task = self._assemble_task(
                self.candidate_dir(final_name),
                units,
                weights,
                {u.name: self._bag_location(u) for u in units},
                candidate,
                self._validation(ens_oof),
                archive=False,
            )
            first.append(("ensemble-package", bag_task, None))

        # 2. Refits of every unit the final model needs (forests scored out of bag are full
        # fits already), in parallel with (1), then the refit package.
        refit_plan = self._refit_plan(units, weights)
        left = self._left(self._end_reserve())
        do_refit = bool(refit_plan) and not self.budget.stop_requested()
        skipped = [u for u in units if u.needs_refit and u not in refit_plan]
        # The refit ensemble is the fast package. Selected models left unrefit (the least
        # influential) stay in it as bags, unless that would put it over the latency target:
        # then they are dropped (not a stacker's inputs) and the weights renormalized.
        read = {name for u in units for name in u.inputs}
        target = self.limits.latency_limit or BAG_LATENCY_TARGET * BAG_LATENCY_MARGIN
        estimate = sum(self._refit_latency(u) for u in units if u not in skipped) + sum(
            u.result.latency_seconds or 0.0 for u in skipped
        )
        dropped = [u for u in skipped if u.name not in read] if estimate > target else []
        refit_units = [u for u in units if u not in dropped]
        kept = sum(w for name, w in weights.items() if name in {u.name for u in refit_units})
        refit_weights = {
            name: w / kept for name, w in weights.items() if name in {u.name for u in refit_units}
        }
        if skipped:
            self.notes.append(
                f"no time to refit {len(skipped)} of the selected models on every row: "
                f"{len(dropped)} left out of the refit ensemble (weight "
                f"{sum(weights.get(u.name, 0.0) for u in dropped):.2f}), "
                f"{len(skipped) - len(dropped)} kept there as bags of fold models"
            )
        refit_dirs = {u.name: self._bag_location(u) for u in units if u not in refit_plan}
        if do_refit:
            for u in refit_plan:
                refit_task = replace(
                    u.task,
                    params=u.result.refit_params or u.task.params,
                    eval_folds=(),
                    refit=True,
                    model_dir=str(self.work_dir / "refit" / u.name),
                    time_limit=None if left is None else max(1.0, left - 1.0),
                    deadline_at=None if left is None else time.time() + left - 1.0,
                    archive=False,
                )
                first.insert(0, ("refit", refit_task, refit_task.time_limit))

        results: dict[str, Any] = {}
        refit_failed = False

        def handle(kind: str, key: Any, outcome: TaskOutcome) -> None:
            nonlocal refit_failed
            if kind == "refit":
                if outcome.state == "ok" and outcome.value.status == "Completed":
                    refit_dirs[key.candidate_name] = str(key.model_dir)
                else:
                    refit_failed = True
                    why = outcome.error or getattr(outcome.value, "failure_reason", "")
                    why = why or outcome.state
                    self.notes.append(f"refit of {key.candidate_name} failed: {why}")
                return
            if outcome.state == "ok":
                results[key.out_dir] = outcome.value
            else:
                why = outcome.error or outcome.state
                self.notes.append(f"{kind} {Path(key.out_dir).name} could not be built: {why}")

        self._run_queue(first, handle)
        ens_result = results.get(str(self.candidate_dir(final_name))) if ensemble else None
        if ensemble and ens_result is None and "ensemble-package" not in str(self.notes):
            self.notes.append("no time left to build the bagged ensemble's package")
        refit_result: AssembleResult | None = None
        if do_refit and not refit_failed and not self.budget.stop_requested():
            candidate = {
                "CandidateName": final_name,
                "Algorithm": "weighted-ensemble" if ensemble else chosen[0].algorithm,
                "Weights": {k: round(v, 4) for k, v in refit_weights.items()},
                "Refit": True,
                "DecisionThreshold": self.threshold if ensemble else None,
            }
            out = self.work_dir / "refit-ensemble"
            task = self._assemble_task(
                out, refit_units, refit_weights, refit_dirs, candidate, None, False
            )
            self._run_queue([("refit-package", task, None)], handle)
            refit_result = results.get(str(out))

        # 3. Stackers' standalone packages (their base models' bags + their own), time
        # permitting: the leaderboard's stackers then load and predict like any candidate.
        stack_jobs: list[tuple[str, Any, float | None]] = []
        for m in (m for m in self.models if m.layer == 2):
            stack_units = self._units([m], {m.name: 1.0})
            stack_task = self._assemble_task(
                self.candidate_dir(m.name),
                stack_units,
                {m.name: 1.0},
                {u.name: self._bag_location(u) for u in stack_units},
                {"CandidateName": m.name, "Algorithm": m.algorithm, "Layer": 2},
                self._validation(m.oof),
                archive=False,
            )
            stack_jobs.append(("stacker-package", replace(stack_task, latency_repeats=5), None))
        self._run_queue(stack_jobs, handle)

        # Records: the ensemble candidate, and the stackers' updates.
        if ensemble and ens_task is not None and ens_oof is not None:
            self._report_ensemble(ens_task, ens_oof, ens_result, chosen, weights, best_single)
        for m in (m for m in self.models if m.layer == 2):
            built = results.get(str(self.candidate_dir(m.name)))
            if built is None:
                continue
            latency = built.latency_seconds
            updated = replace(
                m.result,
                model_dir=str(self.candidate_dir(m.name)),
                latency_seconds=latency,
                metrics={**m.result.metrics, "InferenceLatency": latency},
            )
            if self.objective.fn is None:
                updated.objective_value = latency
            self.on_result(m.task, updated, {"Layer": 2, "StackInputs": m.inputs, "Update": True})

        # Which package ships.
        which, note = choose_final(ens_result, refit_result, self.limits.latency_limit)
        if which == "refit" and refit_result is not None:
            bagged = ens_result.latency_seconds if ens_result else None
            if not ensemble:
                bagged = chosen[0].result.latency_seconds
                note = (
                    f"packaged {chosen[0].name} refit on every row ("
                    f"{refit_result.latency_seconds * 1e3:.1f} ms per row)"
                )
            self.final = FinalModel(
                final_name,
                Path(refit_result.out_dir),
                True,
                note,
                refit_result.latency_seconds,
                bagged,
            )
        elif ensemble and ens_result is not None:
            self.final = FinalModel(
                final_name,
                Path(ens_result.out_dir),
                False,
                note,
                ens_result.latency_seconds,
                ens_result.latency_seconds,
            )
        else:
            # No ensemble package: the best model's own package, as trained.
            single = next((m for m in chosen if m.layer == 1), best_single)
            if single.layer == 2 and str(self.candidate_dir(single.name)) not in results:
                single = self._top_models(1, layer=1)[0]
            self.final = FinalModel(
                single.name,
                Path(self._standalone_location(single)),
                False,
                "packaged the best model as trained (its bag of fold models)",
                single.result.latency_seconds,
                single.result.latency_seconds,
            )

    def _refit_plan(self, units: list[_Model], weights: dict[str, float]) -> list[_Model]:
        """The units to refit: the most influential first (a stacker's inputs count with its
        weight), as many as the time left allows."""
        candidates = [u for u in units if u.needs_refit]
        left = self._left(self._end_reserve())
        if left is None:
            return candidates

        def influence(u: _Model) -> float:
            return weights.get(u.name, 0.0) + sum(
                weights.get(s.name, 0.0) for s in units if u.name in s.inputs
            )

        available = left / 1.2 - self._assemble_seconds(units)
        plan: list[_Model] = []
        for u in sorted(candidates, key=lambda u: (-influence(u), u.number)):
            if self._refit_seconds([*plan, u]) <= available:
                plan.append(u)
        return plan

    def _standalone_location(self, model: _Model) -> str:
        return (
            str(self.candidate_dir(model.name)) if model.layer == 2 else str(model.result.model_dir)
        )

    def _run_queue(
        self,
        items: list[tuple[str, Any, float | None]],
        handle: Callable[[str, Any, TaskOutcome], None],
    ) -> None:
        """Run refit and assembly tasks ``(kind, argument, limit)``, as many at once as the
        executor takes, each within the time left (a task that no longer fits is skipped)."""
        queued = [
            QueueItem(TRIAL if kind == "refit" else ASSEMBLE, argument, limit, (kind, argument))
            for kind, argument, limit in items
        ]

        def skipped(item: QueueItem) -> None:
            self.notes.append(f"no time left for {item.key[0]} {_label(item.argument)}")

        self.queue.run_items(
            queued,
            lambda key, outcome: handle(key[0], key[1], outcome),
            reserve=lambda: 0.5 * self._end_reserve(),
            skipped=skipped,
        )

    def _report_ensemble(
        self,
        task: TrialTask,
        oof: np.ndarray,
        built: AssembleResult | None,
        chosen: list[_Model],
        weights: dict[str, float],
        best_single: _Model,
    ) -> None:
        metrics = self._metrics(oof, self.threshold)
        latency = built.latency_seconds if built else None
        value = metrics.get(self.objective.name) if self.objective.fn is not None else latency
        result = TrialResult(
            task.number,
            task.candidate_name,
            "Completed" if built is not None else "Failed",
            failure_reason="" if built is not None else "its package could not be built in time",
            metrics=metrics,
            objective_value=value,
            latency_seconds=latency,
            model_dir=task.model_dir,
            n_train_rows=self.n_rows,
            train_seconds=sum(m.result.train_seconds for m in chosen),
        )
        if latency is not None:
            result.metrics["InferenceLatency"] = latency
        extra = {
            "Layer": 3,
            "Weights": {m.name: round(weights[m.name], 4) for m in chosen},
            "SelectionMetric": self.selection_metric.name,
            "BestSingle": best_single.name,
        }
        if self.threshold is not None:
            extra["DecisionThreshold"] = round(self.threshold, 6)
        self.on_result(task, result, extra)

    def _fastest_within_tolerance(
        self,
        chosen: list[_Model],
        weights: dict[str, float],
        ensemble_score: float | None,
    ) -> tuple[list[_Model], dict[str, float]]:
        """InferenceLatency objective: the fastest model whose validation score is within
        LATENCY_TOLERANCE of the best (the ensemble counts as one option)."""
        options: list[tuple[float, float, list[_Model], dict[str, float]]] = []
        if ensemble_score is not None:
            latency = sum(self._refit_latency(m) for m in self._units(chosen, weights))
            options.append((ensemble_score, latency, chosen, weights))
        for m in self.models:
            options.append((m.score, self._refit_latency(m), [m], {m.name: 1.0}))
        best = max(o[0] for o in options)
        slack = abs(best) * LATENCY_TOLERANCE
        eligible = [o for o in options if o[0] >= best - slack]
        _, _, picked, picked_weights = min(eligible, key=lambda o: (o[1], -o[0]))
        self.notes.append(
            "InferenceLatency objective: packaged the fastest model whose "
            f"{self.selection_metric.name} is within {LATENCY_TOLERANCE:.0%} of the best"
        )
        return picked, picked_weights

    def _metrics(self, oof: np.ndarray, threshold: float | None = None) -> dict[str, float]:
        from mlpilot.metrics import score_all

        return score_all(
            self.problem_type,
            self.y,
            oof,
            sample_weight=self.weight,
            positive_index=self.positive_index,
            n_classes=self.n_classes,
            threshold=threshold,
        )

    def _decision_threshold(self, oof: np.ndarray) -> float | None:
        """For a binary objective computed from labels (F1, accuracy, balanced accuracy): the
        cut of the positive class's probability that scores best on the out-of-fold
        predictions, when it beats 0.5 by a margin (else None: the arg-max)."""
        from mlpilot.metrics import THRESHOLD_METRICS, best_threshold

        metric = self.objective
        if self.problem_type is not ProblemType.BINARY or metric.name not in THRESHOLD_METRICS:
            return None
        at_half = self._metrics(oof).get(metric.name)
        threshold, value = best_threshold(
            self.y, oof, metric, sample_weight=self.weight, positive_index=self.positive_index
        )
        if at_half is None or not np.isfinite(value) or value - at_half < THRESHOLD_GAIN:
            return None
        self.notes.append(
            f"decision threshold {threshold:.3f} for {metric.name}: the positive class is "
            f"predicted from that probability ({metric.name} {value:.4f} out of fold, "
            f"{at_half:.4f} at 0.5)"
        )
        return threshold

    # -- all phases --------------------------------------------------------------------------
    def run(self) -> str:
        """Run every phase; return why the base-model phase ended (as run_search does)."""
        reason = self._base_models()
        if reason != "Stopped" and not self.budget.stop_requested():
            self._stackers()
        if self.models and not self.budget.stop_requested():
            self._final()
        if self.budget.stop_requested():
            reason = "Stopped"
        return reason


def _label(argument: Any) -> str:
    name = getattr(argument, "candidate_name", None) or Path(getattr(argument, "out_dir", "")).name
    return str(name)
