"""Tests for mlpilot.data: reading tables from files, folders, manifests and S3."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from helpers_data import ADULT, TELCO
from mlpilot.data import (
    SUPPORTED_CONTENT_TYPES,
    is_header_row,
    list_objects,
    read_table,
    write_table,
)
from mlpilot.errors import DataError

if TYPE_CHECKING:
    from conftest import S3Server

PARQUET_TYPE = "x-application/vnd.amazon+parquet"


def telco_lines(n: int) -> list[str]:
    """The Telco header plus its first ``n`` data lines (each ending in a newline)."""
    with TELCO.open(encoding="utf-8") as handle:
        return [next(handle) for _ in range(n + 1)]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27], dtype="int64"),
            "income": [52000.5, 61000.0, np.nan],
            "city": ["Lyon", "Oslo", None],
        }
    )


def parquet_bytes(df: pd.DataFrame, tmp_path: Path) -> bytes:
    path = tmp_path / "_frame.parquet"
    df.to_parquet(path, index=False)
    data = path.read_bytes()
    path.unlink()
    return data


# --- CSV --------------------------------------------------------------------------------------


def test_csv_file_reads_every_column_as_string(tmp_path: Path) -> None:
    path = write(tmp_path / "telco.csv", "".join(telco_lines(40)))
    df = read_table(path)
    assert df.shape == (40, 21)
    assert df.columns[0] == "customerID"
    assert all(pd.api.types.is_string_dtype(dtype) for dtype in df.dtypes)
    assert df.loc[0, "tenure"] == "1"
    assert df.loc[0, "MonthlyCharges"] == "29.85"
    assert df.loc[0, "SeniorCitizen"] == "0"


def test_full_telco_keeps_blank_total_charges_as_a_space() -> None:
    df = read_table(TELCO)
    assert df.shape == (7043, 21)
    assert (df["TotalCharges"] == " ").sum() == 11
    assert df["TotalCharges"].isna().sum() == 0


def test_adult_question_marks_survive_as_strings() -> None:
    df = read_table(ADULT, columns=["workclass", "native-country"])
    assert len(df) == 10000  # the slice
    assert (df["workclass"] == "?").sum() == 595
    assert (df["native-country"] == "?").sum() == 165
    assert df.isna().sum().sum() == 0


def test_raw_tokens_survive_and_only_empty_fields_are_missing(tmp_path: Path) -> None:
    path = write(tmp_path / "tokens.csv", 'a,b\nNone,NA\n?, \n,"null"\nnan,N/A\n')
    df = read_table(path)
    assert df["a"].isna().tolist() == [False, False, True, False]
    assert df["a"].dropna().tolist() == ["None", "?", "nan"]
    assert df["b"].tolist() == ["NA", " ", "null", "N/A"]


def test_utf8_bom_is_stripped_from_first_header(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbfid,value\n1,x\n")
    assert read_table(path).columns.tolist() == ["id", "value"]


def test_quoted_fields_with_commas_and_newlines(tmp_path: Path) -> None:
    path = write(tmp_path / "q.csv", 'id,"note, long"\n1,"a,b"\n2,"line1\nline2"\n')
    df = read_table(path)
    assert df.columns.tolist() == ["id", "note, long"]
    assert df["note, long"].tolist() == ["a,b", "line1\nline2"]


def test_gzip_csv_by_suffix_matches_plain(tmp_path: Path) -> None:
    text = "".join(telco_lines(25))
    plain = read_table(write(tmp_path / "plain.csv", text))
    packed = read_table(write(tmp_path / "packed.csv.gz", gzip.compress(text.encode())))
    pd.testing.assert_frame_equal(plain, packed)


@pytest.mark.parametrize("name", ["data.csv", "data", "part-00000"])
def test_gzip_csv_detected_by_magic_bytes(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, gzip.compress(b"x,y\n1,2\n3,4\n"))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    df = read_table(path)
    assert df.to_dict("list") == {"x": ["1", "3"], "y": ["2", "4"]}


def test_compression_argument_gzip(tmp_path: Path) -> None:
    path = write(tmp_path / "blob", gzip.compress(b"x\nhello\n"))
    df = read_table(path, compression="Gzip", content_type="text/csv;header=present")
    assert df["x"].tolist() == ["hello"]


def test_columns_selection_keeps_requested_order(tmp_path: Path) -> None:
    path = write(tmp_path / "telco.csv", "".join(telco_lines(10)))
    df = read_table(path, columns=["Churn", "customerID"])
    assert df.columns.tolist() == ["Churn", "customerID"]
    assert df.loc[0, "customerID"] == "7590-VHVEG"
    assert len(df) == 10


def test_dataframe_source_is_returned_as_an_untouched_copy() -> None:
    original = sample_frame()
    out = read_table(original)
    pd.testing.assert_frame_equal(out, original)
    assert out is not original
    out.loc[0, "age"] = 99
    assert original.loc[0, "age"] == 31
    assert read_table(original, columns=["city"]).columns.tolist() == ["city"]


# --- Parquet ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t.parquet", "t.pq"])
def test_parquet_keeps_native_dtypes(tmp_path: Path, name: str) -> None:
    sample_frame().to_parquet(tmp_path / name, index=False)
    df = read_table(tmp_path / name)
    assert df["age"].dtype == np.int64
    assert df["income"].dtype == np.float64
    assert df["age"].tolist() == [31, 45, 27]
    assert df["city"].isna().tolist() == [False, False, True]


def test_parquet_by_content_type_without_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "part-0", parquet_bytes(sample_frame(), tmp_path))
    df = read_table(path, content_type=PARQUET_TYPE, columns=["city", "age"])
    assert df.columns.tolist() == ["city", "age"]
    assert df["age"].dtype == np.int64


# --- folders, URIs, manifests -----------------------------------------------------------------


def test_folder_of_csvs_concatenated_in_sorted_order(tmp_path: Path) -> None:
    lines = telco_lines(9)
    header, rows = lines[0], lines[1:]
    folder = tmp_path / "train"
    write(folder / "b.csv", header + "".join(rows[3:6]))
    write(folder / "a.csv", header + "".join(rows[:3]))
    write(folder / "sub" / "c.csv.gz", gzip.compress((header + "".join(rows[6:])).encode()))
    write(folder / ".hidden.csv", "junk\n")
    write(folder / "_SUCCESS", "")
    write(folder / "_tmp" / "x.csv", "other\n1\n")
    assert list_objects(folder) == [
        str(folder / "a.csv"),
        str(folder / "b.csv"),
        str(folder / "sub" / "c.csv.gz"),
    ]
    df = read_table(folder)
    assert len(df) == 9
    expected_ids = [row.split(",", 1)[0] for row in rows]
    assert df["customerID"].tolist() == expected_ids
    assert df.index.tolist() == list(range(9))


def test_file_uri_reads_like_a_path(tmp_path: Path) -> None:
    path = write(tmp_path / "with space.csv", "a,b\n1,2\n")
    via_uri = read_table(path.as_uri())
    assert "%20" in path.as_uri()
    pd.testing.assert_frame_equal(via_uri, read_table(str(path)))
    assert list_objects(path.as_uri()) == [str(path)]


def test_manifest_with_local_prefix(tmp_path: Path) -> None:
    write(tmp_path / "data" / "p1.csv", "a,b\n1,2\n")
    write(tmp_path / "data" / "p2.csv", "a,b\n3,4\n")
    write(tmp_path / "data" / "ignored.csv", "a,b\n9,9\n")
    manifest = write(
        tmp_path / "m.manifest",
        json.dumps([{"prefix": f"{tmp_path / 'data'}/"}, "p2.csv", "p1.csv"]),
    )
    assert list_objects(manifest, data_type="ManifestFile") == [
        f"{tmp_path / 'data'}/p1.csv",
        f"{tmp_path / 'data'}/p2.csv",
    ]
    df = read_table(manifest, data_type="ManifestFile")
    assert df.to_dict("list") == {"a": ["1", "3"], "b": ["2", "4"]}


# --- S3 ---------------------------------------------------------------------------------------


def test_s3_single_object(s3: S3Server) -> None:
    uri = s3.put("train.csv", "".join(telco_lines(5)))
    df = read_table(uri)
    assert df.shape == (5, 21)
    assert df.loc[4, "customerID"] == telco_lines(5)[5].split(",", 1)[0]
    assert list_objects(uri) == [uri]


def test_s3_prefix_of_several_csvs(s3: S3Server) -> None:
    s3.put("train/part-2.csv", "a,b\n3,4\n")
    s3.put("train/part-1.csv", "a,b\n1,2\n")
    s3.put("train/nested/part-3.csv", "a,b\n5,6\n")
    s3.put("train/_SUCCESS", "")
    s3.put("train.csv", "other\nnot-under-the-prefix\n")
    expected = [
        s3.uri("train/nested/part-3.csv"),
        s3.uri("train/part-1.csv"),
        s3.uri("train/part-2.csv"),
    ]
    assert list_objects(s3.uri("train")) == expected
    assert list_objects(s3.uri("train/")) == expected
    df = read_table(s3.uri("train"))
    assert df["a"].tolist() == ["5", "1", "3"]


def test_s3_gzip_csv(s3: S3Server) -> None:
    uri = s3.put("in/data.csv.gz", gzip.compress(b"x,y\n?,None\n"))
    assert read_table(uri).to_dict("list") == {"x": ["?"], "y": ["None"]}
    no_suffix = s3.put("in/blob", gzip.compress(b"x,y\n1,2\n"))
    assert read_table(no_suffix)["y"].tolist() == ["2"]


def test_s3_parquet(s3: S3Server, tmp_path: Path) -> None:
    uri = s3.put("pq/data.parquet", parquet_bytes(sample_frame(), tmp_path))
    df = read_table(s3.uri("pq"), content_type=PARQUET_TYPE)
    pd.testing.assert_frame_equal(df, read_table(uri))
    assert df["age"].tolist() == [31, 45, 27]
    assert df["age"].dtype == np.int64


def test_s3_missing_key_is_a_data_error(s3: S3Server) -> None:
    s3.put("present.csv", "a\n1\n")
    with pytest.raises(DataError, match=r"s3://mlpilot-test/absent\.csv does not exist"):
        read_table(s3.uri("absent.csv"))
    with pytest.raises(DataError, match=r"s3://no-such-bucket-xyz/k\.csv does not exist"):
        read_table("s3://no-such-bucket-xyz/k.csv")


def test_s3_manifest(s3: S3Server) -> None:
    s3.put("m/a.csv", "k,v\n1,x\n")
    s3.put("m/b.csv", "k,v\n2,y\n")
    manifest = s3.put("manifests/train.manifest", json.dumps([{"prefix": s3.uri("m/")}, "b.csv"]))
    df = read_table(manifest, data_type="ManifestFile")
    assert df.to_dict("list") == {"k": ["2"], "v": ["y"]}


def test_s3_manifest_missing_object(s3: S3Server, tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.json", json.dumps([{"prefix": s3.uri("m/")}, "gone.csv"]))
    with pytest.raises(DataError, match=r"s3://mlpilot-test/m/gone\.csv does not exist"):
        read_table(manifest, data_type="ManifestFile")


def test_s3_endpoint_from_generic_env_var(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = s3.put("generic.csv", "a\n1\n")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    assert read_table(uri)["a"].tolist() == ["1"]


def test_s3_unreachable_endpoint_is_a_data_error(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(DataError, match=r"cannot read s3://mlpilot-test/a\.csv"):
        read_table(s3.uri("a.csv"))


def test_write_table_to_s3_round_trip(s3: S3Server) -> None:
    write_table(sample_frame(), s3.uri("out/t.parquet"))
    pd.testing.assert_frame_equal(read_table(s3.uri("out/t.parquet")), sample_frame())
    write_table(sample_frame(), s3.uri("out/t.csv"))
    assert read_table(s3.uri("out/t.csv"))["age"].tolist() == ["31", "45", "27"]


# --- errors -----------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="does not exist"):
        list_objects(tmp_path / "nope")


def test_folder_without_data_files(tmp_path: Path) -> None:
    write(tmp_path / "only_hidden" / "_SUCCESS", "")
    write(tmp_path / "only_hidden" / ".keep", "")
    with pytest.raises(DataError, match=r"only_hidden contains no data files"):
        read_table(tmp_path / "only_hidden")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty contains no data files"):
        list_objects(tmp_path / "empty")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "zero.csv", b"")
    with pytest.raises(DataError, match=r"zero\.csv is empty \(0 bytes\)"):
        read_table(path)


def test_blank_file_has_no_header(tmp_path: Path) -> None:
    path = write(tmp_path / "blank.csv", "\n\n")
    with pytest.raises(DataError, match=r"blank\.csv has no header row"):
        read_table(path)


def test_header_without_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "head.csv", telco_lines(0)[0])
    with pytest.raises(DataError, match=r"head\.csv has a header but no data rows"):
        read_table(path)
    gz = write(tmp_path / "head.csv.gz", gzip.compress(b"a,b\n"))
    with pytest.raises(DataError, match=r"head\.csv\.gz has a header but no data rows"):
        read_table(gz)


def test_header_only_parts_are_fine_when_others_have_rows(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.csv", "a\n")
    write(tmp_path / "d" / "2.csv", "a\nx\n")
    assert read_table(tmp_path / "d")["a"].tolist() == ["x"]
    write(tmp_path / "e" / "1.csv", "a\n")
    write(tmp_path / "e" / "2.csv", "a\n")
    with pytest.raises(DataError, match=r"e \(2 files\) has a header but no data rows"):
        read_table(tmp_path / "e")


def test_bad_gzip_with_gz_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv.gz", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"bad\.csv\.gz is not valid gzip data"):
        read_table(path)
    # An explicit "None" trusts the caller over the suffix.
    assert read_table(path, compression="None")["b"].tolist() == ["2"]


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(("a,b\n" + "1,2\n" * 20000).encode())
    path = write(tmp_path / "cut.csv.gz", packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"cut\.csv\.gz is not valid gzip data"):
        read_table(path)


def test_gzip_compression_declared_on_plain_file(tmp_path: Path) -> None:
    path = write(tmp_path / "plain.csv", "a\n1\n")
    with pytest.raises(DataError, match=r"plain\.csv is not gzip-compressed"):
        read_table(path, compression="Gzip")


def test_corrupt_parquet(tmp_path: Path) -> None:
    good = parquet_bytes(sample_frame(), tmp_path)
    path = write(tmp_path / "broken.parquet", good[:4] + b"\x00" * 64 + good[-20:])
    with pytest.raises(DataError, match=r"broken\.parquet is not a readable Parquet file"):
        read_table(path)
    text = write(tmp_path / "text.parquet", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"text\.parquet is not a readable Parquet file"):
        read_table(text)


def test_binary_garbage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = write(tmp_path / "noise.csv", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"noise\.csv is not a CSV file"):
        read_table(path)
    nul = write(tmp_path / "nul.csv", b"a,b\x00\x00\n1,2\n")
    with pytest.raises(DataError, match=r"nul\.csv is not a CSV file: it contains binary data"):
        read_table(nul)


def test_row_with_too_many_fields_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "ragged.csv", "a,b\n1,2\n3,4\n5,6,7\n")
    with pytest.raises(DataError, match=r"ragged\.csv: line 4 has 3 fields but the header has 2"):
        read_table(path)


def test_first_row_with_too_many_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", "a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"wide\.csv: data rows have more fields than the 2 header"):
        read_table(path)


def test_unterminated_quote(tmp_path: Path) -> None:
    path = write(tmp_path / "quote.csv", 'a,b\n1,"open\n2,3\n')
    with pytest.raises(DataError, match=r"quote\.csv is not a readable CSV file: EOF inside"):
        read_table(path)


def test_non_utf8_text(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.csv", "name\n" + "caf\xe9\n" * 3)
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv is not a CSV file: it is not UTF-8 text"):
        read_table(path)


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.csv", "id,x,x,y,y\n1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"dup\.csv has duplicate column names: 'x', 'y'"):
        read_table(path)


def test_header_mismatch_between_files(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.csv", "a,b,c\n1,2,3\n")
    write(tmp_path / "d" / "2.csv", "a,b,c\n4,5,6\n")
    write(tmp_path / "d" / "3.csv", "a,c,z\n7,8,9\n")
    write(tmp_path / "d" / "4.csv", "q\n1\n")
    with pytest.raises(DataError) as info:
        read_table(tmp_path / "d")
    message = str(info.value)
    assert "3.csv: header differs from" in message
    assert "1.csv" in message
    assert "missing 'b'; unexpected 'z'" in message
    assert "\n" not in message


def test_header_order_mismatch(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.csv", "a,b\n1,2\n")
    write(tmp_path / "d" / "2.csv", "b,a\n2,1\n")
    with pytest.raises(DataError, match=r"2\.csv: header differs .*same columns in a different"):
        read_table(tmp_path / "d")


def test_header_absent_or_decided_by_a_rule(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.csv", "No,No,3\n Yes,No,4\n")
    write(tmp_path / "d" / "2.csv", "Yes,Yes,5\n")
    table = read_table(tmp_path / "d", header=False)
    assert list(table.columns) == [0, 1, 2]
    assert table.values.tolist() == [["No", "No", "3"], [" Yes", "No", "4"], ["Yes", "Yes", "5"]]
    rule = lambda record: is_header_row(record, ["a", "b", "c", "y"])  # noqa: E731
    write(tmp_path / "named" / "1.csv", "c, a\n1,2\n")
    assert read_table(tmp_path / "named", header=rule).to_dict("list") == {"c": ["1"], " a": ["2"]}
    assert list(read_table(tmp_path / "d", header=rule).columns) == [0, 1, 2]
    write(tmp_path / "mixed" / "1.csv", "1,2\n")
    write(tmp_path / "mixed" / "2.csv", "a,b\n3,4\n")
    with pytest.raises(DataError, match=r"2\.csv has a header row but .*1\.csv does not"):
        read_table(tmp_path / "mixed", header=rule)
    write(tmp_path / "wide" / "1.csv", "1,2\n")
    write(tmp_path / "wide" / "2.csv", "1,2,3\n")
    with pytest.raises(DataError, match=r"2\.csv has 3 columns but .*1\.csv has 2"):
        read_table(tmp_path / "wide", header=False)


def test_mixed_csv_and_parquet(tmp_path: Path) -> None:
    write(tmp_path / "mix" / "a.csv", "age\n1\n")
    sample_frame().to_parquet(tmp_path / "mix" / "b.parquet", index=False)
    with pytest.raises(DataError, match=r"mix mixes CSV and Parquet files: .*b\.parquet is Parq"):
        read_table(tmp_path / "mix")


def test_content_type_contradicting_the_file(tmp_path: Path) -> None:
    sample_frame().to_parquet(tmp_path / "t.parquet", index=False)
    with pytest.raises(DataError, match=r"t\.parquet is a Parquet file but the content type"):
        read_table(tmp_path / "t.parquet", content_type="text/csv;header=present")


def test_unsupported_content_type_lists_supported(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "a\n1\n")
    with pytest.raises(DataError) as info:
        read_table(path, content_type="application/json")
    assert "unsupported content type 'application/json'" in str(info.value)
    for supported in SUPPORTED_CONTENT_TYPES:
        assert supported in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"compression": "Zip"}, "unsupported compression 'Zip'"),
        ({"data_type": "AugmentedManifestFile"}, "unsupported data type 'AugmentedManifestFile'"),
        ({"columns": []}, "columns= is empty"),
        ({"columns": ["a", "a"]}, "columns= names 'a' more than once"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], pattern: str) -> None:
    path = write(tmp_path / "a.csv", "a\n1\n")
    with pytest.raises(DataError, match=pattern):
        read_table(path, **kwargs)  # type: ignore[arg-type]


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"a\.csv: column\(s\) 'zz', 'yy' not found"):
        read_table(path, columns=["a", "zz", "yy"])
    sample_frame().to_parquet(tmp_path / "t.parquet", index=False)
    with pytest.raises(DataError, match=r"t\.parquet: column\(s\) 'zz' not found"):
        read_table(tmp_path / "t.parquet", columns=["zz"])
    with pytest.raises(DataError, match=r"the given DataFrame: column\(s\) 'zz' not found"):
        read_table(sample_frame(), columns=["zz"])


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unsupported URI scheme 'gs' in gs://b/k\.csv"):
        read_table("gs://b/k.csv")


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("not json", "not JSON"),
        (json.dumps({"prefix": "/x/"}), "expected a JSON list"),
        (json.dumps(["a.csv"]), "expected a JSON list"),
        (json.dumps([{"prefix": "/x/"}]), "it lists no objects"),
        (json.dumps([{"prefix": "/x/"}, "a.csv", 3]), "entry 3 is not a relative key"),
    ],
)
def test_bad_manifest(tmp_path: Path, content: str, pattern: str) -> None:
    manifest = write(tmp_path / "bad.manifest", content)
    with pytest.raises(DataError, match=rf"bad\.manifest is not a valid manifest: {pattern}"):
        read_table(manifest, data_type="ManifestFile")


def test_errors_are_value_errors_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "ragged.csv", "a\n1\n2,3,4\n")
    with pytest.raises(ValueError) as info:
        read_table(path)
    assert isinstance(info.value, DataError)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


# --- write_table ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz"])
def test_write_table_csv_round_trip(tmp_path: Path, name: str) -> None:
    original = read_table(write(tmp_path / "in.csv", "".join(telco_lines(30))))
    dest = tmp_path / "nested" / name
    write_table(original, dest)
    pd.testing.assert_frame_equal(read_table(dest), original)
    assert sorted(p.name for p in dest.parent.iterdir()) == [name]
    if name.endswith(".gz"):
        assert dest.read_bytes()[:2] == b"\x1f\x8b"


@pytest.mark.parametrize("name", ["out.parquet", "out.pq"])
def test_write_table_parquet_round_trip(tmp_path: Path, name: str) -> None:
    write_table(sample_frame(), tmp_path / name)
    back = read_table(tmp_path / name)
    pd.testing.assert_frame_equal(back, sample_frame())
    assert back["age"].dtype == np.int64


def test_write_table_replaces_existing_file(tmp_path: Path) -> None:
    dest = write(tmp_path / "t.csv", "old\nvalue\n")
    write_table(pd.DataFrame({"new": ["1"]}), dest)
    assert dest.read_text(encoding="utf-8") == "new\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_write_table_unsupported_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"out\.json: unsupported file suffix"):
        write_table(sample_frame(), tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
