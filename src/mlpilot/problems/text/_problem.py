"""Text classification: one text column, one label column.

A text job is a table job with one feature, so it shares the tabular problem's folds, candidates,
stacking, packages, endpoints and white box; what it adds is how the text becomes features.
Every candidate's text block carries TF-IDF of word 1-2-grams and of character 2-5-grams
(sparse for the linear models, reduced by SVD for trees and networks), followed by the
sentence embeddings of a small encoder when its package is installed. The embeddings are
computed once, here, for the whole table and handed to the workers with the prepared data;
when the encoder would take more than a share of the budget, the job goes on without them and
says so.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.config import TabularConfig, TextClassificationConfig
from mlpilot.errors import ConfigError, DataError
from mlpilot.features import SentenceEncoder, encode_texts, encoder_unavailable, text_values
from mlpilot.problems._protocol import Analysis, JobSession
from mlpilot.problems.tabular import TabularProblem
from mlpilot.profile import ColumnKind, ColumnProfile, DatasetProfile
from mlpilot.search import Portfolio

__all__ = ["TextClassificationProblem"]

#: Share of the job's budget the sentence embeddings may take at most (estimated first).
EMBEDDING_SHARE = 0.3
#: Distinct texts encoded first, to time the encoder before committing to the rest.
PROBE_TEXTS = 64
#: Character n-grams are counted only when the table holds at most this many characters of
#: text: each fold fits its own TF-IDF, and on long documents the character vectorizer takes
#: most of a candidate's time (1,424 news articles of 2,170 characters: 8.7 s against 2.0 s
#: for the words, on two busy cores) for little gain over their words.
CHAR_NGRAM_CHARACTERS = 2_000_000
#: What ENSEMBLING trains for a text job (see the file's ``about``).
PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")


@functools.cache
def text_portfolio() -> Portfolio:
    """The text portfolio, checked as a given portfolio is."""
    return Portfolio.parse(PORTFOLIO_FILE.read_bytes(), str(PORTFOLIO_FILE))


class TextClassificationProblem(TabularProblem):
    """Binary or multiclass classification of documents (``TextClassificationJobConfig``)."""

    config_name: ClassVar[str] = "TextClassification"
    # A text job's features are thousands of TF-IDF columns and embeddings: a stacker reading
    # them relearns what the base models learned, at the final phase's expense (LightGBM's
    # took 23 s of a 300 s sentences job, and scored below the linear stacker on the
    # predictions alone: 0.9025 against 0.9133).
    stack_features: ClassVar[bool] = False

    def analyse(self, session: JobSession) -> Analysis:
        analysis = super().analyse(session)
        # AutoMLProblemTypeResolvedAttributes has no member for text classification: the
        # resolved problem type goes in mlpilot's own block.
        analysis.summary["ProblemType"] = analysis.resolved.pop("ProblemType")
        return analysis

    def check_columns(self, spec: TabularConfig, table: pd.DataFrame) -> None:
        assert isinstance(spec, TextClassificationConfig)
        if spec.content_column not in table.columns:
            raise DataError(
                f"Content column {spec.content_column!r} is not in the data; columns are: "
                f"{', '.join(map(str, table.columns[:30]))}"
            )

    def default_objective(self, problem_type: ProblemType) -> str:
        return "Accuracy"

    def default_portfolio(self) -> Portfolio:
        return text_portfolio()

    def text_features(
        self, session: JobSession, table: pd.DataFrame, profile: DatasetProfile
    ) -> dict[str, tuple[str, np.ndarray]] | None:
        spec = session.config.problem_as(TextClassificationConfig)
        if not profile.problem_type.is_classification:
            raise ConfigError(
                f"A text classification job's label column {spec.target!r} must hold classes; "
                "it was read as a regression target"
            )
        column = next(c for c in profile.columns if c.name == spec.content_column)
        if column.kind != ColumnKind.TEXT:
            raise ConfigError(f"The content column {spec.content_column!r} is not text")
        texts = text_values(table[column.name])
        if not any(t.strip() for t in texts):
            raise ConfigError(f"The content column {spec.content_column!r} is empty in every row")
        characters = sum(len(t) for t in texts)
        column.text_char_ngrams = characters <= CHAR_NGRAM_CHARACTERS
        if not column.text_char_ngrams:
            profile.notes.append(
                f"text: word n-grams only, no character n-grams: {characters:,} characters of "
                f"text (over {CHAR_NGRAM_CHARACTERS:,}) would cost each fold's TF-IDF more "
                "time than they add (long documents carry their words many times)"
            )
        vectors = self._embeddings(session, spec, texts, profile, column)
        if vectors is None:
            return None
        assert spec.text_encoder is not None
        column.text_embedding = spec.text_encoder
        return {column.name: (spec.text_encoder, vectors)}

    def _embeddings(
        self,
        session: JobSession,
        spec: TextClassificationConfig,
        texts: np.ndarray,
        profile: DatasetProfile,
        column: ColumnProfile,
    ) -> np.ndarray | None:
        name = spec.text_encoder
        if name is None:
            profile.notes.append("text: TF-IDF only (no sentence encoder was asked for)")
            return None
        reason = encoder_unavailable(name)
        if reason is not None:
            profile.notes.append(f"text: TF-IDF only, without sentence embeddings: {reason}")
            return None
        started = time.monotonic()
        distinct = list(dict.fromkeys(texts))
        SentenceEncoder.get(name)
        # Time a sample spread over the table, then judge the rest against the budget.
        probe = distinct[:: max(1, len(distinct) // PROBE_TEXTS)][:PROBE_TEXTS]
        probe_started = time.monotonic()
        encode_texts(name, probe)
        per_text = (time.monotonic() - probe_started) / max(1, len(probe))
        needed = per_text * (len(distinct) - len(probe))
        total = session.budget.total
        if total is not None and (time.monotonic() - started) + needed > EMBEDDING_SHARE * total:
            profile.notes.append(
                f"text: TF-IDF only: {name} sentence embeddings of {len(distinct):,} distinct "
                f"texts would take about {needed:.0f} s more ({per_text * 1000:.0f} ms each), "
                f"over {EMBEDDING_SHARE:.0%} of the {total:g} s budget"
            )
            return None
        vectors = encode_texts(name, texts)
        grams = "word and character n-grams" if column.text_char_ngrams else "word n-grams"
        profile.notes.append(
            f"text: TF-IDF of {grams}, and {name} sentence embeddings "
            f"({vectors.shape[1]} dimensions) of {len(distinct):,} distinct texts in "
            f"{time.monotonic() - started:.1f} s"
        )
        return vectors
