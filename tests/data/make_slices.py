"""Remake the test data slices in this folder from the shared data sets.

Run from anywhere: ``python3 tests/data/make_slices.py [path/to/shared/datasets]``. The default
source is ``../shared/datasets`` beside the repository. The output is deterministic: the same
source gives byte-identical files (gzip without a timestamp, fixed seeds).

Rows are copied as the source wrote them (every source here has one record per line), so a
slice reads exactly like the same rows of the whole file. See README.md for what each slice
keeps and why.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "datasets"
SEED = 0
#: Two regions' four purposes (a composite key with Region), and the most intermittent series.
TOURISM_SERIES = (
    *(f"Adelaide | South Australia | {p}" for p in ("Business", "Holiday", "Other", "Visiting")),
    *(
        f"Adelaide Hills | South Australia | {p}"
        for p in ("Business", "Holiday", "Other", "Visiting")
    ),
    "Kangaroo Island | South Australia | Other",
)
#: Two series of each length (748 and 1,008 hours).
M4_SERIES = ("H1", "H2", "H170", "H171")


def read_lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    lines = raw.splitlines(keepends=True)
    if not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    return lines


def read_frame(lines: Sequence[bytes]) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(b"".join(lines)), dtype=str, keep_default_na=False)
    # Line-based slicing is only safe when no field holds a line break.
    assert len(frame) == len(lines) - 1, "a record spans lines"
    return frame


def stratified(
    frame: pd.DataFrame, by: str, rows: int, cover: Sequence[str] = (), at_least: int = 0
) -> list[int]:
    """Row positions: about ``rows`` rows drawn per class of ``by`` in proportion (each class
    keeps at least ``min(at_least, its size)``), plus the first row of any level of a ``cover``
    column that the draw missed. Sorted, so the slice keeps the source's order."""
    rng = np.random.default_rng(SEED)
    labels = frame[by].to_numpy()
    chosen: set[int] = set()
    for label in sorted(set(labels)):
        members = np.flatnonzero(labels == label)
        share = round(rows * len(members) / len(frame))
        take = min(len(members), max(share, at_least))
        chosen.update(int(i) for i in rng.choice(members, size=take, replace=False))
    for column in cover:
        present = set(frame[column].iloc[sorted(chosen)])
        for first, level in frame.groupby(column, sort=True).head(1)[column].items():
            if level not in present:
                chosen.add(int(first))
    return sorted(chosen)


def series(frame: pd.DataFrame, column: str, names: Sequence[str]) -> list[int]:
    """Row positions of every row of the series named, in the source's order."""
    return [int(i) for i in np.flatnonzero(frame[column].isin(names).to_numpy())]


def write(name: str, lines: Sequence[bytes], compress: bool, rows: int | None = None) -> None:
    data = b"".join(lines)
    if compress:
        path = HERE / f"{name}.csv.gz"
        buffer = io.BytesIO()
        # mtime=0 and no file name: the same rows give the same bytes.
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(data)
        path.write_bytes(buffer.getvalue())
    else:
        path = HERE / f"{name}.csv"
        path.write_bytes(data)
    rows = len(lines) - 1 if rows is None else rows
    print(f"{path.name}: {rows} rows, {path.stat().st_size:,} bytes")


def whole(source: Path, name: str, compress: bool) -> None:
    """Every row, byte for byte (the set is small); compressed when it is over about 100 kB."""
    path = source / name / _file(source, name)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        write(name, [handle.read()], compress, rows=len(read_lines(path)) - 1)


def head(source: Path, name: str, rows: int, compress: bool) -> None:
    """The first ``rows`` rows, the ones the tests read with ``.head(n)``."""
    lines = read_lines(source / name / _file(source, name))
    write(name, lines[: rows + 1], compress)


def sample(source: Path, name: str, positions: Sequence[int], compress: bool) -> None:
    lines = read_lines(source / name / _file(source, name))
    write(name, [lines[0], *(lines[i + 1] for i in positions)], compress)


def _file(source: Path, name: str) -> str:
    return "data.csv.gz" if (source / name / "data.csv.gz").exists() else "data.csv"


def main(argv: Sequence[str]) -> None:
    source = Path(argv[0]) if argv else DEFAULT_SOURCE
    if not source.is_dir():
        sys.exit(f"no shared data sets at {source}")
    small = ("pima_indians_diabetes", "titanic", "palmer_penguins", "car_evaluation")
    for name in (*small, "medical_insurance_charges", "air_passengers"):
        whole(source, name, compress=False)
    for name in ("abalone", "wine_quality_white", "ames_house_prices"):
        whole(source, name, compress=True)
    head(source, "bike_sharing_hourly", 2000, compress=True)
    head(source, "sentiment_labelled_sentences", 1500, compress=True)
    head(source, "sms_spam_collection", 1500, compress=True)
    head(source, "kddcup99_10pct", 20_000, compress=True)
    head(source, "victoria_electricity_demand", 1_344, compress=True)

    def frame(name: str) -> pd.DataFrame:
        return read_frame(read_lines(source / name / _file(source, name)))

    adult = frame("adult_census_income")
    sample(source, "adult_census_income", stratified(adult, "income", 10_000), compress=True)
    bank = frame("bank_marketing")
    categorical = ("job", "marital", "education", "default", "housing", "loan")
    sample(source, "bank_marketing", stratified(bank, "y", 4_000, cover=categorical), True)
    housing = frame("california_housing")
    rows = stratified(housing, "ocean_proximity", 3_000, at_least=5)
    sample(source, "california_housing", rows, compress=True)
    tourism = frame("australian_tourism_quarterly")
    rows = series(tourism, "item_id", TOURISM_SERIES)
    sample(source, "australian_tourism_quarterly", rows, compress=True)
    m4 = frame("m4_hourly")
    sample(source, "m4_hourly", series(m4, "item_id", M4_SERIES), compress=True)


if __name__ == "__main__":
    main(sys.argv[1:])
