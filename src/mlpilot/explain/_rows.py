"""SHAP values of a few rows, computed fast enough to answer beside their predictions (an
endpoint's Clarify explanations).

The model is split into parts whose outputs it adds up with weights: a bag is one part, an
ensemble with no stacker one part per model it blends, an ensemble with a stacker one part for
the whole. Each part is explained on its own and the parts' values are added with the same
weights, so a row's values add up to its prediction minus the base value whatever the mix:

* a part made of boosting models (LightGBM, XGBoost, CatBoost) gets TreeSHAP from its models'
  own trees (LightGBM's and XGBoost's ``pred_contrib``, CatBoost's ``ShapValues``),
  path-dependent: "feature unknown" means the trees' own training rows, not the baseline.
  Boosting models explain log-odds (or softmax scores); their values are rescaled so they add
  up to the model's probability minus the probability of its base score (the ratio of the
  probability's change to the log-odds' change), which keeps their signs and ranking.
* a part made of forests (random forest, extra trees) gets exact interventional TreeSHAP
  against the baseline rows (``Algorithm.baseline_tree_shap``: the Shapley values of switching
  input columns between the row and a baseline row, computed on the trees in one walk, no
  sampling), in probabilities or the target's units.
* any other part (linear models, MLPs, networks, stackers) gets permutation SHAP against the
  baseline rows: for each row, feature orders in antithetic pairs, the features switched from
  a baseline row's values to the row's one at a time; each step's change of the prediction goes
  to the feature switched. Exactly additive for any number of orders.

Values are in probabilities (classification) or the target's units (regression); with
``use_logit`` classification values are moved into log-odds by the same rescaling (exact
TreeSHAP log-odds again for a single boosting model). Explanations are per input column: the
values of the columns a feature became (one-hot levels, indicators, date parts, text
components) are added up per column, and columns the model does not use get 0.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.algorithms import Algorithm, Family, ShapMethod
from mlpilot.explain._sample import dense, explained_outputs, walks_baseline_trees

__all__ = ["DEFAULT_PERMUTATIONS", "RowExplainer", "RowExplanation"]

#: Feature orders per row for permutation SHAP when no number of samples is given (4 antithetic
#: pairs).
DEFAULT_PERMUTATIONS = 8
#: Largest difference between a tree part's summed values and its own prediction before it is
#: explained by permutation SHAP instead (e.g. a regression objective with a link function).
ADDITIVITY_TOLERANCE = 1e-6
#: Rows cleaned through the small-batch path (see features' TableCleaner).
SMALL_BATCH = 64
_CLIP = 1e-12


@dataclass(frozen=True)
class RowExplanation:
    """``values[row, column, output]``, the ``base`` value of each output, and each row's
    explained prediction (``base + values.sum(axis=1)``)."""

    values: np.ndarray
    base: np.ndarray
    predictions: np.ndarray


def _ratio(num: np.ndarray, den: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    safe = np.abs(den) > 1e-12
    return np.where(safe, num / np.where(safe, den, 1.0), fallback)


def _rescale(phi: np.ndarray, new_change: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """``phi (n, f, k)`` scaled per row and output so it adds up to ``new_change (n, k)``
    (slope: the scale where the old change is 0); what rounding or a zero old change leaves is
    spread evenly over the columns."""
    scaled = phi * _ratio(new_change, phi.sum(axis=1), slope)[:, None, :]
    left = new_change - scaled.sum(axis=1)
    return scaled + left[:, None, :] / phi.shape[1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


@dataclass
class _TreeMember:
    pipeline: Any
    shap_of: Callable[[Any], tuple[np.ndarray, np.ndarray]]
    #: (transformed columns, input columns): 1 where a column comes from; None where
    #: ``shap_of`` answers per input column already.
    owner: np.ndarray | None
    share: float
    probability: bool  # explains probabilities (forests), else raw scores


@dataclass
class _Part:
    """Models whose output the whole model adds with ``weight``."""

    weight: float
    pairs: list[tuple[Any, Any]]  # (feature pipeline, algorithm), averaged; [] for a stacker
    predict: Callable[[Any], np.ndarray]  # cleaned rows → outputs (n, k)
    trees: list[_TreeMember] | None  # None: permutation SHAP
    base: np.ndarray | None = None  # permutation SHAP: the mean output on the baseline
    #: Permutation SHAP on the models' matrices: (pipeline, algorithm, column → used feature
    #: position) per model; None: on raw rows through ``predict``.
    matrices: list[tuple[Any, Any, np.ndarray]] | None = None


class RowExplainer:
    """SHAP values of rows of ``model`` (an :class:`~mlpilot.package.InferenceModel`).

    Parameters
    ----------
    baseline:
        Rows standing for "feature unknown" in permutation SHAP (input columns); the package's
        typical row when omitted (a row of missing values for a package without one).
    samples:
        Clarify's ``NumberOfSamples``: feature coalitions evaluated per row and baseline row;
        permutation SHAP uses ``samples / (features - 1)`` orders, rounded up to a whole
        antithetic pair (:data:`DEFAULT_PERMUTATIONS` orders when omitted).
    use_logit:
        Classification: explain log-odds of the probabilities instead of the probabilities.
    seed:
        Seeds the feature orders, with each row's values: a row gets the same values every
        time, alone or with others.
    """

    def __init__(
        self,
        model: Any,
        *,
        baseline: pd.DataFrame | None = None,
        samples: int | None = None,
        use_logit: bool = False,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.problem = model.problem_type
        self.columns = list(model.input_columns)
        self.used = [self.columns.index(c) for c in model.feature_columns if c in self.columns]
        self.keys, outputs = explained_outputs(model)
        self.outputs = list(outputs)
        self.use_logit = bool(use_logit) and self.problem.is_classification
        self.seed = seed
        members = model.members
        self._cleaner = (
            members.cleaner_ if hasattr(members, "predict_clean") else members[0][0].cleaner_
        )
        if baseline is None:
            typical = getattr(model, "baseline", None) or {}
            baseline = pd.DataFrame([{c: typical.get(c) for c in self.columns}], dtype=object)
        self.baseline = baseline[self.columns].astype(object).reset_index(drop=True)
        if self.baseline.empty:
            raise ValueError("the SHAP baseline holds no rows")
        f = len(self.used)
        if samples is None:
            self.permutations = DEFAULT_PERMUTATIONS
        else:
            per_pair = 2 * max(f - 1, 1)
            self.permutations = 2 * max(1, -(-int(samples) // per_pair))
        self._baseline_clean = self._clean(self.baseline)
        self._baseline_matrices: dict[int, np.ndarray] = {}
        if getattr(model, "calibration", None) is not None:
            # A calibration is no weighted sum of the members' outputs: the whole model, one
            # part (permutation SHAP of the probabilities it returns).
            whole = model.predict_clean
            self._parts = [_Part(1.0, [], lambda clean: self._outputs(whole(clean)), None)]
        else:
            self._parts = self._plan(members)
        self._check_trees()
        for part in self._parts:
            if part.trees is None:
                part.base = part.predict(self._baseline_clean).mean(axis=0)

    # -- the parts ------------------------------------------------------------------------------
    def _outputs(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        return raw[:, None] if raw.ndim == 1 else raw[:, self.keys]

    def _members_predict(self, pairs: list[tuple[Any, Any]]) -> Callable[[Any], np.ndarray]:
        classification = self.problem.is_classification

        def predict(clean: Any) -> np.ndarray:
            outputs = []
            for pipeline, algo in pairs:
                matrix = pipeline.transform_clean(clean)
                outputs.append(
                    algo.predict_proba(matrix) if classification else algo.predict(matrix)
                )
            return self._outputs(np.mean(outputs, axis=0))

        return predict

    def _trees(self, pairs: list[tuple[Any, Any]]) -> list[_TreeMember] | None:
        def own_trees(algo: Any) -> bool:
            # Forests' deep trees make path-dependent TreeSHAP slow (~300 ms a row for 350
            # trees): they take the baseline walk instead.
            return (
                isinstance(algo, Algorithm)
                and algo.tags.shap is ShapMethod.TREE
                and algo.tags.family is not Family.FOREST
            )

        if not pairs or not all(
            (own_trees(algo) or walks_baseline_trees(algo)) and hasattr(pipeline, "output_sources")
            for pipeline, algo in pairs
        ):
            return None
        index = {c: i for i, c in enumerate(self.columns)}
        members = []
        for pipeline, algo in pairs:
            sources = np.asarray([index[s] for s in pipeline.output_sources()], dtype=int)
            if walks_baseline_trees(algo):
                background = self._baseline_matrix(pipeline)
                shap_of = algo.baseline_tree_shap(background, sources, len(self.columns))
                members.append(_TreeMember(pipeline, shap_of, None, 1.0 / len(pairs), True))
                continue
            owner = np.zeros((len(sources), len(self.columns)))
            owner[np.arange(len(sources)), sources] = 1.0
            members.append(_TreeMember(pipeline, algo.tree_shap(), owner, 1.0 / len(pairs), False))
        return members

    def _baseline_matrix(self, pipeline: Any) -> np.ndarray:
        """The baseline rows through ``pipeline``, dense, computed once per pipeline."""
        matrix = self._baseline_matrices.get(id(pipeline))
        if matrix is None:
            matrix = dense(pipeline.transform_clean(self._baseline_clean))
            self._baseline_matrices[id(pipeline)] = matrix
        return matrix

    def _plan(self, members: Any) -> list[_Part]:
        units = getattr(members, "units", None)
        if units is None:
            pairs = list(members)
            return [self._part(1.0, pairs)]
        used = [(u, w) for u, w in zip(units, members.weights, strict=True) if w > 0]
        if any(u.inputs for u, _ in used):
            # A stacker's output is not a weighted sum of the base models': one part.
            whole = members.predict_clean
            return [_Part(1.0, [], lambda clean: self._outputs(whole(clean)), None)]
        return [self._part(w, u.members) for u, w in used]

    def _part(self, weight: float, pairs: list[tuple[Any, Any]], trees: bool = True) -> _Part:
        part = _Part(
            weight, pairs, self._members_predict(pairs), self._trees(pairs) if trees else None
        )
        if part.trees is None and pairs and all(hasattr(p, "output_sources") for p, _ in pairs):
            # Each matrix column comes from one input column, so switching input columns
            # between a row and the baseline is switching their matrix columns: the rows are
            # cleaned and transformed once, not once per coalition.
            position = {c: i for i, c in enumerate(self.used)}
            index = {c: i for i, c in enumerate(self.columns)}
            part.matrices = [
                (
                    pipeline,
                    algo,
                    np.asarray([position[index[s]] for s in pipeline.output_sources()], dtype=int),
                )
                for pipeline, algo in pairs
            ]
        return part

    def _check_trees(self) -> None:
        """A tree part whose values do not add up to its own prediction on the baseline rows
        (an objective whose output is not what its trees sum to) is sampled instead."""
        clean = self._baseline_clean
        for part in self._parts:
            if part.trees is None:
                continue
            phi, base = self._tree_values(part.trees, clean)
            explained = base + phi.sum(axis=1)
            if np.abs(explained - part.predict(clean)).max() > ADDITIVITY_TOLERANCE:
                part.trees = None
                part.matrices = self._part(part.weight, part.pairs, trees=False).matrices

    def describe(self) -> list[str]:
        """How each part is explained, in words (for logs and the docs' table)."""
        out = []
        for part in self._parts:
            if part.trees is None:
                out.append(
                    f"weight {part.weight:.3g}: permutation SHAP, {self.permutations} orders "
                    f"x {len(self.baseline)} baseline row(s)"
                )
            elif any(member.owner is None for member in part.trees):
                out.append(
                    f"weight {part.weight:.3g}: interventional TreeSHAP over "
                    f"{len(part.trees)} model(s) x {len(self.baseline)} baseline row(s)"
                )
            else:
                out.append(f"weight {part.weight:.3g}: TreeSHAP over {len(part.trees)} model(s)")
        return out

    @property
    def sampled(self) -> bool:
        """Whether any part is explained by permutation SHAP (samples feature orders)."""
        return any(p.trees is None for p in self._parts)

    # -- computing ------------------------------------------------------------------------------
    def _clean(self, frame: pd.DataFrame) -> Any:
        if len(frame) <= SMALL_BATCH and hasattr(self._cleaner, "transform_arrays"):
            return self._cleaner.transform_arrays(frame, strict=True)
        return self._cleaner.transform(frame, strict=True)

    def _tree_values(
        self, trees: list[_TreeMember], clean: Any, matrices: dict[int, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP of a part: values ``(n, columns, outputs)`` and base ``(outputs,)`` in
        probabilities or regression values. ``matrices``: the rows through each pipeline
        (by ``id``), filled as they are computed, so pipelines shared by parts run once."""
        total: np.ndarray | None = None
        base_total = np.zeros(len(self.keys))
        matrices = {} if matrices is None else matrices
        for member in trees:
            matrix = matrices.get(id(member.pipeline))
            if matrix is None:
                matrix = matrices[id(member.pipeline)] = member.pipeline.transform_clean(clean)
            values, base = member.shap_of(matrix)
            summed = (
                values if member.owner is None else np.einsum("ncm,cf->nfm", values, member.owner)
            )
            phi, b = self._member_space(summed, np.asarray(base, dtype=float), member.probability)
            total = member.share * phi if total is None else total + member.share * phi
            base_total += member.share * b
        assert total is not None
        return total, base_total

    def _member_space(
        self, summed: np.ndarray, base: np.ndarray, probability: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.problem is ProblemType.REGRESSION:
            return summed[:, :, :1], base[:1]
        if probability:
            return summed[:, :, self.keys], base[self.keys]
        margin = base[None, :] + summed.sum(axis=1)  # (n, raw outputs)
        if summed.shape[2] == 1:  # binary: the score of class 1 (label order)
            p = _sigmoid(margin)
            b = _sigmoid(base)
            phi = _rescale(summed, p - b, np.broadcast_to(b * (1 - b), p.shape))
            if self.keys[0] != 1:
                return -phi, 1.0 - b
            return phi, b
        p = _softmax(margin)
        b = _softmax(base[None, :])[0]
        phi = _rescale(summed, p - b[None, :], np.broadcast_to(b * (1 - b), p.shape))
        return phi[:, :, self.keys], b[self.keys]

    def _matrix_predict(
        self, part: _Part, rows_clean: Any, known: np.ndarray, matrices: dict[int, Any]
    ) -> np.ndarray:
        """A part's outputs on the rows and then every coalition of ``known`` (n, perm, f-1, f)
        with every baseline row, switching the models' matrix columns: one prediction call per
        model for all of them."""
        assert part.matrices is not None
        classification = self.problem.is_classification
        outputs = []
        for pipeline, algo, position in part.matrices:
            x = matrices.get(id(pipeline))
            if x is None:
                x = matrices[id(pipeline)] = pipeline.transform_clean(rows_clean)
            x = dense(x)
            bg = self._baseline_matrix(pipeline)
            switched = known[..., position]  # (n, perm, f-1, matrix columns)
            masked = np.where(
                switched[:, :, :, None, :], x[:, None, None, None, :], bg[None, None, None]
            )
            matrix = np.concatenate([x, masked.reshape(-1, x.shape[1])]).astype(x.dtype)
            outputs.append(algo.predict_proba(matrix) if classification else algo.predict(matrix))
        return self._outputs(np.mean(outputs, axis=0))

    def _permutation_values(
        self,
        parts: list[_Part],
        rows: pd.DataFrame,
        seed: int,
        rows_clean: Any,
        matrices: dict[int, Any],
    ) -> list[np.ndarray]:
        """Permutation SHAP of each part in ``parts``: ``(n, columns, outputs)`` each."""
        x = rows[self.columns].to_numpy(dtype=object)
        bg = self.baseline.to_numpy(dtype=object)
        n, k = len(x), len(bg)
        used = np.asarray(self.used, dtype=int)
        f = len(used)
        outs = [np.zeros((n, len(self.columns), len(self.keys))) for _ in parts]
        if f == 0:
            return outs
        n_perm = self.permutations
        # Each row's orders come from the seed and the row's own values, so a row gets the same
        # values whatever else the request holds.
        forward = np.stack(
            [
                np.random.default_rng([seed, zlib.crc32(repr(row.tolist()).encode())])
                .random((n_perm // 2, f))
                .argsort(axis=1)
                for row in x
            ]
        )
        orders = np.stack([forward, forward[:, :, ::-1]], axis=2).reshape(n, n_perm, f)
        ranks = orders.argsort(axis=2)
        # Coalition s of an order holds its first s features (s = 1 .. f-1; none and all are
        # the base value and the prediction).
        known = ranks[:, :, None, :] < np.arange(1, f)[:, None]  # (n, perm, f-1, f)
        raw_clean = None
        if any(p.matrices is None for p in parts):
            # Every masked row starts as the row itself (unused columns included), then takes
            # the baseline row's value in each used column not yet switched.
            masked = np.broadcast_to(
                x[:, None, None, None, :], (n, n_perm, f - 1, k, len(self.columns))
            ).copy()
            masked[..., used] = np.where(
                known[:, :, :, None, :],
                x[:, None, None, None, used],
                bg[None, None, None][..., used],
            )
            frame = pd.DataFrame(
                np.concatenate([x, masked.reshape(-1, len(self.columns))]),
                columns=self.columns,
                dtype=object,
            )
            raw_clean = self._clean(frame)
        for out, part in zip(outs, parts, strict=True):
            if part.matrices is None:
                predicted = part.predict(raw_clean)
            else:
                predicted = self._matrix_predict(part, rows_clean, known, matrices)
            m = predicted.shape[1]
            assert part.base is not None
            values = np.empty((n, n_perm, f + 1, m))
            values[:, :, 0] = part.base
            values[:, :, f] = predicted[:n][:, None, :]
            if f > 1:
                middle = predicted[n:].reshape(n, n_perm, f - 1, k, m).mean(axis=3)
                values[:, :, 1:f] = middle
            gains = np.diff(values, axis=2)  # (n, perm, f, m): the gain of orders[..., s]
            phi = np.zeros((n, f, m))
            for p in range(n_perm):
                np.add.at(phi, (np.arange(n)[:, None], orders[:, p]), gains[:, p])
            out[:, used, :] = phi / n_perm
        return outs

    def clean(self, rows: pd.DataFrame) -> Any:
        """``rows`` read by the model's cleaner, strictly (what :meth:`explain` takes as
        ``clean``, and the model's ``predict_clean``)."""
        return self._clean(rows[self.columns])

    def explain(
        self, rows: pd.DataFrame, clean: Any = None, matrices: dict[int, Any] | None = None
    ) -> RowExplanation:
        """The SHAP values of ``rows`` (raw input rows, as the model predicts them). A caller
        that predicted them already may pass what it computed on the way: ``clean``, the rows
        through :meth:`clean`, and ``matrices``, the cleaned rows through each model's pipeline
        by ``id`` of the pipeline (both as ``InferenceModel.predict_clean`` uses them)."""
        n = len(rows)
        if clean is None:
            clean, matrices = self.clean(rows), None
        # The rows through each pipeline, computed once for all the parts.
        matrices = {} if matrices is None else matrices
        values = np.zeros((n, len(self.columns), len(self.keys)))
        base = np.zeros(len(self.keys))
        sampled = [p for p in self._parts if p.trees is None]
        if sampled:
            for part, phi in zip(
                sampled,
                self._permutation_values(sampled, rows, self.seed, clean, matrices),
                strict=True,
            ):
                assert part.base is not None
                values += part.weight * phi
                base += part.weight * part.base
        trees = [p for p in self._parts if p.trees is not None]
        if trees:
            for part in trees:
                assert part.trees is not None
                phi, b = self._tree_values(part.trees, clean, matrices)
                values += part.weight * phi
                base += part.weight * b
        predictions = base[None, :] + values.sum(axis=1)
        if self.use_logit:
            p = np.clip(predictions, _CLIP, 1 - _CLIP)
            b = np.clip(base, _CLIP, 1 - _CLIP)
            logit_p, logit_b = np.log(p / (1 - p)), np.log(b / (1 - b))
            slope = np.broadcast_to(1.0 / (b * (1 - b)), p.shape)
            values = _rescale(values, logit_p - logit_b[None, :], slope)
            base, predictions = logit_b, logit_p
        return RowExplanation(values, base, predictions)
