"""ENSEMBLING's last phase: package the selected models.

The weighted ensemble of the selected models' bags is packaged as trained; each selected model
is refit once on every row with its bag's mean iteration count (as many as the time left
allows, most influential first) and the refit ensemble is packaged too; both packages' single-
row latency is measured and :func:`choose_final` picks the one the job ships. Stackers get
standalone packages (their inputs' bags + their own) so the leaderboard can load them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.ensemble._caruana import blend
from mlpilot.ensemble._predictor import AssembleResult, AssembleTask, UnitSpec
from mlpilot.errors import JobNotFoundError, ModelPackageError
from mlpilot.metrics import (
    Calibration,
    DisparityOption,
    choose_within_disparity,
    fit_calibration,
    objective_spread,
)
from mlpilot.package import InferenceModel, package_bytes
from mlpilot.runtime import QueueItem, TaskOutcome
from mlpilot.search import VALIDATION_PREDICTIONS, TrialResult, TrialTask

if TYPE_CHECKING:
    from mlpilot.ensemble._runner import EnsembleBuilder

__all__ = ["BuiltModel", "FinalModel", "FinalPhase", "choose_final"]

TRIAL = "mlpilot.search._trial:run_trial"
ASSEMBLE = "mlpilot.ensemble._predictor:assemble"
#: The bagged ensemble is packaged when it answers a row within this (seconds); otherwise the
#: refit ensemble (see docs/ensembling.md for the evidence). An endpoint should answer a row in
#: 5 ms, and the HTTP hops through the service take 2-3 ms of that: the model gets 2.
BAG_LATENCY_TARGET = 0.002
#: Share of the target the bag's timing inside the job must stay under: timings taken while the
#: job runs vary by 10-20 % (churn's bag timed 4.7 ms in the job, 5.2 ms alone), and the
#: shipped model must meet the target when measured on its own.
BAG_LATENCY_MARGIN = 0.8
#: Least out-of-fold gain of the objective for which a decision threshold other than 0.5 is
#: kept (a smaller one is within the noise of choosing the cut on the same rows).
THRESHOLD_GAIN = 0.002
#: With the InferenceLatency objective: the fastest candidate within this relative distance of
#: the most accurate one's validation score is packaged.
LATENCY_TOLERANCE = 0.01


@dataclass
class BuiltModel:
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
    #: A stacker: whether it reads the original features besides its inputs' predictions.
    keeps_features: bool = True

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


class FinalPhase:
    """Phase 4 of one :class:`~mlpilot.ensemble.EnsembleBuilder`: selection's result to the
    package the job ships (``builder.final``)."""

    def __init__(self, builder: EnsembleBuilder) -> None:
        self.b = builder

    def _units(self, chosen: list[BuiltModel], weights: dict[str, float]) -> list[BuiltModel]:
        """Chosen models plus the base models their stackers read, base models first."""
        by_name = {m.name: m for m in self.b.models}
        needed: dict[str, BuiltModel] = {}
        for m in chosen:
            for name in m.inputs:
                needed.setdefault(name, by_name[name])
        for m in chosen:
            needed.setdefault(m.name, m)
        return sorted(needed.values(), key=lambda m: (m.layer, m.number))

    def _unit_specs(
        self, units: list[BuiltModel], locations: dict[str, str]
    ) -> tuple[UnitSpec, ...]:
        index = {m.name: i for i, m in enumerate(units)}
        return tuple(
            UnitSpec(m.name, locations[m.name], tuple(index[n] for n in m.inputs)) for m in units
        )

    def _bag_location(self, model: BuiltModel) -> str:
        return str(model.result.model_dir)

    def _assemble_task(
        self,
        out_dir: Path,
        units: list[BuiltModel],
        weights: dict[str, float],
        locations: dict[str, str],
        candidate: dict[str, Any],
        validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        archive: bool,
    ) -> AssembleTask:
        return AssembleTask(
            out_dir=str(out_dir),
            data_dir=str(self.b.data_dir),
            units=self._unit_specs(units, locations),
            weights=tuple(float(weights.get(m.name, 0.0)) for m in units),
            candidate=candidate,
            archive=archive,
            validation=validation,
        )

    def _validation(self, oof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        folds = self.b.plan.validation.folds[self.b.rows].astype(np.int16)
        return self.b.rows, folds, oof

    def run(self) -> None:
        selected = self.b._select()
        if selected is None:
            return
        models, weights_array = selected
        weights = {m.name: float(w) for m, w in zip(models, weights_array, strict=True) if w > 0}
        chosen = [m for m in models if m.name in weights]
        best_single = models[0]
        ensemble_score = None
        if len(chosen) > 1:
            oof = blend([m.oof for m in chosen], np.array([weights[m.name] for m in chosen]))
            ensemble_score = self.b._score(oof)
        if self.b.objective.fn is None and self.b.limits.latency_limit is None:
            chosen, weights = self._fastest_within_tolerance(chosen, weights, ensemble_score)
        chosen, weights = self._within_disparity(chosen, weights, ensemble_score)
        chosen_oof = blend([m.oof for m in chosen], np.array([weights[m.name] for m in chosen]))
        self._check_cost_decision(chosen_oof)
        self.b.calibration = self._calibration(chosen_oof)
        # A calibrated single model ships as an ensemble of one: the candidate whose package,
        # record and notebook carry the calibration (the model's own stays as trained).
        ensemble = len(chosen) > 1 or bool(self._calibration_entry())
        self.b.weights = dict(weights)
        units = self._units(chosen, weights)
        final_name = chosen[0].name

        # 1. The weighted ensemble candidate (bags as trained): its package and predictions.
        ens_task: TrialTask | None = None
        ens_candidate: dict[str, Any] = {}
        ens_oof: np.ndarray | None = None
        first: list[tuple[str, Any, float | None]] = []
        if ensemble:
            ens_oof = blend([m.oof for m in chosen], np.array([weights[m.name] for m in chosen]))
            self.b.threshold = self._decision_threshold(ens_oof)
            fitted = self.b.calibration
            if fitted is not None and not fitted.identity:
                # What the package predicts: its saved validation predictions and its score.
                ens_oof = fitted.apply(ens_oof)
            shown = {m.name: round(weights[m.name], 4) for m in chosen}
            final_name = self.b._name("weighted-ensemble", shown, {})
            self.b.ensemble_name = final_name
            ens_task = TrialTask(
                number=self.b.number - 1,
                candidate_name=final_name,
                algorithm="weighted-ensemble",
                algorithm_path="",
                params=shown,
                preprocessing={},
                data_dir=str(self.b.data_dir),
                objective=self.b.objective.name,
                eval_folds=self.b.eval_folds,
                seed=self.b.seed,
                time_limit=None,
                model_dir=str(self.b.candidate_dir(final_name)),
            )
            self.b.on_start(ens_task, {"Layer": 3})
            candidate = {
                "CandidateName": final_name,
                "Algorithm": "weighted-ensemble",
                "Weights": shown,
                "Refit": False,
                "DecisionThreshold": self.b.threshold,
                **self._calibration_entry(),
            }
            ens_candidate = candidate
            bag_task = self._assemble_task(
                self.b.candidate_dir(final_name),
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
        end = self.b._end_reserve()
        left = self._refit_left(units)
        do_refit = bool(refit_plan) and not self.b.budget.stop_requested()
        skipped = [u for u in units if u.needs_refit and u not in refit_plan]
        # The refit ensemble is the fast package. Selected models left unrefit (the least
        # influential) stay in it as bags, unless that would put it over the latency target:
        # then they are dropped (not a stacker's inputs) and the weights renormalized.
        read = {name for u in units for name in u.inputs}
        target = self.b.limits.latency_limit or BAG_LATENCY_TARGET * BAG_LATENCY_MARGIN
        estimate = sum(self.b._refit_latency(u) for u in units if u not in skipped) + sum(
            u.result.latency_seconds or 0.0 for u in skipped
        )
        dropped = [u for u in skipped if u.name not in read] if estimate > target else []
        refit_units = [u for u in units if u not in dropped]
        kept = sum(w for name, w in weights.items() if name in {u.name for u in refit_units})
        refit_weights = {
            name: w / kept for name, w in weights.items() if name in {u.name for u in refit_units}
        }
        if skipped:
            self.b.notes.append(
                f"no time to refit {len(skipped)} of the selected models on every row: "
                f"{len(dropped)} left out of the refit ensemble (weight "
                f"{sum(weights.get(u.name, 0.0) for u in dropped):.2f}), "
                f"{len(skipped) - len(dropped)} kept there as bags of fold models"
            )
        refit_dirs = {u.name: self._bag_location(u) for u in units if u not in refit_plan}
        if do_refit:
            # Training stops early enough for the rest of the task (start, data, saving) to
            # end within its limit.
            train_left = None if left is None else max(1.0, left - 1.0 - self.b._task_overhead())
            for u in refit_plan:
                refit_task = replace(
                    u.task,
                    params=u.result.refit_params or u.task.params,
                    eval_folds=(),
                    refit=True,
                    model_dir=str(self.b.work_dir / "refit" / u.name),
                    time_limit=None if left is None else max(1.0, left - 1.0),
                    deadline_at=None if train_left is None else time.time() + train_left,
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
                    self.b.notes.append(f"refit of {key.candidate_name} failed: {why}")
                return
            if outcome.state == "ok":
                results[key.out_dir] = outcome.value
            else:
                why = outcome.error or outcome.state
                self.b.notes.append(f"{kind} {Path(key.out_dir).name} could not be built: {why}")

        # The bag's package is built beside the refits; after them come the refit package
        # and shipping (the bag's, when there is nothing to refit).
        first_reserve = (
            self.b._refit_package_seconds(refit_units)
            if do_refit
            else self.b._shipping_seconds(units, refit=False)
        )
        self._run_queue(first, handle, end + first_reserve)
        if do_refit and any(u.name not in refit_dirs for u in refit_plan):
            refit_failed = True  # a refit the queue skipped for lack of time (noted there)
        ens_result = results.get(str(self.b.candidate_dir(final_name))) if ensemble else None
        if ensemble and ens_result is None and len(chosen) == 1 and ens_oof is not None:
            ens_result = self._calibrated_copy(chosen[0], final_name, ens_candidate, ens_oof)
        if ensemble and ens_result is None and "ensemble-package" not in str(self.b.notes):
            self.b.notes.append("no time left to build the bagged ensemble's package")
        refit_result: AssembleResult | None = None
        if do_refit and not refit_failed and not self.b.budget.stop_requested():
            candidate = {
                "CandidateName": final_name,
                "Algorithm": "weighted-ensemble" if ensemble else chosen[0].algorithm,
                "Weights": {k: round(v, 4) for k, v in refit_weights.items()},
                "Refit": True,
                "DecisionThreshold": self.b.threshold if ensemble else None,
                **(self._calibration_entry() if ensemble else {}),
            }
            out = self.b.work_dir / "refit-ensemble"
            task = self._assemble_task(
                out, refit_units, refit_weights, refit_dirs, candidate, None, False
            )
            ship = self.b._shipping_seconds(refit_units, refit=True)
            self._run_queue([("refit-package", task, None)], handle, end + ship)
            refit_result = results.get(str(out))

        # 3. Stackers' standalone packages (their base models' bags + their own), time
        # permitting: the leaderboard's stackers then load and predict like any candidate.
        stack_jobs: list[tuple[str, Any, float | None]] = []
        for m in (m for m in self.b.models if m.layer == 2):
            stack_units = self._units([m], {m.name: 1.0})
            stack_task = self._assemble_task(
                self.b.candidate_dir(m.name),
                stack_units,
                {m.name: 1.0},
                {u.name: self._bag_location(u) for u in stack_units},
                {"CandidateName": m.name, "Algorithm": m.algorithm, "Layer": 2},
                self._validation(m.oof),
                archive=False,
            )
            stack_jobs.append(("stacker-package", replace(stack_task, latency_repeats=5), None))
        # Shipping the package the job will choose follows them.
        ship = self.b._shipping_seconds(units, refit=refit_result is not None)
        self._run_queue(stack_jobs, handle, end + ship)

        # Records: the ensemble candidate, and the stackers' updates.
        if ensemble and ens_task is not None and ens_oof is not None:
            self._report_ensemble(ens_task, ens_oof, ens_result, chosen, weights, best_single)
        for m in (m for m in self.b.models if m.layer == 2):
            built = results.get(str(self.b.candidate_dir(m.name)))
            if built is None:
                continue
            latency = built.latency_seconds
            updated = replace(
                m.result,
                model_dir=str(self.b.candidate_dir(m.name)),
                latency_seconds=latency,
                metrics={**m.result.metrics, "InferenceLatency": latency},
            )
            if self.b.objective.fn is None:
                updated.objective_value = latency
            update = {
                "Layer": 2,
                "StackInputs": m.inputs,
                "StackKeepsFeatures": m.keeps_features,
                "Update": True,
            }
            self.b.on_result(m.task, updated, update)

        # Which package ships.
        which, note = choose_final(ens_result, refit_result, self.b.limits.latency_limit)
        if which == "refit" and refit_result is not None:
            bagged = ens_result.latency_seconds if ens_result else None
            if not ensemble:
                bagged = chosen[0].result.latency_seconds
                note = (
                    f"packaged {chosen[0].name} refit on every row ("
                    f"{refit_result.latency_seconds * 1e3:.1f} ms per row)"
                )
            self.b.final = FinalModel(
                final_name,
                Path(refit_result.out_dir),
                True,
                note,
                refit_result.latency_seconds,
                bagged,
            )
        elif ensemble and ens_result is not None:
            self.b.final = FinalModel(
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
            if single.layer == 2 and str(self.b.candidate_dir(single.name)) not in results:
                single = self.b._top_models(1, layer=1)[0]
            self.b.final = FinalModel(
                single.name,
                Path(self._standalone_location(single)),
                False,
                "packaged the best model as trained (its bag of fold models)",
                single.result.latency_seconds,
                single.result.latency_seconds,
            )

    def _calibrated_copy(
        self, model: BuiltModel, name: str, candidate: dict[str, Any], oof: np.ndarray
    ) -> AssembleResult | None:
        """A calibrated single model whose package there was no time left to assemble: its
        own package copied (files as they are) with the calibrated candidate's facts, and the
        calibrated validation predictions. A file copy: it fits where a worker task did not."""
        if model.layer != 1 or not model.result.model_dir:
            return None
        out = self.b.candidate_dir(name)
        latency = model.result.latency_seconds or 0.0
        started = time.monotonic()
        try:
            InferenceModel.copy_package(
                model.result.model_dir,
                out,
                archive=False,
                candidate={**candidate, "PredictSecondsPerRow": latency},
            )
            rows, folds, _ = self._validation(oof)
            np.savez(out / VALIDATION_PREDICTIONS, rows=rows, folds=folds, predictions=oof)
        except (OSError, ModelPackageError, JobNotFoundError) as exc:
            self.b.notes.append(
                f"the calibrated package of {model.name} could not be copied: {exc}"
            )
            return None
        self.b.notes.append(
            f"no time left to assemble {name}: {model.name}'s own package copied with the "
            "calibration"
        )
        return AssembleResult(str(out), latency, package_bytes(out), time.monotonic() - started)

    def _refit_plan(self, units: list[BuiltModel], weights: dict[str, float]) -> list[BuiltModel]:
        """The units to refit: the most influential first (a stacker's inputs count with its
        weight), as many as the time left allows."""
        candidates = [u for u in units if u.needs_refit]
        left = self.b._left(self.b._end_reserve())
        if left is None:
            return candidates

        def influence(u: BuiltModel) -> float:
            return weights.get(u.name, 0.0) + sum(
                weights.get(s.name, 0.0) for s in units if u.name in s.inputs
            )

        available = left / 1.2 - self.b._assemble_seconds(units)
        plan: list[BuiltModel] = []
        for u in sorted(candidates, key=lambda u: (-influence(u), u.number)):
            if self.b._refit_seconds([*plan, u]) <= available:
                plan.append(u)
        return plan

    def _refit_left(self, units: list[BuiltModel]) -> float | None:
        """Seconds the refits of ``units`` may run: they end in time for the refit package to
        be assembled and shipped before the job's end reserve (the room _refit_plan keeps)."""
        return self.b._left(self.b._end_reserve() + self.b._assemble_seconds(units))

    def _standalone_location(self, model: BuiltModel) -> str:
        return (
            str(self.b.candidate_dir(model.name))
            if model.layer == 2
            else str(model.result.model_dir)
        )

    def _run_queue(
        self,
        items: list[tuple[str, Any, float | None]],
        handle: Callable[[str, Any, TaskOutcome], None],
        reserve: float,
    ) -> None:
        """Run refit and assembly tasks ``(kind, argument, limit)``, as many at once as the
        executor takes, each ending ``reserve`` seconds before the job's deadline (the job's
        end reserve, which holds the reports' time, and what this phase and shipping still
        need after them); a task that no longer fits is skipped."""
        queued = [
            QueueItem(TRIAL if kind == "refit" else ASSEMBLE, argument, limit, (kind, argument))
            for kind, argument, limit in items
        ]

        def skipped(item: QueueItem) -> None:
            self.b.notes.append(f"no time left for {item.key[0]} {_label(item.argument)}")

        self.b.queue.run_items(
            queued,
            lambda key, outcome: handle(key[0], key[1], outcome),
            reserve=lambda: reserve,
            skipped=skipped,
        )

    def _report_ensemble(
        self,
        task: TrialTask,
        oof: np.ndarray,
        built: AssembleResult | None,
        chosen: list[BuiltModel],
        weights: dict[str, float],
        best_single: BuiltModel,
    ) -> None:
        metrics = self._metrics(oof, self.b.threshold)
        latency = built.latency_seconds if built else None
        value = metrics.get(self.b.objective.name) if self.b.objective.fn is not None else latency
        result = TrialResult(
            task.number,
            task.candidate_name,
            "Completed" if built is not None else "Failed",
            failure_reason="" if built is not None else "its package could not be built in time",
            metrics=metrics,
            objective_value=value,
            latency_seconds=latency,
            model_dir=task.model_dir,
            n_train_rows=self.b.n_rows,
            train_seconds=sum(m.result.train_seconds for m in chosen),
        )
        if latency is not None:
            result.metrics["InferenceLatency"] = latency
        if self.b.objective.fn is not None:
            result.spread = objective_spread(
                self.b.objective.name,
                self.b.problem_type,
                self.b.y,
                oof,
                folds=self.b.row_folds if len(self.b.eval_folds) > 1 else None,
                sample_weight=self.b.weight,
                positive_index=self.b.positive_index,
                n_classes=self.b.n_classes,
                threshold=self.b.threshold,
                seed=self.b.seed,
            )
        extra = {
            "Layer": 3,
            "Weights": {m.name: round(weights[m.name], 4) for m in chosen},
            "SelectionMetric": self.b.selection_metric.name,
            "BestSingle": best_single.name,
        }
        if self.b.threshold is not None:
            extra["DecisionThreshold"] = round(self.b.threshold, 6)
        if self.b.calibration is not None:
            extra["Calibration"] = self.b.calibration.to_dict()
        self.b.on_result(task, result, extra)

    def _within_disparity(
        self,
        chosen: list[BuiltModel],
        weights: dict[str, float],
        ensemble_score: float | None,
    ) -> tuple[list[BuiltModel], dict[str, float]]:
        """With a disparity limit: the best option on the selection metric whose out-of-fold
        disparity (at its own decision threshold) is within it, else the least disparate; the
        options are the selected ensemble and each single model, as for InferenceLatency."""
        measure = self.b.limits.disparity
        if measure is None or measure.max_disparity is None:
            return chosen, weights
        ensemble_label = "the weighted ensemble"
        options: dict[str, tuple[list[BuiltModel], dict[str, float]]] = {}
        scored: list[DisparityOption] = []

        metric = self.b.selection_metric

        def add(label: str, score: float, picked: list[BuiltModel], value: float) -> None:
            options[label] = (picked, {m.name: weights.get(m.name, 1.0) for m in picked})
            # The builder's scores are larger-is-better; the note shows the metric's own sign.
            scored.append(DisparityOption(label, score if metric.maximize else -score, value))

        if ensemble_score is not None and len(chosen) > 1:
            # At the decision threshold the ensemble would ship with; a single model ships
            # with the arg-max.
            oof = blend([m.oof for m in chosen], np.array([weights[m.name] for m in chosen]))
            threshold = self._decision_threshold(oof, note=False)
            add(
                ensemble_label, ensemble_score, chosen, measure.measure(self.b.rows, oof, threshold)
            )
        for m in self.b.models:
            add(m.name, m.score, [m], measure.measure(self.b.rows, m.oof))
        choice = choose_within_disparity(scored, metric, measure.max_disparity, measure.metric)
        assert choice is not None
        self.b.fairness = choice
        picked, picked_weights = options[choice.name]
        if choice.name != ensemble_label:
            picked_weights = {picked[0].name: 1.0}
        return picked, picked_weights

    def _fastest_within_tolerance(
        self,
        chosen: list[BuiltModel],
        weights: dict[str, float],
        ensemble_score: float | None,
    ) -> tuple[list[BuiltModel], dict[str, float]]:
        """InferenceLatency objective: the fastest model whose validation score is within
        LATENCY_TOLERANCE of the best (the ensemble counts as one option)."""
        options: list[tuple[float, float, list[BuiltModel], dict[str, float]]] = []
        if ensemble_score is not None:
            latency = sum(self.b._refit_latency(m) for m in self._units(chosen, weights))
            options.append((ensemble_score, latency, chosen, weights))
        for m in self.b.models:
            options.append((m.score, self.b._refit_latency(m), [m], {m.name: 1.0}))
        best = max(o[0] for o in options)
        slack = abs(best) * LATENCY_TOLERANCE
        eligible = [o for o in options if o[0] >= best - slack]
        _, _, picked, picked_weights = min(eligible, key=lambda o: (o[1], -o[0]))
        self.b.notes.append(
            "InferenceLatency objective: packaged the fastest model whose "
            f"{self.b.selection_metric.name} is within {LATENCY_TOLERANCE:.0%} of the best"
        )
        return picked, picked_weights

    def _metrics(self, oof: np.ndarray, threshold: float | None = None) -> dict[str, float]:
        from mlpilot.metrics import score_all

        return score_all(
            self.b.problem_type,
            self.b.y,
            oof,
            sample_weight=self.b.weight,
            positive_index=self.b.positive_index,
            n_classes=self.b.n_classes,
            threshold=threshold,
        )

    def _check_cost_decision(self, oof: np.ndarray) -> None:
        """A cost matrix job: the final model's out-of-fold expected cost with the decision its
        package makes (the class of least expected cost) beside the arg-max's, in the notes."""
        from mlpilot.metrics import active_objective, bayes_decision, expected_cost

        custom = active_objective()
        if custom is None or custom.costs is None or oof.ndim != 2:
            return
        bayes = expected_cost(
            self.b.y, bayes_decision(oof, custom.costs), custom.costs, self.b.weight
        )
        argmax = expected_cost(self.b.y, oof.argmax(axis=1), custom.costs, self.b.weight)
        self.b.notes.append(
            f"cost matrix: the model predicts the class of least expected cost: ExpectedCost "
            f"{bayes:.4g} out of fold, {argmax:.4g} predicting the most probable class"
        )

    def _calibration(self, oof: np.ndarray) -> Calibration | None:
        """For a log-loss objective: the temperature and probability floor that lower the
        ensemble's out-of-fold log loss (the identity when none does); None otherwise."""
        if self.b.objective.name != "LogLoss" or not self.b.problem_type.is_classification:
            return None
        fitted = fit_calibration(self.b.y, oof, self.b.weight)
        # Both values as the objective scores them (the after value is the candidate's).
        name = self.b.objective.name
        before = self._metrics(oof)[name]
        after = before if fitted.identity else self._metrics(fitted.apply(oof))[name]
        fitted = replace(fitted, before=float(before), after=float(after))
        if fitted.identity:
            self.b.notes.append(
                f"calibration: no temperature or probability floor lowered the ensemble's "
                f"out-of-fold LogLoss ({fitted.before:.4f}): its probabilities are shipped as "
                "blended"
            )
        else:
            self.b.notes.append(
                f"calibration: temperature {fitted.temperature:.3f} on the log-probabilities"
                + (f", no probability below {fitted.floor:g}" if fitted.floor else "")
                + f": out-of-fold LogLoss {fitted.after:.4f} (blended: {fitted.before:.4f})"
            )
        return fitted

    def _calibration_entry(self) -> dict[str, Any]:
        """The package's ``Calibration`` (none when it would change nothing)."""
        fitted = self.b.calibration
        if fitted is None or fitted.identity:
            return {}
        return {"Calibration": fitted.package_entry()}

    def _decision_threshold(self, oof: np.ndarray, *, note: bool = True) -> float | None:
        """For a binary objective computed from labels (F1, accuracy, balanced accuracy): the
        cut of the positive class's probability that scores best on the out-of-fold
        predictions, when it beats 0.5 by a margin (else None: the arg-max)."""
        from mlpilot.metrics import THRESHOLD_METRICS, best_threshold

        metric = self.b.objective
        if self.b.problem_type is not ProblemType.BINARY or metric.name not in THRESHOLD_METRICS:
            return None
        at_half = self._metrics(oof).get(metric.name)
        threshold, value = best_threshold(
            self.b.y, oof, metric, sample_weight=self.b.weight, positive_index=self.b.positive_index
        )
        if at_half is None or not np.isfinite(value) or value - at_half < THRESHOLD_GAIN:
            return None
        if note:
            self.b.notes.append(
                f"decision threshold {threshold:.3f} for {metric.name}: the positive class is "
                f"predicted from that probability ({metric.name} {value:.4f} out of fold, "
                f"{at_half:.4f} at 0.5)"
            )
        return threshold


def _label(argument: Any) -> str:
    name = getattr(argument, "candidate_name", None) or Path(getattr(argument, "out_dir", "")).name
    return str(name)
