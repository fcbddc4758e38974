package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/internal/testutil"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/redis"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStreamLog(t *testing.T) {
	storetest.RunStreamLog(t, func(t testing.TB) store.StreamLog {
		prefix := testPrefix(t)
		return redis.NewStreamLog(openDB(t, prefix), prefix)
	})
}

// TestStreamLogShared checks that two DBs, as two gateway instances have,
// share a stream: written through one, read live through the other.
func TestStreamLogShared(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	writer := redis.NewStreamLog(openDB(t, prefix), prefix)
	reader := redis.NewStreamLog(openDB(t, prefix), prefix)
	id := "shared"
	if err := writer.Create(ctx, id, store.StreamInfo{Dialect: "anthropic", Owner: "o"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := writer.Append(ctx, id, 1, []byte("one")); err != nil {
		t.Fatal(err)
	}

	got := make(chan store.Frame)
	done := make(chan error, 1)
	go func() {
		var last error
		for f, err := range reader.Read(ctx, id, 0) {
			if err != nil {
				last = err
				break
			}
			got <- f
		}
		done <- last
	}()
	expect := func(seq uint64, data string) {
		t.Helper()
		select {
		case f := <-got:
			if f.Seq != seq || string(f.Data) != data {
				t.Fatalf("read %d %q, want %d %q", f.Seq, f.Data, seq, data)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d", seq)
		}
	}
	expect(1, "one")
	if err := writer.Append(ctx, id, 2, []byte("two")); err != nil {
		t.Fatal(err)
	}
	expect(2, "two")
	if err := writer.Touch(ctx, id, time.UnixMilli(1_800_000_000_000)); err != nil {
		t.Fatal(err)
	}
	if err := writer.Finish(ctx, id, time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not end after Finish")
	}
	info, err := reader.Info(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Finished || info.Dialect != "anthropic" || !info.Touched.Equal(time.UnixMilli(1_800_000_000_000)) {
		t.Errorf("Info through the other DB = %+v", info)
	}
	if err := writer.Append(ctx, id, 3, []byte("late")); err == nil {
		t.Error("Append after Finish succeeded")
	}
}

// TestLayout checks the keys of a log and their expiry, as the package
// documentation describes them.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	l := redis.NewStreamLog(openDB(t, prefix), prefix)
	c := rawClient(t)
	id := "layout"
	infoKey, logKey := prefix+"stream:{"+id+"}:info", prefix+"stream:{"+id+"}:log"
	if err := l.Create(ctx, id, store.StreamInfo{Dialect: "openai", Owner: "o"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, logKey).Val(); n != 0 {
		t.Errorf("log key exists before the first event")
	}
	ttlBetween := func(key string, lo, hi time.Duration) {
		t.Helper()
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil || ttl < lo || ttl > hi {
			t.Errorf("PTTL %s = %v, %v; want in [%v, %v]", key, ttl, err, lo, hi)
		}
	}
	ttlBetween(infoKey, 50*time.Second, time.Minute)
	for seq, data := range []string{"a", "b"} {
		if err := l.Append(ctx, id, uint64(seq+1), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	ttlBetween(logKey, 50*time.Second, time.Minute)
	if got := c.HGetAll(ctx, infoKey).Val(); got["dialect"] != "openai" || got["owner"] != "o" || got["last"] != "2" {
		t.Errorf("info hash = %v", got)
	}
	if err := l.Finish(ctx, id, time.Hour); err != nil {
		t.Fatal(err)
	}
	ttlBetween(infoKey, 59*time.Minute, time.Hour)
	ttlBetween(logKey, 59*time.Minute, time.Hour)
	if got := c.HGet(ctx, infoKey, "finished").Val(); got != "1" {
		t.Errorf("finished = %q, want 1", got)
	}
	msgs, err := c.XRange(ctx, logKey, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, " ") != "0-1 0-2 1-0" {
		t.Errorf("log entries %v, want 0-1 0-2 1-0", ids)
	}
}

// TestStreamLogErrors checks the errors of the operations that the contract
// leaves open.
func TestStreamLogErrors(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	l := redis.NewStreamLog(openDB(t, prefix), prefix)
	info := store.StreamInfo{Dialect: "openai", Owner: "o"}
	if err := l.Append(ctx, "missing", 1, []byte("x")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Append to a missing log: err = %v, want ErrNotFound", err)
	}
	if err := l.Finish(ctx, "missing", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Finish of a missing log: err = %v, want ErrNotFound", err)
	}
	if err := l.Create(ctx, "s", info, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Create(ctx, "s", info, time.Minute); err == nil {
		t.Error("Create of an existing log succeeded")
	}
	if err := l.Append(ctx, "s", 0, []byte("x")); err == nil {
		t.Error("Append of event 0 succeeded")
	}
}

// TestReadDeadline checks that Read of a live log ends with the deadline of
// its context, well before BlockTime.
func TestReadDeadline(t *testing.T) {
	prefix := testPrefix(t)
	l := redis.NewStreamLog(openDB(t, prefix), prefix)
	l.BlockTime = time.Minute
	if err := l.Create(context.Background(), "s", store.StreamInfo{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var last error
	for _, err := range l.Read(ctx, "s", 0) {
		last = err
	}
	if !errors.Is(last, context.DeadlineExceeded) {
		t.Errorf("Read: err = %v, want context.DeadlineExceeded", last)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("BadURL", func(t *testing.T) {
		for _, u := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:6379/x", "redis://u:p%zz@host"} {
			db, err := redis.Open(context.Background(), u)
			if err == nil {
				db.Close()
				t.Errorf("Open(%q) succeeded", u)
			}
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db, err := redis.Open(ctx, "redis://127.0.0.1:1")
		if err == nil {
			db.Close()
			t.Fatal("Open of an unreachable server succeeded")
		}
		if ctx.Err() != nil {
			t.Errorf("Open did not fail within its context: %v", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("error %q does not name the server", err)
		}
	})
	t.Run("Silent", func(t *testing.T) {
		// A server that accepts connections and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conns []net.Conn
			for {
				c, err := ln.Accept()
				if err != nil {
					break
				}
				conns = append(conns, c)
			}
			for _, c := range conns {
				c.Close()
			}
		}()
		defer wg.Wait()
		defer ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		db, err := redis.Open(ctx, "redis://"+ln.Addr().String())
		if err == nil {
			db.Close()
			t.Fatal("Open of a silent server succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Open of a silent server: err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Open took %v with a context of 300ms", d)
		}
	})
	t.Run("NoPassword", func(t *testing.T) {
		const secret = "s3cr3t-pa55word"
		u := testutil.RedisURL(t)
		pu, err := parseHost(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []string{
			"redis://user:" + secret + "@127.0.0.1:1",      // unreachable
			"redis://user:" + secret + "@" + pu,            // wrong user and password
			"redis://:" + secret + "@" + pu + "/nodb",      // bad database
			"redis://:" + secret + "@" + pu + "/" + secret, // bad database that is the password
			"redis://user:" + secret + "@" + pu + "?x=1",   // unknown option
			"redis://user:" + secret + "%zz@" + pu,         // not a URL
			"redis://user:" + secret + "@" + pu + "/99999", // no such database
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			db, err := redis.Open(ctx, raw)
			cancel()
			if err == nil {
				db.Close()
				t.Errorf("Open(%q) succeeded", raw)
				continue
			}
			t.Logf("Open error: %v", err)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open error shows the password: %v", err)
			}
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), secret) {
					t.Errorf("Open error wraps one that shows the password: %v", e)
				}
			}
		}
	})
}

// parseHost returns the host:port of a redis:// URL.
func parseHost(rawURL string) (string, error) {
	rest, ok := strings.CutPrefix(rawURL, "redis://")
	if !ok {
		return "", errors.New("not a redis:// URL: " + rawURL)
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return rest, nil
}

// openDB opens the test server, and when the test ends deletes the keys
// starting with prefix and closes the DB.
func openDB(t testing.TB, prefix string) *redis.DB {
	t.Helper()
	u := testutil.RedisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := redis.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
		if err := deleteKeys(u, prefix); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	})
	return db
}

// deleteKeys deletes the keys starting with prefix from the server at
// rawURL, with a client of its own.
func deleteKeys(rawURL, prefix string) error {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// rawClient returns a go-redis client on the test server, closed when the
// test ends.
func rawClient(t testing.TB) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a key prefix of its own for each test.
func testPrefix(t testing.TB) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "sluicetest:" + hex.EncodeToString(b) + ":"
}

// BenchmarkAppend measures appending one 200-byte event to a stream log,
// the cost a resumable stream pays per event when its log is in Redis.
func BenchmarkAppend(b *testing.B) {
	prefix := testPrefix(b)
	l := redis.NewStreamLog(openDB(b, prefix), prefix)
	ctx := context.Background()
	frame := bytes.Repeat([]byte("x"), 200)
	if err := l.Create(ctx, "bench", store.StreamInfo{Dialect: "openai"}, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		if err := l.Append(ctx, "bench", seq, frame); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIdempotency runs the contract with a new DB for every handle, as
// separate instances would hold, all on one prefix.
func TestIdempotency(t *testing.T) {
	prefix := testPrefix(t)
	storetest.RunIdempotency(t, func(t testing.TB) store.Idempotency {
		return redis.NewIdempotency(openDB(t, prefix), prefix)
	})
}
