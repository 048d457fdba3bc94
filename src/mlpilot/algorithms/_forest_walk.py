"""A fitted scikit-learn forest's trees laid out as one set of node arrays, walked by compiled
loops: prediction of a few rows without scikit-learn's per-tree Python overhead, and exact
interventional TreeSHAP against baseline rows.

Prediction repeats scikit-learn's arithmetic step for step (rows compared as float32, the
leaves' class fractions or values added tree by tree from zero, the sum divided by the number of
trees), so its results are bit-identical to the forest's own.

Interventional TreeSHAP: for a row ``x`` and a baseline row ``z`` the game is
``v(S) = forest(x on the players in S, z elsewhere)``, players being groups of matrix columns
(the columns one input column became). A tree is walked once for both rows: where they go the
same way there is one branch; where they part on a player not yet decided there are two, the
player following ``x`` on one and ``z`` on the other; a player decided earlier keeps its side.
A leaf reached with ``a`` players on ``x``'s side and ``b`` on ``z``'s adds
``value / (a·C(a+b, a))`` to each of the former and subtracts ``value / (b·C(a+b, b))`` from
each of the latter: the Shapley values of the leaf's reachability game, exact. A row's values
add up to ``forest(x) - forest(z)``; several baseline rows are averaged. The cost is the
nodes both rows reach, typically tens per tree, not the tree's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["FlatForest"]


def _compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled by numba on its first call, from numba's on-disk cache when one is
    writable (else compiled once per process)."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # no writable cache location
        return numba.njit(nogil=True)(function)


def _walk_loop(
    x: Any,
    left: Any,
    right: Any,
    feature: Any,
    threshold: Any,
    missing_left: Any,
    roots: Any,
    values: Any,
    out: Any,
) -> None:
    n = x.shape[0]
    k = values.shape[1]
    for t in range(roots.shape[0]):
        for i in range(n):
            node = roots[t]
            while left[node] != -1:
                v = x[i, feature[node]]
                # NaN (v != v) goes the side the tree sends missing values.
                go_left = missing_left[node] != 0 if v != v else v <= threshold[node]
                node = left[node] if go_left else right[node]
            for j in range(k):
                out[i, j] += values[node, j]


def _shap_loop(
    x: Any,
    z: Any,
    groups: Any,
    n_players: Any,
    left: Any,
    right: Any,
    feature: Any,
    threshold: Any,
    missing_left: Any,
    roots: Any,
    values: Any,
    w_x: Any,
    w_z: Any,
    depth: Any,
    phi: Any,
) -> None:
    k = values.shape[1]
    size = 2 * depth + 4
    s_node = np.empty(size, np.int64)
    s_level = np.empty(size, np.int64)
    s_player = np.empty(size, np.int64)
    s_side = np.empty(size, np.int8)
    side = np.zeros(n_players, np.int8)  # 0 undecided, 1 follows x, 2 follows z
    decided = np.empty(depth + 1, np.int64)
    for i in range(x.shape[0]):
        for r in range(z.shape[0]):
            for t in range(roots.shape[0]):
                s_node[0] = roots[t]
                s_level[0] = 0
                s_player[0] = -1
                s_side[0] = 0
                top = 1
                level = 0
                on_x = 0
                on_z = 0
                while top > 0:
                    top -= 1
                    node = s_node[top]
                    while level > s_level[top]:  # undo the decisions of the branch left
                        level -= 1
                        p = decided[level]
                        if side[p] == 1:
                            on_x -= 1
                        else:
                            on_z -= 1
                        side[p] = 0
                    p = s_player[top]
                    if p >= 0:
                        side[p] = s_side[top]
                        decided[level] = p
                        level += 1
                        if s_side[top] == 1:
                            on_x += 1
                        else:
                            on_z += 1
                    if left[node] == -1:
                        if level == 0:
                            continue  # both rows' own leaf: the same value, no player's
                        gain = w_x[on_x, on_z]
                        loss = w_z[on_x, on_z]
                        for d in range(level):
                            q = decided[d]
                            if side[q] == 1:
                                for j in range(k):
                                    phi[i, q, j] += values[node, j] * gain
                            else:
                                for j in range(k):
                                    phi[i, q, j] -= values[node, j] * loss
                        continue
                    f = feature[node]
                    xv = x[i, f]
                    zv = z[r, f]
                    x_left = (missing_left[node] != 0) if xv != xv else xv <= threshold[node]
                    z_left = (missing_left[node] != 0) if zv != zv else zv <= threshold[node]
                    x_child = left[node] if x_left else right[node]
                    z_child = left[node] if z_left else right[node]
                    g = groups[f]
                    if x_left == z_left or side[g] == 1:
                        s_node[top], s_player[top] = x_child, -1
                    elif side[g] == 2:
                        s_node[top], s_player[top] = z_child, -1
                    else:
                        s_node[top], s_player[top], s_side[top] = z_child, g, 2
                        s_level[top] = level
                        top += 1
                        s_node[top], s_player[top], s_side[top] = x_child, g, 1
                    s_level[top] = level
                    top += 1
                for d in range(level):  # the last branch's decisions
                    side[decided[d]] = 0


_WALK: Callable[..., Any] | None = None
_SHAP: Callable[..., Any] | None = None


def _walk() -> Callable[..., Any]:
    global _WALK
    if _WALK is None:
        _WALK = _compiled(_walk_loop)
    return _WALK


def _shap() -> Callable[..., Any]:
    global _SHAP
    if _SHAP is None:
        _SHAP = _compiled(_shap_loop)
    return _SHAP


def _shapley_weights(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """``w_x[a, b] = (a-1)! b! / (a+b)!`` and ``w_z[a, b] = a! (b-1)! / (a+b)!`` for
    ``a + b <= depth`` (what a leaf gives each player on ``x``'s and on ``z``'s side)."""
    w_x = np.zeros((depth + 1, depth + 1))
    w_z = np.zeros((depth + 1, depth + 1))
    for a in range(depth + 1):
        for b in range(depth + 1 - a):
            if a:
                w_x[a, b] = 1.0 / (a * math.comb(a + b, a))
            if b:
                w_z[a, b] = 1.0 / (b * math.comb(a + b, b))
    return w_x, w_z


class FlatForest:
    """The trees of a fitted ``RandomForest*``/``ExtraTrees*`` (one output), concatenated.

    ``n_classes``: the classifier's classes; None for a regressor."""

    def __init__(self, model: Any, n_classes: int | None) -> None:
        trees = [estimator.tree_ for estimator in model.estimators_]
        sizes = np.asarray([tree.node_count for tree in trees], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        lefts, rights, leaf_values, missing = [], [], [], []
        for tree, start in zip(trees, starts, strict=True):
            leaf = tree.children_left == -1
            lefts.append(np.where(leaf, -1, tree.children_left + start))
            rights.append(np.where(leaf, -1, tree.children_right + start))
            # A classifier's nodes hold class fractions (scikit-learn >= 1.4), which its
            # predict_proba returns as they are.
            value = tree.value[:, 0, : n_classes or 1]
            leaf_values.append(value)
            go_left = getattr(tree, "missing_go_to_left", None)
            missing.append(
                np.zeros(tree.node_count, np.uint8)
                if go_left is None
                else np.asarray(go_left, np.uint8)
            )
        # 32-bit node and column numbers: half the memory of int64 for the same walk.
        self.left = np.concatenate(lefts).astype(np.int32)
        self.right = np.concatenate(rights).astype(np.int32)
        self.feature = np.concatenate([tree.feature for tree in trees]).astype(np.int32)
        self.threshold = np.concatenate([tree.threshold for tree in trees]).astype(np.float64)
        self.missing_left = np.concatenate(missing)
        self.values = np.ascontiguousarray(np.concatenate(leaf_values), dtype=np.float64)
        self.roots = starts
        self.depth = max(int(tree.max_depth) for tree in trees)
        self.n_trees = len(trees)
        self.regression = n_classes is None

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self.left,
            self.right,
            self.feature,
            self.threshold,
            self.missing_left,
            self.roots,
            self.values,
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The forest's ``predict_proba`` (classifier) or ``predict`` (regressor) of dense
        ``X``, bit for bit."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        out = np.zeros((X32.shape[0], self.values.shape[1]))
        _walk()(X32, *self._arrays(), out)
        out /= self.n_trees
        return out[:, 0] if self.regression else out

    def interventional_shap(
        self, background: np.ndarray, groups: np.ndarray, n_players: int
    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Exact interventional TreeSHAP against the ``background`` rows (a matrix like the
        model's input): a function from dense rows to values ``(rows, n_players, outputs)``
        and the base value ``(outputs,)``, the mean prediction on the background; matrix column
        ``c`` belongs to player ``groups[c]``."""
        z = np.ascontiguousarray(background, dtype=np.float32)
        owners = np.ascontiguousarray(groups, dtype=np.int64)
        w_x, w_z = _shapley_weights(self.depth)
        base = np.atleast_2d(self.predict(z).reshape(len(z), -1)).mean(axis=0)
        shap = _shap()
        arrays = self._arrays()

        def values(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = np.ascontiguousarray(X, dtype=np.float32)
            phi = np.zeros((x.shape[0], n_players, self.values.shape[1]))
            shap(x, z, owners, n_players, *arrays, w_x, w_z, self.depth, phi)
            phi /= self.n_trees * len(z)
            return phi, base

        return values
