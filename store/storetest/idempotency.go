package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunIdempotency runs the Idempotency contract against the stores open
// returns. Each call of open may return a new handle on the same backend
// (as two instances would hold); keys of one test are told apart by
// random ids.
func RunIdempotency(t *testing.T, open func(t testing.TB) store.Idempotency) {
	ctx := context.Background()

	t.Run("ClaimCompleteReplay", func(t *testing.T) {
		s := open(t)
		key := "k-" + newID()
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get before Claim: %v, want ErrNotFound", err)
		}
		rec, claimed, err := s.Claim(ctx, key, "h1", time.Minute, time.Hour)
		if err != nil || !claimed {
			t.Fatalf("first Claim: claimed %v, err %v", claimed, err)
		}
		rec, claimed, err = s.Claim(ctx, key, "h2", time.Minute, time.Hour)
		if err != nil || claimed || rec.Done || rec.Hash != "h1" {
			t.Fatalf("second Claim while running: %+v claimed %v err %v, want the running record of h1", rec, claimed, err)
		}
		if err := s.SetStream(ctx, key, "str_1"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, key); err != nil || got.StreamID != "str_1" || got.Done {
			t.Fatalf("Get running: %+v %v", got, err)
		}
		body := []byte("data: {\"x\":1}\n\n\x00binary\xff")
		if err := s.Complete(ctx, key, store.IdemRecord{Status: 200, ContentType: "text/event-stream", Body: body}, time.Hour); err != nil {
			t.Fatal(err)
		}
		rec, claimed, err = s.Claim(ctx, key, "h1", time.Minute, time.Hour)
		if err != nil || claimed || !rec.Done || rec.Status != 200 || rec.ContentType != "text/event-stream" ||
			!bytes.Equal(rec.Body, body) || rec.Hash != "h1" || rec.StreamID != "" {
			t.Fatalf("Claim after Complete: %+v claimed %v err %v", rec, claimed, err)
		}
		// A second Complete (a retry of the first) changes nothing.
		if err := s.Complete(ctx, key, store.IdemRecord{Status: 500}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, key); got.Status != 200 {
			t.Errorf("second Complete overwrote the answer: %+v", got)
		}
	})

	t.Run("Release", func(t *testing.T) {
		s := open(t)
		key := "k-" + newID()
		if _, claimed, _ := s.Claim(ctx, key, "h", time.Minute, time.Hour); !claimed {
			t.Fatal("not claimed")
		}
		if err := s.Release(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, claimed, err := s.Claim(ctx, key, "h", time.Minute, time.Hour); err != nil || !claimed {
			t.Fatalf("Claim after Release: claimed %v err %v", claimed, err)
		}
		s.Complete(ctx, key, store.IdemRecord{Status: 200, Body: []byte("x")}, time.Hour)
		// Release does not drop a completed record.
		if err := s.Release(ctx, key); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, key); err != nil || !got.Done {
			t.Fatalf("Release dropped a completed record: %+v %v", got, err)
		}
	})

	t.Run("LeaseExpires", func(t *testing.T) {
		s := open(t)
		key := "k-" + newID()
		if _, claimed, _ := s.Claim(ctx, key, "h", 50*time.Millisecond, time.Hour); !claimed {
			t.Fatal("not claimed")
		}
		time.Sleep(120 * time.Millisecond) // the holder died
		if _, claimed, err := s.Claim(ctx, key, "h", time.Minute, time.Hour); err != nil || !claimed {
			t.Fatalf("Claim after the lease: claimed %v err %v, want a take-over", claimed, err)
		}
	})

	t.Run("Expires", func(t *testing.T) {
		s := open(t)
		key := "k-" + newID()
		s.Claim(ctx, key, "h", time.Minute, time.Hour)
		s.Complete(ctx, key, store.IdemRecord{Status: 200}, 50*time.Millisecond)
		time.Sleep(120 * time.Millisecond)
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after the ttl: %v, want ErrNotFound", err)
		}
		if err := s.SetStream(ctx, key, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetStream of no record: %v, want ErrNotFound", err)
		}
		if err := s.Complete(ctx, "k-"+newID(), store.IdemRecord{}, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Complete of no record: %v, want ErrNotFound", err)
		}
	})

	t.Run("OneWinner", func(t *testing.T) {
		// Many claimants on separate handles: exactly one wins.
		key := "k-" + newID()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			s := open(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, claimed, err := s.Claim(ctx, key, "h", time.Minute, time.Hour)
				if err != nil {
					t.Error(err)
				}
				if claimed {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d claimants won, want 1", n)
		}
	})
}
