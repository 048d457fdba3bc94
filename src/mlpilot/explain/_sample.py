"""SHAP values of a packaged model on many rows, per original feature (what the white box's
explainability report shows).

Three ways, by model, each exactly additive (a row's values add up to its prediction minus the
base value):

* A single tree algorithm (LightGBM, XGBoost, CatBoost, random forest, extra trees), bagged
  or not: TreeSHAP on each member's transformed matrix, exact. Boosting models take their own
  path-dependent TreeSHAP (``shap.TreeExplainer``; for LightGBM and XGBoost their own
  ``pred_contrib``, which TreeExplainer calls too); forests take interventional TreeSHAP
  against background rows (``Algorithm.baseline_tree_shap``, a compiled walk of the trees):
  path-dependent TreeSHAP costs a forest's deep trees about a second a row, the walk a few
  milliseconds per background row. The background is as large as lets MIN_TREE_ROWS rows be
  explained in the time left (FOREST_BACKGROUND_LADDER). The SHAP values of the columns a
  feature became (one-hot levels, missing indicators, date parts, text components) are added
  up per original feature, and a bag's members are averaged. Boosting models are explained in
  their raw output (log-odds for binary, per-class scores for multiclass), forests in
  probabilities, regression in the target's units.
* A weighted blend of tree models with no stacker, where the blend is linear in what TreeSHAP
  explains (forests' probabilities for classification; any tree model for regression): the
  members' TreeSHAP values combined by the blend weights. Checked against the blend's own
  predictions; a mismatch falls back to the next way.
* Anything else (linear models, the MLP, blends with boosting members or stackers): permutation
  SHAP (the algorithm of ``shap.PermutationExplainer``, batched over many rows per model call)
  over the packaged model's predictions on raw rows, with a random sample of background rows
  standing for "feature unknown" (Clarify uses Kernel SHAP over a k-means baseline instead).
  Each permutation's contributions telescope to the prediction minus the mean prediction on the
  background, so the values are exactly additive whatever the number of permutations. Each
  feature is replaced as a whole, so the values are per original feature; they are in
  probabilities (classification) or the target's units (regression).

The white box's explainability report (:mod:`mlpilot.reports`) is written from an
:class:`Explanation`; endpoints explain single rows with :class:`~mlpilot.explain.RowExplainer`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.algorithms import Algorithm, Family, ShapMethod
from mlpilot.profile import label_key

__all__ = ["Explanation", "OutOfTime", "explain_model", "explained_outputs", "tree_members"]

#: Rows explained at most by the tree explainer.
MAX_TREE_ROWS = 300
#: Rows the tree explainer keeps room for when it sizes the forests' background.
MIN_TREE_ROWS = 100
#: Background rows forests are explained against, most first: the first whose estimated cost
#: lets MIN_TREE_ROWS rows be explained in the time left is used.
FOREST_BACKGROUND_LADDER = (100, 50, 20, 10, 5)
#: Background rows the forests are timed against (one row) to size their background.
FOREST_PROBE_BACKGROUND = 10
#: Permutation SHAP settings, most thorough first: (rows explained, background rows,
#: permutations per row, in antithetic pairs). The first whose estimated cost fits the time
#: left is used; on the last, rows stop when the time does (5 rows need 50 predictions per
#: feature), so a one-minute job's few seconds still explain some.
PERMUTATION_LADDER = (
    (100, 100, 4),
    (100, 50, 2),
    (100, 20, 2),
    (100, 10, 2),
    (100, 5, 2),
)
#: Seconds permutation SHAP may take when no deadline is given.
PERMUTATION_SECONDS = 120.0
#: Largest difference allowed between a row's summed SHAP values plus the base value and the
#: model's prediction before a blend's TreeSHAP is given up for permutation SHAP.
ADDITIVITY_TOLERANCE = 1e-6
#: Rows explained first (to time them), then at a time between two looks at the clock.
FIRST_CHUNK = 5
CHUNK = 25


def dense(X: Any) -> np.ndarray:
    """A transformed matrix as a dense array (sparse text columns included)."""
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X)


class OutOfTime(Exception):
    """Not even a few rows can be explained before the deadline."""


@dataclass
class Explanation:
    """SHAP values per output: ``values[output]`` is ``(rows, features)``."""

    features: list[str]
    rows: pd.DataFrame
    values: dict[str, np.ndarray]
    expected: dict[str, float]
    method: str
    units: str
    outputs: dict[str, str]  # analysis.json key -> what it explains
    predictions: dict[str, np.ndarray]
    background: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def global_importance(self) -> pd.DataFrame:
        """Mean |SHAP| per feature (columns: outputs), most important first."""
        frame = pd.DataFrame(
            {key: np.abs(v).mean(axis=0) for key, v in self.values.items()}, index=self.features
        )
        order = frame.mean(axis=1).sort_values(ascending=False, kind="stable").index
        return frame.loc[order]


def _positive_index(model: Any) -> int:
    labels = model.labels
    positive = model.info.get("positive_label")
    return labels.index(positive) if positive in labels else 1


def explained_outputs(model: Any) -> tuple[list[int], dict[str, str]]:
    """Which model outputs are explained, keyed as in analysis.json."""
    problem = model.problem_type
    if problem is ProblemType.REGRESSION:
        return [0], {"label0": f"predicted {model.info.get('target', 'value')}"}
    if problem is ProblemType.BINARY:
        pos = _positive_index(model)
        name = label_key(model.labels[pos])
        return [pos], {name: f"score of class {name!r}"}
    names = [label_key(v) for v in model.labels]
    return list(range(len(names))), {n: f"score of class {n!r}" for n in names}


def tree_members(model: Any) -> list[tuple[Any, Any, float]] | None:
    """``(pipeline, algorithm, share)`` of every member when TreeSHAP explains the model
    exactly: one tree algorithm (its bag averaged), or a blend of tree units with no stacker
    whose outputs TreeSHAP gives in the space the blend averages in (probabilities: forests
    only; regression values: any tree model). Else None."""
    units = getattr(model.members, "units", None)
    if units is None:
        try:
            pairs = list(model.members)
            members = [(pipe, algo, 1.0 / len(pairs)) for pipe, algo in pairs]
        except (TypeError, ValueError):
            return None
    else:
        weights = model.members.weights
        used = [(u, w) for u, w in zip(units, weights, strict=True) if w > 0]
        if any(u.inputs for u, _ in used):
            return None  # a stacker's output is not linear in the base models'
        members = [(pipe, algo, w / len(u.members)) for u, w in used for pipe, algo in u.members]
        forests = all(getattr(a, "tags", None) and a.tags.family is Family.FOREST
                      for _, a, _ in members)  # fmt: skip
        if model.problem_type.is_classification and not forests:
            return None  # boosting blends average probabilities, TreeSHAP gives log-odds
    if not members or not all(
        isinstance(algo, Algorithm)
        and algo.tags.shap is ShapMethod.TREE
        and hasattr(pipe, "output_sources")
        for pipe, algo, _ in members
    ):
        return None
    return members


def _budgeted(
    n_rows: int, explain: Any, deadline: float | None, first: int = FIRST_CHUNK
) -> tuple[int, list[str]]:
    """Call ``explain(start, stop)`` over ``n_rows`` rows in chunks, stopping before the
    deadline (timed on the chunks so far). Returns the rows explained and notes."""
    done, spent = 0, 0.0
    while done < n_rows:
        size = min(first if done == 0 else CHUNK, n_rows - done)
        if deadline is not None and done:
            fits = int((deadline - time.monotonic()) / max(spent / done, 1e-6))
            size = min(size, fits)
            if size < 1:
                return done, [f"time ran short: {done} of {n_rows} rows explained"]
        started = time.monotonic()
        explain(done, done + size)
        spent += time.monotonic() - started
        done += size
    return done, []


def walks_baseline_trees(algo: Any) -> bool:
    """Whether ``algo`` is explained by its exact interventional TreeSHAP against baseline rows
    (``Algorithm.baseline_tree_shap``: the forests)."""
    return isinstance(algo, Algorithm) and algo.tags.baseline_tree_shap


def _forest_background(
    forests: list[tuple[Any, Any, np.ndarray]],
    rows: pd.DataFrame,
    background: pd.DataFrame,
    n_features: int,
    deadline: float | None,
) -> int:
    """How many of the ``background`` rows the forests (``(pipeline, algorithm, column
    sources)``) are explained against: the most on FOREST_BACKGROUND_LADDER whose cost, timed
    on one row, leaves room for MIN_TREE_ROWS rows before ``deadline``."""
    sizes = [b for b in FOREST_BACKGROUND_LADDER if b <= len(background)] or [len(background)]
    if deadline is None or len(sizes) == 1:
        return sizes[0]
    probe = min(FOREST_PROBE_BACKGROUND, len(background))
    explainers = []
    for pipeline, algo, sources in forests:
        matrix = dense(pipeline.transform(background.iloc[:probe]))
        explainers.append((pipeline, algo.baseline_tree_shap(matrix, sources, n_features)))
    first = [pipeline.transform(rows.iloc[:1]) for pipeline, _ in explainers]
    for (_, explain), x in zip(explainers, first, strict=True):
        explain(x)  # compiles the walk (or loads it from numba's cache): not timed
    started = time.monotonic()
    for (_, explain), x in zip(explainers, first, strict=True):
        explain(x)
    per_pair = (time.monotonic() - started) / probe
    left = deadline - time.monotonic()
    for size in sizes:
        if MIN_TREE_ROWS * size * per_pair * 1.5 <= left:
            return size
    return sizes[-1]


def _tree_explanation(
    model: Any,
    tree_members: list[tuple[Any, Any, float]],
    rows: pd.DataFrame,
    features: list[str],
    deadline: float | None,
    background: pd.DataFrame | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, float], dict[int, np.ndarray], str, list[str], int]:
    """TreeSHAP of ``tree_members`` on ``rows``, per feature; forests against ``background``
    rows (as many of them as the time allows). Returns values, base values, the explained
    outputs' predictions, their units, notes, and the background rows the forests used."""
    problem = model.problem_type
    explained, _ = explained_outputs(model)
    index = {f: i for i, f in enumerate(features)}
    notes: list[str] = []
    forests = [
        (pipe, algo, np.asarray([index[s] for s in pipe.output_sources()], dtype=int))
        for pipe, algo, _ in tree_members
        if walks_baseline_trees(algo)
    ]
    n_background = 0
    if forests and background is not None and len(background):
        n_background = _forest_background(forests, rows, background, len(features), deadline)
        if n_background < min(FOREST_BACKGROUND_LADDER[0], len(background)):
            notes.append(
                f"time ran short: forests explained against {n_background} background rows, "
                f"not {min(FOREST_BACKGROUND_LADDER[0], len(background))}"
            )
    # (pipeline, its TreeSHAP, its columns → features matrix (None: per feature already), share)
    members: list[tuple[Any, Any, np.ndarray | None, float]] = []
    for pipeline, algo, share in tree_members:
        sources = [index[s] for s in pipeline.output_sources()]
        if background is not None and n_background and walks_baseline_trees(algo):
            # Values per feature already (players are the features' column groups).
            matrix = dense(pipeline.transform(background.iloc[:n_background]))
            shap_of = algo.baseline_tree_shap(matrix, np.asarray(sources, dtype=int), len(features))
            members.append((pipeline, shap_of, None, share))
            continue
        # Columns → features: adds each transformed column's values to its source feature.
        owner = np.zeros((len(sources), len(features)))
        owner[np.arange(len(sources)), sources] = 1.0
        members.append((pipeline, algo.tree_shap(), owner, share))
    parts: dict[int, list[np.ndarray]] = {k: [] for k in explained}
    expected: dict[int, float] = dict.fromkeys(explained, 0.0)

    def explain(start: int, stop: int) -> None:
        chunk = rows.iloc[start:stop]
        totals = {k: np.zeros((len(chunk), len(features))) for k in explained}
        for pipeline, shap_of, owner, share in members:
            values, base = shap_of(pipeline.transform(chunk))
            summed = values if owner is None else np.einsum("ncm,cf->nfm", values, owner)
            if problem is ProblemType.BINARY and values.shape[2] == 1:
                # One raw output: the score of class 1 (label order); class 0's is its negative.
                sign = 1.0 if explained[0] == 1 else -1.0
                outputs = {explained[0]: (sign * summed[:, :, 0], sign * float(base[0]))}
            else:
                outputs = {k: (summed[:, :, k], float(base[k])) for k in explained}
            for k, (v, b) in outputs.items():
                totals[k] += share * v
                if start == 0:
                    expected[k] += share * b
        for k in explained:
            parts[k].append(totals[k])

    _, ran_short = _budgeted(len(rows), explain, deadline)
    notes = ran_short + notes
    total = {k: np.concatenate(parts[k]) for k in explained}
    margins = {k: total[k].sum(axis=1) + expected[k] for k in explained}
    all_forests = all(a.tags.family is Family.FOREST for _, a, _ in tree_members)
    if problem is ProblemType.REGRESSION:
        units = f"{model.info.get('target', 'target')} units"
    elif all_forests:  # forests average probabilities; boosting sums raw scores
        units = "probability"
    elif problem is ProblemType.BINARY:
        units = "log-odds"
    else:
        units = "raw class scores (softmax inputs)"
    return total, expected, margins, units, notes, n_background


def _codes(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each column as integer codes into its own table of raw values (explainers need numbers;
    the model needs the raw values back)."""
    codes = np.zeros((len(frame), len(columns)))
    tables = []
    for j, c in enumerate(columns):
        code, uniques = pd.factorize(frame[c], use_na_sentinel=False)
        codes[:, j] = code
        tables.append(np.asarray(uniques, dtype=object))
    return codes, tables


def _permutations(n_rows: int, n_perm: int, f: int, rng: np.random.Generator) -> np.ndarray:
    """``(rows, permutations, f)`` feature orders: random ones, each followed by its reverse
    (antithetic pairs, as shap.PermutationExplainer: they cancel much of the sampling noise)."""
    half = max(1, n_perm // 2)
    forward = rng.random((n_rows, half, f)).argsort(axis=2)
    return np.stack([forward, forward[:, :, ::-1]], axis=2).reshape(n_rows, 2 * half, f)


def _permutation_explanation(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    features: list[str],
    deadline: float | None,
    seed: int,
) -> tuple[
    dict[int, np.ndarray], dict[int, float], dict[int, np.ndarray], str, list[str], int, int
]:
    """As :func:`_tree_explanation`, plus the background rows and permutations used.

    For a row and a feature order, the features are switched from the background's values to
    the row's one at a time; each feature's SHAP value is how much that moved the prediction
    (averaged over the background rows), averaged over the orders."""
    explained, _ = explained_outputs(model)
    problem = model.problem_type
    both = pd.concat([rows[features], background[features]], ignore_index=True)
    codes, tables = _codes(both, features)
    row_codes, bg_codes = codes[: len(rows)], codes[len(rows) :]
    dtypes = rows[features].dtypes
    f = len(features)

    def predict(matrix: np.ndarray) -> np.ndarray:
        decoded = pd.DataFrame(
            {
                c: pd.Series(tables[j][matrix[:, j].astype(int)], dtype=dtypes[c])
                for j, c in enumerate(features)
            }
        )
        raw = np.asarray(model.predict_raw(decoded), dtype=float)
        return raw[:, None] if problem is ProblemType.REGRESSION else raw[:, explained]

    # Time the model on a batch like the ones below, then pick the most thorough settings that
    # fit the time left.
    probe = np.repeat(bg_codes, max(1, 2000 // len(bg_codes)), axis=0)
    predict(probe[:8])
    started = time.monotonic()
    predict(probe)
    per_row = (time.monotonic() - started) / len(probe)
    budget = PERMUTATION_SECONDS if deadline is None else deadline - time.monotonic()
    n_rows, n_background, n_perm = PERMUTATION_LADDER[-1]
    for n_rows, n_background, n_perm in PERMUTATION_LADDER:
        n_background = min(n_background, len(bg_codes))
        cost = min(n_rows, len(rows)) * n_perm * max(f - 1, 0) * n_background + n_background
        if cost * per_row * 1.5 <= budget:
            break
    else:
        need = (FIRST_CHUNK * n_perm * max(f - 1, 0) + 1) * n_background * per_row * 1.5
        if need > budget:
            raise OutOfTime(
                f"permutation SHAP on this model needs about {need:.1f} s for {FIRST_CHUNK} "
                f"rows; {max(budget, 0):.1f} s were left"
            )
    bg = bg_codes[:n_background]
    base = predict(bg).mean(axis=0)  # the prediction with every feature unknown
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []

    def explain(start: int, stop: int) -> None:
        x = row_codes[start:stop]
        n = len(x)
        orders = _permutations(n, n_perm, f, rng)
        # Coalition s of an order holds its first s features (s = 1 .. f-1; none and all are
        # the base value and the prediction).
        ranks = orders.argsort(axis=2)  # where each feature comes in each order
        steps = np.arange(1, f)[:, None]
        known = ranks[:, :, None, :] < steps  # (n, perm, f-1, f)
        masked = np.where(known[:, :, :, None, :], x[:, None, None, None, :], bg[None, None, None])
        values = np.empty((n, n_perm, f + 1, len(base)))
        values[:, :, 0] = base
        values[:, :, f] = predict(x)[:, None, :]
        if f > 1:
            middle = predict(masked.reshape(-1, f))
            values[:, :, 1:f] = middle.reshape(n, n_perm, f - 1, len(bg), -1).mean(axis=3)
        gains = np.diff(values, axis=2)  # (n, perm, f, outputs): feature orders[..., s]'s gain
        phi = np.zeros((n, f, len(base)))
        for p in range(n_perm):
            np.add.at(phi, (np.arange(n)[:, None], orders[:, p]), gains[:, p])
        parts.append(phi / n_perm)

    _, notes = _budgeted(min(n_rows, len(rows)), explain, deadline)
    values = np.concatenate(parts)
    total = {k: values[:, :, i] for i, k in enumerate(explained)}
    expected = {k: float(base[i]) for i, k in enumerate(explained)}
    margins = {k: total[k].sum(axis=1) + expected[k] for k in explained}
    if problem is ProblemType.REGRESSION:
        units = f"{model.info.get('target', 'target')} units"
    else:
        units = "probability"
    return total, expected, margins, units, notes, len(bg), n_perm


def _adds_up(
    model: Any, rows: pd.DataFrame, keys: list[int], margins: dict[int, np.ndarray]
) -> bool:
    """Whether the explained outputs are the model's own predictions on the explained rows."""
    n = len(margins[keys[0]])
    raw = np.asarray(model.predict_raw(rows.iloc[:n]), dtype=float)
    raw = raw[:, None] if raw.ndim == 1 else raw
    return all(
        np.abs(margins[k] - raw[:, 0 if raw.shape[1] == 1 else k]).max() <= ADDITIVITY_TOLERANCE
        for k in keys
    )


def explain_model(
    model: Any,
    sample: pd.DataFrame,
    *,
    deadline: float | None = None,
    seed: int = 0,
    max_rows: int | None = None,
) -> Explanation:
    """SHAP values of ``model`` (an :class:`~mlpilot.package.InferenceModel`) on rows of
    ``sample`` (raw training rows), per original feature."""
    started = time.monotonic()
    features = list(model.feature_columns)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sample))
    tree = tree_members(model)
    blend = tree is not None and hasattr(model.members, "units")
    limit = max_rows or (MAX_TREE_ROWS if tree else PERMUTATION_LADDER[0][0])
    rows = sample.iloc[order[:limit]]
    keys, outputs = explained_outputs(model)
    names = list(outputs)
    background = None
    result = None
    if tree is not None:
        # Forests are explained against background rows the explained ones are not.
        rest = order[limit:] if len(order) > limit else order
        forest_background = sample.iloc[rest[: FOREST_BACKGROUND_LADDER[0]]]
        result = _tree_explanation(model, tree, rows, features, deadline, forest_background)
        if blend and not _adds_up(model, rows, keys, result[2]):
            result = None  # e.g. a regression objective whose raw score is not the value
    if result is not None and tree is not None:
        values, expected, margins, units, notes, n_background = result
        n_forests = sum(walks_baseline_trees(a) for _, a, _ in tree)
        path_dependent = (
            "path-dependent (shap.TreeExplainer; LightGBM's and XGBoost's own pred_contrib, "
            "which it wraps)"
        )
        interventional = (
            f"interventional against {n_background} background rows (exact Shapley values of "
            "switching features between the row and each background row, on the trees "
            "themselves)"
        )
        if not n_forests:
            method = f"TreeSHAP, {path_dependent}"
        elif n_forests == len(tree):
            method = f"TreeSHAP, {interventional}"
        else:
            method = (
                f"TreeSHAP: {path_dependent} for the boosting models, {interventional} for "
                "the forests"
            )
        method += ", summed over each feature's columns"
        if n_background:
            background = forest_background.iloc[:n_background]
        if blend:
            method += (
                f", combined by the blend's weights over its {len(tree)} tree models "
                "(exact: the blend is linear in what they explain)"
            )
        elif len(tree) > 1:
            method += f", averaged over the bag's {len(tree)} fold models"
    else:
        limit = max_rows or PERMUTATION_LADDER[0][0]
        rows = sample.iloc[order[:limit]]
        rest = order[limit:] if len(order) > limit else order
        background = sample.iloc[rest[: PERMUTATION_LADDER[0][1]]]
        values, expected, margins, units, notes, n_background, n_perm = _permutation_explanation(
            model, rows, background, features, deadline, seed
        )
        background = background.iloc[:n_background]
        method = (
            "permutation SHAP (shap.PermutationExplainer's algorithm, batched) over the "
            f"model's predictions on raw rows: {n_perm} feature orders per row (antithetic "
            f"pairs), {n_background} background rows; exactly additive"
        )
    n_done = len(next(iter(values.values())))
    return Explanation(
        features=features,
        rows=rows.iloc[:n_done],
        values={names[i]: values[k] for i, k in enumerate(keys)},
        expected={names[i]: expected[k] for i, k in enumerate(keys)},
        method=method,
        units=units,
        outputs=outputs,
        predictions={names[i]: margins[k] for i, k in enumerate(keys)},
        background=background,
        notes=notes,
        seconds=time.monotonic() - started,
    )
