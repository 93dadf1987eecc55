"""Tables of the embedded store, created on open when missing.

Dimension tables (devices, boots, metric series, signal streams, channels,
frame layouts) give repeated strings integer keys. Fact tables (events,
points, frames, frame channel statistics, device events) refer to those keys.
Times are int64 nanoseconds since the Unix epoch.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

TABLES = """
CREATE TABLE IF NOT EXISTS schema_info (
    version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS devices (
    device_key INTEGER PRIMARY KEY,
    device_id VARCHAR NOT NULL UNIQUE,
    hardware_id VARCHAR NOT NULL DEFAULT '',
    model VARCHAR NOT NULL DEFAULT '',
    site VARCHAR NOT NULL DEFAULT '',
    firmware_version BIGINT NOT NULL DEFAULT 0,
    token_hash BLOB,
    revoked BOOLEAN NOT NULL DEFAULT false,
    create_time_ns BIGINT NOT NULL,
    token_issue_time_ns BIGINT NOT NULL DEFAULT 0,
    last_seen_time_ns BIGINT,
    last_boot_id VARCHAR NOT NULL DEFAULT '',
    event_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS boots (
    boot_key INTEGER PRIMARY KEY,
    device_key INTEGER NOT NULL,
    boot_id VARCHAR NOT NULL,
    first_seen_time_ns BIGINT NOT NULL,
    -- Smallest boot start estimate seen, for boots that reported only uptime.
    boot_time_ns BIGINT,
    UNIQUE (device_key, boot_id)
);

CREATE TABLE IF NOT EXISTS series (
    series_key INTEGER PRIMARY KEY,
    device_key INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    unit VARCHAR NOT NULL,
    -- aetus.server.records.ValueType number, fixed at the first write.
    value_type TINYINT NOT NULL,
    first_time_ns BIGINT NOT NULL,
    last_time_ns BIGINT NOT NULL,
    point_count BIGINT NOT NULL,
    UNIQUE (device_key, name)
);

CREATE TABLE IF NOT EXISTS signal_streams (
    stream_key INTEGER PRIMARY KEY,
    device_key INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    first_time_ns BIGINT NOT NULL,
    last_time_ns BIGINT NOT NULL,
    frame_count BIGINT NOT NULL,
    last_interval_ns BIGINT NOT NULL,
    UNIQUE (device_key, name)
);

CREATE TABLE IF NOT EXISTS channels (
    channel_key INTEGER PRIMARY KEY,
    stream_key INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    unit VARCHAR NOT NULL,
    sample_count BIGINT NOT NULL,
    UNIQUE (stream_key, name)
);

-- How a frame's bytes decode: encoding, layout and the channels in order
-- with their scale and offset (NULL when the device left them unset).
CREATE TABLE IF NOT EXISTS frame_layouts (
    layout_key INTEGER PRIMARY KEY,
    stream_key INTEGER NOT NULL,
    encoding TINYINT NOT NULL,
    layout TINYINT NOT NULL,
    channel_keys INTEGER[] NOT NULL,
    channel_units VARCHAR[] NOT NULL,
    scales DOUBLE[] NOT NULL,
    offsets DOUBLE[] NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    event_key BIGINT NOT NULL,
    device_key INTEGER NOT NULL,
    boot_key INTEGER NOT NULL,
    sequence UBIGINT NOT NULL,
    kind TINYINT NOT NULL,
    time_ns BIGINT NOT NULL,
    time_source TINYINT NOT NULL,
    uptime_ms UBIGINT NOT NULL,
    firmware_version UINTEGER NOT NULL,
    received_time_ns BIGINT NOT NULL,
    -- The serialised aetus.telemetry.v1.Event as received; empty when it is
    -- larger than one part and stored in event_payloads instead.
    -- TODO: no retention job deletes old payloads yet; they stay with the data.
    payload BLOB NOT NULL,
    PRIMARY KEY (boot_key, sequence)
);

-- One row per scalar point. The column that holds the value follows the
-- series' value type: DOUBLE in value_double (NaN and infinities as IEEE
-- specials), INT64 and BOOL (0 or 1) in value_int, STRING in value_string.
CREATE TABLE IF NOT EXISTS points (
    series_key INTEGER NOT NULL,
    time_ns BIGINT NOT NULL,
    event_key BIGINT NOT NULL,
    value_double DOUBLE,
    value_int BIGINT,
    value_string VARCHAR
);

CREATE TABLE IF NOT EXISTS frames (
    frame_key BIGINT NOT NULL,
    stream_key INTEGER NOT NULL,
    layout_key INTEGER NOT NULL,
    event_key BIGINT NOT NULL,
    start_time_ns BIGINT NOT NULL,
    -- Time of the last sample: start + (sample_count - 1) * interval.
    end_time_ns BIGINT NOT NULL,
    sample_interval_ns BIGINT NOT NULL,
    sample_count INTEGER NOT NULL,
    -- Empty since the bytes moved to frame_samples; older stores keep them here.
    samples BLOB NOT NULL
);

-- Per-frame, per-channel statistics of the decoded values, written with the
-- frame so wide reads can skip decoding frames that lie inside one bucket.
CREATE TABLE IF NOT EXISTS frame_channel_stats (
    frame_key BIGINT NOT NULL,
    channel_key INTEGER NOT NULL,
    start_time_ns BIGINT NOT NULL,
    end_time_ns BIGINT NOT NULL,
    sample_interval_ns BIGINT NOT NULL,
    sample_count INTEGER NOT NULL,
    finite_count INTEGER NOT NULL,
    min_value DOUBLE,
    max_value DOUBLE,
    min_index INTEGER,
    max_index INTEGER,
    first_index INTEGER,
    last_index INTEGER,
    first_value DOUBLE,
    last_value DOUBLE,
    sum_value DOUBLE NOT NULL
);

-- Sample bytes of frames in parts of at most 8 KiB, in order of part; see
-- aetus.server.store._parts for why. frames.samples is empty for such frames.
CREATE TABLE IF NOT EXISTS frame_samples (
    frame_key BIGINT NOT NULL,
    part INTEGER NOT NULL,
    bytes BLOB NOT NULL
);

-- Payloads of events larger than one part, stored like frame_samples;
-- events.payload is empty for such events.
CREATE TABLE IF NOT EXISTS event_payloads (
    event_key BIGINT NOT NULL,
    part INTEGER NOT NULL,
    bytes BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS device_events (
    event_key BIGINT NOT NULL,
    device_key INTEGER NOT NULL,
    kind TINYINT NOT NULL,
    time_ns BIGINT NOT NULL,
    -- The serialised StatusEvent or AlertEvent.
    body BLOB NOT NULL
);
"""
