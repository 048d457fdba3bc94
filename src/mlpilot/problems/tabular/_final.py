"""Tabular packaging: the ensemble's chosen package, the best candidate refit on every row
(holdout validation, time permitting), or its cross-validated bag as trained. Packages are
written without ``model.tar.gz``: the job adds it once the model card is sealed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpilot._crash import crash_point
from mlpilot._types import Mode
from mlpilot.package import InferenceModel
from mlpilot.problems._protocol import CandidateView, JobSession, PackagedModel
from mlpilot.problems.tabular._training import refits
from mlpilot.runtime import TaskOutcome, TaskQueue

if TYPE_CHECKING:
    from mlpilot.problems.tabular._problem import TabularProblem

__all__ = ["package_best"]


def package_best(
    problem: TabularProblem, session: JobSession, best: CandidateView
) -> PackagedModel:
    assert problem.validation is not None and problem.analysis is not None
    name = best.name
    details = best.details
    destination = session.layout.final_model(name)
    stopped = session.budget.stop_requested()
    final = problem.ensemble.final if problem.ensemble is not None else None
    if final is not None and final.candidate == name:
        InferenceModel.copy_package(final.package_dir, destination, archive=False)
        return PackagedModel(
            destination,
            final.refit,
            final.note,
            {
                "PredictSecondsPerRow": final.latency_seconds,
                "BaggedPredictSecondsPerRow": final.bagged_latency_seconds,
            },
        )
    remaining = session.budget.left(1.0)
    refit_ok, note = False, ""
    if problem.analysis.mode is Mode.ENSEMBLING:
        note = (
            "the job was stopped: packaged the best candidate as trained"
            if stopped
            else "packaged the best candidate as trained"
        )
    elif not refits(problem, best):
        folds = len(problem.validation.eval_folds)
        note = (
            f"packaged the cross-validated bag of {folds} fold models (each trained "
            f"on {folds - 1}/{folds} of the rows), predictions averaged"
        )
    elif stopped:
        note = "the job was stopped: packaged the candidate as trained during the search"
    elif remaining is not None and remaining < 1.0:
        note = "no time left to refit: packaged the candidate as trained in the search"
    else:
        refit_ok, note = _refit(problem, session, best, remaining)
    if not refit_ok:
        InferenceModel.copy_package(details["ModelLocation"], destination, archive=False)
    return PackagedModel(destination, refit_ok, note)


def _refit(
    problem: TabularProblem, session: JobSession, best: CandidateView, remaining: float | None
) -> tuple[bool, str]:
    """Refit the best candidate on every row into its final folder; ``(done, note)``."""
    destination = session.layout.final_model(best.name)
    task = problem.refit_task(session, best, destination, remaining)
    crash_point("refit")
    outcomes: list[TaskOutcome] = []
    queue = TaskQueue(session.executor, session.budget)
    # The refit ends a second before the deadline; its kill a second after.
    queue.submit(problem.trial_function, task, limit=remaining, key=task.candidate_name, grace=1.0)
    queue.run(lambda: None, lambda _name, done: outcomes.append(done))
    outcome = outcomes[0]
    if outcome.state == "ok" and outcome.value.status == "Completed":
        result = outcome.value
        return True, f"refit on all {result.n_train_rows:,} rows in {result.train_seconds:.1f} s"
    why = outcome.error or getattr(outcome.value, "failure_reason", "") or outcome.state
    return False, f"refit failed ({why}): packaged the candidate as trained in the search"
