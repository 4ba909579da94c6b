import datetime as dt
import json

import polars as pl
import pytest

from clusterer.config import IngestConfig
from clusterer.errors import InputError
from clusterer.io.ingest import read_logs


def _rows(n=5, **extra):
    base = {
        "prompt_id": [f"id{i}" for i in range(n)],
        "account_id": [f"a{i % 2}" for i in range(n)],
        "timestamp": [f"2026-11-01T0{i % 10}:00:00Z" for i in range(n)],
        "text": [f"prompt number {i}" for i in range(n)],
    }
    base.update(extra)
    return pl.DataFrame(base)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_reads_each_format(tmp_path, fmt):
    df = _rows(6, region=["eu", "us"] * 3)
    path = tmp_path / f"day.{fmt}"
    {"parquet": df.write_parquet, "jsonl": df.write_ndjson, "csv": df.write_csv}[fmt](path)
    got = read_logs([path], IngestConfig())
    assert got.frame["prompt_id"].to_list() == df["prompt_id"].to_list()
    assert got.frame["text"].to_list() == df["text"].to_list()
    assert got.frame["timestamp"].dtype == pl.Datetime("us", "UTC")
    assert got.frame["timestamp"][1] == dt.datetime(2026, 11, 1, 1, tzinfo=dt.timezone.utc)
    assert got.extra_columns == ("region",)
    assert got.files[0].rows == 6 and len(got.files[0].xxh3_64) == 16


def test_directory_glob_and_several_files(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    _rows(3).write_parquet(parts / "part-0.parquet")
    _rows(4).with_columns(pl.col("prompt_id") + "b").write_parquet(parts / "part-1.parquet")
    (parts / "_SUCCESS").write_text("")
    by_dir = read_logs([parts], IngestConfig())
    by_glob = read_logs([str(parts / "part-*.parquet")], IngestConfig())
    by_list = read_logs([parts / "part-0.parquet", parts / "part-1.parquet"], IngestConfig())
    for got in (by_dir, by_glob, by_list):
        assert got.frame.height == 7
        assert got.frame["_row"].to_list() == list(range(7))


def test_renamed_columns_and_generated_ids(tmp_path):
    df = _rows(3).rename({"text": "body", "account_id": "user", "timestamp": "ts"}).drop("prompt_id")
    path = tmp_path / "x.parquet"
    df.write_parquet(path)
    got = read_logs([path], IngestConfig(text_col="body", account_col="user", timestamp_col="ts"))
    assert got.generated_prompt_ids
    assert got.frame["prompt_id"].to_list() == ["p000000000", "p000000001", "p000000002"]
    assert got.frame["account_id"].to_list() == ["a0", "a1", "a0"]


def test_chat_messages_are_flattened(tmp_path):
    path = tmp_path / "chat.jsonl"
    rows = [
        {
            "prompt_id": "c1",
            "account_id": "a",
            "timestamp": "2026-11-01T00:00:00Z",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "solve 2+2"},
            ],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = read_logs([path], IngestConfig())
    assert got.frame["text"].to_list() == ["You are terse.\nhi\nsolve 2+2"]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_row_without_text_is_read_from_its_chat_messages(tmp_path, suffix):
    """A log with both columns: rows whose text is null or blank take their chat messages (before: the
    messages column was dropped and such rows came out empty_text without a word)."""
    msgs = [[{"role": "user", "content": f"chat prompt {i}"}] for i in range(4)]
    df = _rows(4, text=["own text", None, "  ", "more text"], messages=msgs)
    path = tmp_path / f"both{suffix}"
    df.write_parquet(path) if suffix == ".parquet" else df.write_ndjson(path)
    got = read_logs([path], IngestConfig())
    assert got.frame["text"].to_list() == ["own text", "chat prompt 1", "chat prompt 2", "more text"]
    assert "messages" not in got.frame.columns


def test_messages_beside_a_full_text_column_are_not_read(tmp_path, caplog):
    """Only blank rows read their messages: a log whose text is complete is not refused for a messages
    column the run does not need; messages it cannot read leave blank rows as they came, with a warning."""
    odd = [[{"role": "user", "content": i}] for i in range(3)]  # content of a type chat logs never hold
    path = tmp_path / "odd.parquet"
    _rows(3, messages=odd).write_parquet(path)
    assert read_logs([path], IngestConfig()).frame["text"].to_list() == [f"prompt number {i}" for i in range(3)]
    _rows(3, text=["a", None, "c"], messages=odd).write_parquet(path)
    assert read_logs([path], IngestConfig()).frame["text"].to_list() == ["a", None, "c"]
    assert caplog.text.count("stay empty_text") == 1
    # a stream reads the texts back in every window: the read said it, the read back does not again
    from clusterer.io.ingest import fetch_texts

    caplog.clear()
    lean = read_logs([path], IngestConfig(), texts=False)
    for _ in range(3):
        assert fetch_texts(lean, lean.frame, IngestConfig()).to_list() == ["a", None, "c"]
    assert caplog.text.count("stay empty_text") == 1


def test_epoch_seconds_timestamps(tmp_path):
    df = _rows(2).with_columns(pl.Series("timestamp", [1_764_000_000, 1_764_000_060]))
    path = tmp_path / "e.parquet"
    df.write_parquet(path)
    got = read_logs([path], IngestConfig())
    assert got.frame["timestamp"][1] - got.frame["timestamp"][0] == dt.timedelta(seconds=60)


def test_epoch_timestamps_of_any_unit_and_mixed_units(tmp_path):
    """Each epoch value's magnitude tells its unit (s, ms, µs, ns), so a log that mixes them keeps every row's
    real time (before: one unit from the column's maximum dated half such a log 1970); a float NaN is null."""
    t = dt.datetime(2026, 11, 2, 19, 54, 59, 290876, tzinfo=dt.timezone.utc)
    us = int(t.timestamp()) * 1_000_000 + 290876
    ints = [us // 1_000_000, us // 1_000, us, us * 1_000]
    floats = [us / 1e6, float("nan"), us / 1e3, None]
    nat = [-(2**63), us, us, us]  # pandas' NaT written as an int64 is null, not 1970
    for values, want in ((ints, [290876, 876, 0, 0]), (floats, [0, None, 0, None]), (nat, [None, 0, 0, 0])):
        path = tmp_path / "e.parquet"
        _rows(4).with_columns(pl.Series("timestamp", values)).write_parquet(path)
        got = read_logs([path], IngestConfig(null_timestamps="skip")).frame["timestamp"].to_list()
        for g, lost in zip(got, want, strict=True):  # lost: the microseconds a coarser unit cannot carry
            assert (g is None) if lost is None else (t - g == dt.timedelta(microseconds=lost)), (values, got)


def test_every_timestamp_null_is_refused_even_when_skipped(tmp_path):
    path = tmp_path / "n.parquet"
    _rows(3).with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("timestamp")).write_parquet(path)
    with pytest.raises(
        InputError, match=r"column 'timestamp' is null or empty in every row \(3, e.g. .*n.parquet row 0"
    ):
        read_logs([path], IngestConfig(null_timestamps="skip"))


def test_iso_strings_with_and_without_offsets_in_one_log(tmp_path):
    """Each format is inferred from the first value still unparsed, so a log mixing '…+00:00', '…Z' and
    naive 'YYYY-MM-DD HH:MM:SS' reads every row (before: the valid rows of the second shape were reported
    unparseable)."""
    t = dt.datetime(2026, 11, 2, 19, 54, 59, tzinfo=dt.timezone.utc)
    values = [t.isoformat(), "2026-11-02 19:54:59", "2026-11-02T19:54:59Z", t.isoformat(), "2026-11-02 19:54:59"]
    path = tmp_path / "iso.parquet"
    _rows(5, timestamp=values).write_parquet(path)
    got = read_logs([path], IngestConfig()).frame["timestamp"].to_list()
    assert got == [t] * 5


def test_parts_in_other_time_zones_read_as_one_day(tmp_path):
    """Parts written with other zones (or none) are one day in UTC; parts whose types cannot meet are refused
    naming the column and a file of each type."""
    t = dt.datetime(2026, 11, 2, 19, 0, tzinfo=dt.timezone.utc)
    d = tmp_path / "parts"
    d.mkdir()
    utc = pl.Series([t, t]).dt.convert_time_zone("UTC")
    _rows(2).with_columns(utc.alias("timestamp")).write_parquet(d / "a.parquet")
    _rows(2).with_columns(utc.dt.convert_time_zone("America/New_York").alias("timestamp")).write_parquet(
        d / "b.parquet"
    )
    _rows(2).with_columns(utc.dt.replace_time_zone(None).alias("timestamp")).write_parquet(d / "c.parquet")
    got = read_logs([d], IngestConfig(new_prompt_ids=True))
    assert got.frame["timestamp"].to_list() == [t] * 6
    _rows(2).with_columns(pl.Series("timestamp", [True, False])).write_parquet(d / "d.parquet")
    with pytest.raises(
        InputError, match=r"column 'timestamp' is Datetime\(.*UTC.*\) in .*a.parquet, Boolean in .*d.parquet"
    ):
        read_logs([d], IngestConfig(new_prompt_ids=True))


def test_a_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = [json.dumps(r) for r in _rows(30).to_dicts()]
    path.write_text("\n".join([*good[:25], '{"prompt_id": "x", broken', *good[25:]]) + "\n")
    with pytest.raises(
        InputError, match=r"bad.jsonl: cannot be read as jsonl.*line 26: '\{\"prompt_id\": \"x\", broken'"
    ):
        read_logs([path], IngestConfig())


def _rejects(path, df, match):
    """``df`` written to ``path`` (format from the suffix) is refused with an InputError matching ``match``."""
    {".parquet": df.write_parquet, ".csv": df.write_csv, ".jsonl": df.write_ndjson}[path.suffix](path)
    with pytest.raises(InputError, match=match):
        read_logs([path], IngestConfig())


def test_missing_column_lists_columns(tmp_path):
    _rejects(
        tmp_path / "m.parquet",
        _rows(2).drop("account_id"),
        r"missing column 'account_id'; columns present: prompt_id, timestamp, text; pass --account-col",
    )


def test_missing_text_column(tmp_path):
    _rejects(
        tmp_path / "m.csv",
        _rows(2).rename({"text": "prompt"}),
        r"m.csv: missing column 'text' .*columns present: prompt_id, account_id, timestamp, prompt",
    )


def test_non_utf8_bytes(tmp_path):
    path = tmp_path / "bad.csv"
    good = "prompt_id,account_id,timestamp,text\n1,a,2026-11-01T00:00:00Z,hello\n"
    path.write_bytes(good.encode() + b"2,a,2026-11-01T00:00:00Z,caf\xe9 au lait\n")
    with pytest.raises(InputError, match=r"bad.csv: invalid UTF-8 bytes at line 3 .*--on-bad-utf8 replace"):
        read_logs([path], IngestConfig())
    got = read_logs([path], IngestConfig(on_bad_utf8="replace"))
    assert got.frame["text"].to_list() == ["hello", "caf\ufffd au lait"]
    # the scan is kept per version of the file: one rewritten in place with the same size and its old
    # modification time restored (as `cp -p` leaves it) is scanned again, by its change time
    import os
    import time

    before = path.stat().st_mtime_ns
    time.sleep(0.05)  # file times tick in jiffies: the rewrite's change time is a later one
    path.write_bytes(good.encode() + b"2,a,2026-11-01T00:00:00Z,cafe au lait\n")
    os.utime(path, ns=(before, before))
    assert read_logs([path], IngestConfig()).frame["text"].to_list() == ["hello", "cafe au lait"]


def test_non_utf8_bytes_jsonl_replace(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"prompt_id":"1","account_id":"a","timestamp":"2026-11-01T00:00:00Z","text":"x\xff"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_logs([path], IngestConfig())
    assert read_logs([path], IngestConfig(on_bad_utf8="replace")).frame["text"].to_list() == ["x\ufffd"]


def test_duplicate_prompt_ids(tmp_path):
    path = tmp_path / "d.parquet"
    _rows(5).with_columns(pl.Series("prompt_id", ["x", "y", "x", "z", "y"])).write_parquet(path)
    with pytest.raises(
        InputError,
        match=r"column 'prompt_id' has 4 rows sharing 2 duplicated IDs "
        r"\(e.g. 'x', 'y'; 'x' at \S*d.parquet row 0, \S*d.parquet row 2\).*--new-prompt-ids",
    ):
        read_logs([path], IngestConfig())
    got = read_logs([path], IngestConfig(new_prompt_ids=True))
    assert got.frame["prompt_id"].n_unique() == 5


def test_unparseable_timestamps_show_rows(tmp_path):
    _rejects(
        tmp_path / "t.csv",
        _rows(4, timestamp=["2026-11-01T00:00:00Z", "yesterday", "2026-11-01T02:00:00Z", "32/13/2026"]),
        r"column 'timestamp' has 2 timestamps not in ISO 8601 \(year first\) \(e.g. .*t.csv row 1: "
        r"'yesterday'; .*t.csv row 3: '32/13/2026'\)",
    )
    _rejects(
        tmp_path / "u.csv",
        _rows(3, timestamp=["2026-11-01T00:00:00Z", "2026-13-45T00:00:00Z", "2026-11-01T02:00:00Z"]),
        r"column 'timestamp' has 1 unparseable timestamps \(e.g. .*u.csv row 1: '2026-13-45T00:00:00Z'\)",
    )


def test_a_timestamp_column_of_another_type_names_the_file_and_rows(tmp_path):
    """A time of day without its date (or any type that is no time) is refused with the file and rows."""
    _rejects(
        tmp_path / "t.parquet",
        _rows(3).with_columns(timestamp=pl.Series([dt.time(0, 0, 41), dt.time(1, 2, 3), dt.time(4, 5, 6)])),
        r"column 'timestamp' has 3 values of type Time \(e.g. .*t.parquet row 0: 00:00:41; ",
    )


def test_a_malformed_csv_names_the_line_that_breaks_it(tmp_path):
    """polars' CSV parse errors name no line: the error adds where the file first breaks its header's shape."""
    head = "prompt_id,account_id,timestamp,text\n1,a,2026-11-01T00:00:00Z,hello\n"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(head + "2,b,2026-11-01T00:01:00Z,hi,extra,fields\n3,c,2026-11-01T00:02:00Z,x\n")
    with pytest.raises(InputError, match=r"ragged.csv: cannot be read as csv: .*; line 3 has 6 fields, the header 4"):
        read_logs([ragged], IngestConfig())
    quote = tmp_path / "quote.csv"
    quote.write_text(head + '2,b,2026-11-01T00:01:00Z,"hi\n3,c,2026-11-01T00:02:00Z,x\n')
    with pytest.raises(InputError, match=r"quote.csv: cannot be read as csv: .*the record from line 3 on"):
        read_logs([quote], IngestConfig())


def test_day_first_and_month_first_dates_are_refused_not_guessed(tmp_path):
    """polars reads a date format off the first value: "11/02/2026 05:00" would be 11 February, and every row
    of a US log would land on another day without a word. Only year-first dates are read."""
    _rejects(
        tmp_path / "us.csv",
        _rows(3, timestamp=["11/02/2026 05:00:00", "11/02/2026 06:00:00", "03/11/2026 07:00:00"]),
        r"column 'timestamp' has 3 timestamps not in ISO 8601 \(year first\) .*us.csv row 0: '11/02/2026 05:00:00'"
        r".*ambiguous",
    )


def test_csv_identifiers_are_text_not_numbers(tmp_path):
    """A CSV's ID columns are read as written: "012", "12" and "0012" are three accounts, "000123" keeps its
    zeros, a "1e3" does not turn the column into floats; other columns are still typed."""
    path = tmp_path / "ids.csv"
    df = _rows(4).with_columns(
        pl.Series("prompt_id", ["000123", "000124", "1e3", "7"]),
        pl.Series("account_id", ["012", "12", "0012", "12"]),
        pl.Series("org_id", ["007", "7", "007", "0"]),
        pl.Series("tokens", [5, 6, 7, 8]),
    )
    df.write_csv(path)
    got = read_logs([path], IngestConfig()).frame
    assert got["prompt_id"].to_list() == ["000123", "000124", "1e3", "7"]
    assert got["account_id"].to_list() == ["012", "12", "0012", "12"]
    assert got["org_id"].to_list() == ["007", "7", "007", "0"]
    assert got["tokens"].dtype.is_integer()


def test_a_duplicate_in_another_part_file_is_named_where_it_is(tmp_path):
    """The second copy of an ID re-sent in another part file is named with the first (file and row)."""
    parts = tmp_path / "parts"
    parts.mkdir()
    _rows(3).write_parquet(parts / "p1.parquet")
    _rows(1).with_columns(pl.lit("id2").alias("prompt_id")).write_parquet(parts / "p2.parquet")
    with pytest.raises(InputError, match=r"'id2' at \S*p1.parquet row 2, \S*p2.parquet row 0"):
        read_logs([parts], IngestConfig())


def test_a_semicolon_csv_and_a_parquet_file_read_as_csv_are_told_apart(tmp_path):
    """A ';'-separated export reads as one column: the error says so. A parquet file given --format csv was
    named invalid UTF-8 (with --on-bad-utf8 as the fix): it is named a parquet file."""
    semi = tmp_path / "semi.csv"
    _rows(3).write_csv(semi, separator=";")
    with pytest.raises(InputError, match=r"missing column 'text'.*one column holding ';': CSV is read comma-separated"):
        read_logs([semi], IngestConfig())
    pq = tmp_path / "p.parquet"
    _rows(3).write_parquet(pq)
    with pytest.raises(InputError, match=r"p.parquet: is a parquet file, read as csv; drop --format"):
        read_logs([pq], IngestConfig(format="csv"))


def test_times_no_prompt_log_holds_are_named_or_skipped(tmp_path):
    """An epoch in a wrong unit or a corrupt value (9e18 read as nanoseconds: 2255; -5: 1969) is refused with
    its file, row, raw value and the time it was read as — one such row would date a stream window centuries
    away and make the rest of the day late; with --null-timestamps skip it is null (kept unclustered)."""
    path = tmp_path / "far.parquet"
    _rows(4).with_columns(
        pl.Series("timestamp", [1_764_000_000, 9_000_000_000_000_000_000, -5, 1_764_000_060])
    ).write_parquet(path)
    with pytest.raises(
        InputError,
        match=r"column 'timestamp' has 2 times before 1990 or from 2100 on \(e.g. \S*far.parquet row 1: "
        r"9000000000000000000 read as 2255-03-14 .*far.parquet row 2: -5 read as 1969-12-31 23:59:55\).*"
        r"--null-timestamps skip",
    ):
        read_logs([path], IngestConfig())
    got = read_logs([path], IngestConfig(null_timestamps="skip")).frame["timestamp"]
    assert got.is_null().to_list() == [False, True, True, False]
    assert got[3] - got[0] == dt.timedelta(seconds=60)


def test_a_far_datetime_is_shown_as_a_time(tmp_path):
    """A datetime column holding an epoch-0 time (a null written as 0 upstream) names the value as a time, not
    as Python's constructor call."""
    path = tmp_path / "zero.parquet"
    times = [dt.datetime(2026, 11, 1, 8, tzinfo=dt.timezone.utc), dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)]
    _rows(2).with_columns(pl.Series("timestamp", times)).write_parquet(path)
    shown = r"zero.parquet row 1: 1970-01-01T00:00:00\+00:00 read as 1970-01-01 00:00:00\)"
    with pytest.raises(InputError, match=r"has 1 time before 1990 .*" + shown) as err:
        read_logs([path], IngestConfig())
    assert "datetime.datetime(" not in str(err.value)


def test_a_text_column_of_numbers_is_refused_but_a_csv_prompt_that_is_a_number_is_text(tmp_path):
    """A --text-col naming a numeric column (a length, a flag) would cluster every row as its number: refused
    with examples. A CSV's text column is read as text, so prompts that look like numbers stay prompts."""
    path = tmp_path / "n.parquet"
    _rows(3).with_columns(pl.col("text").str.len_chars().alias("text")).write_parquet(path)
    with pytest.raises(InputError, match=r"column 'text' holds UInt32 values, not text \(e.g. row 0: '15'.*--text-col"):
        read_logs([path], IngestConfig())
    csv = tmp_path / "n.csv"
    _rows(3).with_columns(pl.Series("text", ["0012", "3.50", "42"])).write_csv(csv)
    assert read_logs([csv], IngestConfig()).frame["text"].to_list() == ["0012", "3.50", "42"]


def test_epoch_timestamps_out_of_range_show_rows(tmp_path):
    """An epoch no datetime can hold (±inf, a float past int64 nanoseconds, an unsigned integer past the
    int64 maximum) is named with its rows, not a cast error; in range, an unsigned column reads."""
    for name, ts, dtype, shown in [
        ("f.parquet", [1.7e9, float("inf"), 1.7e9, -float("inf")], pl.Float64, r"row 1: inf; .*row 3: -inf"),
        ("g.parquet", [1.7e9, 3e22, 1.7e9, 1.7e9], pl.Float64, r"row 1: 3e\+22\)"),
        (
            "u.parquet",
            [1_700_000_000, 2**64 - 1, 1_700_000_000, 1_700_000_000],
            pl.UInt64,
            r"row 1: 18446744073709551615\)",
        ),
    ]:
        path = tmp_path / name
        _rows(4).with_columns(pl.Series("timestamp", ts, dtype=dtype)).write_parquet(path)
        with pytest.raises(InputError, match=r"column 'timestamp' has \d timestamps out of range \(e.g. .*" + shown):
            read_logs([path], IngestConfig())
    ok = tmp_path / "ok.parquet"
    _rows(2).with_columns(pl.Series("timestamp", [1_700_000_000, 1_700_003_600], dtype=pl.UInt64)).write_parquet(ok)
    got = read_logs([ok], IngestConfig()).frame["timestamp"]
    assert got.dt.epoch("s").to_list() == [1_700_000_000, 1_700_003_600]


def test_null_account_needs_fill(tmp_path):
    path = tmp_path / "n.parquet"
    _rows(4, account_id=["a", None, "b", ""]).write_parquet(path)
    with pytest.raises(
        InputError,
        match=r"column 'account_id' is null or empty in 2 rows \(e.g. .*n.parquet row 1, "
        r".*n.parquet row 3\); drop them or pass --fill-account",
    ):
        read_logs([path], IngestConfig())
    got = read_logs([path], IngestConfig(fill_account="unknown"))
    assert got.frame["account_id"].to_list() == ["a", "unknown", "b", "unknown"]


def test_directory_without_logs(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="directory has no .parquet, .jsonl"):
        read_logs([tmp_path], IngestConfig())


def test_glob_without_matches_and_missing_path(tmp_path):
    with pytest.raises(InputError, match="glob matches no files"):
        read_logs([str(tmp_path / "*.parquet")], IngestConfig())
    with pytest.raises(InputError, match="no such file or directory"):
        read_logs([tmp_path / "none.parquet"], IngestConfig())


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.parquet"
    _rows(0).write_parquet(empty)
    assert read_logs([empty], IngestConfig()).frame.height == 0
    zero = tmp_path / "zero.csv"
    zero.write_bytes(b"")
    got = read_logs([zero], IngestConfig())
    assert got.frame.height == 0 and got.frame.columns[:5] == ["_row", "prompt_id", "account_id", "timestamp", "text"]


def test_unknown_extension(tmp_path):
    path = tmp_path / "logs.txt"
    path.write_text("x")
    with pytest.raises(InputError, match="cannot tell the format"):
        read_logs([path], IngestConfig())


def test_a_directory_says_which_files_it_leaves_out(tmp_path, caplog):
    """Files of other extensions in a log directory (a compressed part, a temp file) are left out with a
    warning that names them; a writer's markers (_SUCCESS, hidden files) silently."""
    d = tmp_path / "logs"
    d.mkdir()
    _rows(4).write_parquet(d / "part-0.parquet")
    (d / "part-1.jsonl.gz").write_bytes(b"x")
    (d / "part-2.parquet.tmp").write_bytes(b"x")
    (d / "_SUCCESS").write_bytes(b"")
    with caplog.at_level("WARNING", logger="clusterer"):
        got = read_logs([d], IngestConfig())
    assert got.frame.height == 4
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "2 file(s) left out" in said and "part-1.jsonl.gz" in said and "part-2.parquet.tmp" in said
    assert "_SUCCESS" not in said


def test_a_log_file_of_blank_lines_is_an_empty_file(tmp_path):
    """A JSONL or CSV file holding only blank lines has no rows, like a zero-byte one (it failed with
    "could not infer data-type"); the other files are read."""
    _rows(3).write_ndjson(tmp_path / "a.jsonl")
    (tmp_path / "b.jsonl").write_text("\n\n  \n")
    (tmp_path / "c.csv").write_text("\n\n")
    got = read_logs([tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.csv"], IngestConfig())
    assert got.frame.height == 3 and [f.rows for f in got.files] == [3, 0, 0]


def test_a_messages_row_that_is_a_plain_string_is_named(tmp_path):
    path = tmp_path / "m.jsonl"
    rows = [
        {
            "prompt_id": "a",
            "account_id": "x",
            "timestamp": "2026-11-02T01:00:00Z",
            "messages": [{"role": "user", "content": "hi there"}],
        },
        {"prompt_id": "b", "account_id": "x", "timestamp": "2026-11-02T02:00:00Z", "messages": "just a string"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(InputError, match=r"m.jsonl: column 'messages' must be a list .*row 1: 'just a string'"):
        read_logs([path], IngestConfig())


def test_a_binary_text_column_is_decoded_and_bad_bytes_are_named(tmp_path):
    """A parquet text column of bytes reads as UTF-8; invalid bytes name their rows (the cast failed with
    "invalid utf8" and no column), or read as U+FFFD with --on-bad-utf8 replace."""
    path = tmp_path / "b.parquet"
    texts = ["caf\u00e9 order".encode(), b"bad \xff byte", None, b"fine"]
    _rows(4).with_columns(pl.Series("text", texts, dtype=pl.Binary)).write_parquet(path)
    with pytest.raises(
        InputError, match=r"b.parquet: column 'text' holds invalid UTF-8 bytes in 1 rows \(e.g. rows 1\)"
    ):
        read_logs([path], IngestConfig())
    got = read_logs([path], IngestConfig(on_bad_utf8="replace")).frame["text"].to_list()
    assert got == ["caf\u00e9 order", "bad \ufffd byte", None, "fine"]


def test_epoch_numbers_written_as_text_read_as_numbers_and_mix_with_iso(tmp_path):
    """A JSON log that quotes its epoch numbers ("1793577890") reads them as the numbers they are, each with
    its own unit, beside ISO strings in the same column; a quoted epoch no datetime holds is named."""
    path = tmp_path / "q.jsonl"
    ts = ["1793577890", "1793577890500", "2026-11-02T19:54:50Z", " 1793577890.25 ", None]
    _rows(5, timestamp=ts).write_ndjson(path)
    got = read_logs([path], IngestConfig(null_timestamps="skip")).frame["timestamp"].to_list()
    base = dt.datetime.fromtimestamp(1793577890, dt.timezone.utc)
    want = [base, base + dt.timedelta(milliseconds=500), dt.datetime(2026, 11, 2, 19, 54, 50, tzinfo=dt.timezone.utc)]
    assert got[:3] == want and got[3] == base + dt.timedelta(milliseconds=250) and got[4] is None
    _rejects(
        tmp_path / "big.jsonl",
        _rows(2, timestamp=["1793577890", "99999999999999999999999"]),
        r"column 'timestamp' has 1 timestamps out of range \(e.g. .*big.jsonl row 1: '99999999999999999999999'\)",
    )
    # eight digits are a basic-format date, not seconds in 1970: refused, not misread
    _rejects(tmp_path / "d.jsonl", _rows(2, timestamp=["20261102", "20261102"]), r"not in ISO 8601 \(year first\)")


def test_a_csv_cut_inside_its_last_field_waits_in_a_watch_and_is_named_elsewhere(tmp_path, caplog):
    """A CSV part file still being written, cut inside its last field, reads as a shorter row: a watch
    (``whole_lines``) refuses it until the line is whole; a finished day reads it with a warning naming it."""
    full = (
        "prompt_id,account_id,timestamp,text\n"
        "p1,a1,2026-11-01T00:00:00Z,hello world\n"
        "p2,a2,2026-11-01T00:01:00Z,a long prompt\n"
    )
    path = tmp_path / "part-00.csv"
    path.write_text(full[:-8])  # "...,a long" (the writer has not finished the row)
    with pytest.raises(InputError, match=r"part-00.csv: its last line has no line break.*write part files atomically"):
        read_logs([tmp_path], IngestConfig(), whole_lines=True)
    with caplog.at_level("WARNING", logger="clusterer.io.ingest"):
        cut = read_logs([tmp_path], IngestConfig())
    assert cut.frame["text"].to_list() == ["hello world", "a long"]
    assert "part-00.csv: its last line has no line break" in caplog.text
    path.write_text(full)  # the row finished: read whole, without a warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="clusterer.io.ingest"):
        whole = read_logs([tmp_path], IngestConfig(), whole_lines=True)
    assert whole.frame["text"].to_list() == ["hello world", "a long prompt"] and "line break" not in caplog.text
    path.write_text(full.replace("\n", "\r\n"))  # Windows line ends
    assert read_logs([tmp_path], IngestConfig(), whole_lines=True).frame["text"].to_list()[-1] == "a long prompt"


def test_a_day_read_without_texts_reads_them_back_from_its_files(tmp_path):
    """A stream holds the day without its texts: each row keeps its text's key and its place, and
    ``fetch_texts`` reads any rows' texts back — from parquet, CSV and chat JSONL alike, in the order asked —
    the same as a read with texts; a file rewritten since is named, not read as other texts."""
    from clusterer.io.ingest import TEXT_AT, TEXT_KEY, LogsChanged, fetch_texts

    logs = tmp_path / "logs"
    logs.mkdir()
    _rows(6, text=["α one", None, "two", "three", "four", "five"], region=["eu", "us"] * 3).write_parquet(
        logs / "a.parquet"
    )
    _rows(5, prompt_id=[f"c{i}" for i in range(5)]).write_csv(logs / "b.csv")
    chat = _rows(4, prompt_id=[f"j{i}" for i in range(4)]).drop("text")
    chat = chat.with_columns(
        pl.Series("messages", [[{"role": "user", "content": f"chat {i}"}] for i in range(4)]),
    )
    chat.write_ndjson(logs / "c.jsonl")
    cfg = IngestConfig()
    full = read_logs([logs], cfg)
    lean = read_logs([logs], cfg, texts=False)
    assert full.texts and not lean.texts and "text" not in lean.frame.columns
    assert {TEXT_KEY, *TEXT_AT} <= set(lean.frame.columns)
    assert lean.frame.drop(TEXT_KEY, *TEXT_AT).equals(full.frame.drop("text"))
    assert lean.frame[TEXT_KEY].null_count() == 1  # the null text stays null
    order = [13, 0, 7, 1, 14, 6, 2, 10]
    got = fetch_texts(lean, lean.frame[order], cfg)
    assert got.to_list() == full.frame["text"].gather(order).to_list()
    assert got.to_list()[:4] == ["chat 2", "α one", "prompt number 1", None]
    # a part file rewritten with another text at a row read before: named, never read as that row's text
    _rows(5, prompt_id=[f"c{i}" for i in range(5)], text=[f"prompt number {i}" for i in range(4)] + ["x"]).write_csv(
        logs / "b.csv"
    )
    with pytest.raises(LogsChanged, match=r"b.csv: 1 of the 2 rows read back hold other texts now .*row 5\b"):
        fetch_texts(lean, lean.frame[[6, 10]], cfg)
    # a row asked twice is read once, given twice
    got = fetch_texts(lean, lean.frame[[9, 6, 9]], cfg)
    assert got.to_list() == ["prompt number 3", "prompt number 0", "prompt number 3"]
    (logs / "a.parquet").unlink()
    with pytest.raises(LogsChanged, match="a.parquet"):
        fetch_texts(lean, lean.frame[[0]], cfg)
    # a text part is scanned for invalid UTF-8 once per version of the file, not in every read back
    from clusterer.io import ingest

    before = ingest._bad_utf8_at.cache_info()
    for _ in range(3):
        fetch_texts(lean, lean.frame[[13, 6]], cfg)
    after = ingest._bad_utf8_at.cache_info()
    assert after.misses - before.misses <= 2 and after.hits - before.hits >= 4


def test_a_growing_day_read_again_reads_only_its_new_and_changed_files(tmp_path, monkeypatch):
    """`watch` keeps the files' rows between polls: a file unchanged since is not read again, a changed one
    and a new one are (one that sorts before the others shifts their places), a removed one leaves; the
    result is a fresh read's."""
    import os

    import clusterer.io.ingest as ingest
    from clusterer.io.ingest import fetch_texts

    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("b", "c", "d"):
        _rows(4, prompt_id=[f"{name}{i}" for i in range(4)]).write_parquet(logs / f"{name}.parquet")
    opened: list[str] = []
    real = ingest.read_file

    def counted(fi, path, *rest):
        opened.append(path.name)
        return real(fi, path, *rest)

    monkeypatch.setattr(ingest, "read_file", counted)
    cfg, cache = IngestConfig(), {}
    read_logs([logs], cfg, texts=False, cache=cache)
    assert opened == ["b.parquet", "c.parquet", "d.parquet"]
    opened.clear()
    read_logs([logs], cfg, texts=False, cache=cache)
    assert opened == []
    changed = _rows(4, prompt_id=[f"c{i}" for i in range(4)], text=["new", "texts", "in", "c"])
    changed.write_parquet(logs / "c.parquet")
    os.utime(logs / "c.parquet", ns=(1, 1))  # whatever its clock: another modification time
    _rows(2, prompt_id=["a0", "a1"]).write_parquet(logs / "a.parquet")
    (logs / "d.parquet").unlink()
    opened.clear()
    got = read_logs([logs], cfg, texts=False, cache=cache)
    assert sorted(opened) == ["a.parquet", "c.parquet"] and len(cache) == 3
    fresh = read_logs([logs], cfg, texts=False)
    assert got.frame.equals(fresh.frame) and got.files == fresh.files
    assert fetch_texts(got, got.frame, cfg).to_list() == read_logs([logs], cfg).frame["text"].to_list()
    assert got.frame.filter(pl.col("prompt_id") == "b0")["_file"].item() == 1  # b shifted by a
