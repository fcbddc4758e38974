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
