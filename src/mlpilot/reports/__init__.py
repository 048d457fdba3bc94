"""Reports on a job's candidates: explainability (SHAP) and model quality, as HTML and PDF
with the JSON documents Clarify and Model Monitor write (``analysis.json``,
``statistics.json``)."""

from mlpilot.reports._status import Artifact, artifacts, generate_reports
from mlpilot.reports._whitebox import WhiteBox, report_reserve

__all__ = ["Artifact", "WhiteBox", "artifacts", "generate_reports", "report_reserve"]
