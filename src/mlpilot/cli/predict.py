"""``mlpilot predict``: predictions from a job's best model (or any model package)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.markup import escape

from mlpilot.cli._common import console, one_line_errors
from mlpilot.errors import ConfigError

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
        str,
        typer.Argument(
            help="Rows to predict: CSV/Parquet file, folder or URI "
            "(with a header; the target may be present)."
        ),
    ],
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
    """Predict with a trained model; writes predicted_label (and probabilities).

    Example: mlpilot predict runs/churn new_customers.csv --output preds.csv --probabilities
    """
    import warnings

    from mlpilot.data import read_table
    from mlpilot.package import ModelVersionWarning, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        loaded = load_model(model, candidate=candidate, strict=strict_versions)
    for warning in caught:
        if issubclass(warning.category, ModelVersionWarning):
            console.print(f"[yellow]Warning:[/] {escape(str(warning.message))}", soft_wrap=True)
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


def _open_output(path: Path) -> IO[str]:
    """The output CSV, opened for writing (its folder created); a one-line error if it cannot
    be written (a folder, no permission...)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", newline="")  # closed by the caller
    except OSError as exc:
        raise ConfigError(f"Cannot write predictions to {path}: {exc.strerror or exc}") from None
