"""Bad input files fed to `run --source replay`, `backtest` and `evaluate` (real subprocesses):
exit status 2, stderr names the file, the line and the problem, no traceback, nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from blink.formats import files

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data"
TICKS = "product_id,trade_id,time,price,size,side\n"
GOOD_TICK = "BTC-USD,{i},2026-01-05T12:00:{s:02d}.000000Z,84000.{c:02d},0.01,buy\n"


def ticks(n: int, start: int = 1) -> str:
    return "".join(GOOD_TICK.format(i=i, s=i % 60, c=i % 100) for i in range(start, start + n))


def tardis_lines() -> list[str]:
    return (DATA / "tardis_trades.csv").read_text().splitlines(keepends=True)


# name -> (content, line, words the problem must contain)
CASES = {
    "truncated_row": (TICKS + ticks(40) + "BTC-USD,41,2026-01-05T12:00:41.0", 42,
                      "expected 6 columns, got 3"),
    "truncated_quote": (TICKS + ticks(5) + 'BTC-USD,6,"2026-01-05T12:00:06Z,1', 7, ""),
    "empty": ("", 1, "empty file"),
    "wrong_columns": ("time,bid,ask,last\n2026-01-05T12:00:00Z,1,2,3\n", 1,
                      "which column is the value? pass --column NAME"),
    "garbage_price": (TICKS + ticks(30) + "BTC-USD,31,2026-01-05T12:00:31Z,eighty,0.01,buy\n",
                      32, "price"),
    "garbage_side": (TICKS + ticks(3) + "BTC-USD,4,2026-01-05T12:00:04Z,1.5,0.01,up\n", 5,
                     "side"),
    "bad_bytes": (TICKS + ticks(3), 5, "not UTF-8"),  # + an undecodable line, below
    "tardis_garbage": ("".join(tardis_lines()[:21]) + "binance-futures,BTCUSDT,oops\n", 22,
                       "expected 8 columns, got 3"),
    "bars_high_below_low": ("time_utc,open,high,low,close,volume\n"
                            "2026-01-05T12:00:00Z,10,12,9,11,1\n"
                            "2026-01-05T12:01:00Z,10,8,9,11,1\n", 3, ""),
}
COMMANDS = ("replay", "backtest", "evaluate")
# every case through the replay (the fastest to fail); these three through all three commands
EVERYWHERE = ("truncated_row", "wrong_columns", "garbage_price")
JOBS = [(name, cmd) for name in CASES for cmd in COMMANDS
        if cmd == "replay" or name in EVERYWHERE] + [("missing", cmd) for cmd in COMMANDS]


def write(tmp: Path, name: str) -> Path:
    if name == "missing":
        return tmp / "nope.csv"
    content, _, _ = CASES[name]
    path = tmp / f"{name}.csv"
    path.write_bytes(content.encode() + (b"BTC-USD,4,\xff\xfe,1,1,buy\n"
                                         if name == "bad_bytes" else b""))
    return path


def run(command: str, path: Path, tmp: Path) -> subprocess.CompletedProcess:
    out = tmp / f"{path.stem}-{command}"
    args = {
        "replay": ["run", "--source", "replay", "--replay", str(path), "--speed", "0"],
        "backtest": ["backtest", str(path), "--out", f"{out}.csv", "--no-progress"],
        "evaluate": ["evaluate", str(path), "--labels", str(tmp / "labels.json"),
                     "--report", str(out), "--no-progress"],
    }[command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINK_", "PG_", "REDIS"))}
    env.update(BLINK_DATA_DIR=str(tmp / "data"), MLFLOW_DISABLE_TELEMETRY="true",
               PYTHONPATH=str(ROOT), BLINK_PORT="1")  # never serves: the file is checked first
    return subprocess.run([sys.executable, "-m", "blink", *args], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", CASES)
def test_both_readers_give_the_same_message(tmp_path, name):
    """The backtest reads columns, the replay reads rows: one error for one bad file."""
    path = write(tmp_path, name)
    _, line, problem = CASES[name]
    messages = []
    for reader in (files.read, files.read_columns):
        with pytest.raises(files.FileFormatError) as e:
            list(reader(path))
        messages.append(str(e.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"{path}:{line}: ") and problem in messages[0]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every (case, command) run once, three at a time."""
    tmp = tmp_path_factory.mktemp("badfiles")
    (tmp / "labels.json").write_text(json.dumps(
        [{"start": "2026-01-05T12:00:10Z", "end": "2026-01-05T12:00:20Z", "kind": "spike"}]))
    with ThreadPoolExecutor(2) as pool:
        done = pool.map(lambda job: run(job[1], write(tmp, job[0]), tmp), JOBS)
        return tmp, dict(zip(JOBS, done, strict=True))


@pytest.mark.parametrize("name, command", [job for job in JOBS if job[0] != "missing"])
def test_bad_file_exits_2_naming_file_line_and_problem(results, name, command):
    tmp, runs = results
    proc = runs[(name, command)]
    _, line, problem = CASES[name]
    where = f"{tmp / name}.csv:{line}:"
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert where in proc.stderr and problem in proc.stderr.split(where, 1)[1].splitlines()[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    stem = tmp / f"{name}-{command}"
    assert not Path(f"{stem}.csv").exists() and not stem.exists()  # no half-written output
    assert not (tmp / "data" / "pg").exists()  # the replay never started a database


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_file_is_one_line_and_exit_2(results, command):
    tmp, runs = results
    proc = runs[("missing", command)]
    assert proc.returncode == 2 and f"{tmp / 'nope.csv'}: cannot open" in proc.stderr
    assert "Traceback" not in proc.stderr
