package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/store"
)

// StreamIDHeader is the response header that carries a stream's id, for
// resuming it with GET /v1/streams/{id}.
const StreamIDHeader = "Sluice-Stream-Id"

// storeTimeout bounds a call to the stream log off the per-event path.
const storeTimeout = 5 * time.Second

// drainRetention is how long the log of a finished stream is kept with
// resume_retention off: long enough for a reader still attached to read
// the end.
const drainRetention = 10 * time.Second

// errNotResumed is the cause with which the upstream call of a stream whose
// client left and did not come back within the grace period is cancelled.
var errNotResumed = errors.New("the client left and did not resume within the grace period")

// A resumable is the log side of one resumable stream: it creates the log
// when the stream starts, appends every event the client is sent, keeps
// the upstream call going for the grace period after the client leaves,
// and finishes the log at the end.
type resumable struct {
	g       *Gateway
	r       *http.Request
	log     store.StreamLog
	id      string
	dialect string
	cancel  context.CancelCauseFunc // cancels the upstream call

	created atomic.Bool // the log exists; set at the stream's start
	broken  atomic.Bool // an append failed: the log is incomplete, append no more
	gone    atomic.Bool // the client left

	goneOnce sync.Once
	mu       sync.Mutex // guards done and the watcher's start
	done     bool
	watcher  sync.WaitGroup
	stopped  chan struct{} // closed when the stream ends
}

// newResumable returns the log side of a stream in dialect d, or nil when
// streams are not logged.
func (g *Gateway) newResumable(r *http.Request, d *dialect, cancel context.CancelCauseFunc) *resumable {
	if !g.resumable() {
		return nil
	}
	return &resumable{
		g: g, r: r, log: g.p.StreamLog(), id: "str_" + newID(16), dialect: d.name,
		cancel: cancel, stopped: make(chan struct{}),
	}
}

// resumable reports whether streams are logged.
func (g *Gateway) resumable() bool { return g.opts.ResumeGrace > 0 || g.opts.ResumeRetention > 0 }

// start creates the log and names the stream in h. It returns the function
// that appends each event, or nil if the log could not be created (the
// stream then goes on unlogged).
func (rs *resumable) start(h http.Header) func(seq uint64, frame []byte) {
	ctx := context.WithoutCancel(rs.r.Context())
	// A log whose writer dies expires after the longest a call may run.
	ttl := max(rs.g.opts.ResumeGrace, 0) + max(rs.g.opts.ResumeRetention, 0) + time.Hour
	cctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := rs.log.Create(cctx, rs.id, store.StreamInfo{Dialect: rs.dialect, Owner: ownerOf(rs.r)}, ttl)
	cancel()
	if err != nil {
		rs.g.logStoreError(rs.r, "stream log unavailable; the stream is not resumable", err)
		return nil
	}
	rs.created.Store(true)
	h.Set(StreamIDHeader, rs.id)
	return func(seq uint64, frame []byte) {
		if rs.broken.Load() {
			return
		}
		if err := rs.log.Append(ctx, rs.id, seq, frame); err != nil {
			rs.broken.Store(true)
			rs.g.logStoreError(rs.r, "stream log append failed; the stream is no longer resumable", err)
			if rs.gone.Load() {
				rs.cancel(errNotResumed) // nobody can read the rest
			}
		}
	}
}

// clientGone is called when the client disconnected or stopped reading.
// With a grace period, the upstream call goes on until it has passed with no
// reader attached; without one, it is cancelled now.
func (rs *resumable) clientGone() {
	rs.goneOnce.Do(func() {
		rs.gone.Store(true)
		if rs.g.opts.ResumeGrace <= 0 || !rs.created.Load() || rs.broken.Load() {
			rs.cancel(errNotResumed)
			return
		}
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if rs.done {
			return
		}
		rs.watcher.Add(1)
		go func() {
			defer rs.watcher.Done()
			rs.watch(time.Now())
		}()
	})
}

// watch cancels the upstream call once the grace period has passed since
// the client left, or since a resuming reader last showed itself (readers
// do every quarter of the grace, see handleResume), whichever is later; so
// the call ends between three quarters of and one grace period after the
// last reader left.
func (rs *resumable) watch(goneAt time.Time) {
	grace := rs.g.opts.ResumeGrace
	t := time.NewTimer(grace)
	defer t.Stop()
	for {
		select {
		case <-rs.stopped:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(rs.r.Context()), 5*time.Second)
		info, err := rs.log.Info(ctx, rs.id)
		cancel()
		if err == nil && info.Touched.After(goneAt) && !rs.broken.Load() {
			if idle := time.Since(info.Touched); idle < grace {
				t.Reset(grace - idle)
				continue
			}
		}
		rs.cancel(errNotResumed)
		return
	}
}

// finish ends the log (the stream's last event is in it) and stops the
// watcher. The log stays readable for the retention period; with retention
// off, for drainRetention, so that a reader still attached gets the end. A
// log that missed events is dropped at once: its readers get an error
// rather than a stream that ends as if complete.
func (rs *resumable) finish() {
	rs.mu.Lock()
	rs.done = true
	rs.mu.Unlock()
	close(rs.stopped)
	rs.watcher.Wait()
	if !rs.created.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rs.r.Context()), 5*time.Second)
	defer cancel()
	retention := rs.g.opts.ResumeRetention
	if retention <= 0 {
		retention = drainRetention
	}
	if rs.broken.Load() {
		retention = 0
	}
	if err := rs.log.Finish(ctx, rs.id, retention); err != nil {
		rs.g.logStoreError(rs.r, "stream log finish failed", err)
	}
}

// ownerOf identifies who sent r, for checking that only the creator of a
// stream resumes it: a hash of the credential the request carries (a
// bearer token or x-api-key), so the log never holds the key itself.
func ownerOf(r *http.Request) string {
	// With keys required, the owner is the authenticated key (which keeps
	// it across a rotation); without, whatever credential the request
	// carries, read as keys are.
	cred := "cred:" + guard.KeyFromHeader(r.Header)
	if c, ok := r.Context().Value(callerKey{}).(sluice.Caller); ok && c.Key != "" {
		cred = "key:" + c.Key
	}
	sum := sha256.Sum256([]byte("sluice stream owner\x00" + cred))
	return hex.EncodeToString(sum[:16])
}

// handleResume serves GET /v1/streams/{id}: the events of a stream after the
// one named by Last-Event-ID (all of them without it), in the dialect the
// stream was created in, then its live tail until it ends.
func (g *Gateway) handleResume() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		log := g.p.StreamLog()
		info, err := log.Info(r.Context(), id)
		if err == nil && info.Owner != ownerOf(r) {
			err = store.ErrNotFound // no sign to others that the stream exists
		}
		if err != nil {
			e := &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such stream, or it has expired.", Err: err}
			if !errors.Is(err, store.ErrNotFound) {
				e = &sluice.Error{Code: sluice.CodeOverloaded, Message: "Streams cannot be resumed right now; try again.", Err: err}
				g.logError(r, "stream log unavailable", e)
			}
			writeErrorFor(w, r, e)
			return
		}
		d := dialectNamed(info.Dialect)
		var after uint64
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			after, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				d.writeError(w, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "Last-Event-ID must be the id of an event of this stream.", Err: err})
				return
			}
		}
		g.serveStream(w, r, id, after)
	})
}

// dialectNamed returns the dialect a stream log names.
func dialectNamed(name string) *dialect {
	if name == anthropicDialect.name {
		return &anthropicDialect
	}
	return &openaiDialect
}

// serveStream writes the events of stream id after sequence number after,
// then its live tail until it ends, in the dialect the stream was created
// in.
func (g *Gateway) serveStream(w http.ResponseWriter, r *http.Request, id string, after uint64) {
	log := g.p.StreamLog()
	d := &openaiDialect
	if info, err := log.Info(r.Context(), id); err == nil {
		d = dialectNamed(info.Dialect)
	}
	ctx, stop := g.callContext(r)
	defer stop()
	touch := func() {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		log.Touch(tctx, id, time.Now())
	}
	touch()
	// While attached, show the stream's writer that someone is
	// reading, so that it keeps the upstream call going.
	stopTouch := g.every(g.opts.ResumeGrace/4, touch)
	defer stopTouch()

	w.Header().Set(StreamIDHeader, id)
	gate := &commitGate{w: w}
	wt := &writeTimer{timeout: g.opts.StreamWriteTimeout}
	gate.start(wt)
	stopHeartbeat := g.heartbeat(gate, wt)
	defer stopHeartbeat()
	for f, err := range log.Read(ctx, id, after) {
		if err != nil {
			if ctx.Err() != nil && !g.aborted() {
				return // the client left
			}
			e := &sluice.Error{Code: sluice.CodeStreamInterrupted, Message: "The stream's log ended before the stream did. Try again.", Err: err}
			if g.aborted() {
				e = shutdownError
			}
			g.logError(r, "resumed stream ended early", e)
			wt.extend(time.Now())
			d.encoder(gate.sw, "", "", 0, streamOptions{}).Error(sluice.WithRequestID(e, requestID(r.Context())))
			return
		}
		now := time.Now()
		wt.extend(now)
		if gate.sw.WriteRaw(f.Data) != nil {
			return
		}
		wt.last.Store(now.UnixNano())
	}
}

// every calls f every interval from a goroutine until stop is called; stop
// waits for it. A non-positive interval calls nothing.
func (g *Gateway) every(interval time.Duration, f func()) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (g *Gateway) logStoreError(r *http.Request, msg string, err error) {
	g.logger.LogAttrs(r.Context(), slog.LevelWarn, msg,
		slog.String("request_id", requestID(r.Context())), slog.Any("error", err))
}
