"""A portfolio document: the configurations ENSEMBLING trains, in order.

The shipped one is ``mlpilot/ensemble/portfolio.json``; a job can be given another in the same
format (``TabularConfig.portfolio``: the CLI's ``--portfolio``, the API's tag
``mlpilot:Portfolio``), for example one learned without the dataset it is run on
(``benchmarks/portfolio/build.py --lodo-dir``). It lives here, below both the job's config and
the ENSEMBLING code, because both read it: the config checks it once when the job is
specified, ENSEMBLING builds its plan from it.

The document: ``{"about": str, "datasets": [str], "entries": [entry, ...]}``, ``about`` and
``datasets`` (what it was learned from) optional. An entry: ``label`` (unique), ``algorithm`` (a
registered name), ``params`` (hyperparameters that differ from the algorithm's defaults), and
optionally ``classification`` / ``regression`` (parameters for that kind of problem only) and
the builder's statistics ``mean_normalized`` and ``relative_cost``. A hyperparameter is valid
when the algorithm's defaults have it, for every problem type the entry applies to: a model's
parameters are its defaults plus the entry's overrides.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpilot._types import ProblemType
from mlpilot.algorithms import algorithm_names, get_algorithm
from mlpilot.data import one_line, resolve_uri
from mlpilot.errors import ConfigError

__all__ = ["Portfolio"]

_KIND_KEYS = {
    "classification": (ProblemType.BINARY, ProblemType.MULTICLASS),
    "regression": (ProblemType.REGRESSION,),
}
_ENTRY_KEYS = {"label", "algorithm", "params", *_KIND_KEYS, "mean_normalized", "relative_cost"}
#: Rows the defaults are asked for: only their names matter here.
_ROWS = 1_000


@dataclass(frozen=True, eq=False)
class Portfolio:
    """A checked portfolio document and where it came from.

    ``location``: the file's absolute path or URI; ``sha256``: of the file's bytes, so a job's
    record names exactly the portfolio it trained.
    """

    document: dict[str, Any]
    location: str
    sha256: str

    @property
    def name(self) -> str:
        """The file's name (``abalone.json``)."""
        return self.location.rstrip("/").rsplit("/", 1)[-1]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self.document["entries"])

    @property
    def learned_from(self) -> list[str]:
        """The datasets it was learned from (its ``datasets`` field), if it says."""
        return list(self.document.get("datasets") or [])

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Its algorithms, in the order they first appear."""
        return tuple(dict.fromkeys(e["algorithm"] for e in self.document["entries"]))

    def summary(self) -> dict[str, Any]:
        """What the job record says about it (``Mlpilot.Portfolio``)."""
        return {
            "File": self.name,
            "Location": self.location,
            "Sha256": self.sha256,
            "Entries": len(self.document["entries"]),
            "LearnedFrom": self.learned_from,
        }

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, source: str | os.PathLike[str]) -> Portfolio:
        """Read and check the document at a local path, ``file://`` or ``s3://`` URI."""
        text = str(source)
        if "://" not in text:
            text = str(Path(text).expanduser().resolve())
        try:
            fs, path = resolve_uri(text)
            with fs.open(path, "rb") as handle:
                data = handle.read()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Portfolio {text}: cannot read it ({one_line(exc)})") from None
        return cls.parse(data, text)

    @classmethod
    def parse(cls, data: bytes, location: str) -> Portfolio:
        """Check the document ``data`` read from ``location``."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Portfolio {location}: not JSON ({one_line(exc)})") from None
        check_document(document, f"Portfolio {location}")
        return cls(document, location, hashlib.sha256(data).hexdigest())

    # -- the job's spec file ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "sha256": self.sha256, "document": self.document}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Portfolio:
        check_document(data["document"], f"Portfolio {data['location']}")
        return cls(data["document"], data["location"], data["sha256"])


def check_document(document: Any, source: str) -> None:
    """Raise a one-line :class:`ConfigError` naming what is wrong with a portfolio document."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a JSON object with 'entries'")
    unknown = sorted(set(document) - {"about", "datasets", "entries", "left_out"})
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
    entries = document.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: 'entries' must be a non-empty list of configurations")
    for key in ("datasets", "left_out"):
        names = document.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{source}: '{key}' must be a list of dataset names")
    labels: set[str] = set()
    for number, entry in enumerate(entries, 1):
        where = f"{source}: entry {number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected an object with label, algorithm and params")
        label = entry.get("label")
        if not isinstance(label, str) or not label:
            raise ConfigError(f"{where}: 'label' must be a non-empty string")
        where = f"{source}: entry {number} ({label})"
        if label in labels:
            raise ConfigError(f"{where}: the label is given twice; labels name one entry each")
        labels.add(label)
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown field(s) {', '.join(unknown)}; an entry has "
                f"{', '.join(sorted(_ENTRY_KEYS))}"
            )
        _check_entry(entry, where)


def _check_entry(entry: dict[str, Any], where: str) -> None:
    algorithm = entry.get("algorithm")
    # Registered names only: a portfolio file is data, and an import path would run its module.
    if algorithm not in algorithm_names():
        raise ConfigError(
            f"{where}: unknown algorithm {algorithm!r}; valid names: {', '.join(algorithm_names())}"
        )
    cls = get_algorithm(algorithm)
    parts = {"params": entry.get("params", {})}
    parts.update({kind: entry.get(kind, {}) for kind in _KIND_KEYS})
    for key, value in parts.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be an object of hyperparameters")
    for kind, problem_types in _KIND_KEYS.items():
        for problem_type in problem_types:
            valid = set(cls.default_params(problem_type, _ROWS))
            for key in ("params", kind):
                bad = sorted(set(parts[key]) - valid)
                if bad:
                    raise ConfigError(
                        f"{where}: {algorithm} has no hyperparameter {', '.join(bad)} "
                        f"({problem_type.value}; '{key}'); valid names: "
                        f"{', '.join(sorted(valid))}"
                    )
