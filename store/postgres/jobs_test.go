package postgres_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-gw/sluice/internal/testutil"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/postgres"
	"github.com/sluice-gw/sluice/store/storetest"
)

// TestJobs runs the contract with a schema per test; each handle is a DB
// (a pool) of its own on the schema, as another instance would hold.
func TestJobs(t *testing.T) {
	storetest.RunJobs(t, func(t testing.TB) func() store.Jobs {
		u := testutil.PostgresSchemaURL(t)
		return func() store.Jobs { return openDB(t, u) }
	})
}

// TestJobsInstances checks claims from several instances, each with a
// pool of several connections, while they run and finish the jobs: each
// job is claimed once, and claimants skip the rows others hold rather than
// wait for them.
func TestJobsInstances(t *testing.T) {
	ctx := context.Background()
	u := testutil.PostgresSchemaURL(t)
	dbs := make([]*postgres.DB, 4)
	for i := range dbs {
		dbs[i] = openDB(t, u)
	}
	t0 := time.UnixMicro(1_900_000_000_000_000)
	const jobs = 300
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
		for k := range 4 {
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

// TestJobsSkipLocked checks that a claim does not wait for a job another
// transaction holds locked: it takes the next one.
func TestJobsSkipLocked(t *testing.T) {
	ctx := context.Background()
	u := testutil.PostgresSchemaURL(t)
	db := openDB(t, u)
	t0 := time.UnixMicro(1_900_000_000_000_000)
	for i, id := range []string{"j_1", "j_2"} {
		if err := db.Enqueue(ctx, store.Job{ID: id, MaxAttempts: 1, Created: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM jobs WHERE id = 'j_1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	j, ok, err := db.Claim(cctx, "r", time.Hour, t0.Add(time.Minute))
	if err != nil || !ok || j.ID != "j_2" {
		t.Fatalf("Claim beside a locked job = %q, ok %v, err %v; want j_2", j.ID, ok, err)
	}
}

// TestJobsClaimPlan checks that Claim reads the due index rather than the
// whole table, with the planner's statistics of a large queue.
func TestJobsClaimPlan(t *testing.T) {
	ctx := context.Background()
	u := testutil.PostgresSchemaURL(t)
	openDB(t, u)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO jobs (id, owner, key_id, kind, request, state, attempts,
			max_attempts, not_before, runner, status, result, content_type, error_code, created, updated, finished)
		SELECT 'j_' || i, '', '', '', '', CASE WHEN i % 10 = 0 THEN 'queued' ELSE 'succeeded' END, 1, 3,
			now(), '', 200, '', '', '', now(), now(), CASE WHEN i % 10 = 0 THEN NULL ELSE now() END
		FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE jobs`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN SELECT id FROM jobs WHERE due <= $1::timestamptz
		ORDER BY due, created, id LIMIT 1 FOR UPDATE SKIP LOCKED`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan, "\n"); !strings.Contains(got, "jobs_due") || strings.Contains(got, "Sort") {
		t.Errorf("claim plan:\n%s\nwant a scan of jobs_due without a sort", got)
	}
}
