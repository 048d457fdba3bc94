"""What the input channels of a job on a table (tabular or time series) may hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpilot.errors import ConfigError

if TYPE_CHECKING:
    from mlpilot.config._job import JobConfig

CSV = "text/csv;header=present"
PARQUET = "x-application/vnd.amazon+parquet"
CONTENT_TYPES = (CSV, "text/csv", PARQUET)


def check_table_channels(job: JobConfig, jobs: str) -> None:
    """The channels' ContentType and S3DataType, for ``jobs`` (e.g. "tabular jobs")."""
    if job.content_type not in (None, *CONTENT_TYPES):
        raise ConfigError(
            f"ContentType {job.content_type!r} is not supported for {jobs}; use {CSV!r} or "
            f"{PARQUET!r}"
        )
    if job.data_type not in ("S3Prefix", "ManifestFile"):
        raise ConfigError(
            f"S3DataType must be S3Prefix or ManifestFile for {jobs}; got {job.data_type!r}"
        )
