"""`python -m blink backtest` on the files people have: many inputs or a folder at once,
standard input, `--format`/`--column`, timestamps kept verbatim, bad inputs (exit 2, one line
naming the file and line, nothing left under the output name)."""

from __future__ import annotations

import csv
import io
import sys

import pytest

from blink.cli import main as cli
from blink.formats import containers

MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def run_cli(tmp_path, *argv: str) -> int:
    empty = tmp_path / "empty.toml"
    empty.touch()
    return cli.main([argv[0], "--config", str(empty), "--data-dir", str(tmp_path / "data"),
                     "--log-level", "WARNING", *argv[1:], "--no-progress"])


def scores(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def column(text: str, index: int) -> list[str]:
    return [line.split(",")[index] for line in text.splitlines()[1:]]


EXCHANGE = "timestamp,open,high,low,close,volume,close_time,quote_volume,trades\n" + "".join(
    f"{MS + 60_000 * i},{100 + i % 3},{103 + i % 3},{99 + i % 3},{101 + i % 3},{1 + i % 4},"
    f"{MS + 60_000 * i + 59_999},55.5,7\n" for i in range(40))
PANDAS = ",Open,High,Low,Close,Volume\n" + "".join(
    f"2024-01-01 00:{i:02d}:00+00:00,{10 + i % 2},{12 + i % 2},9,11,0.5\n" for i in range(30))
METRIC = "Time,host,cpu_seconds,requests\n" + "".join(
    f"2024-01-01T00:{i // 4:02d}:{15 * (i % 4):02d}Z,web-1,{i * 0.25:.2f},{i % 9}\n"
    for i in range(50))


def test_many_files_and_a_folder_one_scores_file_each_with_verbatim_timestamps(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "binance.csv").write_text(EXCHANGE)
    (folder / "pandas.csv").write_text(PANDAS)
    (folder / "notes.txt").write_text("not an input")
    metric = tmp_path / "metric.csv"
    metric.write_text("\n".join(",".join(line.split(",")[:3]) for line in METRIC.splitlines())
                      + "\n")
    out = tmp_path / "scores"
    assert run_cli(tmp_path, "backtest", str(folder), str(metric), "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "binance.scores.csv", "metric.scores.csv", "pandas.scores.csv"]
    for name, text, value in (("binance", EXCHANGE, 4), ("pandas", PANDAS, 4),
                              ("metric", (tmp_path / "metric.csv").read_text(), 2)):
        got = scores(out / f"{name}.scores.csv")
        assert [r["timestamp"] for r in got] == column(text, 0)  # as written, in order
        assert [r["value"] for r in got] == column(text, value)


def test_column_and_format_flags(tmp_path, capsys):
    path = tmp_path / "metric.csv"
    path.write_text(METRIC)
    out = tmp_path / "s.csv"
    assert run_cli(tmp_path, "backtest", str(path), "--out", str(out)) == 2
    assert "metric.csv:1: which column is the value? pass --column NAME (numeric columns: " \
           "cpu_seconds, requests)" in capsys.readouterr().err
    assert not out.exists()
    assert run_cli(tmp_path, "backtest", str(path), "--out", str(out), "--column",
                   "requests") == 0
    assert [r["value"] for r in scores(out)] == column(METRIC, 3)
    err = capsys.readouterr().err
    assert "series: time=Time, value=requests; times ISO-8601; ignored host, cpu_seconds" in err
    assert "50 rows" in err
    bars = tmp_path / "bars.csv"
    bars.write_text(EXCHANGE)
    assert run_cli(tmp_path, "backtest", str(bars), "--out", str(out), "--format",
                   "series") == 0  # the close as a series: one trade a row
    assert "50 rows" not in capsys.readouterr().err
    assert [r["value"] for r in scores(out)] == column(EXCHANGE, 4)


def test_standard_input(tmp_path, monkeypatch):
    monkeypatch.setattr(containers, "_spooled", [])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXCHANGE.encode())))
    out = tmp_path / "s.csv"
    assert run_cli(tmp_path, "backtest", "-", "--out", str(out)) == 0
    assert [r["timestamp"] for r in scores(out)] == column(EXCHANGE, 0)


@pytest.mark.parametrize("content, where", [
    (b"", "bad.csv:1: empty file"),
    (b"timestamp,open,high,low,close\n", "bad.csv: no data rows"),
    (b"host,cpu\nweb,1\n", "bad.csv:1: no time column"),
    (b"time,value\n2024-01-01,1\n2024-01-01Z,2\n", "bad.csv:3: time: '2024-01-01Z' is not a time"),
    (b"time,value\n2024-01-02,1\n2024-01-01,2\n", "bad.csv:3: time: '2024-01-01' is before"),
    (b"time,value\n2024-01-01,1\n2024-01-02,many\n", "bad.csv:3: value: not a number"),
    (b"\x00\x01\x02binary", "bad.csv:1: a binary file, not CSV text"),
])
def test_bad_inputs_exit_2_with_one_line_and_leave_nothing(tmp_path, capsys, content, where):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    assert run_cli(tmp_path, "backtest", str(bad), "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and where in err[0] and err[0].startswith("blink: ")
    assert list(out.parent.iterdir()) == []  # no scores, no temporary file


def test_a_bad_file_among_many_fails_alone(tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(PANDAS)
    bad.write_text(PANDAS.replace("2024-01-01 00:07:00", "2024-01-01 00:67:00"))
    out = tmp_path / "scores"
    assert run_cli(tmp_path, "backtest", str(good), str(bad), "--out", str(out)) == 2
    assert f"blink: {bad}:9: column 1: '2024-01-01 00:67:00+00:00' is not a time" in \
        capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["good.scores.csv"]
    assert run_cli(tmp_path, "backtest", str(good), str(good), "--out", str(out)) == 2
    assert "two inputs have the same name" in capsys.readouterr().err
    assert run_cli(tmp_path, "backtest", str(good), str(bad), "--out", str(out), "--store") == 2
    assert "--store and --mlflow take one input file" in capsys.readouterr().err
