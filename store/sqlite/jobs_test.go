package sqlite_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/sqlite"
	"github.com/sluice-gw/sluice/store/storetest"
)

// TestJobs runs the contract with a database file per test; each handle is
// a DB of its own on the file, as another process would open it.
func TestJobs(t *testing.T) {
	storetest.RunJobs(t, func(t testing.TB) func() store.Jobs {
		path := filepath.Join(t.TempDir(), "sluice.db")
		return func() store.Jobs { return openPath(t, path) }
	})
}

// TestJobsReopen checks that the queue survives a restart: the file closed
// and opened again keeps every field of its jobs, and the claims made before.
func TestJobsReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMicro(1_900_000_000_000_000)
	for i, id := range []string{"j_1", "j_2"} {
		j := store.Job{ID: id, Owner: "o", Kind: "anthropic", Request: []byte("{}\x00"), MaxAttempts: 2, Created: t0.Add(time.Duration(i) * time.Second)}
		if err := db.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	claimed, ok, err := db.Claim(ctx, "r", time.Hour, t0.Add(time.Minute))
	if err != nil || !ok {
		t.Fatalf("Claim: ok %v, err %v", ok, err)
	}
	before, err := db.Get(ctx, "j_2")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path)
	if got, err := db.Get(ctx, "j_2"); err != nil || got.State != store.JobQueued || !got.Created.Equal(before.Created) || string(got.Request) != "{}\x00" {
		t.Errorf("queued job after reopening = %+v, %v", got, err)
	}
	next, ok, err := db.Claim(ctx, "r2", time.Hour, t0.Add(2*time.Minute))
	if err != nil || !ok || next.ID != "j_2" {
		t.Fatalf("Claim after reopening = %q, ok %v, err %v; want j_2", next.ID, ok, err)
	}
	if err := db.Finish(ctx, claimed, store.JobOutcome{State: store.JobSucceeded, Status: 200, Result: []byte("a"), Finished: t0.Add(3 * time.Minute)}); err != nil {
		t.Errorf("Finish of a claim made before reopening: %v", err)
	}
}

// TestJobsProcesses checks claims from several DBs on one file, each with
// its own writer connection, as separate processes would have: each job is
// claimed once, the file lock taking turns between the writers.
func TestJobsProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	dbs := make([]*sqlite.DB, 4)
	for i := range dbs {
		dbs[i] = openPath(t, path)
	}
	t0 := time.UnixMicro(1_900_000_000_000_000)
	const jobs = 200
	for i := range jobs {
		j := store.Job{ID: "j_" + strconv.Itoa(i), MaxAttempts: 1, Created: t0.Add(time.Duration(i) * time.Millisecond)}
		if err := dbs[0].Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i, db := range dbs {
		// Two claimants per DB: they queue for its writer connection.
		for k := range 2 {
			runner := "r" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
			wg.Go(func() {
				for {
					j, ok, err := db.Claim(ctx, runner, time.Hour, t0.Add(time.Minute))
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					out := store.JobOutcome{State: store.JobSucceeded, Result: []byte(runner), Finished: t0.Add(time.Minute)}
					if err := db.Finish(ctx, j, out); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[j.ID]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Errorf("%d jobs run, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
}

// TestJobsClaimPlan checks that Claim reads the due index rather than the
// whole table.
func TestJobsClaimPlan(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	openPath(t, path)
	rows, err := rawDB(t, path).QueryContext(ctx, `EXPLAIN QUERY PLAN
		SELECT id FROM jobs WHERE due <= ? ORDER BY due, created, id LIMIT 1`, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX jobs_due") || strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("claim plan = %q, want a search of jobs_due without a sort", got)
	}
}
