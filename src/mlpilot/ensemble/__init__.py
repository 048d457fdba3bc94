"""ENSEMBLING mode: a portfolio of bagged base models, a stacking layer, greedy ensemble
selection, and a refit-on-all-rows final model (see docs/ensembling.md)."""

from mlpilot.ensemble._caruana import Selection, blend, greedy_selection, latency_selection_note
from mlpilot.ensemble._final import FinalModel, choose_final
from mlpilot.ensemble._plan import BaggingPlan, plan_bagging, sample_rows
from mlpilot.ensemble._portfolio import (
    PortfolioEntry,
    build_portfolio,
    random_entry,
    shipped_portfolio,
)
from mlpilot.ensemble._predictor import EnsemblePredictor, Unit
from mlpilot.ensemble._replay import EnsembleReplay
from mlpilot.ensemble._runner import EnsembleBuilder, EnsembleLimits
from mlpilot.ensemble._stack import STACK_EPS, stack_column_names, stack_features, write_stack_data

__all__ = [
    "STACK_EPS",
    "BaggingPlan",
    "EnsembleBuilder",
    "EnsembleLimits",
    "EnsemblePredictor",
    "EnsembleReplay",
    "FinalModel",
    "PortfolioEntry",
    "Selection",
    "Unit",
    "blend",
    "build_portfolio",
    "choose_final",
    "greedy_selection",
    "latency_selection_note",
    "plan_bagging",
    "random_entry",
    "sample_rows",
    "shipped_portfolio",
    "stack_column_names",
    "stack_features",
    "write_stack_data",
]
