package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunJobs runs the Jobs contract. Each call of newQueue makes a new, empty
// queue for one test and returns open, which returns a handle on that queue:
// a new one each call where the backend has them (its own connections, as
// another instance would hold), each closed when the test ends. Where a
// handle is an io.Closer the suite also closes one itself, to check that
// what was stored outlives it, so closing twice must do no harm.
//
// The times the suite passes are whole microseconds, the precision every
// backend keeps.
func RunJobs(t *testing.T, newQueue func(t testing.TB) (open func() store.Jobs)) {
	ctx := context.Background()
	// Times in a zone other than UTC: a store may give them back in any
	// zone, as long as they are the same instants.
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	t0 := time.UnixMicro(1_900_000_000_000_000 + 123).In(zone)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	newJob := func(id string, created time.Time) store.Job {
		return store.Job{
			ID: id, Owner: "owner-" + id + " ✓", KeyID: "k_" + id, Kind: "openai",
			Request: []byte(`{"model":"m","messages":[{"role":"user","content":"` + id + `"}]}`), MaxAttempts: 3,
			Created: created,
		}
	}
	enqueue := func(t testing.TB, q store.Jobs, jobs ...store.Job) {
		t.Helper()
		for _, j := range jobs {
			if err := q.Enqueue(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
	}
	claim := func(t testing.TB, q store.Jobs, runner string, lease time.Duration, now time.Time) store.Job {
		t.Helper()
		j, ok, err := q.Claim(ctx, runner, lease, now)
		if err != nil || !ok {
			t.Fatalf("Claim at %v: ok %v, err %v; want a job", now, ok, err)
		}
		return j
	}
	noClaim := func(t testing.TB, q store.Jobs, now time.Time) {
		t.Helper()
		j, ok, err := q.Claim(ctx, "nobody", time.Minute, now)
		if err != nil || ok {
			t.Fatalf("Claim at %v = %q, ok %v, err %v; want none", now, j.ID, ok, err)
		}
	}
	get := func(t testing.TB, q store.Jobs, id string) store.Job {
		t.Helper()
		j, err := q.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		return j
	}

	t.Run("EnqueueGet", func(t *testing.T) {
		q := newQueue(t)()
		if _, err := q.Get(ctx, "j_missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get of a missing job: err = %v, want ErrNotFound", err)
		}
		j := newJob("j_1", at(0))
		j.Request = append(j.Request, 0, 0xff, '\n')
		// Fields Enqueue ignores.
		j.State, j.Attempts, j.Runner, j.Lease = store.JobSucceeded, 7, "r", at(time.Hour)
		j.Status, j.Result, j.ErrorCode, j.Finished, j.Updated = 200, []byte("x"), "e", at(time.Hour), at(time.Hour)
		enqueue(t, q, j)
		want := newJob("j_1", at(0))
		want.Request, want.State, want.NotBefore, want.Updated = j.Request, store.JobQueued, at(0), at(0)
		checkJob(t, "Get", get(t, q, "j_1"), want)

		later := newJob("j_2", at(0))
		later.NotBefore, later.MaxAttempts, later.Request = at(time.Hour), 1, nil
		enqueue(t, q, later)
		want = later
		want.State, want.Updated = store.JobQueued, at(0)
		checkJob(t, "Get of a job enqueued with NotBefore", get(t, q, "j_2"), want)
	})

	t.Run("EnqueueInvalid", func(t *testing.T) {
		q := newQueue(t)()
		noID := newJob("", at(0))
		noAttempts := newJob("j_1", at(0))
		noAttempts.MaxAttempts = 0
		noCreated := newJob("j_2", time.Time{})
		for _, bad := range []store.Job{noID, noAttempts, noCreated} {
			if err := q.Enqueue(ctx, bad); err == nil {
				t.Errorf("Enqueue(%+v) succeeded", bad)
			}
		}
		noClaim(t, q, at(time.Hour))
		enqueue(t, q, newJob("j_1", at(0)))
		dup := newJob("j_1", at(time.Second))
		dup.Owner = "someone else"
		if err := q.Enqueue(ctx, dup); !errors.Is(err, store.ErrJobExists) {
			t.Errorf("Enqueue of an existing ID: err = %v, want ErrJobExists", err)
		}
		if got := get(t, q, "j_1"); got.Owner != newJob("j_1", at(0)).Owner {
			t.Errorf("a refused Enqueue changed the job: %+v", got)
		}
	})

	t.Run("ClaimOrder", func(t *testing.T) {
		q := newQueue(t)()
		noClaim(t, q, at(0))
		// Enqueued out of order; c is due only at 10s.
		c := newJob("j_c", at(2*time.Second))
		c.NotBefore = at(10 * time.Second)
		enqueue(t, q, newJob("j_b", at(time.Second)), c, newJob("j_a", at(0)), newJob("j_d", at(3*time.Second)))
		now := at(5 * time.Second)
		for _, id := range []string{"j_a", "j_b", "j_d"} {
			j := claim(t, q, "runner-1", time.Minute, now)
			if j.ID != id {
				t.Fatalf("Claim = %q, want %q", j.ID, id)
			}
			want := newJob(id, j.Created)
			want.State, want.Attempts, want.Runner, want.Lease = store.JobRunning, 1, "runner-1", now.Add(time.Minute)
			want.NotBefore, want.Updated = want.Created, now
			checkJob(t, "Claim", j, want)
			checkJob(t, "Get after Claim", get(t, q, id), want)
		}
		noClaim(t, q, at(10*time.Second-time.Microsecond))
		if j := claim(t, q, "runner-2", time.Minute, at(10*time.Second)); j.ID != "j_c" {
			t.Fatalf("Claim at 10s = %q, want j_c", j.ID)
		}
		noClaim(t, q, at(30*time.Second))
	})

	t.Run("ClaimDueLongestFirst", func(t *testing.T) {
		// A job retried to run at 5s comes after one created at 3s and
		// before one created at 7s.
		q := newQueue(t)()
		enqueue(t, q, newJob("j_old", at(0)))
		j := claim(t, q, "r", time.Minute, at(time.Second))
		if err := q.Retry(ctx, j, at(5*time.Second), "upstream_unavailable", at(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		enqueue(t, q, newJob("j_3s", at(3*time.Second)), newJob("j_7s", at(7*time.Second)))
		for _, id := range []string{"j_3s", "j_old", "j_7s"} {
			if j := claim(t, q, "r", time.Minute, at(10*time.Second)); j.ID != id {
				t.Fatalf("Claim = %q, want %q", j.ID, id)
			}
		}
	})

	t.Run("ClaimConcurrent", func(t *testing.T) {
		// Claimants on handles of their own share the jobs: each is
		// claimed exactly once.
		open := newQueue(t)
		const jobs, claimants = 60, 8
		q := open()
		for i := range jobs {
			enqueue(t, q, newJob("j_"+strconv.Itoa(i), at(time.Duration(i)*time.Millisecond)))
		}
		handles := make([]store.Jobs, claimants)
		for i := range handles {
			handles[i] = open()
		}
		now := at(time.Minute)
		var mu sync.Mutex
		claimed := map[string][]string{}
		var wg sync.WaitGroup
		errs := make(chan error, claimants)
		for i, h := range handles {
			runner := "runner-" + strconv.Itoa(i)
			wg.Go(func() {
				for {
					j, ok, err := h.Claim(ctx, runner, time.Hour, now)
					if err != nil {
						errs <- err
						return
					}
					if !ok {
						return
					}
					if j.Runner != runner || j.Attempts != 1 || j.State != store.JobRunning {
						errs <- fmt.Errorf("%s claimed %+v", runner, j)
						return
					}
					mu.Lock()
					claimed[j.ID] = append(claimed[j.ID], runner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Claim: %v", err)
		}
		if len(claimed) != jobs {
			t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
		}
		for id, runners := range claimed {
			if len(runners) != 1 {
				t.Errorf("job %s claimed by %v, want one runner", id, runners)
				continue
			}
			if got := get(t, q, id); got.State != store.JobRunning || got.Runner != runners[0] || got.Attempts != 1 {
				t.Errorf("job %s after its claim by %s: %+v", id, runners[0], got)
			}
		}
	})

	t.Run("LeaseExpiry", func(t *testing.T) {
		q := newQueue(t)()
		enqueue(t, q, newJob("j_1", at(0)))
		a := claim(t, q, "runner-a", time.Minute, at(0))
		noClaim(t, q, at(59*time.Second))
		// The runner keeps its claim for a long call.
		if err := q.Extend(ctx, a, time.Minute, at(50*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := get(t, q, "j_1"); !got.Lease.Equal(at(110 * time.Second)) {
			t.Errorf("Lease after Extend = %v, want %v", got.Lease, at(110*time.Second))
		}
		noClaim(t, q, at(100*time.Second))
		// Its lease ends (it died): another runner takes the job over.
		b := claim(t, q, "runner-b", time.Minute, at(110*time.Second))
		want := newJob("j_1", at(0))
		want.State, want.Attempts, want.Runner, want.Lease = store.JobRunning, 2, "runner-b", at(170*time.Second)
		want.NotBefore, want.Updated = at(0), at(110*time.Second)
		checkJob(t, "Claim after the lease ended", b, want)
		// The first runner can no longer touch it.
		if err := q.Extend(ctx, a, time.Minute, at(111*time.Second)); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Extend by the runner taken over: err = %v, want ErrClaimLost", err)
		}
		out := store.JobOutcome{State: store.JobSucceeded, Status: 200, Result: []byte("stale"), Finished: at(112 * time.Second)}
		if err := q.Finish(ctx, a, out); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Finish by the runner taken over: err = %v, want ErrClaimLost", err)
		}
		if err := q.Retry(ctx, a, at(200*time.Second), "x", at(112*time.Second)); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Retry by the runner taken over: err = %v, want ErrClaimLost", err)
		}
		// The same runner name with the claim's attempt number is no
		// claim either.
		stale := b
		stale.Attempts = 1
		if err := q.Extend(ctx, stale, time.Minute, at(113*time.Second)); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Extend of an earlier attempt: err = %v, want ErrClaimLost", err)
		}
		checkJob(t, "Get after the stale runner's calls", get(t, q, "j_1"), want)
		// The runner holding the claim finishes.
		out.Result = []byte("fresh")
		if err := q.Finish(ctx, b, out); err != nil {
			t.Fatal(err)
		}
		if got := get(t, q, "j_1"); got.State != store.JobSucceeded || string(got.Result) != "fresh" {
			t.Errorf("Get after Finish: %+v", got)
		}
	})

	t.Run("LateFinish", func(t *testing.T) {
		// A claim holds past its lease until another runner takes the
		// job: a slow runner not taken over still finishes.
		q := newQueue(t)()
		enqueue(t, q, newJob("j_1", at(0)))
		j := claim(t, q, "r", time.Minute, at(0))
		if err := q.Extend(ctx, j, time.Minute, at(5*time.Minute)); err != nil {
			t.Errorf("Extend after the lease, not taken over: %v", err)
		}
		out := store.JobOutcome{State: store.JobSucceeded, Status: 200, Result: []byte("ok"), Finished: at(10 * time.Minute)}
		if err := q.Finish(ctx, j, out); err != nil {
			t.Errorf("Finish after the lease, not taken over: %v", err)
		}
		noClaim(t, q, at(time.Hour))
	})

	t.Run("Retry", func(t *testing.T) {
		q := newQueue(t)()
		first := newJob("j_1", at(0))
		first.MaxAttempts = 2
		enqueue(t, q, first)
		j := claim(t, q, "r", time.Minute, at(0))
		if err := q.Retry(ctx, j, at(time.Minute), "upstream_unavailable", at(time.Second)); err != nil {
			t.Fatal(err)
		}
		want := first
		want.State, want.Attempts, want.Runner, want.ErrorCode = store.JobQueued, 1, "r", "upstream_unavailable"
		want.NotBefore, want.Updated = at(time.Minute), at(time.Second)
		checkJob(t, "Get after Retry", get(t, q, "j_1"), want)
		// The old claim is gone: repeating the Retry, or finishing, fails.
		if err := q.Retry(ctx, j, at(time.Minute), "x", at(2*time.Second)); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("second Retry of one claim: err = %v, want ErrClaimLost", err)
		}
		if err := q.Finish(ctx, j, store.JobOutcome{State: store.JobFailed, Finished: at(2 * time.Second)}); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Finish after Retry: err = %v, want ErrClaimLost", err)
		}
		noClaim(t, q, at(59*time.Second))
		j = claim(t, q, "r2", time.Minute, at(time.Minute))
		if j.Attempts != 2 || j.ErrorCode != "upstream_unavailable" {
			t.Errorf("second claim: attempts %d, error code %q; want 2 and the last failure's", j.Attempts, j.ErrorCode)
		}
		// That was the last attempt: Retry refuses, and the job stays
		// with its runner.
		if err := q.Retry(ctx, j, at(2*time.Minute), "upstream_unavailable", at(time.Minute)); err == nil {
			t.Error("Retry of the last attempt succeeded")
		}
		if got := get(t, q, "j_1"); got.State != store.JobRunning || got.Runner != "r2" {
			t.Errorf("job after a refused Retry: %+v", got)
		}
		if err := q.Finish(ctx, j, store.JobOutcome{State: store.JobFailed, Status: 503, ErrorCode: "upstream_unavailable", Finished: at(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Finish", func(t *testing.T) {
		q := newQueue(t)()
		enqueue(t, q, newJob("j_ok", at(0)), newJob("j_bad", at(time.Second)))
		ok := claim(t, q, "r", time.Minute, at(2*time.Second))
		bad := claim(t, q, "r", time.Minute, at(2*time.Second))
		// Every byte of the answer comes back as it was stored.
		result := make([]byte, 1<<20)
		for i := range result {
			result[i] = byte(i * 7)
		}
		copy(result, "data: {\"x\":1}\n\n\x00")
		if err := q.Finish(ctx, ok, store.JobOutcome{State: "running", Finished: at(3 * time.Second)}); err == nil {
			t.Error("Finish with state running succeeded")
		}
		if err := q.Finish(ctx, ok, store.JobOutcome{State: store.JobSucceeded}); err == nil {
			t.Error("Finish without a Finished time succeeded")
		}
		out := store.JobOutcome{
			State: store.JobSucceeded, Status: 200, Result: bytes.Clone(result), ContentType: "text/event-stream",
			Finished: at(3 * time.Second),
		}
		if err := q.Finish(ctx, ok, out); err != nil {
			t.Fatal(err)
		}
		clear(out.Result) // the store kept its own copy
		want := ok
		want.State, want.Lease, want.Status, want.Result, want.ContentType = store.JobSucceeded, time.Time{}, 200, result, "text/event-stream"
		want.Updated, want.Finished = at(3*time.Second), at(3*time.Second)
		checkJob(t, "Get after Finish", get(t, q, "j_ok"), want)

		failed := store.JobOutcome{
			State: store.JobFailed, Status: 400, Result: []byte(`{"error":{"type":"invalid_request_error"}}`),
			ContentType: "application/json", ErrorCode: "invalid_request", Finished: at(4 * time.Second),
		}
		if err := q.Finish(ctx, bad, failed); err != nil {
			t.Fatal(err)
		}
		want = bad
		want.State, want.Lease, want.Status, want.Result = store.JobFailed, time.Time{}, 400, failed.Result
		want.ContentType, want.ErrorCode, want.Updated, want.Finished = "application/json", "invalid_request", at(4*time.Second), at(4*time.Second)
		checkJob(t, "Get after a failed Finish", get(t, q, "j_bad"), want)

		// A finished job is never claimed again, and its outcome stays.
		if err := q.Finish(ctx, ok, store.JobOutcome{State: store.JobFailed, Finished: at(5 * time.Second)}); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("second Finish: err = %v, want ErrClaimLost", err)
		}
		if err := q.Extend(ctx, ok, time.Minute, at(5*time.Second)); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Extend after Finish: err = %v, want ErrClaimLost", err)
		}
		noClaim(t, q, at(time.Hour))
		if got := get(t, q, "j_ok"); got.State != store.JobSucceeded || !bytes.Equal(got.Result, result) {
			t.Errorf("a refused Finish changed the outcome: state %q", got.State)
		}
	})

	t.Run("Abandoned", func(t *testing.T) {
		// The lease of the last attempt ends: the job fails rather than
		// run again, and Claim goes on to the next.
		q := newQueue(t)()
		last := newJob("j_last", at(0))
		last.MaxAttempts = 1
		enqueue(t, q, last)
		j := claim(t, q, "r", time.Minute, at(0))
		// Due after the abandoned job (whose lease ended at 1m).
		enqueue(t, q, newJob("j_next", at(90*time.Second)))
		next := claim(t, q, "r", time.Hour, at(2*time.Minute))
		if next.ID != "j_next" {
			t.Fatalf("Claim = %q, want j_next", next.ID)
		}
		want := last
		want.State, want.Attempts, want.Runner, want.ErrorCode = store.JobFailed, 1, "r", store.JobAbandonedCode
		want.NotBefore, want.Updated, want.Finished = at(0), at(2*time.Minute), at(2*time.Minute)
		checkJob(t, "Get of the abandoned job", get(t, q, "j_last"), want)
		if err := q.Finish(ctx, j, store.JobOutcome{State: store.JobSucceeded, Finished: at(3 * time.Minute)}); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Finish of an abandoned job: err = %v, want ErrClaimLost", err)
		}
		noClaim(t, q, at(time.Hour))
	})

	t.Run("ClaimInvalid", func(t *testing.T) {
		q := newQueue(t)()
		enqueue(t, q, newJob("j_1", at(0)))
		if _, ok, err := q.Claim(ctx, "r", 0, at(time.Second)); err == nil || ok {
			t.Errorf("Claim with no lease: ok %v, err %v; want an error", ok, err)
		}
		j := claim(t, q, "r", time.Minute, at(time.Second))
		if err := q.Extend(ctx, j, 0, at(2*time.Second)); err == nil {
			t.Error("Extend with no lease succeeded")
		}
		missing := j
		missing.ID = "j_missing"
		if err := q.Extend(ctx, missing, time.Minute, at(2*time.Second)); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Extend of a missing job: err = %v, want ErrClaimLost", err)
		}
	})

	t.Run("Purge", func(t *testing.T) {
		q := newQueue(t)()
		for i := range 5 {
			enqueue(t, q, newJob("j_"+strconv.Itoa(i), at(time.Duration(i)*time.Second)))
		}
		// j_0, j_1, j_2 finish at 10s, 20s, 30s; j_3 runs; j_4 waits.
		for i := range 4 {
			j := claim(t, q, "r", time.Hour, at(time.Minute))
			if i == 3 {
				break
			}
			out := store.JobOutcome{State: store.JobSucceeded, Status: 200, Finished: at(time.Duration(i+1) * 10 * time.Second)}
			if i == 1 {
				out.State = store.JobFailed
			}
			if err := q.Finish(ctx, j, out); err != nil {
				t.Fatal(err)
			}
		}
		n, err := q.Purge(ctx, at(30*time.Second))
		if err != nil || n != 2 {
			t.Fatalf("Purge = %d, %v; want 2", n, err)
		}
		for i, kept := range []bool{false, false, true, true, true} {
			id := "j_" + strconv.Itoa(i)
			if _, err := q.Get(ctx, id); (err == nil) != kept {
				t.Errorf("%s kept %v (err %v), want %v", id, err == nil, err, kept)
			}
		}
		if n, err := q.Purge(ctx, at(30*time.Second)); err != nil || n != 0 {
			t.Errorf("Purge again = %d, %v; want 0", n, err)
		}
		if n, err := q.Purge(ctx, at(24*time.Hour)); err != nil || n != 1 {
			t.Errorf("Purge of the rest = %d, %v; want 1 (running and queued jobs stay)", n, err)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		// What one handle stored, another sees, after the first is
		// closed (as after a restart): jobs queued, running and finished.
		open := newQueue(t)
		q := open()
		enqueue(t, q, newJob("j_done", at(0)), newJob("j_running", at(time.Second)), newJob("j_queued", at(2*time.Second)))
		done := claim(t, q, "r", time.Hour, at(time.Minute))
		running := claim(t, q, "r", time.Hour, at(time.Minute))
		out := store.JobOutcome{State: store.JobSucceeded, Status: 200, Result: []byte("answer"), ContentType: "application/json", Finished: at(2 * time.Minute)}
		if err := q.Finish(ctx, done, out); err != nil {
			t.Fatal(err)
		}
		wantDone := get(t, q, "j_done")
		wantRunning := get(t, q, "j_running")
		if c, ok := q.(io.Closer); ok {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		q = open()
		checkJob(t, "finished job after reopening", get(t, q, "j_done"), wantDone)
		checkJob(t, "running job after reopening", get(t, q, "j_running"), wantRunning)
		// The running job's claim still holds; the queued job is next.
		if j := claim(t, q, "r2", time.Hour, at(3*time.Minute)); j.ID != "j_queued" {
			t.Errorf("Claim after reopening = %q, want j_queued", j.ID)
		}
		if err := q.Extend(ctx, running, time.Hour, at(3*time.Minute)); err != nil {
			t.Errorf("Extend of a claim made before reopening: %v", err)
		}
	})
}

// checkJob compares jobs, their times as instants and their bytes by
// content (nil and empty alike).
func checkJob(t testing.TB, what string, got, want store.Job) {
	t.Helper()
	same := got.ID == want.ID && got.Owner == want.Owner && got.KeyID == want.KeyID && got.Kind == want.Kind &&
		bytes.Equal(got.Request, want.Request) && got.State == want.State && got.Attempts == want.Attempts &&
		got.MaxAttempts == want.MaxAttempts && got.NotBefore.Equal(want.NotBefore) && got.Runner == want.Runner &&
		got.Lease.Equal(want.Lease) && got.Status == want.Status && bytes.Equal(got.Result, want.Result) &&
		got.ContentType == want.ContentType && got.ErrorCode == want.ErrorCode && got.Created.Equal(want.Created) &&
		got.Updated.Equal(want.Updated) && got.Finished.Equal(want.Finished)
	if !same {
		got.Request, got.Result = abbrev(got.Request), abbrev(got.Result)
		want.Request, want.Result = abbrev(want.Request), abbrev(want.Result)
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// abbrev shortens b for a message.
func abbrev(b []byte) []byte {
	if len(b) > 64 {
		return append(bytes.Clone(b[:64]), "..."...)
	}
	return b
}
