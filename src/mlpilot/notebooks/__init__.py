"""The generated notebooks: data exploration and candidate definitions.

A job writes both into ``sagemaker-automl-candidates/<job>-pr-1-<hash>/notebooks/``. The
exploration notebook's cells call :class:`DataExploration` (:class:`SeriesExploration` for a
forecasting job's series); the candidate notebook's cells use
:class:`~mlpilot.search.CandidateDefinition`, :class:`~mlpilot.JobConfig` and
:func:`train_candidates`.
"""

from mlpilot.notebooks._display import show, table_style
from mlpilot.notebooks._exploration import DataExploration
from mlpilot.notebooks._findings import Insight
from mlpilot.notebooks._series import SeriesExploration
from mlpilot.notebooks._train import (
    ProgressPrinter,
    TrainingSettings,
    describe_candidates,
    load_candidate_definitions,
    prepare_training,
    run_training,
    train_candidates,
)
from mlpilot.reports import execute_notebook, export_html, is_executed

__all__ = [
    "DataExploration",
    "Insight",
    "ProgressPrinter",
    "SeriesExploration",
    "TrainingSettings",
    "describe_candidates",
    "execute_notebook",
    "export_html",
    "is_executed",
    "load_candidate_definitions",
    "prepare_training",
    "run_training",
    "show",
    "table_style",
    "train_candidates",
]
