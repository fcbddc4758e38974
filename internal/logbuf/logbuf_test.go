package logbuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps every write it gets, each as one string.
type recorder struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), r.err
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestLinesArriveWithinTheInterval(t *testing.T) {
	var r recorder
	b := New(&r, 250*time.Millisecond, 1<<10, 1<<20)
	defer b.Close()
	b.Write([]byte("one\n"))
	b.Write([]byte("two\n"))
	if got := r.got(); len(got) != 0 {
		t.Fatalf("written at once: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := r.got(); len(got) != 1 || got[0] != "one\ntwo\n" {
		t.Fatalf("writes %q, want one write of both lines", got)
	}
	// A later line is flushed on its own timer.
	b.Write([]byte("three\n"))
	deadline = time.Now().Add(5 * time.Second)
	for len(r.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := r.got(); len(got) != 2 || got[1] != "three\n" {
		t.Fatalf("writes %q, want the third line written by itself", got)
	}
}

func TestFullBufferIsWrittenAtOnce(t *testing.T) {
	var r recorder
	b := New(&r, time.Hour, 10, 1<<10)
	defer b.Close()
	b.Write([]byte("aaaa\n"))
	b.Write([]byte("bbbb\n")) // size reached: written without the hour's wait
	deadline := time.Now().Add(5 * time.Second)
	for len(r.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := r.got(); len(got) != 1 || got[0] != "aaaa\nbbbb\n" {
		t.Fatalf("writes %q, want both lines in one write", got)
	}
	long := strings.Repeat("x", 25) + "\n" // longer than the size: one write
	b.Write([]byte(long))
	deadline = time.Now().Add(5 * time.Second)
	for len(r.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := r.got(); len(got) != 2 || got[1] != long {
		t.Fatalf("writes %q", got)
	}
}

func TestCloseFlushesAndEndsWrites(t *testing.T) {
	var r recorder
	b := New(&r, time.Hour, 1<<10, 1<<20)
	b.Write([]byte("last\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.got(); len(got) != 1 || got[0] != "last\n" {
		t.Fatalf("writes %q, want the line flushed by Close", got)
	}
	if n, err := b.Write([]byte("late\n")); err == nil || n != 0 {
		t.Fatalf("write after close: %d, %v", n, err)
	}
	if n, err := b.Write([]byte(strings.Repeat("z", 2<<10) + "\n")); err == nil || n != 0 {
		t.Fatalf("line longer than the buffer after close: %d, %v", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if got := r.got(); len(got) != 1 {
		t.Fatalf("writes after close reached the writer: %q", got)
	}
}

func TestWriteErrorComesBackFromFlush(t *testing.T) {
	r := recorder{err: errors.New("disk full")}
	b := New(&r, time.Hour, 1<<10, 1<<20)
	if _, err := b.Write([]byte("line\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := b.Flush(); err == nil || err.Error() != "disk full" {
		t.Fatalf("flush: %v, want the writer's error", err)
	}
	r.mu.Lock()
	r.err = errors.New("later")
	r.mu.Unlock()
	b.Write([]byte("line\n"))
	if err := b.Close(); err == nil || err.Error() != "disk full" {
		t.Fatalf("close: %v, want the first error", err)
	}
}

// Lines written at once from many goroutines reach the writer whole, each
// once, whatever the flushes between them.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	b := New(w, time.Millisecond, 256, 4<<10)
	var wg sync.WaitGroup
	const writers, lines = 8, 500
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(b, "writer %d line %d %s\n", g, i, strings.Repeat("y", i%40))
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if seen[l] {
			t.Fatalf("line twice: %q", l)
		}
		seen[l] = true
		var g, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d ", &g, &i); err != nil {
			t.Fatalf("broken line %q: %v", l, err)
		}
		if want := fmt.Sprintf("writer %d line %d %s", g, i, strings.Repeat("y", i%40)); l != want {
			t.Fatalf("broken line %q", l)
		}
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d lines, want %d", len(seen), writers*lines)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// While a write stalls, lines collect up to the limit without waiting;
// past it, Write waits for the write to end. Nothing is lost or reordered.
func TestStalledWriteDoesNotHoldUpLines(t *testing.T) {
	release := make(chan struct{})
	var r recorder
	stalled := make(chan struct{}, 1)
	w := writerFunc(func(p []byte) (int, error) {
		select {
		case stalled <- struct{}{}:
		default:
		}
		<-release
		return r.Write(p)
	})
	b := New(w, time.Hour, 100, 1000)
	line := []byte(strings.Repeat("a", 99) + "\n")
	b.Write(line) // size reached: the goroutine writes, and stalls
	<-stalled
	wrote := make(chan struct{})
	go func() {
		for range 10 { // up to the limit, at once
			b.Write(line)
		}
		close(wrote)
	}()
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("lines under the limit waited for the stalled write")
	}
	over := make(chan struct{})
	go func() {
		b.Write(line) // past the limit: waits for the writer
		close(over)
	}()
	select {
	case <-over:
		t.Fatal("a line past the limit was taken while the write stalled")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-over
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(r.got(), "")
	if want := strings.Repeat(string(line), 12); got != want {
		t.Fatalf("wrote %d bytes, want the 12 lines in order (%d bytes)", len(got), len(want))
	}
}

// BenchmarkRequestLine writes a request line like the gateway's through
// slog's JSON handler to a file, a write system call a line ("file"), or
// through a Writer ("buffered").
func BenchmarkRequestLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		name := "file"
		if buffered {
			name = "buffered"
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var w io.Writer = f
			if buffered {
				lw := New(f, 100*time.Millisecond, 64<<10, 8<<20)
				defer lw.Close()
				w = lw
			}
			logger := slog.New(slog.NewJSONHandler(w, nil))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				logger.LogAttrs(ctx, slog.LevelInfo, "request",
					slog.String("request_id", "6f1c2b8e0d3a4c5b9e7f1a2b3c4d5e6f"),
					slog.String("method", "POST"), slog.String("path", "/v1/chat/completions"),
					slog.Int("status", 200), slog.Int64("bytes", 591), slog.Float64("latency_ms", 1.234),
					slog.String("key_id", "key_cPRc7PyX4hk0XoKj"), slog.String("tenant", "bench"),
					slog.String("route", "gpt-4o-mini"), slog.String("model", "gpt-4o-mini"),
					slog.String("provider", "mock"), slog.Bool("stream", false),
					slog.Int("input_tokens", 12), slog.Int("output_tokens", 12),
					slog.Float64("cost_usd", 0.000009), slog.Int("attempts", 1))
			}
		})
	}
}

// Lines keep their order through flushes that overlap: the timer's, size
// flushes and Flush calls, over a writer slow enough for them to meet.
func TestLinesKeepTheirOrder(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		time.Sleep(50 * time.Microsecond)
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	b := New(w, time.Millisecond, 64, 1<<10)
	const lines = 3000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					b.Flush()
				}
			}
		})
	}
	for i := range lines {
		fmt.Fprintf(b, "%d\n", i)
	}
	close(stop)
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != lines {
		t.Fatalf("%d lines, want %d", len(got), lines)
	}
	for i, l := range got {
		if l != fmt.Sprint(i) {
			t.Fatalf("line %d is %q: out of order", i, l)
		}
	}
}
