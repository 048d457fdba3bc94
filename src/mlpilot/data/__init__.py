"""Input readers: CSV/Parquet tables from local paths, S3 prefixes and SageMaker manifests;
the time grid of forecast frequencies."""

from mlpilot.data._frequency import Frequency, infer_frequency, parse_frequency
from mlpilot.data._readers import (
    CSV_CONTENT_TYPE,
    PARQUET_CONTENT_TYPE,
    SUPPORTED_CONTENT_TYPES,
    is_header_row,
    list_objects,
    one_line,
    read_table,
    resolve_uri,
    s3_filesystem,
    split_uri,
    write_table,
)

__all__ = [
    "CSV_CONTENT_TYPE",
    "PARQUET_CONTENT_TYPE",
    "SUPPORTED_CONTENT_TYPES",
    "Frequency",
    "infer_frequency",
    "is_header_row",
    "list_objects",
    "one_line",
    "parse_frequency",
    "read_table",
    "resolve_uri",
    "s3_filesystem",
    "split_uri",
    "write_table",
]
