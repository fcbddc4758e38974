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
// it within the interval, at once when the buffer would pass its size, and
// on Flush and Close. Each Write is kept whole: a line is never split
// between two writes to the underlying writer, and lines keep their order.
// The underlying writer is called with no lock held that Write needs, so a
// slow write (a disk that stalls) holds up loggers only once a second
// buffer has filled behind it. A Writer is safe for concurrent use; its
// flushing goroutine runs until Close.
//
// A process that dies without Close loses at most an interval's lines.
type Writer struct {
	w        io.Writer
	interval time.Duration
	size     int

	// wmu is held while writing to w: one flush at a time, in order.
	wmu sync.Mutex

	mu     sync.Mutex
	buf    []byte // the lines waiting
	spare  []byte // the other buffer, nil while a flush writes it
	err    error  // the first failed write, returned by Flush and Close
	closed bool

	kick chan struct{} // the buffer went from empty to not
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Writer over w that flushes within interval and once size
// bytes wait, and starts its goroutine. A line longer than size is written
// through at once, after what waits.
func New(w io.Writer, interval time.Duration, size int) *Writer {
	b := &Writer{
		w: w, interval: interval, size: size,
		buf:   make([]byte, 0, size),
		spare: make([]byte, 0, size),
		kick:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.run()
	return b
}

// Write buffers p. It returns an error only once the Writer is closed;
// failures of the underlying writer come back from Flush and Close, since a
// logger has no use for them line by line.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf)+len(p) > b.size {
		if b.closed {
			b.mu.Unlock()
			return 0, io.ErrClosedPipe
		}
		b.mu.Unlock()
		if len(p) > b.size {
			if !b.flush(p) {
				return 0, io.ErrClosedPipe
			}
			return len(p), nil
		}
		b.flush(nil)
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	if len(b.buf) == 0 {
		select {
		case b.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes what waits, and returns the first error the underlying
// writer has given since the Writer was made.
func (b *Writer) Flush() error {
	b.flush(nil)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close flushes, stops the goroutine and waits for it. Writes after Close
// fail. It is idempotent, and returns what Flush does.
func (b *Writer) Close() error {
	b.once.Do(func() {
		close(b.quit)
		<-b.done
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
	})
	return b.Flush()
}

// run flushes an interval after the buffer stops being empty.
func (b *Writer) run() {
	defer close(b.done)
	t := time.NewTimer(b.interval)
	t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-b.kick:
		}
		t.Reset(b.interval)
		select {
		case <-b.quit:
			t.Stop()
			return
		case <-t.C:
		}
		b.flush(nil)
	}
}

// flush writes the lines waiting, then extra, in one turn at the writer,
// and reports whether extra was taken: not once the Writer is closed.
// Lines written meanwhile go to the spare buffer.
func (b *Writer) flush(extra []byte) bool {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	p := b.buf
	b.buf, b.spare = b.spare, nil
	if b.closed {
		extra = nil
	}
	taken := extra != nil
	b.mu.Unlock()
	var err error
	if len(p) > 0 {
		_, err = b.w.Write(p)
	}
	if len(extra) > 0 {
		if _, xerr := b.w.Write(extra); err == nil {
			err = xerr
		}
	}
	b.mu.Lock()
	b.spare = p[:0]
	if err != nil && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	return taken
}
