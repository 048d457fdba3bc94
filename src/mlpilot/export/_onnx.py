"""An mlpilot model as one ONNX graph: raw columns in, labels and probabilities out.

Graph inputs are the columns the model uses, one input each, as the table cleaner types them:
a number column is ``tensor(double) [N, 1]`` (NaN for missing), a category column
``tensor(string) [N, 1]`` (the empty string for missing). :func:`onnx_feed` builds that feed
from a DataFrame with mlpilot's own reading of the values.

Each step is written as ONNX nodes: the cleaner's zeros-mean-missing rule; the category
encoders (ordinal codes, one-hot, target encoding, and a scaler after it) as a lookup of each
category's output row, read from the fitted encoder itself; median imputation with missing
indicators and standard scaling as arithmetic; the models through their converters
(onnxmltools for LightGBM and XGBoost, CatBoost's own ONNX export, skl2onnx for the
scikit-learn linear models and forests). Bags are averaged, ensembles weighted, stackers fed
their base models' outputs as mlpilot feeds them. A step without a converter is an
:class:`~mlpilot.errors.ExportError` naming it.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot._version import __version__
from mlpilot.ensemble import STACK_EPS, EnsemblePredictor, stack_column_names
from mlpilot.errors import ExportError
from mlpilot.export._graph import DOUBLE, FLOAT, ML_DOMAIN, OPSET, STRING, Graph
from mlpilot.export._source import load_tabular, staged_output
from mlpilot.features import FeaturePipeline
from mlpilot.package import InferenceModel
from mlpilot.profile import ColumnKind, label_key

__all__ = ["ONNX_FILE", "export_onnx", "onnx_feed", "to_onnx"]

#: The file ``export_onnx`` writes in its output folder.
ONNX_FILE = "model.onnx"
#: A category no training row had: the encoders' unknown-category row of the lookup tables.
_UNSEEN = "\x00mlpilot-unseen-category"
_MLFLOW_HINT = "export --format mlflow instead"


def export_onnx(source: str | Path, output: str | Path, *, candidate: str | None = None) -> Path:
    """Write the tabular model at ``source`` as ``output/model.onnx``; returns that file."""
    model, _ = load_tabular(source, candidate=candidate)
    graph = to_onnx(model)
    with staged_output(output) as staging:
        staging.mkdir()
        onnx.save(graph, str(staging / ONNX_FILE))
    return Path(output) / ONNX_FILE


def to_onnx(model: InferenceModel) -> onnx.ModelProto:
    """The ONNX graph of ``model``; an :class:`ExportError` names a step that does not convert."""
    graph = Graph()
    problem = model.problem_type
    n_classes = len(model.labels)
    members = model.members
    if isinstance(members, EnsemblePredictor):
        pipelines = [p for unit in members.units if not unit.inputs for p, _ in unit.members]
    else:
        pipelines = [p for p, _ in members]
    inputs = _inputs(graph, pipelines[0])
    if isinstance(members, EnsemblePredictor):
        raw = _ensemble(graph, members, inputs, problem, n_classes)
    else:
        raw = _bag(graph, members, inputs, problem, n_classes, "")
    if problem.is_classification:
        calibration = model.calibration
        if calibration is not None:
            raw = _calibrate(graph, raw, *calibration)
        graph.output(raw, "probabilities", DOUBLE, [None, n_classes])
        labels = graph.const([label_key(v) for v in model.labels], "labels", dtype=object)
        chosen = _decide(graph, raw, model)
        graph.output(
            graph.op("Gather", [labels, chosen], axis=0), "predicted_label", STRING, [None]
        )
    else:
        value = graph.op("Reshape", [raw, graph.const([-1], "flat", dtype=np.int64)])
        graph.output(value, "predicted_label", DOUBLE, [None])
    metadata = {
        "mlpilot_version": __version__,
        "problem_type": problem.value,
        "candidate": model.candidate_name,
        "labels": json.dumps([label_key(v) for v in model.labels]),
        "inputs": json.dumps(
            [
                {"name": c["name"], "kind": c["kind"], "missing_tokens": c.get("missing_tokens")}
                for c in pipelines[0].profile_columns or []
                if c["name"] in inputs
            ]
        ),
    }
    return graph.model(metadata)


def onnx_feed(model: onnx.ModelProto | Any, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The feed for an exported graph from raw rows (any columns; those the graph reads must be
    there), read as mlpilot reads them: numbers parsed with its missing markers, categories
    spelled as in training (``1.0`` as ``"1"``), missing categories as ``""``.

    ``model``: the ``onnx.ModelProto``, or an ``onnxruntime.InferenceSession`` of it.
    """
    meta = (
        {p.key: p.value for p in model.metadata_props}
        if isinstance(model, onnx.ModelProto)
        else dict(model.get_modelmeta().custom_metadata_map)
    )
    columns = json.loads(meta["inputs"])
    from mlpilot.features import TableCleaner

    # The graph applies the zeros-mean-missing rule itself.
    cleaner = TableCleaner([{**c, "zero_means_missing": False} for c in columns]).fit(None)
    clean = cleaner.transform_arrays(rows, strict=True)
    feed: dict[str, np.ndarray] = {}
    for column in columns:
        values = clean[column["name"]]
        if column["kind"] == ColumnKind.NUMERIC:
            feed[column["name"]] = np.asarray(values, dtype=np.float64).reshape(-1, 1)
        else:
            text = [v if isinstance(v, str) else "" for v in values]
            feed[column["name"]] = np.asarray(text, dtype=object).reshape(-1, 1)
    return feed


# -- inputs -----------------------------------------------------------------------------------
def _inputs(graph: Graph, pipeline: FeaturePipeline) -> dict[str, str]:
    """One graph input per column the pipelines read, as the cleaner types it."""
    values: dict[str, str] = {}
    for column in pipeline.profile_columns or []:
        name, kind = column["name"], column["kind"]
        if kind == ColumnKind.NUMERIC:
            value = graph.input(name, DOUBLE, 1)
            if column.get("zero_means_missing"):
                zero = graph.op("Equal", [value, graph.const([0.0], "zero")])
                value = graph.op("Where", [zero, graph.const([np.nan], "nan"), value])
            values[name] = value
        elif kind == ColumnKind.CATEGORICAL:
            values[name] = graph.input(name, STRING, 1)
        elif kind == ColumnKind.TEXT:
            raise ExportError(
                f"the text column {name!r} (TF-IDF features) has no ONNX converter; {_MLFLOW_HINT}"
            )
        elif kind == ColumnKind.DATETIME:
            raise ExportError(
                f"the datetime column {name!r} (calendar parts) has no ONNX converter; "
                f"{_MLFLOW_HINT}"
            )
    return values


# -- members, bags, ensembles -------------------------------------------------------------------
def _bag(
    graph: Graph,
    members: list[tuple[FeaturePipeline, Any]],
    inputs: dict[str, str],
    problem: ProblemType,
    n_classes: int,
    where: str,
) -> str:
    """The averaged output of ``(pipeline, algorithm)`` members: ``double [N, K]`` class
    probabilities, or ``double [N, 1]`` values."""
    outputs = []
    matrices: dict[int, str] = {}
    for _, algorithm in members:  # the model named before any step of its preprocessing
        name = getattr(algorithm, "name", type(algorithm).__name__)
        if name not in _CONVERTERS:
            raise ExportError(f"the {name} model{where} has no ONNX converter; {_MLFLOW_HINT}")
    for pipeline, algorithm in members:
        matrix = matrices.get(id(pipeline))
        if matrix is None:
            matrix = matrices[id(pipeline)] = _pipeline(graph, pipeline, inputs)
        width = len(pipeline.feature_names_out_)
        outputs.append(_algorithm(graph, algorithm, matrix, width, problem, n_classes, where))
    if len(outputs) == 1:
        return outputs[0]
    # Sum and divide: onnxruntime's Mean has no double kernel.
    return graph.op("Div", [graph.op("Sum", outputs), graph.const(float(len(outputs)), "count")])


def _ensemble(
    graph: Graph,
    predictor: EnsemblePredictor,
    inputs: dict[str, str],
    problem: ProblemType,
    n_classes: int,
) -> str:
    outputs: dict[int, str] = {}
    for i in predictor._needed_units():
        unit = predictor.units[i]
        where = f" (unit {unit.name} of this ensemble)"
        feed = inputs
        if unit.inputs:
            names = stack_column_names(len(unit.inputs), problem, n_classes)
            extra = _stack_columns(graph, [outputs[j] for j in unit.inputs], problem, n_classes)
            feed = {**inputs, **dict(zip(names, extra, strict=True))}
        outputs[i] = _bag(graph, unit.members, feed, problem, n_classes, where)
    parts = [
        graph.op("Mul", [outputs[i], graph.const([w], "weight")])
        for i, w in enumerate(predictor.weights)
        if w > 0
    ]
    return parts[0] if len(parts) == 1 else graph.op("Sum", parts)


def _stack_columns(
    graph: Graph, outputs: list[str], problem: ProblemType, n_classes: int
) -> list[str]:
    """A stacker's extra columns (``[N, 1]`` each), as mlpilot.ensemble.stack_features makes
    them: log-odds (binary), log-probabilities (multiclass) or values (regression)."""
    columns: list[str] = []
    low = graph.const(STACK_EPS, "eps")
    for out in outputs:
        if problem is ProblemType.BINARY:
            p = graph.op("Slice", [out, *_slice(graph, 1, 2)])
            p = graph.op("Clip", [p, low, graph.const(1 - STACK_EPS, "one_minus_eps")])
            odds = graph.op("Div", [p, graph.op("Sub", [graph.const(1.0, "one"), p])])
            columns.append(graph.op("Log", [odds]))
        elif problem is ProblemType.MULTICLASS:
            logs = graph.op("Log", [graph.op("Clip", [out, low, graph.const(1.0, "one")])])
            columns += [
                graph.op("Slice", [logs, *_slice(graph, k, k + 1)]) for k in range(n_classes)
            ]
        else:
            columns.append(out)
    return columns


def _slice(graph: Graph, start: int, stop: int) -> list[str]:
    """Slice's starts, ends and axes inputs for columns ``start:stop``."""
    return [
        graph.const([start], "start", dtype=np.int64),
        graph.const([stop], "stop", dtype=np.int64),
        graph.const([1], "axis", dtype=np.int64),
    ]


def _calibrate(graph: Graph, raw: str, temperature: float, floor: float) -> str:
    """The package's calibration, as mlpilot.metrics.calibrate_probabilities applies it: the
    log-probabilities divided by the temperature and normalised again (a softmax), then no
    probability below the floor (raised to it, rows normalised)."""
    p = raw
    if temperature != 1.0:
        clipped = graph.op("Clip", [p, graph.const(1e-15, "tiny"), graph.const(1.0, "one")])
        logits = graph.op("Div", [graph.op("Log", [clipped]), graph.const(temperature, "temp")])
        p = graph.op("Softmax", [logits], axis=1)
    if floor > 0.0:
        p = graph.op("Max", [p, graph.const(floor, "floor")])
        total = graph.op("ReduceSum", [p, graph.const([1], "axis", dtype=np.int64)], keepdims=1)
        p = graph.op("Div", [p, total])
    return p


def _decide(graph: Graph, raw: str, model: InferenceModel) -> str:
    """Class positions, as InferenceModel.decide picks them (least expected cost under a cost
    matrix, a tuned threshold or arg-max)."""
    costs = model.decision_costs
    if costs is not None:
        cost = graph.op("MatMul", [raw, graph.const(costs, "costs")])
        return graph.op("ArgMin", [cost], axis=1, keepdims=0)
    threshold = model.decision_threshold
    if threshold is None:
        return graph.op("ArgMax", [raw], axis=1, keepdims=0)
    pos = model.positive_index
    p = graph.op("Reshape", [graph.op("Slice", [raw, *_slice(graph, pos, pos + 1)]),
                             graph.const([-1], "flat", dtype=np.int64)])  # fmt: skip
    positive = graph.op("GreaterOrEqual", [p, graph.const(threshold, "threshold")])
    return graph.op(
        "Where",
        [
            positive,
            graph.const(pos, "pos", dtype=np.int64),
            graph.const(1 - pos, "neg", dtype=np.int64),
        ],
    )


# -- preprocessing ------------------------------------------------------------------------------
def _pipeline(graph: Graph, pipeline: FeaturePipeline, inputs: dict[str, str]) -> str:
    """The pipeline's matrix, ``float [N, F]``, from the typed column inputs."""
    blocks = []
    transform = pipeline.columns_
    for name, transformer, columns in transform.transformers_:
        block = transform.output_indices_.get(name, slice(0, 0))
        if name == "remainder" or block.stop == block.start:
            continue
        names = [str(c) for c in columns]
        if name in ("cat", "cat_high", "onehot", "target_enc"):
            blocks += [_lookup(graph, transformer, names, inputs)]
        elif name == "num":
            blocks.append(_numeric(graph, transformer, names, inputs))
        else:  # text and date blocks: their inputs were refused already
            raise ExportError(
                f"the {name!r} preprocessing step has no ONNX converter; {_MLFLOW_HINT}"
            )
    matrix = blocks[0] if len(blocks) == 1 else graph.op("Concat", blocks, axis=1)
    return graph.cast(matrix, FLOAT)


def _numeric(graph: Graph, transformer: Any, columns: list[str], inputs: dict[str, str]) -> str:
    """Number columns through median imputation (with missing indicators) and scaling."""
    x = (
        graph.op("Concat", [inputs[c] for c in columns], axis=1)
        if len(columns) > 1
        else inputs[columns[0]]
    )
    if isinstance(transformer, str) or not hasattr(transformer, "steps"):
        # "passthrough" (fitted: an identity FunctionTransformer)
        if getattr(transformer, "func", None) is not None:
            raise ExportError(
                f"the numeric step of {columns} has no ONNX converter; {_MLFLOW_HINT}"
            )
        return x
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    for step_name, step in transformer.steps:
        if isinstance(step, SimpleImputer) and step.strategy in ("median", "mean"):
            # Columns that were empty in training keep 0 (keep_empty_features).
            fill = np.nan_to_num(np.asarray(step.statistics_, dtype=np.float64), nan=0.0)
            missing = graph.op("IsNaN", [x])
            imputed = graph.op("Where", [missing, graph.const(fill[None, :], "median"), x])
            if step.add_indicator and step.indicator_ is not None:
                which = graph.const(np.asarray(step.indicator_.features_), "indicated", np.int64)
                flags = graph.cast(graph.op("Gather", [missing, which], axis=1), DOUBLE)
                imputed = graph.op("Concat", [imputed, flags], axis=1)
            x = imputed
        elif isinstance(step, StandardScaler):
            if step.mean_ is not None:
                x = graph.op("Sub", [x, graph.const(step.mean_[None, :], "mean")])
            if step.scale_ is not None:
                x = graph.op("Div", [x, graph.const(step.scale_[None, :], "scale")])
        else:
            raise ExportError(
                f"the numeric preprocessing step {step_name!r} ({type(step).__name__}) has no "
                f"ONNX converter; {_MLFLOW_HINT}"
            )
    return x


def _lookup(graph: Graph, transformer: Any, columns: list[str], inputs: dict[str, str]) -> str:
    """A category block (ordinal codes, one-hot, target encoding, with any steps after it) as
    one lookup per column: each category's output row, plus rows for missing and unseen,
    computed by the fitted transformer itself so that the graph gives what it gives."""
    encoder = transformer.steps[0][1] if hasattr(transformer, "steps") else transformer
    widths = _widths(encoder, len(columns))
    keys = [[str(v) for v in cats if isinstance(v, str)] for cats in encoder.categories_]
    rows = max(len(k) for k in keys) + 2
    probe = pd.DataFrame(
        {
            c: np.asarray(k + [np.nan] + [_UNSEEN] * (rows - len(k) - 1), dtype=object)
            for c, k in zip(columns, keys, strict=True)
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the encoders warn of the unseen category
        table = transformer.transform(probe)
    table = np.asarray(table.toarray() if hasattr(table, "toarray") else table, dtype=np.float64)
    if table.shape[1] != sum(widths):
        raise ExportError(f"the encoder of {columns} has an unexpected width; {_MLFLOW_HINT}")
    blocks, start = [], 0
    for column, known, width in zip(columns, keys, widths, strict=True):
        n = len(known)
        values = table[: n + 2, start : start + width]  # the known ones, missing, unseen
        start += width
        index = graph.op(
            "LabelEncoder",
            [inputs[column]],
            domain=ML_DOMAIN,
            keys_strings=[*known, ""],
            values_int64s=list(range(n + 1)),
            default_int64=n + 1,
        )
        index = graph.op("Squeeze", [index, graph.const([1], "axis", dtype=np.int64)])
        blocks.append(graph.op("Gather", [graph.const(values, f"{column}_lookup"), index], axis=0))
    return blocks[0] if len(blocks) == 1 else graph.op("Concat", blocks, axis=1)


def _widths(encoder: Any, n_columns: int) -> list[int]:
    """Output columns per input column of a fitted category encoder."""
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    if isinstance(encoder, OrdinalEncoder):
        return [1] * n_columns
    if isinstance(encoder, OneHotEncoder):
        # Per column: frequent categories, plus one for the infrequent ones if any.
        return [int(w) for w in encoder._n_features_outs]
    if isinstance(encoder, TargetEncoder):
        per = len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
        return [per] * n_columns
    raise ExportError(
        f"the category encoder {type(encoder).__name__} has no ONNX converter; {_MLFLOW_HINT}"
    )


# -- models -------------------------------------------------------------------------------------
def _algorithm(
    graph: Graph,
    algorithm: Any,
    matrix: str,
    width: int,
    problem: ProblemType,
    n_classes: int,
    where: str,
) -> str:
    """The algorithm's output on ``matrix``: ``double [N, K]`` probabilities or ``[N, 1]``."""
    name = getattr(algorithm, "name", type(algorithm).__name__)
    converter = _CONVERTERS[name]
    try:
        converted, classifier_width = converter(algorithm, width, problem)
    except ExportError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"the {name} model{where} did not convert to ONNX: {first}") from exc
    outputs = graph.embed(converted, [matrix])
    if not problem.is_classification:
        value = graph.op("Reshape", [outputs[0], graph.const([-1, 1], "column", dtype=np.int64)])
        value = graph.cast(value, DOUBLE)
        scale = getattr(algorithm, "y_std_", None)
        if scale is not None:  # a model trained on the centred and scaled target
            value = graph.op("Mul", [value, graph.const(scale, "y_std")])
            value = graph.op("Add", [value, graph.const(algorithm.y_mean_, "y_mean")])
        return value
    probabilities = graph.cast(outputs[1], DOUBLE)
    return _all_classes(graph, probabilities, algorithm, classifier_width, n_classes)


def _all_classes(
    graph: Graph, probabilities: str, algorithm: Any, width: int, n_classes: int
) -> str:
    """Algorithm.predict_proba's rule for a model trained without some classes: a column per
    class, zero for those it never saw (and the others renormalised when it has a column for
    every class)."""
    seen = getattr(algorithm, "classes_seen_", None)
    if seen is None or len(seen) >= n_classes:
        return probabilities
    if width != n_classes:
        spread = np.zeros((width, n_classes))
        spread[np.arange(width), np.asarray(seen)] = 1.0
        return graph.op("MatMul", [probabilities, graph.const(spread, "spread")])
    mask = np.zeros((1, n_classes))
    mask[0, np.asarray(seen)] = 1.0
    kept = graph.op("Mul", [probabilities, graph.const(mask, "seen")])
    total = graph.op("ReduceSum", [kept, graph.const([1], "axis", dtype=np.int64)], keepdims=1)
    return graph.op("Div", [kept, graph.op("Max", [total, graph.const(1e-300, "tiny")])])


def _float_input(width: int) -> list[tuple[str, Any]]:
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("input", FloatTensorType([None, width]))]


def _lightgbm(algorithm: Any, width: int, problem: ProblemType) -> tuple[onnx.ModelProto, int]:
    import lightgbm as lgb
    import onnxmltools

    booster = algorithm.model_
    best = booster.best_iteration
    if best and best < booster.current_iteration():
        # mlpilot predicts with the best iteration's trees only: export just those.
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    converted = onnxmltools.convert_lightgbm(
        booster, initial_types=_float_input(width), zipmap=False, target_opset=OPSET
    )
    return converted, _classes(algorithm, problem)


def _xgboost(algorithm: Any, width: int, problem: ProblemType) -> tuple[onnx.ModelProto, int]:
    import onnxmltools

    converted = onnxmltools.convert_xgboost(
        algorithm.model_, initial_types=_float_input(width), target_opset=OPSET
    )
    return converted, _classes(algorithm, problem)


def _catboost(algorithm: Any, width: int, problem: ProblemType) -> tuple[onnx.ModelProto, int]:
    if algorithm.cat_features_:
        raise ExportError(
            "CatBoost's ONNX export does not take categorical features, which this catboost "
            f"model splits on natively; {_MLFLOW_HINT}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catboost.onnx"
        algorithm.model_.save_model(str(path), format="onnx")
        converted = onnx.load(str(path))
    _drop_zipmap(converted)
    return converted, _classes(algorithm, problem)


def _drop_zipmap(model: onnx.ModelProto) -> None:
    """Make a classifier's probabilities output the tensor its ZipMap node reads."""
    graph = model.graph
    for node in list(graph.node):
        if node.op_type != "ZipMap":
            continue
        for output in graph.output:
            if output.name == node.output[0]:
                output.name = node.input[0]
                output.type.CopyFrom(onnx.helper.make_tensor_type_proto(FLOAT, [None, None]))
        graph.node.remove(node)


def _sklearn(algorithm: Any, width: int, problem: ProblemType) -> tuple[onnx.ModelProto, int]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    estimator = algorithm.model_
    options = {id(estimator): {"zipmap": False}} if problem.is_classification else None
    converted = convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, width]))],
        options=options,
        target_opset={"": OPSET, ML_DOMAIN: 3},
    )
    classes = len(estimator.classes_) if problem.is_classification else 0
    return converted, classes


def _classes(algorithm: Any, problem: ProblemType) -> int:
    """Probability columns a boosting library gives: both classes (binary), or num_class."""
    return 2 if problem is ProblemType.BINARY else int(algorithm.n_classes)


_CONVERTERS = {
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "catboost": _catboost,
    "linear-learner": _sklearn,
    "randomforest": _sklearn,
    "extra-trees": _sklearn,
}
