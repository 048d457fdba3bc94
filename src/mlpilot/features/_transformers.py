"""Small transformers the preprocessing plan needs beyond scikit-learn's own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import normalize
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

__all__ = ["DatetimeParts", "TextColumn"]

_SECONDS_PER_DAY = 86_400.0


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Datetime columns → year, month, day, weekday, day of year, (hour), days since 1970."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> DatetimeParts:
        frame = pd.DataFrame(X)
        self.columns_ = list(frame.columns)
        self.with_hour_ = {
            c: bool((pd.to_datetime(frame[c]).dt.hour.fillna(0) != 0).any()) for c in self.columns_
        }
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        blocks = []
        for c in self.columns_:
            t = pd.to_datetime(frame[c])
            parts: list[pd.Series] = [
                t.dt.year,
                t.dt.month,
                t.dt.day,
                t.dt.day_of_week,
                t.dt.day_of_year,
            ]
            if self.with_hour_[c]:
                parts.append(t.dt.hour)
            epoch = (t - pd.Timestamp("1970-01-01")).dt.total_seconds() / _SECONDS_PER_DAY
            parts.append(epoch)
            blocks.append(
                np.column_stack([p.to_numpy(dtype="float64", na_value=np.nan) for p in parts])
            )
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = []
        for c in self.columns_:
            parts = ["year", "month", "day", "weekday", "dayofyear"]
            if self.with_hour_[c]:
                parts.append("hour")
            parts.append("days")
            names += [f"{c}__{p}" for p in parts]
        return np.asarray(names, dtype=object)


class TextColumn(TransformerMixin, BaseEstimator):
    """One text column → TF-IDF, optionally reduced to dense SVD components.

    ``svd_components=0`` keeps the sparse TF-IDF matrix (linear models thrive on it); a positive
    number gives a dense block that tree models and the MLP can use.
    """

    def __init__(self, max_features: int = 20_000, svd_components: int = 0, seed: int = 0) -> None:
        self.max_features = max_features
        self.svd_components = svd_components
        self.seed = seed

    def _column(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        return frame.iloc[:, 0].astype("string").fillna("").astype(object).to_numpy()

    def fit(self, X: Any, y: Any = None) -> TextColumn:
        # Loaded on first use: only text columns need them, and every worker imports this module.
        from sklearn.feature_extraction.text import TfidfVectorizer

        text = self._column(X)
        self.name_ = str(pd.DataFrame(X).columns[0])
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=(1, 2),
            min_df=2 if len(text) >= 50 else 1,
            sublinear_tf=True,
            dtype=np.float32,
        )
        tfidf = self.vectorizer_.fit_transform(text)
        self.svd_ = None
        if self.svd_components:
            from sklearn.decomposition import TruncatedSVD

            k = max(1, min(self.svd_components, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
            self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed).fit(tfidf)
        return self

    def transform(self, X: Any) -> Any:
        tfidf = self.vectorizer_.transform(self._column(X))
        return self.svd_.transform(tfidf) if self.svd_ is not None else tfidf

    def transform_texts(self, texts: np.ndarray) -> Any:
        """:meth:`transform` of a few documents already read as text (the cleaner's column),
        without scikit-learn's per-call validation: the same counting, TF-IDF weighting, L2
        normalization (scikit-learn's own kernel) and SVD product, in the same float32
        arithmetic, so the values are those :meth:`transform` gives."""
        if not all(
            isinstance(doc, str) for doc in texts
        ):  # missing values, numbers: as fit read them
            texts = self._column(pd.DataFrame({self.name_: texts}))
        vectorizer = self.vectorizer_
        analyze = self.__dict__.get("_analyze")
        if analyze is None:  # built once per loaded model (not pickled, see __getstate__)
            analyze = self.__dict__["_analyze"] = vectorizer.build_analyzer()
        vocabulary = vectorizer.vocabulary_
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for doc in texts:
            counter: dict[int, int] = {}
            for feature in analyze(doc):
                j = vocabulary.get(feature)
                if j is not None:
                    counter[j] = counter.get(j, 0) + 1
            for j in sorted(counter):
                indices.append(j)
                counts.append(counter[j])
            indptr.append(len(indices))
        data = np.asarray(counts, dtype=vectorizer.dtype)
        columns = np.asarray(indices, dtype=np.int32)
        if vectorizer.sublinear_tf:
            np.log(data, out=data)
            data += 1.0
        if vectorizer.use_idf:
            data *= vectorizer.idf_[columns]
        tfidf = sparse.csr_array(
            (data, columns, np.asarray(indptr, dtype=np.int32)),
            shape=(len(indptr) - 1, len(vocabulary)),
        )
        if vectorizer.norm == "l2":
            inplace_csr_row_normalize_l2(tfidf)
        elif vectorizer.norm is not None:
            tfidf = normalize(tfidf, norm=vectorizer.norm, copy=False)
        return tfidf @ self.svd_.components_.T if self.svd_ is not None else tfidf

    def __getstate__(self) -> dict[str, Any]:
        # A copy: scikit-learn's may be the live __dict__, whose cache must stay.
        return {k: v for k, v in super().__getstate__().items() if k != "_analyze"}

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if self.svd_ is not None:
            n = self.svd_.n_components
            return np.asarray([f"{self.name_}__svd{i}" for i in range(n)], dtype=object)
        words = self.vectorizer_.get_feature_names_out()
        return np.asarray([f"{self.name_}__{w}" for w in words], dtype=object)
