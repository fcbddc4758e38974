// Package memory implements Sluice's stores in process memory: the embedded
// default of a single instance, with nothing to set up and nothing kept
// across restarts.
package memory

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// DefaultMaxStreamBytes bounds the bytes a StreamLog keeps when
// StreamLogOptions.MaxBytes is zero.
const DefaultMaxStreamBytes = 64 << 20

// StreamLogOptions configure a StreamLog. The zero value of each field means
// its default.
type StreamLogOptions struct {
	// MaxBytes bounds the frames kept. Past it, the logs of finished streams
	// are dropped oldest first before their retention ends; the logs of
	// running streams are never dropped (each is bounded by its call's
	// output limit). 0 means DefaultMaxStreamBytes.
	MaxBytes int64
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// A StreamLog keeps stream logs in memory. It is safe for concurrent use.
// Expired logs are dropped as new ones are created; it runs no goroutine.
type StreamLog struct {
	opts StreamLogOptions

	mu       sync.Mutex
	streams  map[string]*memStream
	bytes    int64
	finished []string // finished streams, oldest first, for eviction
	swept    time.Time
}

type memStream struct {
	info store.StreamInfo
	// Frames are copied into a few blocks, not one allocation each, and
	// found by position: neither blocks nor positions hold pointers, so a
	// large log costs the garbage collector little. Bytes once written are
	// never changed, so readers read them without the lock.
	blocks  [][]byte
	frames  []frameAt
	size    int64
	expires time.Time
	// changed is closed, then replaced, when the stream changes while a
	// reader waits (waiting), to wake it.
	changed chan struct{}
	waiting bool
}

// frameAt locates a frame: bytes [start, end) of blocks[block].
type frameAt struct{ block, start, end uint32 }

// Frame blocks start small, for the many short streams, and double up to
// maxBlock.
const (
	minBlock = 1 << 10
	maxBlock = 32 << 10
)

var _ store.StreamLog = (*StreamLog)(nil)

// NewStreamLog returns an empty StreamLog.
func NewStreamLog(opts StreamLogOptions) *StreamLog {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxStreamBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &StreamLog{opts: opts, streams: map[string]*memStream{}}
}

// Create implements store.StreamLog.
func (l *StreamLog) Create(_ context.Context, id string, info store.StreamInfo, ttl time.Duration) error {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	if s := l.get(id, now); s != nil {
		return fmt.Errorf("stream %q exists", id)
	}
	info.Finished = false
	l.streams[id] = &memStream{info: info, expires: now.Add(ttl), changed: make(chan struct{})}
	return nil
}

// Append implements store.StreamLog.
func (l *StreamLog) Append(_ context.Context, id string, seq uint64, frame []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id, l.opts.Now())
	if s == nil {
		return store.ErrNotFound
	}
	if s.info.Finished {
		return fmt.Errorf("stream %q is finished", id)
	}
	if n := uint64(len(s.frames)); n > 0 && seq == n {
		// The same event again (a retried append) is accepted; other
		// bytes under its number are not.
		if f := s.frames[n-1]; string(s.blocks[f.block][f.start:f.end]) == string(frame) {
			return nil
		}
	}
	if want := uint64(len(s.frames)) + 1; seq != want {
		return fmt.Errorf("stream %q: event %d appended, want %d", id, seq, want)
	}
	n := len(s.blocks)
	if n == 0 || cap(s.blocks[n-1])-len(s.blocks[n-1]) < len(frame) {
		size := minBlock
		if n > 0 {
			size = min(2*cap(s.blocks[n-1]), maxBlock)
		}
		s.blocks = append(s.blocks, make([]byte, 0, max(size, len(frame))))
		n++
	}
	b := &s.blocks[n-1]
	at := len(*b)
	*b = append(*b, frame...)
	s.frames = append(s.frames, frameAt{uint32(n - 1), uint32(at), uint32(len(*b))})
	s.size += int64(len(frame))
	l.bytes += int64(len(frame))
	s.wake()
	l.evict()
	return nil
}

// Finish implements store.StreamLog.
func (l *StreamLog) Finish(_ context.Context, id string, retention time.Duration) error {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id, now)
	if s == nil {
		return store.ErrNotFound
	}
	if !s.info.Finished {
		s.info.Finished = true
		l.finished = append(l.finished, id)
	}
	s.expires = now.Add(retention)
	s.wake()
	l.evict()
	return nil
}

// Info implements store.StreamLog.
func (l *StreamLog) Info(_ context.Context, id string) (store.StreamInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id, l.opts.Now())
	if s == nil {
		return store.StreamInfo{}, store.ErrNotFound
	}
	return s.info, nil
}

// Touch implements store.StreamLog.
func (l *StreamLog) Touch(_ context.Context, id string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id, l.opts.Now())
	if s == nil {
		return store.ErrNotFound
	}
	s.info.Touched = time.UnixMilli(now.UnixMilli())
	return nil
}

// Read implements store.StreamLog.
func (l *StreamLog) Read(ctx context.Context, id string, after uint64) iter.Seq2[store.Frame, error] {
	return func(yield func(store.Frame, error) bool) {
		seen := after // frames[:seen] have been read (or skipped)
		for {
			if err := ctx.Err(); err != nil {
				yield(store.Frame{}, err)
				return
			}
			l.mu.Lock()
			s := l.get(id, l.opts.Now())
			if s == nil {
				l.mu.Unlock()
				yield(store.Frame{}, store.ErrNotFound)
				return
			}
			var frames [][]byte
			if n := uint64(len(s.frames)); seen < n {
				for _, f := range s.frames[seen:] {
					frames = append(frames, s.blocks[f.block][f.start:f.end:f.end])
				}
			}
			finished := s.info.Finished
			var changed chan struct{}
			if len(frames) == 0 && !finished {
				s.waiting = true
				changed = s.changed
			}
			l.mu.Unlock()
			// Frames are never modified once appended, so they are read
			// without the lock.
			for _, f := range frames {
				seen++
				if !yield(store.Frame{Seq: seen, Data: f}, nil) {
					return
				}
			}
			if finished {
				return
			}
			if changed == nil {
				continue // more may have come while yielding
			}
			select {
			case <-ctx.Done():
				yield(store.Frame{}, ctx.Err())
				return
			case <-changed:
			}
		}
	}
}

// get returns the live stream id, or nil. l.mu is held.
func (l *StreamLog) get(id string, now time.Time) *memStream {
	s := l.streams[id]
	if s == nil {
		return nil
	}
	if now.After(s.expires) {
		l.drop(id, s)
		return nil
	}
	return s
}

// sweep drops expired streams, at most once a second. l.mu is held.
func (l *StreamLog) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	for id, s := range l.streams {
		if now.After(s.expires) {
			l.drop(id, s)
		}
	}
	live := l.finished[:0]
	for _, id := range l.finished {
		if l.streams[id] != nil {
			live = append(live, id)
		}
	}
	clear(l.finished[len(live):])
	l.finished = live
}

// evict drops finished streams, oldest first, while the log is over its
// byte bound. l.mu is held.
func (l *StreamLog) evict() {
	for l.bytes > l.opts.MaxBytes && len(l.finished) > 0 {
		id := l.finished[0]
		l.finished = l.finished[1:]
		if s := l.streams[id]; s != nil && s.info.Finished {
			l.drop(id, s)
		}
	}
}

// drop removes stream id and wakes its readers, who find it gone. l.mu is
// held.
func (l *StreamLog) drop(id string, s *memStream) {
	delete(l.streams, id)
	l.bytes -= s.size
	s.wake()
}

func (s *memStream) wake() {
	if !s.waiting {
		return
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.waiting = false
}
