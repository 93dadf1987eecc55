"""Measure ingest throughput of the AETUS server against its baselines.

The server runs in a child process with a temporary data folder and the
embedded store, on real loopback sockets, and a thread samples its RSS
throughout. Load comes from a separate worker process, and the baselines run
in a third process with a store of their own. Each repetition measures:

* one StreamEvents bidi stream carrying row batches (MetricSet events) and
  then columnar batches (MetricColumns events), in points/s;
* 16 concurrent clients sending 10-point batches as application/x-protobuf
  posts to /v1/ingest through Envoy, and as IngestEvents unary gRPC calls
  straight to the server, in requests/s and points/s;
* baselines on the same bytes: IngestEventsRequest.FromString alone, and
  EmbeddedStore.write_many on batches normalised beforehand.

Ratios are taken within each repetition and their medians are the result.

Usage::

    .venv/bin/python bench/ingest.py [--repetitions 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestbench import baselines, load, payloads, report
from ingestbench.processes import (
    RssSampler,
    ServerProcess,
    cpu_seconds,
    provision_devices,
    rss_bytes,
    start_envoy,
)

logger = logging.getLogger("bench.ingest")

ADMIN_TOKEN = "aetus_admin_bench"
# Event times start this long before the benchmark, so that every repetition
# stays in the past and no event exceeds the server's future-time limit.
HISTORY_NS = 2 * 86_400 * 1_000_000_000


@dataclass
class Run:
    """Processes, credentials and settings shared by the phases of one run."""

    args: argparse.Namespace
    server: ServerProcess
    http_address: str
    tokens: dict[str, str]
    sampler: RssSampler
    load_pool: ProcessPoolExecutor
    baseline_pool: ProcessPoolExecutor
    start_ns: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; every size has a default for the full run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--repetitions", type=int, default=3, help="repetitions (median taken)")
    add("--points-per-batch", type=int, default=10_000, help="points per big batch")
    add("--row-batches", type=int, default=40, help="MetricSet batches per stream")
    add("--column-batches", type=int, default=80, help="MetricColumns batches")
    add("--clients", type=int, default=16, help="concurrent small-batch clients")
    add("--requests-per-client", type=int, default=60, help="posts per client")
    add("--parse-min-s", type=float, default=0.5, help="seconds per parse baseline")
    add("--envoy-concurrency", type=int, default=None, help="Envoy worker threads")
    add("--json", type=Path, default=None, help="write every figure to this file")
    add("--profile-server", type=Path, default=None, help="server cProfile stats file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the Markdown summary and optionally write JSON."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    info = report.machine()
    # Other jobs on a shared machine change the figures; the load average
    # before and after the run shows how busy it was.
    info["load_average_1m_start"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="aetus-bench-") as folder:
        with _started(args, Path(folder)) as run:
            repetitions = [_repetition(run, n) for n in range(args.repetitions)]
        rss = run.sampler.maxima
    info["load_average_1m_end"] = os.getloadavg()[0]
    summary = report.summarize(repetitions, rss)
    print(report.render(summary, info))
    if args.json is not None:
        result = {
            "command": " ".join(["python", *sys.argv]),
            "machine": info,
            "settings": {key: str(value) for key, value in vars(args).items()},
            "repetitions": repetitions,
            "summary": summary,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


@contextmanager
def _started(args: argparse.Namespace, folder: Path) -> Iterator[Run]:
    """Start the server, its RSS sampler, Envoy and the two worker processes."""
    spawn = multiprocessing.get_context("spawn")
    with ExitStack() as stack:
        server = ServerProcess.start(
            folder / "server", ADMIN_TOKEN, args.profile_server
        )
        stack.callback(server.stop)
        sampler = RssSampler({"server": server.pid})
        sampler.start()
        stack.callback(sampler.stop)
        envoy = start_envoy(server, folder / "envoy", args.envoy_concurrency)
        stack.callback(envoy.stop)
        sampler.add("envoy", envoy.pid)
        load_pool = stack.enter_context(ProcessPoolExecutor(1, mp_context=spawn))
        sampler.add("load client", load_pool.submit(os.getpid).result())
        baseline_pool = stack.enter_context(ProcessPoolExecutor(1, mp_context=spawn))
        sampler.add("baseline", baseline_pool.submit(os.getpid).result())
        baseline_pool.submit(baselines.open_store, str(folder / "baseline")).result()
        stack.callback(lambda: baseline_pool.submit(baselines.close_store).result())
        yield Run(
            args,
            server,
            envoy.http_address,
            provision_devices(server.address, ADMIN_TOKEN, args.clients),
            sampler,
            load_pool,
            baseline_pool,
            time.time_ns() - HISTORY_NS,
        )


def _measure(
    run: Run, phase: str, call: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run one phase, attributing RSS samples and CPU time to it."""
    pids = run.sampler.pids
    cpu_before = cpu_seconds(pids)
    with run.sampler.phase(phase):
        result = call()
    cpu_after = cpu_seconds(pids)
    result["server_rss_after_bytes"] = rss_bytes(run.server.pid)
    result["cpu_s"] = {
        label: cpu_after[label] - cpu_before[label]
        for label in cpu_before.keys() & cpu_after.keys()
    }
    logger.info("%s: %.2f s", phase, result["elapsed_s"])
    return result


def _rates(result: dict[str, Any], points: int, requests: int) -> dict[str, Any]:
    result["points"] = points
    result["requests"] = requests
    result["points_per_s"] = points / result["elapsed_s"]
    result["requests_per_s"] = requests / result["elapsed_s"]
    return result


def _repetition(run: Run, number: int) -> dict[str, Any]:
    logger.info("repetition %d of %d", number + 1, run.args.repetitions)
    figures: dict[str, Any] = {}
    rows = payloads.row_batches(
        number, run.args.row_batches, run.args.points_per_batch, run.start_ns
    )
    figures.update(_big_batches(run, "rows", rows))
    columns = payloads.column_batches(
        number, run.args.column_batches, run.args.points_per_batch, run.start_ns
    )
    figures.update(_big_batches(run, "columns", columns))
    figures.update(_small_batches(run, number))
    return figures


def _big_batches(
    run: Run, form: str, work: payloads.BatchPayloads
) -> dict[str, dict[str, Any]]:
    """Measure one workload of big batches: direct insert, stream, parse."""
    batches = len(work.stream_requests)
    insert = _measure(
        run,
        f"insert {form}",
        lambda: run.baseline_pool.submit(
            baselines.insert, work.ingest_requests
        ).result(),
    )
    stream = _measure(
        run,
        f"stream {form}",
        lambda: run.load_pool.submit(
            load.run_stream,
            run.server.address,
            ADMIN_TOKEN,
            work.stream_requests,
            work.events,
        ).result(),
    )
    parse = _measure(
        run,
        f"parse {form}",
        lambda: run.baseline_pool.submit(
            baselines.parse, work.ingest_requests, run.args.parse_min_s
        ).result(),
    )
    passes = parse["passes"]
    return {
        f"insert_{form}": _rates(insert, work.points, batches),
        f"stream_{form}": _rates(stream, work.points, batches),
        f"parse_{form}": _rates(parse, work.points * passes, batches * passes),
    }


def _small_batches(run: Run, number: int) -> dict[str, dict[str, Any]]:
    """Measure 10-point posts through Envoy and as direct gRPC calls, and baselines."""
    device_ids = list(run.tokens)
    tokens = list(run.tokens.values())
    count = run.args.requests_per_client
    span_ns = count * payloads.READING_INTERVAL_NS
    start_ns = run.start_ns + HISTORY_NS // 2 + number * 4 * span_ns

    def build(label: str, offset: int) -> payloads.DevicePayloads:
        return payloads.device_batches(
            label, number, device_ids, count, start_ns + offset * span_ns
        )

    envoy, direct = build("envoy", 0), build("grpc", 1)
    figures: dict[str, dict[str, Any]] = {}
    # The order alternates, so a slow drift of the shared machine does not
    # always favour the same path.
    order = ["envoy", "grpc"] if number % 2 == 0 else ["grpc", "envoy"]
    for path in order:
        if path == "envoy":
            figures["envoy_small"] = _post_small(run, envoy, tokens)
        else:
            figures["grpc_small"] = _call_small(run, direct, tokens)
    figures.update(_small_baselines(run, build("insert", 2), build("grouped", 3)))
    return figures


def _post_small(
    run: Run, work: payloads.DevicePayloads, tokens: list[str]
) -> dict[str, Any]:
    result = _measure(
        run,
        "small posts via Envoy",
        lambda: run.load_pool.submit(
            load.run_http, run.http_address, tokens, work.requests
        ).result(),
    )
    requests = result["requests"]
    return _rates(result, requests * work.points_per_request, requests)


def _call_small(
    run: Run, work: payloads.DevicePayloads, tokens: list[str]
) -> dict[str, Any]:
    result = _measure(
        run,
        "small gRPC calls",
        lambda: run.load_pool.submit(
            load.run_unary, run.server.address, tokens, work.requests
        ).result(),
    )
    requests = result["requests"]
    return _rates(result, requests * work.points_per_request, requests)


def _small_baselines(
    run: Run, alone: payloads.DevicePayloads, grouped: payloads.DevicePayloads
) -> dict[str, dict[str, Any]]:
    """Insert small batches one per commit, then one round of all clients per commit."""
    points = alone.points_per_request
    # Interleaved by client, as concurrent posts reach the server.
    flat_alone = _interleave(alone.requests)
    flat_grouped = _interleave(grouped.requests)
    pool = run.baseline_pool
    insert = _measure(
        run, "insert small", lambda: pool.submit(baselines.insert, flat_alone).result()
    )
    insert_grouped = _measure(
        run,
        "insert small grouped",
        lambda: pool.submit(
            baselines.insert, flat_grouped, len(grouped.requests)
        ).result(),
    )
    parse = _measure(
        run,
        "parse small",
        lambda: pool.submit(baselines.parse, flat_alone, run.args.parse_min_s).result(),
    )
    requests = len(flat_alone)
    parsed = requests * parse["passes"]
    return {
        "insert_small": _rates(insert, requests * points, requests),
        "insert_small_grouped": _rates(insert_grouped, requests * points, requests),
        "parse_small": _rates(parse, parsed * points, parsed),
    }


def _interleave(requests: list[list[bytes]]) -> list[bytes]:
    """Order posts as concurrent clients send them: round by round."""
    return [post for posts in zip(*requests, strict=True) for post in posts]


if __name__ == "__main__":
    sys.exit(main())
