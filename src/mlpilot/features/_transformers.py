"""Small transformers the preprocessing plan needs beyond scikit-learn's own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import normalize
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from mlpilot.features._clean import text_values

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
    """One text column → TF-IDF (word n-grams, and character n-grams when asked), optionally
    reduced to dense SVD components, and optionally followed by sentence embeddings.

    ``svd_components=0`` keeps the sparse TF-IDF matrix (linear models thrive on it); a positive
    number gives a dense block that tree models and the MLP can use. ``char_ngrams`` adds
    TF-IDF of 2-5 character n-grams within word boundaries (robust to misspellings and
    inflections: a text job's). ``embedding`` names an encoder (:mod:`mlpilot.features._embed`)
    whose vectors follow the TF-IDF block.
    """

    def __init__(
        self,
        max_features: int = 20_000,
        svd_components: int = 0,
        seed: int = 0,
        char_ngrams: bool = False,
        embedding: str | None = None,
    ) -> None:
        self.max_features = max_features
        self.svd_components = svd_components
        self.seed = seed
        self.char_ngrams = char_ngrams
        self.embedding = embedding

    def _column(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        return text_values(frame.iloc[:, 0])

    def fit(self, X: Any, y: Any = None) -> TextColumn:
        # Loaded on first use: only text columns need them, and every worker imports this module.
        from sklearn.feature_extraction.text import TfidfVectorizer

        text = self._column(X)
        self.name_ = str(pd.DataFrame(X).columns[0])
        min_df = 2 if len(text) >= 50 else 1
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=(1, 2),
            min_df=min_df,
            sublinear_tf=True,
            dtype=np.float32,
        )
        tfidf = self.vectorizer_.fit_transform(text)
        self.char_vectorizer_ = None
        if self.char_ngrams:
            self.char_vectorizer_ = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=(2, 5),
                max_features=self.max_features,
                min_df=min_df,
                sublinear_tf=True,
                dtype=np.float32,
            )
            chars = self.char_vectorizer_.fit_transform(text)
            tfidf = sparse.hstack([tfidf, chars], format="csr")
        self.svd_ = None
        if self.svd_components:
            from sklearn.decomposition import TruncatedSVD

            k = max(1, min(self.svd_components, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
            self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed).fit(tfidf)
            # float32 like the TF-IDF it multiplies: half the package, the same features.
            self.svd_.components_ = self.svd_.components_.astype(np.float32)
        self.embedding_dim_ = 0
        if self.embedding:
            self.embedding_dim_ = self._embed(text[:1]).shape[1]
        return self

    def _embed(self, texts: Any) -> np.ndarray:
        from mlpilot.features._embed import encode

        assert self.embedding is not None
        return encode(self.embedding, list(texts))

    def _finish(self, tfidf: Any, texts: Any) -> Any:
        """The TF-IDF rows reduced (SVD) and followed by the embeddings, as fitted."""
        out = tfidf @ self.svd_.components_.T if self.svd_ is not None else tfidf
        if not getattr(self, "embedding", None):
            return out
        vectors = self._embed(texts)
        if sparse.issparse(out):
            return sparse.hstack([out, sparse.csr_array(vectors)], format="csr")
        return np.hstack([np.asarray(out, dtype=np.float32), vectors])

    def transform(self, X: Any) -> Any:
        text = self._column(X)
        tfidf = self.vectorizer_.transform(text)
        chars = getattr(self, "char_vectorizer_", None)  # absent from models of before
        if chars is not None:
            tfidf = sparse.hstack([tfidf, chars.transform(text)], format="csr")
        return self._finish(tfidf, text)

    def transform_texts(self, texts: np.ndarray) -> Any:
        """:meth:`transform` of a few documents already read as text (the cleaner's column),
        without scikit-learn's per-call validation: the same counting, TF-IDF weighting, L2
        normalization (scikit-learn's own kernel) and SVD product, in the same float32
        arithmetic, so the values are those :meth:`transform` gives."""
        if not all(
            isinstance(doc, str) for doc in texts
        ):  # missing values, numbers: as fit read them
            texts = self._column(pd.DataFrame({self.name_: texts}))
        tfidf = _tfidf_rows(self.vectorizer_, self._analyzer("_analyze", self.vectorizer_), texts)
        chars = getattr(self, "char_vectorizer_", None)
        if chars is not None:
            extra = _tfidf_rows(chars, self._analyzer("_analyze_chars", chars), texts)
            tfidf = sparse.hstack([tfidf, extra], format="csr")
        return self._finish(tfidf, texts)

    def _analyzer(self, key: str, vectorizer: Any) -> Any:
        analyze = self.__dict__.get(key)
        if analyze is None:  # built once per loaded model (not pickled, see __getstate__)
            analyze = self.__dict__[key] = vectorizer.build_analyzer()
        return analyze

    def __getstate__(self) -> dict[str, Any]:
        # A copy: scikit-learn's may be the live __dict__, whose caches must stay.
        return {
            k: v
            for k, v in super().__getstate__().items()
            if k not in ("_analyze", "_analyze_chars")
        }

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if self.svd_ is not None:
            n = self.svd_.n_components
            names = [f"{self.name_}__svd{i}" for i in range(n)]
        else:
            names = [f"{self.name_}__{w}" for w in self.vectorizer_.get_feature_names_out()]
            chars = getattr(self, "char_vectorizer_", None)
            if chars is not None:
                names += [f"{self.name_}__c:{c}" for c in chars.get_feature_names_out()]
        names += [f"{self.name_}__emb{i}" for i in range(getattr(self, "embedding_dim_", 0))]
        return np.asarray(names, dtype=object)


def _tfidf_rows(vectorizer: Any, analyze: Any, texts: Any) -> Any:
    """A fitted TfidfVectorizer's rows for ``texts``, computed as it computes them."""
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
    return tfidf
