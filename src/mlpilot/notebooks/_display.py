"""How the data-exploration notebook shows things: tables' style, empty results, figures and
percentages."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["figure", "pct", "show", "table_style"]


def table_style() -> Any:
    """CSS that left-aligns table cells (the notebook's HTML export shows text columns)."""
    from IPython.display import HTML

    return HTML(
        "<style>.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th, .dataframe td, "
        ".dataframe th { text-align: left !important; }</style>"
    )


def show(result: Any, empty: str) -> Any:
    """``result`` (a table or figure), or ``empty`` as Markdown when there is nothing to show."""
    from IPython.display import Markdown

    if result is None or (isinstance(result, pd.DataFrame) and result.empty):
        return Markdown(f"*{empty}*")
    return result


def figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    """A figure outside pyplot's global state (safe in threads; shown once in notebooks)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def pct(x: float) -> str:
    """A share as a percentage for tables and findings."""
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else "<0.1%"
