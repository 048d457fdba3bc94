"""Feature engineering: the table cleaner and each candidate's preprocessing pipeline."""

from mlpilot.features._clean import Coded, TableCleaner, text_values
from mlpilot.features._embed import (
    DEFAULT_ENCODER,
    ENCODERS,
    SentenceEncoder,
    encoder_unavailable,
)
from mlpilot.features._embed import encode as encode_texts
from mlpilot.features._embed import remember as remember_embeddings
from mlpilot.features._plan import (
    MISSING_CODE,
    UNKNOWN_CODE,
    FeaturePipeline,
    PreprocessingOptions,
)
from mlpilot.features._transformers import DatetimeParts, TextColumn

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODERS",
    "MISSING_CODE",
    "UNKNOWN_CODE",
    "Coded",
    "DatetimeParts",
    "FeaturePipeline",
    "PreprocessingOptions",
    "SentenceEncoder",
    "TableCleaner",
    "TextColumn",
    "encode_texts",
    "encoder_unavailable",
    "remember_embeddings",
    "text_values",
]
