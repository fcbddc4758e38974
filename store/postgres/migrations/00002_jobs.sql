-- The job queue, in the schema first on the connection's search_path.

-- +goose Up
CREATE TABLE jobs (
    id           text        PRIMARY KEY,
    owner        text        NOT NULL,
    key_id       text        NOT NULL,
    kind         text        NOT NULL,
    request      bytea       NOT NULL,
    state        text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     integer     NOT NULL,
    max_attempts integer     NOT NULL,
    not_before   timestamptz NOT NULL,
    runner       text        NOT NULL,
    lease        timestamptz,          -- NULL unless running
    status       integer     NOT NULL,
    result       bytea       NOT NULL,
    content_type text        NOT NULL,
    error_code   text        NOT NULL,
    created      timestamptz NOT NULL,
    updated      timestamptz NOT NULL,
    finished     timestamptz,          -- NULL until finished
    -- When the job may next be claimed: a queued job at not_before, a
    -- running one when its lease ends; NULL once finished.
    due          timestamptz GENERATED ALWAYS AS (
                     CASE state WHEN 'queued' THEN not_before WHEN 'running' THEN lease END
                 ) STORED
);

-- Claim takes the first entry not locked; finished jobs are left out.
CREATE INDEX jobs_due ON jobs (due, created, id) WHERE due IS NOT NULL;
-- Purge deletes the oldest finished jobs.
CREATE INDEX jobs_finished ON jobs (finished) WHERE finished IS NOT NULL;

-- +goose Down
DROP TABLE jobs;
