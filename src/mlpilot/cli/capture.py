"""``mlpilot capture join``: an endpoint's captured invocations (DataCaptureConfig) joined with
their ground-truth labels by inference id, as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpilot.cli._common import console, fail, one_line_errors
from mlpilot.cli.serve import parse_kms_keys

app = typer.Typer(
    name="capture",
    help="Work with an endpoint's captured invocations (DataCaptureConfig).",
    no_args_is_help=True,
)


@app.command("join")
@one_line_errors
def join(
    capture: Annotated[
        str,
        typer.Argument(
            help="The DataCaptureConfig.DestinationS3Uri (local folder or s3:// prefix), or any "
            "folder or file below it (an endpoint's, a variant's, an hour's)."
        ),
    ],
    labels: Annotated[
        str,
        typer.Argument(
            help="Ground truth: Model Monitor's JSON lines ({groundTruthData, eventMetadata."
            "eventId}), a file or a folder/prefix of them, or a CSV of inference_id,label."
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="The joined table: .csv, .csv.gz or .parquet.")
    ],
    columns: Annotated[
        str | None,
        typer.Option(
            help="The model's input columns, comma-separated in training order (needed for "
            "JSON inputs; CSV values are otherwise column_1, column_2, ...)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Take the input columns from this model: a job's output folder, a model "
            "package folder or a model.tar.gz."
        ),
    ] = None,
    target: Annotated[str, typer.Option(help="The name of the true label's column.")] = "label",
    kms_key: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=KEYFILE (repeatable) to read captures written under a KmsKeyId, as given "
            "to mlpilot serve --kms-key."
        ),
    ] = None,
) -> None:
    """Join captured invocations with their labels: one row per captured input row that has a
    label, with the model's answer (predicted_label, output) and the true label.

    Example: mlpilot capture join s3://bucket/capture/churn labels/ --model runs/churn
    --target Churn --output joined.csv
    """
    from mlpilot.data import write_table
    from mlpilot.package import Keyring, load_model
    from mlpilot.serving import join_ground_truth

    if columns is not None and model is not None:
        raise fail("give --columns or --model, not both")
    names = [c.strip() for c in columns.split(",")] if columns is not None else None
    if names is not None and not all(names):
        raise fail(f"--columns has an empty name: {columns!r}")
    if model is not None:
        loaded = load_model(Path(model))
        names = list(getattr(loaded, "input_columns", []) or []) or None
        if names is None:
            raise fail(f"{model} is not a model of table rows: give --columns")
    try:
        keyring = Keyring.from_files(parse_kms_keys(kms_key or [])) if kms_key else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    table = join_ground_truth(capture, labels, columns=names, target=target, keyring=keyring)
    write_table(table, output)
    invocations = table["event_id"].nunique() if len(table) else 0
    console.print(
        f"joined {len(table)} row(s) of {invocations} labelled invocation(s) to {output}",
        soft_wrap=True,
    )
