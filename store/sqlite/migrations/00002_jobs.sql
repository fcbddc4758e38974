-- The job queue. Times are Unix microseconds (UTC).

-- +goose Up
CREATE TABLE jobs (
    id           TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    key_id       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    request      BLOB    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,
    runner       TEXT    NOT NULL,
    lease        INTEGER,          -- NULL unless running
    status       INTEGER NOT NULL,
    result       BLOB    NOT NULL,
    content_type TEXT    NOT NULL,
    error_code   TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    finished     INTEGER,          -- NULL until finished
    -- When the job may next be claimed: a queued job at not_before, a
    -- running one when its lease ends; NULL once finished.
    due          INTEGER GENERATED ALWAYS AS (
                     CASE state WHEN 'queued' THEN not_before WHEN 'running' THEN lease END
                 ) VIRTUAL
) STRICT;

-- Claim takes the first entry; finished jobs are left out.
CREATE INDEX jobs_due ON jobs (due, created, id) WHERE due IS NOT NULL;
-- Purge deletes the oldest finished jobs.
CREATE INDEX jobs_finished ON jobs (finished) WHERE finished IS NOT NULL;

-- +goose Down
DROP TABLE jobs;
