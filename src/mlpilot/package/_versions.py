"""Library versions recorded in, and checked against, a model package."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["TRACKED_LIBRARIES", "compare_versions", "installed_versions"]

#: distribution names whose versions decide whether a pickled model loads and behaves the same.
TRACKED_LIBRARIES = (
    "mlpilot",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "catboost",
    "torch",
    "optuna",
    "statsforecast",  # forecasting packages fit their local models with it when forecasting
    "prophet",  # and Prophet's, when the package holds it
)


def installed_versions(libraries: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in libraries:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def compare_versions(recorded: dict[str, str]) -> list[str]:
    """Human lines like ``scikit-learn: saved with 1.9.1, installed 1.8.0`` for each difference."""
    now = installed_versions(tuple(k for k in recorded if k != "python"))
    now["python"] = platform.python_version()
    out = []
    for name, saved in sorted(recorded.items()):
        current = now.get(name, "not installed")
        if name == "python":
            saved, current = ".".join(saved.split(".")[:2]), ".".join(current.split(".")[:2])
        if saved != current:
            out.append(f"{name}: saved with {saved}, installed {current}")
    return out
