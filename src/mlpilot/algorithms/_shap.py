"""TreeSHAP helpers for the tree algorithms' ``tree_shap`` (shap is imported only when used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["dense", "shap_tree_explainer", "split_bias"]

TreeShap = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)


def split_bias(raw: np.ndarray, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, outputs × (columns + 1))`` contributions, bias last per output (the layout of
    LightGBM's and XGBoost's own ``pred_contrib``) → values ``(n, columns, outputs)`` and the
    expected value of each output."""
    outputs = raw.shape[1] // (n_columns + 1)
    blocks = raw.reshape(raw.shape[0], outputs, n_columns + 1)
    return np.moveaxis(blocks[:, :, :-1], 1, -1), blocks[0, :, -1]


def shap_tree_explainer(
    model: Any, prepare: Callable[[np.ndarray], Any] | None = None, **options: Any
) -> TreeShap:
    """``shap.TreeExplainer`` over ``model``, built once: ``prepare`` turns the dense matrix
    into the model's input, ``options`` go to ``shap_values``."""
    import shap

    explainer = shap.TreeExplainer(model)

    def tree_explainer(X: Any) -> tuple[np.ndarray, np.ndarray]:
        X = dense(X)
        values = np.asarray(
            explainer.shap_values(X if prepare is None else prepare(X), **options), dtype=float
        )
        if values.ndim == 3 and values.shape[0] != X.shape[0]:
            values = np.moveaxis(values, 0, -1)  # older shap: a list per output
        if values.ndim == 2:
            values = values[:, :, None]
        return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))

    return tree_explainer
