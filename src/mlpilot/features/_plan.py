"""The preprocessing plan: which scikit-learn transformer each feature column goes through.

A plan is chosen per candidate from :class:`PreprocessingOptions` (tree models want ordinal
categories and raw numbers; linear models and the MLP want one-hot categories, imputed and scaled
numbers). The result is a :class:`FeaturePipeline`: the table cleaner followed by a
``ColumnTransformer``, plus what the model needs to know about the matrix it produces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)

from mlpilot.features._clean import TableCleaner
from mlpilot.features._fast import build_fast_transform
from mlpilot.features._transformers import DatetimeParts, TextColumn
from mlpilot.profile import ColumnKind, DatasetProfile

__all__ = ["FeaturePipeline", "PreprocessingOptions"]

#: Up to this many rows, a fitted pipeline transforms through its NumPy twin (features._fast).
FAST_ROWS = 64
#: Codes an ordinal-encoded category takes for "unseen at training" and "missing".
UNKNOWN_CODE, MISSING_CODE = -1, -2


@dataclass(frozen=True)
class PreprocessingOptions:
    """How a candidate's features are prepared (one "data processing pipeline", dpp).

    Attributes
    ----------
    categorical:
        ``"ordinal"`` codes (tree models; the model is told which columns are categorical) or
        ``"onehot"`` indicator columns (linear models, MLP).
    high_cardinality:
        Encoding for categoricals with more levels than ``max_onehot_levels``: ``"target"``
        (cross-fitted target encoding) or ``"ordinal"``.
    numeric_scaling:
        ``"none"``, ``"standard"`` or ``"quantile"`` (to a normal distribution).
    impute:
        Median-impute numbers and add missing-value indicators (models that cannot take NaN).
    text_svd:
        0 keeps TF-IDF sparse; ``k > 0`` reduces each text column to ``k`` dense components.
    """

    categorical: Literal["ordinal", "onehot"] = "ordinal"
    high_cardinality: Literal["target", "ordinal"] = "target"
    numeric_scaling: Literal["none", "standard", "quantile"] = "none"
    impute: bool = False
    text_svd: int = 64
    max_onehot_levels: int = 64
    text_max_features: int = 20_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> PreprocessingOptions:
        return replace(self, **changes)

    def describe(self) -> list[str]:
        """The steps in words, for the leaderboard and the candidate notebook."""
        steps = [
            "categorical: one-hot" if self.categorical == "onehot" else "categorical: ordinal codes"
        ]
        if self.high_cardinality == "target":
            steps.append(f"categorical > {self.max_onehot_levels} levels: target encoding")
        if self.impute:
            steps.append("numeric: median imputation + missing indicators")
        if self.numeric_scaling != "none":
            steps.append(f"numeric: {self.numeric_scaling} scaling")
        steps.append("text: TF-IDF" + (f" + SVD({self.text_svd})" if self.text_svd else ""))
        steps.append("datetime: calendar parts")
        return steps


class _ToFloat32(TransformerMixin, BaseEstimator):
    def fit(self, X: Any, y: Any = None) -> _ToFloat32:
        return self

    def transform(self, X: Any) -> Any:
        return X.astype(np.float32) if sparse.issparse(X) else np.asarray(X, dtype=np.float32)


class FeaturePipeline(TransformerMixin, BaseEstimator):
    """Cleaner + column transformer for one candidate.

    After ``fit``: ``categorical_features_`` (matrix columns holding ordinal category codes),
    ``category_cardinalities_`` and ``feature_names_out_``.
    """

    def __init__(
        self,
        profile_columns: list[dict[str, Any]] | None = None,
        options: PreprocessingOptions | None = None,
        problem_type: str = "Regression",
        seed: int = 0,
    ) -> None:
        self.profile_columns = profile_columns
        self.options = options
        self.problem_type = problem_type
        self.seed = seed

    @classmethod
    def from_profile(
        cls, profile: DatasetProfile, options: PreprocessingOptions, seed: int = 0
    ) -> FeaturePipeline:
        columns = [
            {
                "name": c.name,
                "kind": c.kind,
                "zero_means_missing": c.zero_means_missing,
                "missing_tokens": list(c.missing_tokens),
                "n_unique": c.n_unique,
                "text_char_ngrams": c.text_char_ngrams,
                "text_embedding": c.text_embedding,
            }
            for c in profile.columns
            if c.kind != ColumnKind.DROP
        ]
        return cls(columns, options, profile.problem_type.value, seed)

    def _build(self) -> ColumnTransformer:
        opts = self.options or PreprocessingOptions()
        cols = self.profile_columns or []
        of = {kind: [c for c in cols if c["kind"] == kind] for kind in ColumnKind.ALL}
        high = [
            c["name"] for c in of[ColumnKind.CATEGORICAL] if c["n_unique"] > opts.max_onehot_levels
        ]
        low = [c["name"] for c in of[ColumnKind.CATEGORICAL] if c["name"] not in high]
        if opts.high_cardinality == "ordinal" and opts.categorical == "ordinal":
            low, high = low + high, []
        parts: list[tuple[str, Any, Any]] = []
        # Ordinal blocks come first so their matrix positions are known (categorical_features_).
        if low and opts.categorical == "ordinal":
            parts.append(("cat", self._ordinal(), low))
        if high and opts.high_cardinality == "ordinal":
            parts.append(("cat_high", self._ordinal(), high))
        numeric = [c["name"] for c in of[ColumnKind.NUMERIC]]
        if numeric:
            parts.append(("num", self._numeric(opts), numeric))
        if low and opts.categorical == "onehot":
            parts.append(
                (
                    "onehot",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        min_frequency=5,
                        max_categories=opts.max_onehot_levels,
                        sparse_output=False,
                        dtype=np.float32,
                    ),
                    low,
                )
            )
        if high and opts.high_cardinality == "target":
            target_type = "continuous" if self.problem_type == "Regression" else "auto"
            # Plain K-fold: stratifying would fail on classes with fewer members than folds.
            folds = KFold(5, shuffle=True, random_state=self.seed)
            encoder = TargetEncoder(target_type=target_type, cv=folds)
            steps: list[Any] = [encoder]
            if opts.numeric_scaling != "none":
                steps.append(StandardScaler())
            parts.append(("target_enc", make_pipeline(*steps), high))
        dates = [c["name"] for c in of[ColumnKind.DATETIME]]
        if dates:
            steps = [DatetimeParts()]
            if opts.impute:
                steps.append(SimpleImputer(strategy="median", keep_empty_features=True))
            if opts.numeric_scaling != "none":
                steps.append(StandardScaler())
            parts.append(("dates", make_pipeline(*steps), dates))
        for c in of[ColumnKind.TEXT]:
            text = TextColumn(
                opts.text_max_features,
                opts.text_svd,
                self.seed,
                char_ngrams=bool(c.get("text_char_ngrams")),
                embedding=c.get("text_embedding"),
            )
            parts.append((f"text_{c['name']}", text, [c["name"]]))
        return ColumnTransformer(
            parts,
            remainder="drop",
            sparse_threshold=0.3 if opts.text_svd == 0 else 0.0,
            verbose_feature_names_out=False,
        )

    @staticmethod
    def _ordinal() -> OrdinalEncoder:
        return OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=UNKNOWN_CODE,
            encoded_missing_value=MISSING_CODE,
            dtype=np.float64,
        )

    @staticmethod
    def _numeric(opts: PreprocessingOptions) -> Any:
        steps: list[Any] = []
        if opts.impute:
            steps.append(
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
            )
        if opts.numeric_scaling == "standard":
            steps.append(StandardScaler())
        elif opts.numeric_scaling == "quantile":
            steps.append(
                QuantileTransformer(
                    output_distribution="normal", n_quantiles=256, subsample=200_000, random_state=0
                )
            )
        return make_pipeline(*steps) if steps else "passthrough"

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeaturePipeline:
        self.fit_transform(X, y)
        return self

    def make_cleaner(self) -> TableCleaner:
        return TableCleaner(
            [
                {k: c.get(k) for k in ("name", "kind", "zero_means_missing", "missing_tokens")}
                for c in self.profile_columns or []
            ]
        ).fit(None)

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **_: Any) -> Any:
        self.cleaner_ = self.make_cleaner()
        return self.fit_transform_clean(self.cleaner_.transform(X), y)

    def fit_transform_clean(self, clean: pd.DataFrame, y: Any = None) -> Any:
        """Fit on a table the cleaner already typed (workers clean once per dataset)."""
        if not hasattr(self, "cleaner_"):
            self.cleaner_ = self.make_cleaner()
        self.columns_ = self._build()
        out = self.columns_.fit_transform(clean, y)
        self._describe_output()
        self.fast_ = build_fast_transform(self.columns_, clean, self.columns_.transform)
        return _ToFloat32().transform(out)

    def transform_clean(self, clean: pd.DataFrame | dict[str, np.ndarray]) -> Any:
        """The model's matrix from typed rows (a DataFrame, or the cleaner's column arrays)."""
        # A few rows (online prediction): the NumPy twin, without scikit-learn's per-call checks.
        fast = getattr(self, "fast_", None)
        n = len(next(iter(clean.values()))) if isinstance(clean, dict) and clean else len(clean)
        if fast is not None and n <= FAST_ROWS:
            return fast.transform(clean)
        if isinstance(clean, dict):
            clean = pd.DataFrame(clean)
        return _ToFloat32().transform(self.columns_.transform(clean))

    def transform_coded(self, clean: dict[str, Any]) -> np.ndarray | None:
        """The model's matrix from rows ``TableCleaner.transform_coded`` typed, through the NumPy
        twin, when every block of it computes what scikit-learn computes; else None (the caller
        materializes the columns and uses :meth:`transform_clean`)."""
        fast = getattr(self, "fast_", None)
        if fast is None or not clean:
            return None
        return fast.transform_coded(clean, len(next(iter(clean.values()))))

    def _describe_output(self) -> None:
        self.feature_names_out_ = [str(n) for n in self.columns_.get_feature_names_out()]
        cat_positions: list[int] = []
        cardinalities: list[int] = []
        for name, transformer, _ in self.columns_.transformers_:
            if name not in ("cat", "cat_high"):
                continue
            start = self.columns_.output_indices_[name].start
            for i, cats in enumerate(transformer.categories_):
                cat_positions.append(start + i)
                cardinalities.append(len(cats))
        self.categorical_features_ = cat_positions
        self.category_cardinalities_ = cardinalities

    def transform(self, X: pd.DataFrame, strict: bool = False) -> Any:
        return self.transform_clean(self.cleaner_.transform(X, strict=strict))

    def output_sources(self) -> list[str]:
        """The input column behind each column of the transformed matrix, so that attributions
        to one-hot, indicator, date-part or text columns add up per original feature."""
        sources: list[str] = []
        for name, transformer, columns in self.columns_.transformers_:
            block = self.columns_.output_indices_.get(name, slice(0, 0))
            width = block.stop - block.start
            if width == 0 or name == "remainder":
                continue
            inputs = [str(c) for c in columns]
            if len(inputs) == 1:
                sources += inputs * width
                continue
            names = (
                inputs
                if transformer == "passthrough"
                else [str(n) for n in transformer.get_feature_names_out(inputs)]
            )
            sources += [_source_of(n, inputs) for n in names]
        if len(sources) != len(self.feature_names_out_):
            raise RuntimeError("the transformed columns could not be traced to their inputs")
        return sources

    def check_input(self, X: pd.DataFrame) -> None:
        self.cleaner_.check_input(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)


def _source_of(output: str, inputs: list[str]) -> str:
    """The input an output column of a multi-column block came from: the same name, or the
    longest input name it extends (``Contract_One year``, ``missingindicator_tenure``,
    ``date__month``, a class-wise target encoding ``city_2``)."""
    if output in inputs:
        return output
    stripped = output.removeprefix("missingindicator_")
    if stripped in inputs:
        return stripped
    owners = [c for c in inputs if stripped.startswith(c + "_")]
    if not owners:
        raise RuntimeError(f"cannot trace output column {output!r} to an input column")
    return max(owners, key=len)
