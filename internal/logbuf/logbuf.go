// Package logbuf buffers a log's writes, so that a busy gateway writes its
// request lines in one system call every interval rather than one a line.
// A write system call costs several microseconds on a virtual machine,
// where each one also wakes the Go scheduler's monitor; one a request was
// the request line's largest cost under load (docs/perf.md).
package logbuf

import (
	"io"
	"sync"
	"time"
)

// A Writer buffers writes to an underlying writer: what is written reaches
// it within the interval, or as soon as size bytes wait, and on Flush and
// Close. Each Write is kept whole: a line is never split between two
// writes to the underlying writer, and lines keep their order.
//
// Only the Writer's goroutine (and Flush and Close) write to the
// underlying writer, so Write never waits on it: while a write stalls (a
// disk that pauses for a moment), lines collect in memory, up to its limit;
// past that, Write waits for the stalled write to end. Nothing is dropped.
// A Writer is safe for concurrent use; its goroutine runs until Close.
//
// A process that dies without Close loses the lines not yet written: at
// most an interval's, unless the underlying writer was stalled.
type Writer struct {
	w           io.Writer
	interval    time.Duration
	size, limit int

	// wmu is held while writing to w: one flush at a time, in order.
	wmu sync.Mutex

	mu     sync.Mutex
	room   *sync.Cond // on mu: a flush has taken the lines waiting
	buf    []byte     // the lines waiting
	spare  []byte     // the other buffer, nil while a flush writes it
	err    error      // the first failed write, returned by Flush and Close
	closed bool

	kick chan struct{} // the buffer went from empty to not
	full chan struct{} // size bytes wait
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Writer over w that writes within interval and once size
// bytes wait, holding at most limit bytes (at least size) while a write
// stalls, and starts its goroutine.
func New(w io.Writer, interval time.Duration, size, limit int) *Writer {
	b := &Writer{
		w: w, interval: interval, size: size, limit: max(size, limit),
		buf:   make([]byte, 0, size),
		spare: make([]byte, 0, size),
		kick:  make(chan struct{}, 1),
		full:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	b.room = sync.NewCond(&b.mu)
	go b.run()
	return b
}

// Write buffers p. It returns an error only once the Writer is closed;
// failures of the underlying writer come back from Flush and Close, since a
// logger has no use for them line by line.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && len(b.buf) > 0 && len(b.buf)+len(p) > b.limit {
		b.room.Wait()
	}
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	if len(b.buf) == 0 {
		signal(b.kick)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.size {
		signal(b.full)
	}
	return len(p), nil
}

// signal wakes the goroutine, or leaves it the wake-up already pending.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Flush writes what waits, and returns the first error the underlying
// writer has given since the Writer was made.
func (b *Writer) Flush() error {
	b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close stops the goroutine and waits for it, then flushes. Writes after
// Close fail. It is idempotent, and returns what Flush does.
func (b *Writer) Close() error {
	b.once.Do(func() {
		close(b.quit)
		<-b.done
		b.mu.Lock()
		b.closed = true
		b.room.Broadcast()
		b.mu.Unlock()
	})
	return b.Flush()
}

// run writes an interval after the buffer stops being empty, or as soon as
// it fills.
func (b *Writer) run() {
	defer close(b.done)
	t := time.NewTimer(b.interval)
	t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-b.full:
		case <-b.kick:
			t.Reset(b.interval)
			select {
			case <-b.quit:
				t.Stop()
				return
			case <-b.full:
				t.Stop()
			case <-t.C:
			}
		}
		b.flush()
	}
}

// flush writes the lines waiting in one turn at the writer. Lines written
// meanwhile go to the spare buffer.
func (b *Writer) flush() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	p := b.buf
	b.buf, b.spare = b.spare, nil
	b.room.Broadcast()
	b.mu.Unlock()
	var err error
	if len(p) > 0 {
		_, err = b.w.Write(p)
	}
	if cap(p) > 4*b.size {
		p = make([]byte, 0, b.size) // grown during a stall: let it go
	}
	b.mu.Lock()
	b.spare = p[:0]
	if err != nil && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
}
