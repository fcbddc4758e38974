package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gw/sluice/store"
)

// The job queue is the table jobs, one row per job, one column per field of
// store.Job. Its generated column due is when the job may next be claimed
// (not_before while queued, lease while running, NULL once finished), so
// that Claim reads the first entry of one index that no other claimant has
// locked.

var _ store.Jobs = (*DB)(nil)

const jobColumns = `id, owner, key_id, kind, request, state, attempts, max_attempts, not_before,
	runner, lease, status, result, content_type, error_code, created, updated, finished`

// jobsIDConstraint is the name PostgreSQL gives the jobs table's key.
const jobsIDConstraint = "jobs_pkey"

// claimJobSQL claims the job due longest ($1 is now, $2 the runner, $3 the
// end of the lease) and returns it, in one statement and so one
// transaction. The subquery locks the job; SKIP LOCKED passes over the jobs
// other claimants are taking, so that they do not wait for each other, and
// a job another claimant has just claimed is checked again and passed over
// as no longer due. A job whose lease ended on its last attempt is failed
// instead: the caller sees its state and tries again. In SET, attempts is
// the value before the update.
const claimJobSQL = `UPDATE jobs SET
	state      = CASE WHEN attempts < max_attempts THEN 'running' ELSE 'failed' END,
	attempts   = CASE WHEN attempts < max_attempts THEN attempts + 1 ELSE attempts END,
	runner     = CASE WHEN attempts < max_attempts THEN $2::text ELSE runner END,
	lease      = CASE WHEN attempts < max_attempts THEN $3::timestamptz END,
	error_code = CASE WHEN attempts < max_attempts THEN error_code ELSE $4::text END,
	finished   = CASE WHEN attempts < max_attempts THEN NULL ELSE $1::timestamptz END,
	updated    = $1::timestamptz
WHERE id = (
	SELECT id FROM jobs WHERE due <= $1::timestamptz ORDER BY due, created, id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING ` + jobColumns

// Enqueue implements store.Jobs.
func (db *DB) Enqueue(ctx context.Context, j store.Job) error {
	switch {
	case j.ID == "":
		return errors.New("enqueue job: no ID")
	case j.MaxAttempts < 1:
		return fmt.Errorf("enqueue job %q: MaxAttempts %d, want at least 1", j.ID, j.MaxAttempts)
	case j.Created.IsZero():
		return fmt.Errorf("enqueue job %q: no Created time", j.ID)
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO jobs (`+jobColumns+`)
		VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, '', NULL, 0, '', '', '', $8, $8, NULL)`,
		j.ID, j.Owner, j.KeyID, j.Kind, blob(j.Request), j.MaxAttempts, cmp.Or(j.NotBefore, j.Created), j.Created)
	if constraint(err) == jobsIDConstraint {
		return fmt.Errorf("enqueue job %q: %w", j.ID, store.ErrJobExists)
	}
	if err != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, err)
	}
	return nil
}

// Get implements store.Jobs.
func (db *DB) Get(ctx context.Context, id string) (store.Job, error) {
	j, err := scanJob(db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Job{}, fmt.Errorf("job %q: %w", id, err)
	}
	return j, err
}

// Claim implements store.Jobs, with SELECT ... FOR UPDATE SKIP LOCKED:
// instances sharing the database each take a different job.
func (db *DB) Claim(ctx context.Context, runner string, lease time.Duration, now time.Time) (store.Job, bool, error) {
	if lease <= 0 {
		return store.Job{}, false, fmt.Errorf("claim job: lease %v, want a positive one", lease)
	}
	for {
		j, err := scanJob(db.pool.QueryRow(ctx, claimJobSQL, now, runner, now.Add(lease), store.JobAbandonedCode))
		if errors.Is(err, store.ErrNotFound) {
			return store.Job{}, false, nil
		}
		if err != nil {
			return store.Job{}, false, fmt.Errorf("claim job: %w", err)
		}
		if j.State == store.JobRunning {
			return j, true, nil
		}
		// The job was abandoned on its last attempt, and is now failed.
	}
}

// Extend implements store.Jobs.
func (db *DB) Extend(ctx context.Context, j store.Job, lease time.Duration, now time.Time) error {
	if lease <= 0 {
		return fmt.Errorf("extend job %q: lease %v, want a positive one", j.ID, lease)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET lease = $4
		WHERE id = $1 AND state = 'running' AND runner = $2 AND attempts = $3`,
		j.ID, j.Runner, j.Attempts, now.Add(lease))
	if err != nil {
		return fmt.Errorf("extend job %q: %w", j.ID, err)
	}
	return claimHeld(tag)
}

// Finish implements store.Jobs.
func (db *DB) Finish(ctx context.Context, j store.Job, out store.JobOutcome) error {
	if out.State != store.JobSucceeded && out.State != store.JobFailed {
		return fmt.Errorf("finish job %q: state %q, want %q or %q", j.ID, out.State, store.JobSucceeded, store.JobFailed)
	}
	if out.Finished.IsZero() {
		return fmt.Errorf("finish job %q: no Finished time", j.ID)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET state = $4, lease = NULL, status = $5, result = $6,
			content_type = $7, error_code = $8, finished = $9, updated = $9
		WHERE id = $1 AND state = 'running' AND runner = $2 AND attempts = $3`,
		j.ID, j.Runner, j.Attempts, out.State, out.Status, blob(out.Result), out.ContentType, out.ErrorCode, out.Finished)
	if err != nil {
		return fmt.Errorf("finish job %q: %w", j.ID, err)
	}
	return claimHeld(tag)
}

// Retry implements store.Jobs.
func (db *DB) Retry(ctx context.Context, j store.Job, notBefore time.Time, errCode string, now time.Time) error {
	if j.Attempts >= j.MaxAttempts {
		return fmt.Errorf("retry job %q: attempt %d of %d was the last", j.ID, j.Attempts, j.MaxAttempts)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET state = 'queued', lease = NULL, not_before = $4,
			error_code = $5, updated = $6
		WHERE id = $1 AND state = 'running' AND runner = $2 AND attempts = $3`,
		j.ID, j.Runner, j.Attempts, notBefore, errCode, now)
	if err != nil {
		return fmt.Errorf("retry job %q: %w", j.ID, err)
	}
	return claimHeld(tag)
}

// Purge implements store.Jobs.
func (db *DB) Purge(ctx context.Context, finishedBefore time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM jobs WHERE finished < $1`, finishedBefore)
	if err != nil {
		return 0, fmt.Errorf("purge jobs: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// claimHeld returns ErrClaimLost unless tag, of an update guarded by a
// claim, counts a row.
func claimHeld(tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 0 {
		return store.ErrClaimLost
	}
	return nil
}

// scanJob scans the jobColumns of a row; pgx.ErrNoRows is ErrNotFound.
func scanJob(row pgx.Row) (store.Job, error) {
	var j store.Job
	var lease, finished *time.Time
	err := row.Scan(&j.ID, &j.Owner, &j.KeyID, &j.Kind, &j.Request, &j.State, &j.Attempts, &j.MaxAttempts,
		&j.NotBefore, &j.Runner, &lease, &j.Status, &j.Result, &j.ContentType, &j.ErrorCode,
		&j.Created, &j.Updated, &finished)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Job{}, store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, err
	}
	j.NotBefore, j.Created, j.Updated = j.NotBefore.UTC(), j.Created.UTC(), j.Updated.UTC()
	j.Lease, j.Finished = fromNull(lease), fromNull(finished)
	return j, nil
}

// blob returns b, or an empty slice for nil: pgx sends a nil []byte as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
