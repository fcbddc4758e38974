-- The usage ledger and the API keys. Times are Unix microseconds (UTC),
-- durations microseconds, booleans 0 or 1.

-- +goose Up
CREATE TABLE ledger (
    id               INTEGER PRIMARY KEY,
    time             INTEGER NOT NULL,
    request_id       TEXT    NOT NULL,
    key_id           TEXT    NOT NULL,
    tenant           TEXT    NOT NULL,
    tier             TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    route            TEXT    NOT NULL,
    contract         TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    upstream_model   TEXT    NOT NULL,
    stream           INTEGER NOT NULL,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    cached_tokens    INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    estimated        INTEGER NOT NULL,
    cost_usd         REAL    NOT NULL,
    latency_us       INTEGER NOT NULL,
    ttft_us          INTEGER NOT NULL,
    status           INTEGER NOT NULL,
    error_code       TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    failovers        INTEGER NOT NULL,
    parse_failures   INTEGER NOT NULL,
    schema_failures  INTEGER NOT NULL,
    repairs          INTEGER NOT NULL,
    outcome          TEXT    NOT NULL
) STRICT;

CREATE INDEX ledger_time ON ledger (time);
-- Spend and usage by key or tenant read a time range of one of them.
CREATE INDEX ledger_key_id_time ON ledger (key_id, time);
CREATE INDEX ledger_tenant_time ON ledger (tenant, time);

CREATE TABLE keys (
    id       TEXT    PRIMARY KEY,
    hash     TEXT    NOT NULL UNIQUE,
    name     TEXT    NOT NULL,
    tenant   TEXT    NOT NULL,
    tier     TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    disabled INTEGER,          -- NULL while the key works
    rotated  INTEGER           -- NULL if never rotated
) STRICT;

CREATE INDEX keys_created ON keys (created, id);

-- +goose Down
DROP TABLE keys;
DROP TABLE ledger;
