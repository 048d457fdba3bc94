"""Feature engineering: the table cleaner and each candidate's preprocessing pipeline."""

from mlpilot.features._clean import Coded, TableCleaner
from mlpilot.features._plan import (
    MISSING_CODE,
    UNKNOWN_CODE,
    FeaturePipeline,
    PreprocessingOptions,
)
from mlpilot.features._transformers import DatetimeParts, TextColumn

__all__ = [
    "MISSING_CODE",
    "UNKNOWN_CODE",
    "Coded",
    "DatetimeParts",
    "FeaturePipeline",
    "PreprocessingOptions",
    "TableCleaner",
    "TextColumn",
]
