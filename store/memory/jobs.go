package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// Jobs is a job queue in memory: for tests, and for an instance that keeps
// no file, whose jobs are lost when it stops. It is safe for concurrent use;
// its zero value is not usable, call NewJobs.
//
// Claim looks through every job not finished, so it suits queues of
// thousands of jobs, not millions. Finished jobs stay until Purge.
//
// Like the SQL stores, it keeps times to the microsecond.
type Jobs struct {
	mu   sync.Mutex
	jobs map[string]*store.Job
}

var _ store.Jobs = (*Jobs)(nil)

// NewJobs returns an empty queue.
func NewJobs() *Jobs {
	return &Jobs{jobs: map[string]*store.Job{}}
}

// Enqueue implements store.Jobs.
func (q *Jobs) Enqueue(ctx context.Context, j store.Job) error {
	if err := checkEnqueue(j); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, err)
	}
	stored := store.Job{
		ID: j.ID, Owner: j.Owner, KeyID: j.KeyID, Kind: j.Kind, Request: bytes.Clone(j.Request),
		State: store.JobQueued, MaxAttempts: j.MaxAttempts,
		NotBefore: micros(cmp.Or(j.NotBefore, j.Created)),
		Created:   micros(j.Created), Updated: micros(j.Created),
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.jobs[j.ID] != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, store.ErrJobExists)
	}
	q.jobs[j.ID] = &stored
	return nil
}

// checkEnqueue checks the fields Enqueue requires.
func checkEnqueue(j store.Job) error {
	switch {
	case j.ID == "":
		return errors.New("enqueue job: no ID")
	case j.MaxAttempts < 1:
		return fmt.Errorf("enqueue job %q: MaxAttempts %d, want at least 1", j.ID, j.MaxAttempts)
	case j.Created.IsZero():
		return fmt.Errorf("enqueue job %q: no Created time", j.ID)
	}
	return nil
}

// Get implements store.Jobs.
func (q *Jobs) Get(_ context.Context, id string) (store.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.jobs[id]
	if j == nil {
		return store.Job{}, store.ErrNotFound
	}
	return cloneJob(j), nil
}

// Claim implements store.Jobs.
func (q *Jobs) Claim(ctx context.Context, runner string, lease time.Duration, now time.Time) (store.Job, bool, error) {
	if lease <= 0 {
		return store.Job{}, false, fmt.Errorf("claim job: lease %v, want a positive one", lease)
	}
	if err := ctx.Err(); err != nil {
		return store.Job{}, false, fmt.Errorf("claim job: %w", err)
	}
	now = micros(now)
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		var next *store.Job
		var nextDue time.Time
		for _, j := range q.jobs {
			due, ok := dueAt(j)
			if !ok || due.After(now) {
				continue
			}
			if next == nil || cmp.Or(due.Compare(nextDue), j.Created.Compare(next.Created), strings.Compare(j.ID, next.ID)) < 0 {
				next, nextDue = j, due
			}
		}
		if next == nil {
			return store.Job{}, false, nil
		}
		if next.Attempts >= next.MaxAttempts {
			// The lease of its last attempt ended.
			next.State, next.Lease, next.ErrorCode = store.JobFailed, time.Time{}, store.JobAbandonedCode
			next.Finished, next.Updated = now, now
			continue
		}
		next.State, next.Runner, next.Lease = store.JobRunning, runner, micros(now.Add(lease))
		next.Attempts++
		next.Updated = now
		return cloneJob(next), true, nil
	}
}

// dueAt returns when j may next be claimed; ok is false if it is finished.
func dueAt(j *store.Job) (due time.Time, ok bool) {
	switch j.State {
	case store.JobQueued:
		return j.NotBefore, true
	case store.JobRunning:
		return j.Lease, true
	}
	return time.Time{}, false
}

// Extend implements store.Jobs.
func (q *Jobs) Extend(_ context.Context, j store.Job, lease time.Duration, now time.Time) error {
	if lease <= 0 {
		return fmt.Errorf("extend job %q: lease %v, want a positive one", j.ID, lease)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	held, err := q.claimed(j)
	if err != nil {
		return err
	}
	held.Lease = micros(now.Add(lease))
	return nil
}

// Finish implements store.Jobs.
func (q *Jobs) Finish(_ context.Context, j store.Job, out store.JobOutcome) error {
	if err := checkOutcome(j.ID, out); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	held, err := q.claimed(j)
	if err != nil {
		return err
	}
	held.State, held.Lease = out.State, time.Time{}
	held.Status, held.Result, held.ContentType, held.ErrorCode = out.Status, bytes.Clone(out.Result), out.ContentType, out.ErrorCode
	held.Finished, held.Updated = micros(out.Finished), micros(out.Finished)
	return nil
}

// checkOutcome checks an outcome Finish is given.
func checkOutcome(id string, out store.JobOutcome) error {
	if out.State != store.JobSucceeded && out.State != store.JobFailed {
		return fmt.Errorf("finish job %q: state %q, want %q or %q", id, out.State, store.JobSucceeded, store.JobFailed)
	}
	if out.Finished.IsZero() {
		return fmt.Errorf("finish job %q: no Finished time", id)
	}
	return nil
}

// Retry implements store.Jobs.
func (q *Jobs) Retry(_ context.Context, j store.Job, notBefore time.Time, errCode string, now time.Time) error {
	if j.Attempts >= j.MaxAttempts {
		return fmt.Errorf("retry job %q: attempt %d of %d was the last", j.ID, j.Attempts, j.MaxAttempts)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	held, err := q.claimed(j)
	if err != nil {
		return err
	}
	held.State, held.Lease, held.NotBefore = store.JobQueued, time.Time{}, micros(notBefore)
	held.ErrorCode, held.Updated = errCode, micros(now)
	return nil
}

// claimed returns the job of claim j, or ErrClaimLost. q.mu is held.
func (q *Jobs) claimed(j store.Job) (*store.Job, error) {
	held := q.jobs[j.ID]
	if held == nil || held.State != store.JobRunning || held.Runner != j.Runner || held.Attempts != j.Attempts {
		return nil, store.ErrClaimLost
	}
	return held, nil
}

// Purge implements store.Jobs.
func (q *Jobs) Purge(_ context.Context, finishedBefore time.Time) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for id, j := range q.jobs {
		if !j.Finished.IsZero() && j.Finished.Before(finishedBefore) {
			delete(q.jobs, id)
			n++
		}
	}
	return n, nil
}

// cloneJob returns a copy of j that shares no bytes with it.
func cloneJob(j *store.Job) store.Job {
	c := *j
	c.Request, c.Result = bytes.Clone(j.Request), bytes.Clone(j.Result)
	return c
}
