"""``mlpilot export``: a model in an open format (an MLflow pyfunc model, or an ONNX graph)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mlpilot.cli._common import console, one_line_errors
from mlpilot.errors import ConfigError

app = typer.Typer()


@app.command("export")
@one_line_errors
def export(
    model: Annotated[
        str,
        typer.Argument(help="A job's output folder, a model package folder, or a model.tar.gz."),
    ],
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="mlflow (any model) or onnx.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The folder to write (new or empty).")
    ],
    candidate: Annotated[
        str | None, typer.Option(help="With a job folder: this candidate instead of the best.")
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(
            help="mlflow: rows (CSV/Parquet with a header) whose first 5 become the input example.",
            show_default="a job folder's data sample",
        ),
    ] = None,
) -> None:
    """Write a tabular model as an MLflow pyfunc model (predicting through mlpilot) or as one
    ONNX graph (raw columns in, label and probabilities out).

    Examples: mlpilot export runs/churn --format mlflow --output churn-mlflow;
    mlpilot export runs/churn --format onnx --output churn-onnx
    """
    from mlpilot.export import FORMATS, export_mlflow, export_onnx

    if output_format not in FORMATS:
        raise ConfigError(f"Unknown format {output_format!r}; use {' or '.join(FORMATS)}")
    if output_format == "onnx":
        if example is not None:
            raise ConfigError("--example is for --format mlflow (an ONNX graph has none)")
        written = export_onnx(model, output, candidate=candidate)
        console.print(f"Wrote the ONNX graph {escape(str(written))}", soft_wrap=True)
        return
    rows = None
    if example is not None:
        from mlpilot.data import read_table

        rows = read_table(example).head(5)
    # MLflow draws a progress bar for each artifact copied; the command prints its own line.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    written = export_mlflow(model, output, candidate=candidate, example=rows)
    console.print(
        f"Wrote the MLflow model {escape(str(written))} (load it with mlflow.pyfunc.load_model)",
        soft_wrap=True,
    )
