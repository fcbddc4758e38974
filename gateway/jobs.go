package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

// Job defaults.
const (
	// DefaultJobAttempts is how many times a job is tried before it fails.
	DefaultJobAttempts = 8
	// jobLease is how long a runner's claim on a job holds: past it, a job
	// whose runner died is claimed again.
	jobLease = 15 * time.Minute
	// jobPoll is how often an idle runner looks for work.
	jobPoll = time.Second
	// jobRetention is how long a finished job is kept for GET.
	jobRetention = 7 * 24 * time.Hour
)

// jobBackoff returns the wait before attempt n+1 of a job: the base
// (Options.JobRetryDelay, 5 s) doubling, at most 5 minutes: a longer
// horizon than a call's own retries, for an upstream that is down for a
// while.
func (g *Gateway) jobBackoff(n int) time.Duration {
	d := g.opts.JobRetryDelay << min(n, 10)
	return min(d, 5*time.Minute)
}

// A jobView is a job as GET /v1/jobs/{id} shows it.
type jobView struct {
	ID       string          `json:"id"`
	Object   string          `json:"object"`
	Status   string          `json:"status"`
	Attempts int             `json:"attempts"`
	Created  int64           `json:"created"`
	Finished int64           `json:"finished,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    json.RawMessage `json:"error,omitempty"`
}

func jobViewOf(j store.Job) jobView {
	v := jobView{ID: j.ID, Object: "job", Status: j.State, Attempts: j.Attempts, Created: j.Created.Unix()}
	if !j.Finished.IsZero() {
		v.Finished = j.Finished.Unix()
	}
	if len(j.Result) > 0 && json.Valid(j.Result) {
		if j.State == store.JobSucceeded {
			v.Result = j.Result
		} else {
			v.Error = j.Result
		}
	}
	return v
}

// handleJobCreate serves POST /v1/jobs: a chat request (OpenAI's shape, or
// Anthropic's with anthropic-version) to run when capacity allows, with
// retries over a longer horizon than a call's. It answers 202 with the
// job's id at once.
func (g *Gateway) handleJobCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := &openaiDialect
		if r.Header.Get("Anthropic-Version") != "" {
			d = &anthropicDialect
		}
		body, err := g.readBody(w, r)
		if err != nil {
			g.refused(r, err)
			d.writeError(w, g.clientError(r, err))
			return
		}
		req, _, err := d.decode(r.Header, body)
		if err == nil && req.Stream {
			err = &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "stream", Message: "A job cannot be streamed: leave stream out."}
		}
		if err != nil {
			g.refused(r, err)
			d.writeError(w, g.clientError(r, err))
			return
		}
		now := time.Now()
		j := store.Job{
			ID: "job_" + newID(16), Owner: ownerOf(r), KeyID: authCaller(r, sluice.Caller{}).Key, Kind: d.name,
			Request: body, MaxAttempts: DefaultJobAttempts, Created: now, NotBefore: now,
		}
		if err := g.p.Jobs().Enqueue(r.Context(), j); err != nil {
			e := &sluice.Error{Code: sluice.CodeOverloaded, RetryAfter: time.Second, Message: "Jobs cannot be queued right now; try again.", Err: err}
			g.logError(r, "job queue unavailable", e)
			d.writeError(w, e)
			return
		}
		g.nudge()
		j.State = store.JobQueued
		writeAdminJSON(w, http.StatusAccepted, jobViewOf(j))
	})
}

// handleJobGet serves GET /v1/jobs/{id}: the job's status, and its answer
// (or error) once finished. Only the job's owner sees it.
func (g *Gateway) handleJobGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j, err := g.p.Jobs().Get(r.Context(), r.PathValue("id"))
		if err == nil && j.Owner != ownerOf(r) {
			err = store.ErrNotFound
		}
		if err != nil {
			e := &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such job."}
			if !errors.Is(err, store.ErrNotFound) {
				e = &sluice.Error{Code: sluice.CodeOverloaded, RetryAfter: time.Second, Message: "Jobs cannot be read right now; try again.", Err: err}
			}
			writeErrorFor(w, r, e)
			return
		}
		writeAdminJSON(w, http.StatusOK, jobViewOf(j))
	})
}

// nudge wakes an idle runner after a job was queued on this instance.
func (g *Gateway) nudge() {
	select {
	case g.jobWake <- struct{}{}:
	default:
	}
}

// RunJobs runs queued jobs with workers runners until ctx ends, then
// waits for the jobs running to end (they are cancelled with ctx and
// retried later, by this instance or another). Several instances may run
// jobs from one queue (PostgreSQL): each job is claimed by one runner at a
// time.
func (g *Gateway) RunJobs(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	runner := "run_" + newID(8)
	for i := range max(workers, 1) {
		wg.Go(func() { g.jobWorker(ctx, runner+"-"+strconv.Itoa(i)) })
	}
	wg.Wait()
}

func (g *Gateway) jobWorker(ctx context.Context, runner string) {
	jobs := g.p.Jobs()
	lastPurge := time.Time{}
	for ctx.Err() == nil {
		now := time.Now()
		if now.Sub(lastPurge) > time.Hour {
			lastPurge = now
			if _, err := jobs.Purge(ctx, now.Add(-jobRetention)); err != nil && ctx.Err() == nil {
				g.logger.Warn("job purge failed", "error", err)
			}
		}
		j, ok, err := jobs.Claim(ctx, runner, jobLease, now)
		if err != nil && ctx.Err() == nil {
			g.logger.Warn("job queue unavailable", "error", err)
		}
		if !ok {
			t := time.NewTimer(jobPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-g.jobWake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		g.runJob(ctx, j)
	}
}

// runJob runs one claimed job and stores its outcome: the answer, a retry
// later for a failure the upstream may recover from, or the error.
func (g *Gateway) runJob(ctx context.Context, j store.Job) {
	jobs := g.p.Jobs()
	d := &openaiDialect
	if j.Kind == anthropicDialect.name {
		d = &anthropicDialect
	}
	status, body, errCode := g.callJob(ctx, d, j)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	now := time.Now()
	var err error
	switch {
	case ctx.Err() != nil:
		// Shutting down: the job goes back to the queue at once, for the
		// next runner (here after a restart, or another instance).
		err = jobs.Retry(sctx, j, now, "shutdown", now)
	case status == http.StatusOK:
		err = jobs.Finish(sctx, j, store.JobOutcome{State: store.JobSucceeded, Status: status, Result: body, ContentType: "application/json", Finished: now})
	case retryableJob(status) && j.Attempts < j.MaxAttempts:
		err = jobs.Retry(sctx, j, now.Add(g.jobBackoff(j.Attempts-1)), errCode, now)
	default:
		err = jobs.Finish(sctx, j, store.JobOutcome{State: store.JobFailed, Status: status, Result: body, ContentType: "application/json", ErrorCode: errCode, Finished: now})
	}
	if err != nil && !errors.Is(err, store.ErrClaimLost) {
		g.logger.Warn("job outcome not stored; the job will run again", "job", j.ID, "error", err)
	}
}

// retryableJob reports whether a job whose call ended with status may
// succeed later: the upstream's failures and overload, not the request's
// own mistakes.
func retryableJob(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// callJob makes the job's call as the HTTP handler would, and returns the
// answer's status and body in the job's dialect, and the error code.
func (g *Gateway) callJob(ctx context.Context, d *dialect, j store.Job) (int, []byte, string) {
	h := http.Header{}
	if d == &anthropicDialect {
		h.Set("Anthropic-Version", "2023-06-01")
	}
	fail := func(err error) (int, []byte, string) {
		e := sluice.AsError(err)
		rec := httptest.NewRecorder()
		d.writeError(rec, e)
		return rec.Code, rec.Body.Bytes(), string(e.Code)
	}
	req, _, err := d.decode(h, j.Request)
	if err != nil {
		return fail(err)
	}
	req.ID = j.ID
	if j.KeyID != "" {
		k, err := g.p.Keys().KeyByID(ctx, j.KeyID)
		if err != nil || !k.Disabled.IsZero() {
			return fail(&sluice.Error{Code: sluice.CodeUnauthenticated, Message: "The job's API key no longer exists or was disabled."})
		}
		req.Caller = sluice.Caller{Key: k.ID, Tenant: k.Tenant, Tier: k.Tier, User: k.User}
	}
	resp, err := g.p.Complete(ctx, req)
	if err != nil {
		return fail(err)
	}
	resp.ID, resp.Model = d.idPrefix+j.ID, req.Model
	b, err := d.marshal(resp)
	if err != nil {
		return fail(err)
	}
	return http.StatusOK, b, ""
}
