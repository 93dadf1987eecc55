"""Medians, paired ratios and pass/fail targets of the ingest benchmark."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass
from typing import Any

import duckdb
import grpc
import psutil
from google import protobuf

# Rate of each measured figure: (figure, rate key).
RATES: tuple[tuple[str, str], ...] = (
    ("stream_rows", "points_per_s"),
    ("insert_rows", "points_per_s"),
    ("parse_rows", "points_per_s"),
    ("stream_columns", "points_per_s"),
    ("insert_columns", "points_per_s"),
    ("parse_columns", "points_per_s"),
    ("envoy_small", "requests_per_s"),
    ("envoy_small", "points_per_s"),
    ("grpc_small", "requests_per_s"),
    ("grpc_small", "points_per_s"),
    ("insert_small", "requests_per_s"),
    ("insert_small_grouped", "requests_per_s"),
    ("parse_small", "requests_per_s"),
)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio of two figures from the same repetition, with an optional target.

    Attributes:
        name: Short name used in the JSON output.
        numerator: Figure measured.
        denominator: Its baseline.
        key: Rate compared, for example ``points_per_s``.
        minimum: Target: the median ratio must be at least this, or None
            for a ratio reported without a target.
    """

    name: str
    numerator: str
    denominator: str
    key: str
    minimum: float | None = None


RATIOS: tuple[Ratio, ...] = (
    Ratio("stream_rows_vs_insert", "stream_rows", "insert_rows", "points_per_s", 0.5),
    Ratio(
        "stream_columns_vs_insert",
        "stream_columns",
        "insert_columns",
        "points_per_s",
        0.5,
    ),
    Ratio("envoy_vs_grpc_small", "envoy_small", "grpc_small", "requests_per_s", 0.7),
    Ratio("stream_rows_vs_parse", "stream_rows", "parse_rows", "points_per_s"),
    Ratio("stream_columns_vs_parse", "stream_columns", "parse_columns", "points_per_s"),
    Ratio("grpc_small_vs_insert", "grpc_small", "insert_small", "requests_per_s"),
    Ratio(
        "grpc_small_vs_insert_grouped",
        "grpc_small",
        "insert_small_grouped",
        "requests_per_s",
    ),
    Ratio("grpc_small_vs_parse", "grpc_small", "parse_small", "requests_per_s"),
)

RSS_LIMIT_BYTES = 300 * 1_000_000

# Phases that load the server; their CPU use per process is reported.
LOAD_FIGURES = ("stream_rows", "stream_columns", "envoy_small", "grpc_small")

# CPU cost per unit of work: (figure, process, unit). The server's cost of a
# point on the stream compares with the baseline's cost of storing it, which
# the noise of a shared machine disturbs far less than wall-clock rates. The
# baseline's cost covers its timed writes only, not the normalisation before.
CPU_COSTS: tuple[tuple[str, str, str], ...] = (
    ("stream_rows", "server", "points"),
    ("insert_rows", "baseline", "points"),
    ("stream_columns", "server", "points"),
    ("insert_columns", "baseline", "points"),
    ("envoy_small", "server", "requests"),
    ("envoy_small", "envoy", "requests"),
    ("grpc_small", "server", "requests"),
    ("insert_small", "baseline", "requests"),
    ("insert_small_grouped", "baseline", "requests"),
)


def machine() -> dict[str, Any]:
    """Describe the machine and the versions that affect the figures."""
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "grpcio": grpc.__version__,
        "protobuf": protobuf.__version__,
        "duckdb": duckdb.__version__,
    }


def summarize(
    repetitions: list[dict[str, dict[str, Any]]], rss: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """Compute medians of every rate, paired ratios, RSS maxima and targets.

    Args:
        repetitions: One dict of figures per repetition.
        rss: Largest RSS in bytes per process label and phase.
    """
    medians = {
        f"{figure}.{key}": statistics.median(rep[figure][key] for rep in repetitions)
        for figure, key in RATES
    }
    ratios = {}
    for ratio in RATIOS:
        values = [
            rep[ratio.numerator][ratio.key] / rep[ratio.denominator][ratio.key]
            for rep in repetitions
        ]
        ratios[ratio.name] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "minimum": ratio.minimum,
        }
    cores = {
        figure: {
            label: statistics.median(
                rep[figure]["cpu_s"].get(label, 0.0) / rep[figure]["elapsed_s"]
                for rep in repetitions
            )
            for label in repetitions[0][figure]["cpu_s"]
        }
        for figure in LOAD_FIGURES
    }
    cpu_us = {
        f"{figure}.{label}.per_{unit[:-1]}": statistics.median(
            _cpu_s(rep[figure], label) * 1e6 / rep[figure][unit] for rep in repetitions
        )
        for figure, label, unit in CPU_COSTS
    }
    server_rss = rss.get("server", {})
    rss_max = max(server_rss.values(), default=0)
    targets = {
        name: value["median"] >= value["minimum"]
        for name, value in ratios.items()
        if value["minimum"] is not None
    }
    targets["server_rss_below_300mb"] = 0 < rss_max < RSS_LIMIT_BYTES
    return {
        "medians": medians,
        "ratios": ratios,
        "cpu_cores": cores,
        "cpu_us": cpu_us,
        "server_rss_max_bytes": rss_max,
        "rss_max_bytes_by_phase": rss,
        "targets": targets,
    }


def _cpu_s(figure: dict[str, Any], label: str) -> float:
    if label == "baseline":
        return float(figure["timed_cpu_s"])
    return float(figure["cpu_s"].get(label, 0.0))


def render(summary: dict[str, Any], info: dict[str, Any]) -> str:
    """Render the summary as Markdown: machine, medians, ratios, CPU and RSS."""
    lines = [
        f"Machine: {info['nproc']} CPUs ({info['cpu_model']}), "
        f"{info['memory_gib']} GiB, Python {info['python']}, grpcio "
        f"{info['grpcio']}, protobuf {info['protobuf']}, DuckDB {info['duckdb']}; "
        f"1-minute load average {info['load_average_1m_start']:.1f} at the "
        f"start, {info['load_average_1m_end']:.1f} at the end.",
        "",
        "| figure | median |",
        "| --- | ---: |",
    ]
    for name, value in summary["medians"].items():
        lines.append(f"| {name} | {value:,.0f} |")

    lines += _ratio_table(summary)
    lines += _cpu_table(summary["cpu_cores"])
    lines += ["", "| CPU cost, median | microseconds |", "| --- | ---: |"]
    for name, value in summary["cpu_us"].items():
        lines.append(f"| {name} | {value:,.1f} |")

    rss_mb = summary["server_rss_max_bytes"] / 1e6
    verdict = _verdict(summary["targets"]["server_rss_below_300mb"])
    lines += ["", f"Server RSS, maximum over every phase: {rss_mb:.0f} MB ({verdict})"]
    lines += _rss_table(summary["rss_max_bytes_by_phase"])
    return "\n".join(lines)


def _ratio_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| ratio (per repetition) | median | min | max | target | pass |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, value in summary["ratios"].items():
        minimum = value["minimum"]
        target = "" if minimum is None else f">= {minimum:.2f}"
        verdict = "" if minimum is None else _verdict(summary["targets"][name])
        lines.append(
            f"| {name} | {value['median']:.3f} | {value['min']:.3f} | "
            f"{value['max']:.3f} | {target} | {verdict} |"
        )
    return lines


def _cpu_table(cores: dict[str, dict[str, float]]) -> list[str]:
    labels = sorted({label for row in cores.values() for label in row})
    lines = [
        "",
        "| CPU cores used (CPU s / wall s) | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    for figure, row in cores.items():
        cells = " | ".join(f"{row.get(label, 0.0):.2f}" for label in labels)
        lines.append(f"| {figure} | {cells} |")
    return lines


def _rss_table(rss: dict[str, dict[str, int]]) -> list[str]:
    """One row per phase, one column per process: the maximum RSS in MB."""
    labels = list(rss)
    phases = list(dict.fromkeys(phase for row in rss.values() for phase in row))
    lines = [
        "",
        "| max RSS, MB | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    for phase in phases:
        cells = " | ".join(
            f"{rss[label][phase] / 1e6:.0f}" if phase in rss[label] else ""
            for label in labels
        )
        lines.append(f"| {phase} | {cells} |")
    return lines


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"
