"""Smoke test of bench/ingest.py: a tiny run must produce every figure.

No timing is asserted: the machine is shared, and the figures of a run this
small mean nothing. The test keeps the benchmark runnable and its output
complete.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.envoy]

REPOSITORY = Path(__file__).resolve().parents[2]
BENCHMARK = REPOSITORY / "bench" / "ingest.py"
REPETITIONS = 2

# The JSON result and the printed summary of one run.
TinyRun = tuple[dict[str, Any], str]

# Every figure a repetition records, with the rates it must carry.
FIGURES = {
    "stream_rows": ("points_per_s",),
    "stream_columns": ("points_per_s",),
    "insert_rows": ("points_per_s",),
    "insert_columns": ("points_per_s",),
    "parse_rows": ("points_per_s",),
    "parse_columns": ("points_per_s",),
    "envoy_small": ("requests_per_s", "points_per_s"),
    "grpc_small": ("requests_per_s", "points_per_s"),
    "insert_small": ("requests_per_s", "points_per_s"),
    "insert_small_grouped": ("requests_per_s", "points_per_s"),
    "parse_small": ("requests_per_s", "points_per_s"),
}
TARGETS = {
    "stream_rows_vs_insert",
    "stream_columns_vs_insert",
    "envoy_vs_grpc_small",
    "server_rss_below_300mb",
}
# Phases during which the server's RSS must have been sampled.
SAMPLED_PHASES = {
    "startup",
    "stream rows",
    "stream columns",
    "small posts via Envoy",
    "small gRPC calls",
    "insert rows",
    "parse small",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """Run the benchmark once with tiny sizes; return its JSON and its stdout."""
    output = tmp_path_factory.mktemp("bench") / "ingest.json"
    command = [
        sys.executable,
        str(BENCHMARK),
        f"--repetitions={REPETITIONS}",
        "--points-per-batch=1000",
        "--row-batches=3",
        "--column-batches=3",
        "--clients=3",
        "--requests-per-client=4",
        "--parse-min-s=0.01",
        f"--json={output}",
    ]
    completed = subprocess.run(
        command,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(output.read_text(encoding="utf-8")), completed.stdout


def test_ingest_bench_records_every_figure(tiny_run: TinyRun) -> None:
    result, _ = tiny_run
    repetitions = result["repetitions"]
    assert len(repetitions) == REPETITIONS
    for figures in repetitions:
        for figure, rates in FIGURES.items():
            assert figure in figures, figure
            for rate in rates:
                assert figures[figure][rate] > 0, (figure, rate)


def test_ingest_bench_stores_every_point(tiny_run: TinyRun) -> None:
    result, _ = tiny_run
    for figures in result["repetitions"]:
        stream = figures["stream_rows"]
        insert = figures["insert_rows"]
        assert stream["accepted"] == insert["accepted"]
        assert (
            figures["stream_columns"]["accepted"]
            == figures["insert_columns"]["accepted"]
        )
        assert figures["envoy_small"]["requests"] == figures["grpc_small"]["requests"]


def test_ingest_bench_summarizes_targets(tiny_run: TinyRun) -> None:
    result, stdout = tiny_run
    summary = result["summary"]
    assert set(summary["targets"]) == TARGETS
    for name in TARGETS - {"server_rss_below_300mb"}:
        ratio = summary["ratios"][name]
        assert ratio["min"] <= ratio["median"] <= ratio["max"], name
        assert name in stdout
    assert "stream_rows.server.per_point" in summary["cpu_us"]
    assert "insert_rows.baseline.per_point" in summary["cpu_us"]
    assert "envoy_small.envoy.per_request" in summary["cpu_us"]
    assert summary["server_rss_max_bytes"] > 0
    assert set(summary["rss_max_bytes_by_phase"]["server"]) >= SAMPLED_PHASES


def test_ingest_bench_describes_machine(tiny_run: TinyRun) -> None:
    result, stdout = tiny_run
    machine = result["machine"]
    assert machine["nproc"] >= 1
    assert machine["cpu_model"]
    assert machine["python"] == sys.version.split()[0]
    assert "Machine:" in stdout
