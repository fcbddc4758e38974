// Package storetest is the contract suite every store backend passes: the
// memory, Redis and later backends run the same tests, so that they behave
// alike and a test written against one holds for all.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunStreamLog runs the StreamLog contract against the logs open returns.
// Each call of open may return a new handle on the same backend; streams of
// one test are told apart by random ids.
func RunStreamLog(t *testing.T, open func(t testing.TB) store.StreamLog) {
	ctx := context.Background()
	info := store.StreamInfo{Dialect: "openai", Owner: "owner-hash"}

	t.Run("CreateInfo", func(t *testing.T) {
		l := open(t)
		id := newID()
		if _, err := l.Info(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Info before Create: err = %v, want ErrNotFound", err)
		}
		if err := l.Create(ctx, id, info, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := l.Info(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Dialect != info.Dialect || got.Owner != info.Owner || got.Finished || !got.Touched.IsZero() {
			t.Errorf("Info = %+v, want %+v", got, info)
		}
	})

	t.Run("ReadFinished", func(t *testing.T) {
		l := open(t)
		id := newID()
		frames := writeLog(t, l, id, 5, true)
		for after := 0; after <= 5; after++ {
			got := readAll(t, l, id, uint64(after))
			if want := frames[after:]; !equalFrames(got, want) {
				t.Errorf("Read after %d = %q, want %q", after, got, want)
			}
		}
		if got := readAll(t, l, id, 99); len(got) != 0 {
			t.Errorf("Read after the last event = %q, want nothing", got)
		}
		fi, err := l.Info(ctx, id)
		if err != nil || !fi.Finished {
			t.Errorf("Info after Finish = %+v, %v; want Finished", fi, err)
		}
	})

	t.Run("BinaryFrames", func(t *testing.T) {
		l := open(t)
		id := newID()
		if err := l.Create(ctx, id, info, time.Minute); err != nil {
			t.Fatal(err)
		}
		frame := []byte("id: 1\ndata: {\"a\":\"\\u0000\"}\n\n\x00\xff\r\n")
		if err := l.Append(ctx, id, 1, frame); err != nil {
			t.Fatal(err)
		}
		frame[0] = 'X' // the log keeps its own copy
		if err := l.Finish(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, l, id, 0)
		if len(got) != 1 || !bytes.Equal(got[0], []byte("id: 1\ndata: {\"a\":\"\\u0000\"}\n\n\x00\xff\r\n")) {
			t.Errorf("Read = %q", got)
		}
	})

	t.Run("AppendOutOfOrder", func(t *testing.T) {
		l := open(t)
		id := newID()
		if err := l.Create(ctx, id, info, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, id, 2, []byte("x")); err == nil {
			t.Error("Append of event 2 before event 1 succeeded")
		}
		if err := l.Append(ctx, id, 1, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, id, 1, []byte("b")); err == nil {
			t.Error("Append of other bytes as event 1 succeeded")
		}
		// A retried append (the first one's answer lost) is no error and
		// adds nothing.
		if err := l.Append(ctx, id, 1, []byte("a")); err != nil {
			t.Errorf("Append of event 1 again: %v", err)
		}
		if err := l.Finish(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, l, id, 0); len(got) != 1 || string(got[0]) != "a" {
			t.Errorf("log after a retried append = %q, want [a]", got)
		}
	})

	t.Run("ReadLive", func(t *testing.T) {
		l := open(t)
		id := newID()
		if err := l.Create(ctx, id, info, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, id, 1, []byte("one")); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 16)
		var readErr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(got)
			for f, err := range l.Read(ctx, id, 0) {
				if err != nil {
					readErr = err
					return
				}
				got <- f.Data
			}
		}()
		expect := func(want string) {
			t.Helper()
			select {
			case b := <-got:
				if string(b) != want {
					t.Fatalf("live Read got %q, want %q", b, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("live Read: no %q", want)
			}
		}
		expect("one")
		for i, s := range []string{"two", "three"} {
			if err := l.Append(ctx, id, uint64(i+2), []byte(s)); err != nil {
				t.Fatal(err)
			}
			expect(s)
		}
		if err := l.Finish(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		wg.Wait() // Finish ends the reader
		if b, ok := <-got; ok {
			t.Errorf("Read went on after Finish: %q", b)
		}
		if readErr != nil {
			t.Errorf("Read error: %v", readErr)
		}
	})

	t.Run("ReadCancel", func(t *testing.T) {
		l := open(t)
		id := newID()
		if err := l.Create(ctx, id, info, time.Minute); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(50*time.Millisecond, cancel)
		var last error
		for _, err := range l.Read(cctx, id, 0) {
			last = err
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("Read after cancel: err = %v, want context.Canceled", last)
		}
	})

	t.Run("ReadAfterLargest", func(t *testing.T) {
		// Nothing follows the largest sequence number: a read waits for
		// the end like any other (the next number must not wrap to 0).
		l := open(t)
		id := newID()
		writeLog(t, l, id, 1, false)
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		n := 0
		var last error
		for _, err := range l.Read(rctx, id, ^uint64(0)) {
			if err != nil {
				last = err
				break
			}
			n++
		}
		if n != 0 || !errors.Is(last, context.DeadlineExceeded) {
			t.Errorf("read %d events, err %v; want none and the deadline", n, last)
		}
		if err := l.Finish(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, l, id, ^uint64(0)); len(got) != 0 {
			t.Errorf("read after the largest of a finished log: %q", got)
		}
	})

	t.Run("ReadMissing", func(t *testing.T) {
		l := open(t)
		var last error
		for _, err := range l.Read(ctx, newID(), 0) {
			last = err
		}
		if !errors.Is(last, store.ErrNotFound) {
			t.Errorf("Read of an unknown stream: err = %v, want ErrNotFound", last)
		}
	})

	t.Run("Touch", func(t *testing.T) {
		l := open(t)
		id := newID()
		if err := l.Touch(ctx, id, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Touch of an unknown stream: err = %v, want ErrNotFound", err)
		}
		if err := l.Create(ctx, id, info, time.Minute); err != nil {
			t.Fatal(err)
		}
		at := time.UnixMilli(1_800_000_000_123)
		if err := l.Touch(ctx, id, at); err != nil {
			t.Fatal(err)
		}
		got, err := l.Info(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Touched.Equal(at) {
			t.Errorf("Touched = %v, want %v", got.Touched, at)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		l := open(t)
		unfinished, finished := newID(), newID()
		if err := l.Create(ctx, unfinished, info, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		writeLog(t, l, finished, 2, false)
		if err := l.Finish(ctx, finished, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{unfinished, finished} {
			waitFor(t, func() bool {
				_, err := l.Info(ctx, id)
				return errors.Is(err, store.ErrNotFound)
			})
			var last error
			for _, err := range l.Read(ctx, id, 0) {
				last = err
			}
			if !errors.Is(last, store.ErrNotFound) {
				t.Errorf("Read of an expired stream: err = %v, want ErrNotFound", last)
			}
		}
	})
}

// writeLog creates stream id with n events and returns them; finish also
// finishes it.
func writeLog(t testing.TB, l store.StreamLog, id string, n int, finish bool) [][]byte {
	t.Helper()
	ctx := context.Background()
	if err := l.Create(ctx, id, store.StreamInfo{Dialect: "anthropic", Owner: "o"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := 1; i <= n; i++ {
		f := []byte("id: " + strconv.Itoa(i) + "\ndata: event " + strconv.Itoa(i) + "\n\n")
		if err := l.Append(ctx, id, uint64(i), f); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if finish {
		if err := l.Finish(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	return frames
}

// readAll reads a finished log after seq, checking that sequence numbers
// follow on.
func readAll(t testing.TB, l store.StreamLog, id string, after uint64) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out [][]byte
	next := after + 1
	for f, err := range l.Read(ctx, id, after) {
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if f.Seq != next {
			t.Fatalf("Read: event %d after %d", f.Seq, next-1)
		}
		next++
		out = append(out, bytes.Clone(f.Data))
	}
	return out
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}
