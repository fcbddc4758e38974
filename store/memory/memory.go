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
const DefaultMaxStreamBytes = 256 << 20

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
	info    store.StreamInfo
	frames  [][]byte
	size    int64
	expires time.Time
	// changed is closed, then replaced, whenever the stream changes, to
	// wake its readers.
	changed chan struct{}
}

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
	if want := uint64(len(s.frames)) + 1; seq != want {
		return fmt.Errorf("stream %q: event %d appended, want %d", id, seq, want)
	}
	s.frames = append(s.frames, append([]byte(nil), frame...))
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
		next := after + 1
		for {
			l.mu.Lock()
			s := l.get(id, l.opts.Now())
			if s == nil {
				l.mu.Unlock()
				yield(store.Frame{}, store.ErrNotFound)
				return
			}
			var frames [][]byte
			if next <= uint64(len(s.frames)) {
				frames = s.frames[next-1:]
			}
			finished, changed := s.info.Finished, s.changed
			l.mu.Unlock()
			// Frames are never modified once appended, so they are read
			// without the lock.
			for _, f := range frames {
				if !yield(store.Frame{Seq: next, Data: f}, nil) {
					return
				}
				next++
			}
			if finished {
				return
			}
			if len(frames) > 0 {
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
	close(s.changed)
	s.changed = make(chan struct{})
}
