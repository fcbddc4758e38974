package store

import (
	"context"
	"errors"
	"time"
)

// States of a Job.
const (
	JobQueued    = "queued"    // waiting for its NotBefore, or for a runner
	JobRunning   = "running"   // claimed by a runner until its Lease
	JobSucceeded = "succeeded" // finished with an answer
	JobFailed    = "failed"    // finished without one, or with an error answer
)

// JobAbandonedCode is the ErrorCode of a job that Claim failed because the
// lease of its last attempt ended without a Finish or Retry: its runner
// stopped, or hung, mid-call. It is sluice's "internal" error code.
const JobAbandonedCode = "internal"

var (
	// ErrJobExists is returned by Enqueue for an ID already stored.
	ErrJobExists = errors.New("job exists")
	// ErrClaimLost is returned to a runner whose claim on a job no
	// longer holds: its lease ended and another runner claimed the job,
	// or the job was finished or retried.
	ErrClaimLost = errors.New("job claim lost")
)

// A Job is a request queued to run later: the client is answered with the
// job's ID at once, a runner calls the model when capacity allows (trying
// again over a longer horizon than a live request could wait), and the
// client reads the outcome by the ID.
//
// Times are kept to the microsecond, the precision every backend keeps, and
// come back in UTC.
type Job struct {
	// ID identifies the job; it is unique in the queue.
	ID string
	// Owner identifies who created the job (a hash of the credential it
	// was created with); only the same owner may read it. KeyID is the
	// API key the job runs as (its id, never the key), for admission and
	// the ledger; empty when the gateway runs without keys.
	Owner string
	KeyID string
	// Kind is the dialect of Request and Result: "openai" or "anthropic".
	Kind string
	// Request is the request body as the client sent it.
	Request []byte

	// State is one of JobQueued, JobRunning, JobSucceeded, JobFailed.
	State string
	// Attempts counts the claims of the job, the running one included;
	// a claim whose runner died counts too. It never exceeds
	// MaxAttempts, which is at least 1.
	Attempts    int
	MaxAttempts int
	// NotBefore is the earliest time the job may next be claimed: Created
	// when it was enqueued without one, or as the last Retry set it.
	NotBefore time.Time
	// Runner names the runner of the last claim (empty before the first);
	// while the job runs, its claim holds until Lease, and past it until
	// another runner claims the job. Lease is zero unless the job runs.
	Runner string
	Lease  time.Time

	// The outcome, once finished: the HTTP status, body and content type
	// of the answer, in the dialect of Kind, and the sluice error code of
	// a failure. ErrorCode is also set by Retry, as the reason of the last
	// failed attempt, while the job waits to be tried again. Status is 0
	// and Result empty for a job failed without an answer (see
	// JobAbandonedCode).
	Status      int
	Result      []byte
	ContentType string
	ErrorCode   string

	// Created is when the job was enqueued; Updated when it last changed
	// state (enqueued, claimed, retried or finished); Finished when it
	// finished, zero until then.
	Created  time.Time
	Updated  time.Time
	Finished time.Time
}

// A JobOutcome is how a run ended, as Finish stores it.
type JobOutcome struct {
	// State is JobSucceeded or JobFailed.
	State string
	// Status, Result, ContentType and ErrorCode are the job's outcome
	// (see Job).
	Status      int
	Result      []byte
	ContentType string
	ErrorCode   string
	// Finished is when the run ended.
	Finished time.Time
}

// Jobs is a durable queue of jobs that several runners, in one process or in
// several instances sharing a backend, take work from. Each job is run by
// one runner at a time: Claim hands a due job to exactly one caller, with a
// lease that the runner extends while the call lasts. If the runner dies,
// its lease ends and another runner claims the job again.
//
// A claim is identified by the Job that Claim returned (its ID, Runner and
// Attempts): Extend, Finish and Retry take that Job and return ErrClaimLost
// if the claim no longer holds, so that a runner whose job was taken over
// cannot overwrite the outcome of the runner that took it. A claim holds
// past its lease until another runner claims the job: a runner that was
// slow but not taken over may still finish. A Finish or Retry repeated
// because its answer was lost returns ErrClaimLost too; Get shows what was
// stored.
//
// Times are passed in, never read from a clock: a job is due when its time
// is at or before the now given to Claim.
//
// Implementations are safe for concurrent use.
type Jobs interface {
	// Enqueue stores j as a new queued job. j.ID must be set and not
	// stored yet (else ErrJobExists), j.MaxAttempts at least 1 and
	// j.Created set; a zero j.NotBefore means j.Created. State, Attempts,
	// Runner, Lease, the outcome and Updated and Finished are ignored:
	// the job starts queued, with no attempt, Updated at Created.
	Enqueue(ctx context.Context, j Job) error
	// Get returns job id, or ErrNotFound. The caller checks Owner.
	Get(ctx context.Context, id string) (Job, error)
	// Claim takes the job due longest, if any (ok false if none): a
	// queued job whose NotBefore is at or before now, or a running job
	// whose Lease is (its runner died or stalled). Ties go to the job
	// created first. The job becomes running, claimed by runner until now
	// plus lease, with one more attempt, and is returned as it is then.
	//
	// A running job whose lease ended on its last attempt is not run
	// again: Claim fails it, with ErrorCode JobAbandonedCode, Finished and
	// Updated at now, and looks for another job.
	//
	// Claims are atomic across callers, in this process or in others
	// sharing the backend: a job is handed to one of them, and claimed
	// again only once that claim's lease has ended. lease must be
	// positive.
	Claim(ctx context.Context, runner string, lease time.Duration, now time.Time) (j Job, ok bool, err error)
	// Extend moves the lease of claim j to now plus lease, or returns
	// ErrClaimLost.
	Extend(ctx context.Context, j Job, lease time.Duration, now time.Time) error
	// Finish stores the outcome of claim j, which ends the job, or returns
	// ErrClaimLost. The job's Updated and Finished become out.Finished,
	// which must be set, and its Lease zero. out.State must be
	// JobSucceeded or JobFailed.
	Finish(ctx context.Context, j Job, out JobOutcome) error
	// Retry puts the job of claim j back in the queue, to be claimed again
	// at or after notBefore, and records errCode as the reason; Updated
	// becomes now and Lease zero. It returns ErrClaimLost if the claim no
	// longer holds, and an error if j used its last attempt
	// (j.Attempts == j.MaxAttempts): Finish it as failed instead.
	Retry(ctx context.Context, j Job, notBefore time.Time, errCode string, now time.Time) error
	// Purge deletes the finished jobs (succeeded or failed) that finished
	// before finishedBefore, and returns how many.
	Purge(ctx context.Context, finishedBefore time.Time) (int, error)
}
