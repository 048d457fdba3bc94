"""Candidate search: the declared space, the trial runner and the Optuna-driven loop."""

from mlpilot.search._portfolio import Portfolio
from mlpilot.search._prepared import (
    PreparedData,
    load_prepared,
    prepared_objective,
    write_prepared,
)
from mlpilot.search._search import EarlierTrial, candidate_name, continued_seed, run_search
from mlpilot.search._space import CandidateDefinition, CandidateSpec, SearchSpace
from mlpilot.search._split import RowSplit, ValidationPlan, group_folds, plan_validation, split_keys
from mlpilot.search._tasks import PriorTrial, TrialResult, TrialTask, trial_result
from mlpilot.search._trial import (
    VALIDATION_PREDICTIONS,
    load_validation_predictions,
    predict_latency,
    run_trial,
)

__all__ = [
    "VALIDATION_PREDICTIONS",
    "CandidateDefinition",
    "CandidateSpec",
    "EarlierTrial",
    "Portfolio",
    "PreparedData",
    "PriorTrial",
    "RowSplit",
    "SearchSpace",
    "TrialResult",
    "TrialTask",
    "ValidationPlan",
    "candidate_name",
    "continued_seed",
    "group_folds",
    "load_prepared",
    "load_validation_predictions",
    "plan_validation",
    "predict_latency",
    "prepared_objective",
    "run_search",
    "run_trial",
    "split_keys",
    "trial_result",
    "write_prepared",
]
