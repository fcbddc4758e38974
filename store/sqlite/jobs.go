package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/sluice-gw/sluice/store"
)

// The job queue is the table jobs, one row per job, one column per field of
// store.Job. Its generated column due is when the job may next be claimed
// (not_before while queued, lease while running, NULL once finished), so
// that Claim reads the first entry of one index.

var _ store.Jobs = (*DB)(nil)

const jobColumns = `id, owner, key_id, kind, request, state, attempts, max_attempts, not_before,
	runner, lease, status, result, content_type, error_code, created, updated, finished`

// claimJobSQL claims the job due longest (?1 is now, ?2 the runner, ?3 the
// end of the lease) and returns it. A job whose lease ended on its last
// attempt is failed instead: the caller sees its state and tries again.
// In SET, attempts is the value before the update.
const claimJobSQL = `UPDATE jobs SET
	state      = CASE WHEN attempts < max_attempts THEN 'running' ELSE 'failed' END,
	attempts   = CASE WHEN attempts < max_attempts THEN attempts + 1 ELSE attempts END,
	runner     = CASE WHEN attempts < max_attempts THEN ?2 ELSE runner END,
	lease      = CASE WHEN attempts < max_attempts THEN ?3 END,
	error_code = CASE WHEN attempts < max_attempts THEN error_code ELSE ?4 END,
	finished   = CASE WHEN attempts < max_attempts THEN NULL ELSE ?1 END,
	updated    = ?1
WHERE id = (SELECT id FROM jobs WHERE due <= ?1 ORDER BY due, created, id LIMIT 1)
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
	created := j.Created.UnixMicro()
	_, err := db.write.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`)
		VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, '', NULL, 0, x'', '', '', ?, ?, NULL)`,
		j.ID, j.Owner, j.KeyID, j.Kind, blob(j.Request), j.MaxAttempts,
		cmp.Or(j.NotBefore, j.Created).UnixMicro(), created, created)
	if errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("enqueue job %q: %w", j.ID, store.ErrJobExists)
	}
	if err != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, err)
	}
	return nil
}

// Get implements store.Jobs.
func (db *DB) Get(ctx context.Context, id string) (store.Job, error) {
	j, err := scanJob(db.read.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Job{}, fmt.Errorf("job %q: %w", id, err)
	}
	return j, err
}

// Claim implements store.Jobs. The claim is one statement in an immediate
// transaction, which takes SQLite's write lock before it reads: claimants
// in this process queue for the one writer connection, and those of other
// processes on the same file wait for the lock.
func (db *DB) Claim(ctx context.Context, runner string, lease time.Duration, now time.Time) (store.Job, bool, error) {
	if lease <= 0 {
		return store.Job{}, false, fmt.Errorf("claim job: lease %v, want a positive one", lease)
	}
	j, ok, err := db.claim(ctx, runner, now.UnixMicro(), now.Add(lease).UnixMicro())
	if err != nil {
		return store.Job{}, false, fmt.Errorf("claim job: %w", err)
	}
	return j, ok, nil
}

func (db *DB) claim(ctx context.Context, runner string, now, leaseEnd int64) (j store.Job, ok bool, err error) {
	tx, err := db.write.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}) // BEGIN IMMEDIATE
	if err != nil {
		return store.Job{}, false, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for {
		j, err = scanJob(tx.QueryRowContext(ctx, claimJobSQL, now, runner, leaseEnd, store.JobAbandonedCode))
		if errors.Is(err, store.ErrNotFound) {
			return store.Job{}, false, tx.Commit()
		}
		if err != nil {
			return store.Job{}, false, err
		}
		if j.State == store.JobRunning {
			return j, true, tx.Commit()
		}
		// The job was abandoned on its last attempt, and is now failed.
	}
}

// Extend implements store.Jobs.
func (db *DB) Extend(ctx context.Context, j store.Job, lease time.Duration, now time.Time) error {
	if lease <= 0 {
		return fmt.Errorf("extend job %q: lease %v, want a positive one", j.ID, lease)
	}
	res, err := db.write.ExecContext(ctx, `UPDATE jobs SET lease = ?
		WHERE id = ? AND state = 'running' AND runner = ? AND attempts = ?`,
		now.Add(lease).UnixMicro(), j.ID, j.Runner, j.Attempts)
	if err != nil {
		return fmt.Errorf("extend job %q: %w", j.ID, err)
	}
	return claimHeld(res)
}

// Finish implements store.Jobs.
func (db *DB) Finish(ctx context.Context, j store.Job, out store.JobOutcome) error {
	if out.State != store.JobSucceeded && out.State != store.JobFailed {
		return fmt.Errorf("finish job %q: state %q, want %q or %q", j.ID, out.State, store.JobSucceeded, store.JobFailed)
	}
	if out.Finished.IsZero() {
		return fmt.Errorf("finish job %q: no Finished time", j.ID)
	}
	finished := out.Finished.UnixMicro()
	res, err := db.write.ExecContext(ctx, `UPDATE jobs SET state = ?, lease = NULL, status = ?, result = ?,
			content_type = ?, error_code = ?, finished = ?, updated = ?
		WHERE id = ? AND state = 'running' AND runner = ? AND attempts = ?`,
		out.State, out.Status, blob(out.Result), out.ContentType, out.ErrorCode, finished, finished,
		j.ID, j.Runner, j.Attempts)
	if err != nil {
		return fmt.Errorf("finish job %q: %w", j.ID, err)
	}
	return claimHeld(res)
}

// Retry implements store.Jobs.
func (db *DB) Retry(ctx context.Context, j store.Job, notBefore time.Time, errCode string, now time.Time) error {
	if j.Attempts >= j.MaxAttempts {
		return fmt.Errorf("retry job %q: attempt %d of %d was the last", j.ID, j.Attempts, j.MaxAttempts)
	}
	res, err := db.write.ExecContext(ctx, `UPDATE jobs SET state = 'queued', lease = NULL, not_before = ?,
			error_code = ?, updated = ?
		WHERE id = ? AND state = 'running' AND runner = ? AND attempts = ?`,
		notBefore.UnixMicro(), errCode, now.UnixMicro(), j.ID, j.Runner, j.Attempts)
	if err != nil {
		return fmt.Errorf("retry job %q: %w", j.ID, err)
	}
	return claimHeld(res)
}

// Purge implements store.Jobs.
func (db *DB) Purge(ctx context.Context, finishedBefore time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM jobs WHERE finished < ?`, finishedBefore.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("purge jobs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge jobs: %w", err)
	}
	return int(n), nil
}

// claimHeld returns ErrClaimLost unless res, an update guarded by a claim,
// changed a row.
func claimHeld(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrClaimLost
	}
	return nil
}

// scanJob scans the jobColumns of a row; sql.ErrNoRows is ErrNotFound.
func scanJob(row interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var notBefore, created, updated int64
	var lease, finished sql.NullInt64
	err := row.Scan(&j.ID, &j.Owner, &j.KeyID, &j.Kind, &j.Request, &j.State, &j.Attempts, &j.MaxAttempts,
		&notBefore, &j.Runner, &lease, &j.Status, &j.Result, &j.ContentType, &j.ErrorCode,
		&created, &updated, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Job{}, store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, err
	}
	j.NotBefore = time.UnixMicro(notBefore).UTC()
	j.Created, j.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	j.Lease, j.Finished = fromMicro(lease), fromMicro(finished)
	return j, nil
}

// blob returns b, or an empty slice for nil: a nil []byte is bound as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
