package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStreamLog(t *testing.T) {
	l := memory.NewStreamLog(memory.StreamLogOptions{})
	storetest.RunStreamLog(t, func(testing.TB) store.StreamLog { return l })
}

// TestStreamLogBound checks that finished logs are dropped oldest first once
// the log holds more than its bound, and running ones never.
func TestStreamLogBound(t *testing.T) {
	ctx := context.Background()
	l := memory.NewStreamLog(memory.StreamLogOptions{MaxBytes: 250})
	frame := make([]byte, 100)
	for i := range 3 {
		id := "s" + strconv.Itoa(i)
		if err := l.Create(ctx, id, store.StreamInfo{}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, id, 1, frame); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := l.Finish(ctx, id, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 300 bytes > 250: the oldest finished stream goes.
	if _, err := l.Info(ctx, "s0"); err != store.ErrNotFound {
		t.Errorf("s0: err = %v, want ErrNotFound (evicted)", err)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, err := l.Info(ctx, id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	// The running stream stays even past the bound.
	for seq := uint64(2); seq < 6; seq++ {
		if err := l.Append(ctx, "s2", seq, frame); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Info(ctx, "s2"); err != nil {
		t.Errorf("running stream s2 dropped: %v", err)
	}
	if _, err := l.Info(ctx, "s1"); err != store.ErrNotFound {
		t.Errorf("s1: err = %v, want ErrNotFound (evicted)", err)
	}
}

func TestIdempotency(t *testing.T) {
	s := memory.NewIdempotency(memory.IdempotencyOptions{})
	storetest.RunIdempotency(t, func(testing.TB) store.Idempotency { return s })
}

func TestIdempotencyBounded(t *testing.T) {
	s := memory.NewIdempotency(memory.IdempotencyOptions{MaxBytes: 100})
	ctx := context.Background()
	for i := range 5 {
		key := strconv.Itoa(i)
		s.Claim(ctx, key, "h", time.Minute, time.Hour)
		if err := s.Complete(ctx, key, store.IdemRecord{Status: 200, Body: make([]byte, 40)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// 200 bytes were stored under a bound of 100: the oldest went first.
	for i, want := range []bool{false, false, false, true, true} {
		if _, err := s.Get(ctx, strconv.Itoa(i)); (err == nil) != want {
			t.Errorf("record %d kept %v, want %v", i, err == nil, want)
		}
	}
}
