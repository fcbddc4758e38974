-- The usage ledger and the API keys, in the schema first on the connection's
-- search_path. Durations are integer microseconds.

-- +goose Up
CREATE TABLE ledger (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time             timestamptz      NOT NULL,
    request_id       text             NOT NULL,
    key_id           text             NOT NULL,
    tenant           text             NOT NULL,
    tier             text             NOT NULL,
    user_id          text             NOT NULL,
    route            text             NOT NULL,
    contract         text             NOT NULL,
    provider         text             NOT NULL,
    upstream_model   text             NOT NULL,
    stream           boolean          NOT NULL,
    input_tokens     bigint           NOT NULL,
    output_tokens    bigint           NOT NULL,
    cached_tokens    bigint           NOT NULL,
    reasoning_tokens bigint           NOT NULL,
    estimated        boolean          NOT NULL,
    cost_usd         double precision NOT NULL,
    latency_us       bigint           NOT NULL,
    ttft_us          bigint           NOT NULL,
    status           integer          NOT NULL,
    error_code       text             NOT NULL,
    attempts         integer          NOT NULL,
    failovers        integer          NOT NULL,
    parse_failures   integer          NOT NULL,
    schema_failures  integer          NOT NULL,
    repairs          integer          NOT NULL,
    outcome          text             NOT NULL
);

CREATE INDEX ledger_time ON ledger (time);
-- Spend and usage by key or tenant read a time range of one of them.
CREATE INDEX ledger_key_id_time ON ledger (key_id, time);
CREATE INDEX ledger_tenant_time ON ledger (tenant, time);

CREATE TABLE keys (
    id       text        PRIMARY KEY,
    hash     text        NOT NULL UNIQUE,
    name     text        NOT NULL,
    tenant   text        NOT NULL,
    tier     text        NOT NULL,
    user_id  text        NOT NULL,
    created  timestamptz NOT NULL,
    disabled timestamptz,          -- NULL while the key works
    rotated  timestamptz           -- NULL if never rotated
);

CREATE INDEX keys_created ON keys (created, id COLLATE "C");

-- +goose Down
DROP TABLE keys;
DROP TABLE ledger;
