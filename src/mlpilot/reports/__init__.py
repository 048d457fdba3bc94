"""The white box: a job's notebooks and reports.

Reports on a job's candidates: explainability (SHAP) and model quality, as HTML and PDF with
the JSON documents Clarify and Model Monitor write (``analysis.json``, ``statistics.json``);
the data-exploration and candidate-definition notebooks, their data sample and their
execution. Forecasting jobs get an exploration notebook about their series and a model-quality
report from their backtests. :class:`WhiteBox` makes them all while a job runs, as one of its
observers.
(:mod:`mlpilot.notebooks` holds what the notebooks' cells call.)
"""

from mlpilot.reports._data import load_duplicates, load_sample
from mlpilot.reports._execute import (
    execute_notebook,
    export_html,
    is_executed,
    run_notebook_command,
)
from mlpilot.reports._series_data import (
    SERIES_FILLED,
    SeriesSample,
    load_series_sample,
    save_series_sample,
    series_key_text,
)
from mlpilot.reports._status import Artifact, artifacts, generate_reports
from mlpilot.reports._whitebox import WhiteBox, report_reserve

__all__ = [
    "SERIES_FILLED",
    "Artifact",
    "SeriesSample",
    "WhiteBox",
    "artifacts",
    "execute_notebook",
    "export_html",
    "generate_reports",
    "is_executed",
    "load_duplicates",
    "load_sample",
    "load_series_sample",
    "report_reserve",
    "run_notebook_command",
    "save_series_sample",
    "series_key_text",
]
