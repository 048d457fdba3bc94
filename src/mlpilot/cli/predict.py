"""``mlpilot predict``: predictions from a job's best model (or any model package)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlpilot.cli._common import console, one_line_errors
from mlpilot.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from mlpilot.package import SeriesModel

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
            help="Rows to predict: CSV/Parquet file, folder or URI (with a header; the target "
            "may be present). For a forecasting model, the history to forecast from (the "
            "training schema); without it, the training history.",
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
    import warnings

    from mlpilot.data import read_table
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
        _forecast(loaded, None if data is None else read_table(data), output)
        return
    if data is None:
        raise ConfigError(
            f"Missing argument 'DATA': a {loaded.problem_type} model predicts the rows it is "
            "given (mlpilot predict MODEL DATA)"
        )
    table = read_table(data)
    target = loaded.info.get("target")
    if target in table.columns:
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
