package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Defaults of LedgerWriterOptions.
const (
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultMaxBatch      = 512
	DefaultMaxPending    = 100_000
	DefaultWriteTimeout  = 10 * time.Second
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
)

// LedgerWriterOptions configure a LedgerWriter. The zero value of each
// field means its default.
type LedgerWriterOptions struct {
	// FlushInterval is how long a row may wait before it is written, when
	// fewer than MaxBatch rows wait. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxBatch is the most rows one Ledger.Write gets; as soon as that
	// many wait, they are written. Default DefaultMaxBatch.
	MaxBatch int
	// MaxPending bounds the rows kept waiting while the ledger fails (a
	// batch being written comes on top). Past it, the oldest rows are
	// dropped and reported to OnDrop. Default DefaultMaxPending.
	MaxPending int
	// WriteTimeout bounds one Ledger.Write. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed write before
	// the next try: it starts at MinBackoff and doubles on each failure in
	// a row, up to MaxBackoff, with jitter. Defaults DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnError, if set, is told of each failed write and of the number of
	// rows it held, which are kept and written again later. It may be
	// called from several goroutines at once, and should return quickly.
	OnError func(err error, rows int)
	// OnDrop, if set, is told of rows dropped, never to be written: the
	// oldest ones past MaxPending, those Close could not write, and those
	// added after Close. It may be called from several goroutines at once,
	// and should return quickly.
	OnDrop func(rows int)
}

// A LedgerWriter writes ledger rows in batches, off the request path: Add
// queues a row and returns at once, and a goroutine of the writer's own
// writes what is queued every FlushInterval, or as soon as MaxBatch rows
// wait. A failed write is tried again with backoff, its rows kept (up to
// MaxPending rows; past it the oldest are dropped). Close writes what is
// left, so that nothing is lost on a clean shutdown.
//
// The ledger may see a row twice if a Write fails after its rows were
// stored (a lost commit acknowledgement) and is tried again.
//
// A LedgerWriter is safe for concurrent use. Create it with NewLedgerWriter
// and end it with Close.
type LedgerWriter struct {
	ledger Ledger
	opts   LedgerWriterOptions

	mu sync.Mutex
	// The rows waiting are buf[head:]: rows are appended at the end and
	// taken, or dropped, from the head, and the space before head is
	// reused once the queue empties or buf fills.
	buf     []LedgerRow
	head    int
	dropped int // not yet reported to OnDrop
	closed  bool
	// abandoned is set when Close has dropped the rows it could not
	// write: a batch a Flush still writes is dropped if its write fails.
	abandoned bool

	// sem is held by whoever writes (the loop, Flush, Close): one write
	// at a time, so that rows put back after a failure keep their place
	// and Flush knows when the rows it waits for are written.
	sem   chan struct{}
	batch []LedgerRow // the batch being written; held with sem

	wake   chan struct{} // a full batch waits
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the loop ends
	cancel context.CancelFunc

	closeOnce sync.Once
	closeDone chan struct{}
	closeErr  error
}

// NewLedgerWriter returns a LedgerWriter writing to l, and starts its
// goroutine; Close stops it. It panics if l is nil.
func NewLedgerWriter(l Ledger, opts LedgerWriterOptions) *LedgerWriter {
	if l == nil {
		panic("store: NewLedgerWriter with a nil Ledger")
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	ctx, cancel := context.WithCancel(context.Background())
	w := &LedgerWriter{
		ledger:    l,
		opts:      opts,
		buf:       make([]LedgerRow, 0, min(opts.MaxBatch, opts.MaxPending)),
		sem:       make(chan struct{}, 1),
		batch:     make([]LedgerRow, 0, opts.MaxBatch),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		cancel:    cancel,
		closeDone: make(chan struct{}),
	}
	go w.run(ctx)
	return w
}

// Add queues row to be written. It never blocks on the ledger: it copies the
// row into the queue and returns. After Close, the row is dropped.
func (w *LedgerWriter) Add(row LedgerRow) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		if w.opts.OnDrop != nil {
			w.opts.OnDrop(1)
		}
		return
	}
	if len(w.buf)-w.head >= w.opts.MaxPending {
		w.buf[w.head] = LedgerRow{}
		w.head++
		w.dropped++
	}
	if len(w.buf) == cap(w.buf) && w.head > 0 && w.head >= len(w.buf)/2 {
		// Reuse the space of the rows taken rather than grow.
		n := copy(w.buf, w.buf[w.head:])
		clear(w.buf[n:])
		w.buf, w.head = w.buf[:n], 0
	}
	w.buf = append(w.buf, row)
	full := len(w.buf)-w.head >= w.opts.MaxBatch
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default: // the loop is already told
		}
	}
}

// Flush writes the rows added before it was called, and returns once they
// are written, or with the first error of a write (the rows are kept and
// tried again later) or of ctx.
func (w *LedgerWriter) Flush(ctx context.Context) error {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("flush ledger: %w", ctx.Err())
	}
	defer func() { <-w.sem }()
	// Rows added since the call was made may go too; the count bounds the
	// work while Adds go on.
	left := w.Pending()
	for left > 0 {
		n, err := w.writeBatch(ctx)
		if err != nil {
			return fmt.Errorf("flush ledger: %w", err)
		}
		if n == 0 {
			break
		}
		left -= n
	}
	w.reportDrops()
	return nil
}

// Close stops the writer and writes the rows left, trying again with
// backoff until they are written or ctx ends. Rows it could not write are
// dropped (and reported to OnDrop), and Close then returns an error saying
// how many. Close waits for the writer's goroutine; it is idempotent, and
// later calls wait for the first and return its result.
func (w *LedgerWriter) Close(ctx context.Context) error {
	first := false
	w.closeOnce.Do(func() { first = true })
	if first {
		w.closeErr = w.close(ctx)
		close(w.closeDone)
		return w.closeErr
	}
	select {
	case <-w.closeDone:
		return w.closeErr
	case <-ctx.Done():
		return fmt.Errorf("close ledger writer: %w", ctx.Err())
	}
}

func (w *LedgerWriter) close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel() // end the write in progress
		<-w.done
	}
	w.cancel()

	var lastErr error
	select {
	case w.sem <- struct{}{}: // the loop has ended; a Flush may still hold it
		failures := 0
		for w.Pending() > 0 {
			_, err := w.writeBatch(ctx)
			if err == nil {
				failures = 0
				continue
			}
			lastErr = err
			failures++
			if !sleep(ctx, nil, w.backoff(failures)) {
				break
			}
		}
		<-w.sem
	case <-ctx.Done():
	}
	w.reportDrops()
	w.mu.Lock()
	lost := len(w.buf) - w.head
	w.buf, w.head, w.abandoned = nil, 0, true
	w.mu.Unlock()
	if lost == 0 {
		return nil
	}
	if w.opts.OnDrop != nil {
		w.opts.OnDrop(lost)
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return fmt.Errorf("close ledger writer: %d rows not written: %w", lost, lastErr)
}

// run is the writer's goroutine: it writes on a timer and when a batch
// fills, until quit is closed. ctx ends a write in progress when Close
// gives up waiting for it.
func (w *LedgerWriter) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	failures := 0
	for {
		// On a tick, one batch goes, full or not; then, and when woken,
		// full batches only: a busy writer sends full batches, an idle
		// one what it has once per interval.
		least := w.opts.MaxBatch
		select {
		case <-w.quit:
			return
		case <-tick.C:
			least = 1
		case <-w.wake:
		}
		for w.Pending() >= least {
			select {
			case w.sem <- struct{}{}:
			case <-w.quit:
				return
			}
			_, err := w.writeBatch(ctx)
			<-w.sem
			w.reportDrops()
			if err != nil {
				failures++
				if !sleep(ctx, w.quit, w.backoff(failures)) {
					return
				}
				least = 1 // the rows put back
				continue
			}
			failures = 0
			least = w.opts.MaxBatch
		}
	}
}

// writeBatch writes up to MaxBatch of the oldest rows waiting and returns
// how many it wrote. If the write fails, the rows go back to the head of
// the queue. The caller holds sem.
func (w *LedgerWriter) writeBatch(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	w.mu.Lock()
	n := min(len(w.buf)-w.head, w.opts.MaxBatch)
	w.batch = append(w.batch[:0], w.buf[w.head:w.head+n]...)
	clear(w.buf[w.head : w.head+n])
	w.head += n
	if w.head == len(w.buf) {
		w.buf, w.head = w.buf[:0], 0
	}
	w.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	wctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	err := w.ledger.Write(wctx, w.batch)
	cancel()
	if err == nil {
		clear(w.batch)
		return n, nil
	}
	if ctx.Err() == nil && w.opts.OnError != nil {
		w.opts.OnError(err, n)
	}
	w.putBack()
	return 0, err
}

// putBack returns the batch to the head of the queue, dropping the oldest
// rows if the queue is then over its bound. The caller holds sem.
func (w *LedgerWriter) putBack() {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.batch)
	if w.abandoned {
		// Close has given up on the rows waiting: these go too.
		w.dropped += n
	} else if w.head >= n {
		w.head -= n
		copy(w.buf[w.head:], w.batch)
	} else {
		buf := make([]LedgerRow, 0, max(cap(w.buf), n+len(w.buf)-w.head))
		buf = append(buf, w.batch...)
		w.buf, w.head = append(buf, w.buf[w.head:]...), 0
	}
	clear(w.batch)
	if over := len(w.buf) - w.head - w.opts.MaxPending; over > 0 {
		clear(w.buf[w.head : w.head+over])
		w.head += over
		w.dropped += over
	}
}

// Pending returns the number of rows waiting to be written, not counting a
// batch being written.
func (w *LedgerWriter) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf) - w.head
}

// reportDrops tells OnDrop of the rows dropped since it was last told.
func (w *LedgerWriter) reportDrops() {
	w.mu.Lock()
	n := w.dropped
	w.dropped = 0
	w.mu.Unlock()
	if n > 0 && w.opts.OnDrop != nil {
		w.opts.OnDrop(n)
	}
}

// backoff returns the wait after the given number of failures in a row:
// MinBackoff doubled for each failure after the first, up to MaxBackoff,
// less up to half of it at random, so that instances failing together do
// not retry together.
func (w *LedgerWriter) backoff(failures int) time.Duration {
	d := w.opts.MinBackoff
	for i := 1; i < failures && d < w.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.opts.MaxBackoff)
	return d - rand.N(d/2+1)
}

// sleep waits d and reports whether it did, or returns false early when ctx
// ends or quit is closed (a nil quit never is).
func sleep(ctx context.Context, quit <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-quit:
		return false
	}
}
