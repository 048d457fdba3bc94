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
4. **Final model** (:mod:`mlpilot.ensemble._final`): each selected model is refit once on every
   row with its bag's mean iteration count (bag members collapsed); the refit ensemble and the
   bagged one are packaged, their single-row latency measured, and the rule in
   :func:`choose_final` picks the package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlpilot._crash import crash_point
from mlpilot._types import ProblemType
from mlpilot.algorithms import (
    StackerRole,
    algorithm_path,
    algorithm_tags,
    get_algorithm,
    stacker_for,
)
from mlpilot.ensemble._caruana import (
    STEPS,
    Selection,
    greedy_selection,
    latency_selection_note,
)
from mlpilot.ensemble._final import TRIAL, BuiltModel, FinalModel, FinalPhase, choose_final
from mlpilot.ensemble._plan import BaggingPlan
from mlpilot.ensemble._portfolio import PortfolioEntry, random_entry
from mlpilot.ensemble._stack import write_stack_data
from mlpilot.metrics import (
    Calibration,
    DisparityChoice,
    DisparityMeasure,
    default_objective,
    get_metric,
)
from mlpilot.runtime import (
    MIN_TASK_SECONDS,
    Budget,
    Executor,
    TaskOutcome,
    TaskQueue,
)
from mlpilot.search import CandidateSpec, TrialResult, TrialTask, candidate_name, trial_result
from mlpilot.search import load_validation_predictions as load_oof

__all__ = ["EnsembleBuilder", "EnsembleLimits", "FinalModel", "choose_final"]

#: Largest share of the budget one base model may take.
MAX_MODEL_SHARE = 0.25
#: Base models the final phase's time plan assumes will be selected (and refit).
SELECTION_GUESS = 5
#: A refit on every row takes this much longer than one fold's fit.
REFIT_GROWTH = 1.3
#: Largest share of the budget one ensemble selection may take: each of its STEPS scores every
#: model once, and the metric's own checks make a score cost milliseconds (scikit-learn's AUC:
#: 2-9 ms on 614 rows, so 40 steps over 43 models took 5 s of pima's 60).
SELECTION_SHARE = 0.05
#: Single-row predictions timed per package (median).
LATENCY_REPEATS = 25
#: Share of the budget the stacking layer gets (bounded), and the least budget that stacks.
STACK_SHARE, STACK_MIN_BUDGET = 0.08, 25
#: Assembling an ensemble takes about this many times what writing its members' bags took
#: (load, hash each fold's pipeline, write): 12 text bags written in 0.5 s each (pickle)
#: took 2.7 s to load, 5.5 s to hash and 10 s to write together, on two busy cores.
ASSEMBLE_PER_WRITE = 3.0
#: Share of the stacking layer's window its selection of the stackers' inputs may take.
STACK_SELECTION_SHARE = 0.25
#: Boosting rounds a LightGBM stacker may take at most.
STACK_MAX_ROUNDS = 2000
#: Base models whose predictions feed the stacker at most (fewer for many classes).
STACK_INPUTS = 8


@dataclass
class EnsembleLimits:
    """What bounds the ensemble besides time (the :class:`~mlpilot.runtime.Budget`)."""

    max_candidates: int
    #: Per-row prediction time the packaged model must keep (seconds), if any.
    latency_limit: float | None = None
    #: How a model's disparity is measured; with its ``max_disparity``, the shipped model is
    #: the best option (the selected ensemble or a single model) within it.
    disparity: DisparityMeasure | None = None
    #: Whether the boosting stacker reads the original features besides its inputs'
    #: predictions (else both stackers read the predictions alone).
    stack_features: bool = True


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
        #: The fold of each scored row (for the spread of an ensemble's objective).
        self.row_folds = folds[self.rows]
        self.y = y[self.rows]
        self.weight = None if weight is None else weight[self.rows]
        self.n_rows = len(y)
        self.models: list[BuiltModel] = []
        self.number = 0
        self.final: FinalModel | None = None
        self.notes: list[str] = []
        #: What the latency limit did to ensemble selection (None without a limit).
        self.latency_note: str | None = None
        #: What the disparity limit chose and why (None without a limit).
        self.fairness: DisparityChoice | None = None
        self.ensemble_name: str | None = None
        #: The final model's blend weights, unrounded (the record shows them rounded).
        self.weights: dict[str, float] = {}
        #: The ensemble's decision threshold (binary label objectives), see FinalPhase.
        self.threshold: float | None = None
        #: The ensemble's calibration (log-loss objectives), see FinalPhase.
        self.calibration: Calibration | None = None
        self._l1_seconds: list[float] = []
        #: Seconds a base-model task ran beyond its training (starting, loading the data,
        #: predicting, timing, saving): its training must stop that much before its limit.
        self._task_overheads: list[float] = []
        #: Seconds one score of out-of-fold predictions took (the selection's unit of work).
        self._score_seconds: list[float] = []
        #: Portfolio entries trained already (by an earlier run of a resumed job).
        self._trained_labels: set[str] = set()
        #: Base models an earlier run of a resumed job trained (see :meth:`adopt`).
        self.adopted = 0

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

    def _final_seconds(self, units: list[BuiltModel] | None = None) -> float:
        """Time the final phase needs: refitting ``units`` (default: the models likely to be
        selected), and assembling, timing and writing the bagged and refit packages."""
        if not self.budget.limited:
            return 0.0
        units = units if units is not None else self._top_models(SELECTION_GUESS, layer=1)
        return (
            self._selection_seconds() + self._refit_seconds(units) + self._assemble_seconds(units)
        )

    def _selection_seconds(self, n_models: int | None = None, slack: float = 1.0) -> float:
        """Time one greedy selection over ``n_models`` (default: every model, the stackers
        included) takes: STEPS scores of each (times ``slack``), within SELECTION_SHARE of
        the budget."""
        total = self.budget.total
        if total is None or not self._score_seconds:
            return 0.0
        if n_models is None:
            n_models = len(self.models) + (2 if self._stacking_planned() else 0)
            # With a latency limit, selection runs again without it (for the note).
            n_models *= 1 if self.limits.latency_limit is None else 2
        per_score = float(np.median(self._score_seconds))
        return float(min(slack * STEPS * n_models * per_score, SELECTION_SHARE * total))

    def _selection_deadline(self, n_models: int) -> float | None:
        """When a greedy selection over ``n_models`` that starts now must stop adding steps:
        half as long again as planned, so that a score's jitter does not cut it short."""
        if not self.budget.limited:
            return None
        return time.monotonic() + self._selection_seconds(n_models, slack=1.5)

    def _refit_seconds(self, units: list[BuiltModel]) -> float:
        refit = sum(REFIT_GROWTH * m.per_fit_seconds for m in units if m.needs_refit)
        return refit / max(1, self.executor.capacity)

    def _package_sizes(self, units: list[BuiltModel]) -> tuple[float, float]:
        """Bytes of ``units``' bags, and of the refit package built from them."""
        size = shipped = 0.0
        for m in units:
            path = Path(m.result.model_dir or "") / "pipeline.joblib"
            bag = path.stat().st_size if path.exists() else 0
            size += bag
            # The refit model is one of the bag's members, fit on every row (k/(k-1) of them).
            members = 1 if m.task.out_of_bag else max(1, len(m.task.eval_folds))
            shipped += bag / members * (members / (members - 1) if members > 1 else 1.0)
        return size, shipped

    def _assemble_seconds(self, units: list[BuiltModel]) -> float:
        size, _ = self._package_sizes(units)
        bag_latency = sum(m.result.latency_seconds or 0.0 for m in units)
        refit_latency = sum(self._refit_latency(m) for m in units)
        # Loading and writing the bags (by their size, or by the time writing each took in
        # its worker: a TF-IDF vocabulary's many small objects cost more than their bytes say;
        # assembling loads each, hashes each fold's pipeline to share them, and writes them);
        # shipping the refit package (copy, model card, archive: the job's end, after this
        # phase); timing each package (LATENCY_REPEATS + 1 calls).
        written = sum(m.result.save_seconds for m in units)
        seconds = 1.0 + max(2 * self.budget.package_seconds(size), ASSEMBLE_PER_WRITE * written)
        seconds += self._shipping_seconds(units, refit=True)
        return seconds + (LATENCY_REPEATS + 1) * (bag_latency + refit_latency)

    def _refit_package_seconds(self, units: list[BuiltModel]) -> float:
        """Time assembling the refit package of ``units`` takes once they are refit (loading
        and writing the refit models, timing it), and shipping it after this phase."""
        _, shipped = self._package_sizes(units)
        latency = sum(self._refit_latency(m) for m in units)
        seconds = 1.0 + 2 * self.budget.package_seconds(shipped)
        return seconds + (LATENCY_REPEATS + 1) * latency + self._shipping_seconds(units, refit=True)

    def _shipping_seconds(self, units: list[BuiltModel], *, refit: bool) -> float:
        """Time the job takes, after this phase, to ship the refit (or bagged) package of
        ``units``: copy, model card, archive."""
        size, shipped = self._package_sizes(units)
        return self.budget.shipping_seconds(shipped if refit else size)

    def _task_overhead(self) -> float:
        """Median seconds a finished base-model task ran beyond its training."""
        return float(np.median(self._task_overheads)) if self._task_overheads else 0.0

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

    def _top_models(self, k: int, layer: int | None = None) -> list[BuiltModel]:
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

    def _record(
        self, task: TrialTask, result: TrialResult, extra: dict[str, Any]
    ) -> BuiltModel | None:
        """Report a finished trial; keep it if its out-of-fold predictions are usable."""
        model = self._built(task, result, extra)
        if model is not None:
            self.models.append(model)
        self.on_result(task, result, extra)
        return model

    def _built(
        self, task: TrialTask, result: TrialResult, extra: dict[str, Any]
    ) -> BuiltModel | None:
        """The finished trial as a model of the ensemble, if its out-of-fold predictions are
        usable."""
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
                    started = time.monotonic()
                    score = self._score(oof)
                    self._score_seconds.append(time.monotonic() - started)
                    model = BuiltModel(
                        name=task.candidate_name,
                        number=task.number,
                        layer=int(extra.get("Layer", 1)),
                        algorithm=task.algorithm,
                        task=task,
                        result=result,
                        oof=oof,
                        score=score,
                        per_fit_seconds=result.train_seconds / fits,
                        inputs=list(extra.get("StackInputs", [])),
                        keeps_features=bool(extra.get("StackKeepsFeatures", True)),
                    )
        return model

    def adopt(self, earlier: list[tuple[str, float | None, dict[str, Any]]]) -> int:
        """Continue from an earlier run of the job (``(name, objective value, Mlpilot
        details)`` of each candidate it recorded): its base models join the pool as trained,
        from their packages' out-of-fold predictions; new candidates are numbered after every
        earlier one. Its stackers and ensembles stay on the record but are not reused: their
        own fold models were working files, and stacking and selection are redone over the
        old and new base models together. Returns the base models adopted."""
        numbers = [int(d["TrialNumber"]) for _, _, d in earlier if "TrialNumber" in d]
        self.number = max(numbers, default=-1) + 1
        labels = {e.label for e in self.portfolio}
        for name, value, details in earlier:
            label = details.get("PortfolioEntry")
            if details.get("Layer") != 1:
                continue
            if label in labels:
                self._trained_labels.add(str(label))  # tried, whatever came of it
            location, algorithm = details.get("ModelLocation"), details.get("Algorithm")
            if value is None or not location or not algorithm:
                continue
            try:
                task = self._trial_task(
                    name=name,
                    algorithm=algorithm,
                    params=dict(details.get("Hyperparameters") or {}),
                    data_dir=self.data_dir,
                    model_dir=Path(location),
                    limit=None,
                    left=None,
                    out_of_bag=bool(details.get("OutOfBag")),
                )
            except Exception:
                continue  # an algorithm no longer registered
            # Its own number, and the preprocessing it was trained with (defaults may change).
            task = replace(
                task,
                number=int(details["TrialNumber"]),
                preprocessing=dict(details.get("Preprocessing") or {}),
            )
            result = TrialResult(
                task.number,
                name,
                "Completed",
                objective_value=value,
                refit_params=dict(details.get("RefitParameters") or {}),
                train_seconds=float(details.get("TrainSeconds") or 0.0),
                latency_seconds=details.get("PredictSecondsPerRow"),
                model_dir=str(location),
                time_cuts={int(k): int(v) for k, v in (details.get("TimeCuts") or {}).items()},
            )
            model = self._built(task, result, {"Layer": 1})
            if model is None:
                continue
            self.models.append(model)
            self._l1_seconds.append(result.train_seconds)
            self.adopted += 1
        if self.adopted:
            self.notes.append(
                f"resumed: {self.adopted} base models of the earlier run kept as trained; "
                "stacking, selection and the final model redone over them and the new ones"
            )
        return self.adopted

    # -- phase 1: base models ----------------------------------------------------------------
    def _entries(self) -> Any:
        yield from (e for e in self.portfolio if e.label not in self._trained_labels)
        if not self.budget.limited:
            return  # without a time limit the portfolio is the plan
        # A resumed job draws from a stream of its own (numbered after what it trained), not
        # the first run's draws again.
        earlier = self.number if self.adopted or self._trained_labels else 0
        rng = np.random.default_rng([self.seed, earlier] if earlier else self.seed)
        algorithms = list(dict.fromkeys(e.algorithm for e in self.portfolio))
        for number in range(earlier + 1, earlier + 10_000):
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
        # Training stops early enough for the rest of the task to end within its limit, and
        # so before the tail (else the last models push the final phase into the reports).
        train_left = None if limit is None else min(limit, left if left is not None else limit)
        if train_left is not None and self._task_overheads:
            train_left = max(MIN_TASK_SECONDS, train_left - self._task_overhead())
        out_of_bag = (
            self.plan.bagged
            and not self.plan.grouped
            and algorithm_tags(entry.algorithm).out_of_bag
        )
        task = self._trial_task(
            name=name,
            algorithm=entry.algorithm,
            params=params,
            data_dir=self.data_dir,
            model_dir=self.candidate_dir(name),
            limit=limit,
            left=train_left,
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
            if result.status == "Completed":
                self._task_overheads.append(max(0.0, outcome.seconds - result.train_seconds))
        self._record(task, result, extra)

    # -- phase 2: stackers -------------------------------------------------------------------
    def _stackers(self) -> None:
        base = self._top_models(len(self.models), layer=1)
        if not self._stacking_planned() or len(base) < 2 or self.budget.stop_requested():
            return
        # A model with a fold cut at 0 iterations predicted that fold from its initial state:
        # a stacker would learn from predictions its refit (trained at least once) never makes.
        untrained = [m for m in base if 0 in (m.result.time_cuts or {}).values()]
        base = [m for m in base if m not in untrained]
        if untrained:
            self.notes.append(
                "stacking inputs leave out "
                + ", ".join(m.name for m in untrained)
                + ": a fold stopped at 0 iterations"
            )
        if len(base) < 2:
            self.notes.append("no stacking layer: fewer than two base models trained every fold")
            return
        n_inputs = STACK_INPUTS
        if self.problem_type is ProblemType.MULTICLASS:
            n_inputs = max(2, min(STACK_INPUTS, 60 // max(1, self.n_classes)))
        window = None
        deadline = None
        if self.budget.limited:
            window = self._left(self._end_reserve() + self._final_seconds())
            if window is None or window < 2 * MIN_TASK_SECONDS:
                self.notes.append("no stacking layer: no time left for it")
                return
            # The stackers' own selection comes out of their window (a quarter at most).
            seconds = min(self._selection_seconds(len(base)), STACK_SELECTION_SHARE * window)
            deadline = time.monotonic() + seconds
        # The stackers read the models a first greedy selection over the base models picks
        # (diverse, and few: every input is one more model to run at prediction), topped up
        # with the next best to at least three.
        first = self._greedy_selection(base, deadline=deadline)
        picked = [m for m, w in zip(base, first.weights, strict=True) if w > 0]
        picked += [m for m in base if m not in picked][: max(0, 3 - len(picked))]
        inputs = sorted(picked, key=lambda m: (-m.score, m.number))[:n_inputs]
        allowed = list(dict.fromkeys(e.algorithm for e in self.portfolio))
        booster = stacker_for(StackerRole.BOOSTING, allowed)
        linear = stacker_for(StackerRole.LINEAR, allowed)
        plans: list[tuple[str, str, bool]] = []
        full = self.limits.stack_features
        if booster is not None:
            plans.append((booster, "stack-full" if full else "stack-preds-boosting", full))
        if linear is not None:
            plans.append((linear, "stack-preds", False))
        if not plans:
            plans.append((allowed[0], "stack-full" if full else "stack-preds-other", full))
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
        self, plans: list[tuple[str, str, bool]], inputs: list[BuiltModel], window: float | None
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
    def _greedy_selection(self, models: list[BuiltModel], **limits: Any) -> Selection:
        """Greedy ensemble selection over ``models``' out-of-fold predictions (``limits``: an
        optional per-model ``cost`` and ``max_cost``, a ``deadline``)."""
        return greedy_selection(
            [m.oof for m in models],
            self.y,
            self.selection_metric,
            sample_weight=self.weight,
            positive_index=self.positive_index,
            n_classes=self.n_classes,
            seed=self.seed,
            **limits,
        )

    def _select(self) -> tuple[list[BuiltModel], np.ndarray] | None:
        models = self._top_models(len(self.models))
        if not models:
            return None
        max_cost = self.limits.latency_limit
        if max_cost is None:
            deadline = self._selection_deadline(len(models))
            return models, self._greedy_selection(models, deadline=deadline).weights
        cost = [self._refit_latency(m) for m in models]
        selection = self._greedy_selection(
            models, cost=cost, max_cost=max_cost, deadline=self._selection_deadline(len(models))
        )
        # Selection again without the limit, to record what the limit cost.
        free = self._greedy_selection(models, deadline=self._selection_deadline(len(models)))
        self.latency_note = latency_selection_note(
            cost, max_cost, selection, free, self.selection_metric.name
        )
        return models, selection.weights

    def _refit_latency(self, model: BuiltModel) -> float:
        """Estimated per-row time of the model refit (its bag's time over its members)."""
        latency = model.result.latency_seconds or 0.0
        members = 1 if model.task.out_of_bag else max(1, len(model.task.eval_folds))
        if model.layer == 2:
            inputs = [m for m in self.models if m.name in model.inputs]
            return latency / members + sum(self._refit_latency(m) for m in inputs)
        return latency / members

    # -- all phases --------------------------------------------------------------------------
    def run(self) -> str:
        """Run every phase; return why the base-model phase ended (as run_search does)."""
        reason = self._base_models()
        crash_point("ensembling")
        if reason != "Stopped" and not self.budget.stop_requested():
            self._stackers()
        if self.models and not self.budget.stop_requested():
            FinalPhase(self).run()
        if self.budget.stop_requested():
            reason = "Stopped"
        return reason
