"""``mlpilot predict``: predictions from a job's best model (or any model package)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlpilot.cli._common import console, one_line_errors
from mlpilot.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from mlpilot.package import InferenceModel, SeriesModel

app = typer.Typer()

#: Rows predicted at a time, so memory stays flat on large files.
CHUNK_ROWS = 100_000


@app.command("predict")
@one_line_errors
def predict(
    model: Annotated[
        str,
        typer.Argument(help="A job's output folder, a model package folder, or a model.tar.gz."),
    ],
    data: Annotated[
        str | None,
        typer.Argument(
            help="Rows to predict: CSV/Parquet file, folder or URI (with a header, the target "
            "may be present; see --header). For a forecasting model, the history to forecast "
            "from (the training schema, with a header); without it, the training history.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="CSV to write.", show_default="standard output"),
    ] = None,
    probabilities: Annotated[
        bool, typer.Option("--probabilities", help="Add probability_<label> for every class.")
    ] = False,
    candidate: Annotated[
        str | None, typer.Option(help="Use this candidate of the job instead of the best.")
    ] = None,
    header: Annotated[
        str,
        typer.Option(
            "--header",
            help="Whether a CSV's first row is a header: present, absent (values in training "
            "order), or auto (a header when every value in it is a training column name).",
        ),
    ] = "auto",
    strict_versions: Annotated[
        bool,
        typer.Option("--strict-versions", help="Refuse a model saved with other library versions."),
    ] = False,
) -> None:
    """Predict with a trained model; writes predicted_label (and probabilities), or for a
    forecasting model the item id and timestamp, mean and one column per quantile.

    Examples: mlpilot predict runs/churn new_customers.csv --output preds.csv --probabilities;
    mlpilot predict runs/sales --output forecast.csv (from the training history)
    """
    import functools
    import warnings

    if header not in ("present", "absent", "auto"):
        raise ConfigError(f"--header {header!r}: use present, absent or auto")

    from mlpilot.data import is_header_row, read_table
    from mlpilot.package import ModelVersionWarning, SeriesModel, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        loaded = load_model(model, candidate=candidate, strict=strict_versions)
    for warning in caught:
        if issubclass(warning.category, ModelVersionWarning):
            console.print(f"[yellow]Warning:[/] {escape(str(warning.message))}", soft_wrap=True)
    if isinstance(loaded, SeriesModel):
        if probabilities:
            raise ConfigError("--probabilities is for classification; forecasts have quantiles")
        if header != "auto":
            raise ConfigError("--header is for tabular models; a history to forecast from has one")
        _forecast(loaded, None if data is None else read_table(data), output)
        return
    if data is None:
        raise ConfigError(
            f"Missing argument 'DATA': a {loaded.problem_type} model predicts the rows it is "
            "given (mlpilot predict MODEL DATA)"
        )
    target = loaded.info.get("target")
    known = [*loaded.input_columns, *([target] if target else [])]
    rule: bool | Callable[[list[str]], bool] = header == "present"
    if header == "auto":
        rule = functools.partial(is_header_row, names=known)
    table = read_table(data, header=rule)
    if table.columns.dtype.kind == "i":  # no header: columns numbered
        table = _in_training_order(table, loaded, target)
    elif target in table.columns:
        table = table.drop(columns=[target])
    sink = _open_output(output) if output else sys.stdout
    try:
        for start in range(0, len(table), CHUNK_ROWS):
            part = loaded.predict(
                table.iloc[start : start + CHUNK_ROWS], probabilities=probabilities
            )
            part.to_csv(sink, index=False, header=start == 0)
    finally:
        if output:
            sink.close()
    if output:
        console.print(
            f"Wrote {len(table):,} prediction(s) to {escape(str(output))}", soft_wrap=True
        )


def _in_training_order(
    table: pd.DataFrame, model: InferenceModel, target: str | None
) -> pd.DataFrame:
    """Headerless rows named by position: every input column in training order, or just those
    the model uses (the identifiers the profile dropped left out), told apart by count."""
    columns = model.input_columns
    used = [c for c in model.feature_columns if c in columns]
    width = table.shape[1]
    if width == len(columns):
        table.columns = columns
        return table
    if width == len(used):
        table.columns = used
        return table.reindex(columns=columns)  # the unused ones empty
    expected = f"{len(columns)} ({_shown(columns)})"
    if len(used) != len(columns):
        expected += f" or {len(used)} ({_shown(used)})"
    first = {str(v).strip() for v in table.iloc[0]}
    if set(used) <= first:
        hint = (
            ": its first row names the columns, some of them not training columns; pass "
            "--header present to read it as a header"
        )
    elif width == len(columns) + 1:
        hint = f"; leave out the target column {target!r}, or add a header row naming the columns"
    else:
        hint = ", or add a header row naming the columns"
    raise ConfigError(
        f"The data has no header row and {width} column(s), expected {expected} in training "
        f"order{hint}"
    )


def _shown(columns: list[str]) -> str:
    return ", ".join(columns if len(columns) <= 8 else [*columns[:4], "...", *columns[-3:]])


def _forecast(model: SeriesModel, table: pd.DataFrame | None, output: Path | None) -> None:
    """Every series forecast at once (a series is never split across chunks)."""
    frame = model.forecast(table)
    sink = _open_output(output) if output else sys.stdout
    try:
        frame.to_csv(sink, index=False)
    finally:
        if output:
            sink.close()
    if output:
        series = len(frame) // model.facts.horizon
        source = "the training history" if table is None else "the given history"
        console.print(
            f"Wrote {len(frame):,} forecast row(s) for {series:,} series, from {source}, to "
            f"{escape(str(output))}",
            soft_wrap=True,
        )


def _open_output(path: Path) -> IO[str]:
    """The output CSV, opened for writing (its folder created); a one-line error if it cannot
    be written (a folder, no permission...)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", newline="")  # closed by the caller
    except OSError as exc:
        raise ConfigError(f"Cannot write predictions to {path}: {exc.strerror or exc}") from None
