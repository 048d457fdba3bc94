"""Time-series forecasting: the second problem type (work in progress, issue 12)."""
