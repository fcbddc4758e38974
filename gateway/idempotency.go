package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

// IdempotencyKeyHeader carries a client's idempotency key; a repeat of a
// request with the same key and body gets the first answer again, marked
// with IdempotentReplayedHeader.
const (
	IdempotencyKeyHeader     = "Idempotency-Key"
	IdempotentReplayedHeader = "Idempotent-Replayed"
)

const (
	// idemLease is how long a running request holds its key: past it, an
	// instance that died holding the key no longer blocks repeats. It
	// outlasts the longest call (the total timeout plus the resume grace).
	idemLease = 30 * time.Minute
	// idemMaxBody bounds the answer kept for a key; a larger one is not
	// kept, and its key is released.
	idemMaxBody = 16 << 20
	// idemPoll is how often a repeat checks on the request it waits for.
	idemPoll = 50 * time.Millisecond
)

// An idemCall follows the first request of a key, for its handler to say
// that the answer is not one to replay (a stream that ended in an error).
type idemCall struct {
	failed atomic.Bool
}

type idemKey struct{}

// markFailed tells an idempotent request's middleware that its answer
// ended in an error: the key is released, so that a repeat runs again.
func markFailed(ctx context.Context) {
	if c, ok := ctx.Value(idemKey{}).(*idemCall); ok {
		c.failed.Store(true)
	}
}

// withIdempotency serves the Idempotency-Key protocol in front of a call
// handler: the first request with a key runs and its answer is kept; a
// repeat with the same body gets it again without calling the provider
// (waiting for it, or attaching to its live stream, while it runs); a
// repeat with another body is idempotency_conflict. Keys are scoped to the
// credential the request carries.
func (g *Gateway) withIdempotency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyKeyHeader)
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !validIdemKey(key) {
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: IdempotencyKeyHeader,
				Message: "Idempotency-Key must be 1 to 255 printable ASCII characters."})
			return
		}
		body, err := g.readBody(w, r)
		if err != nil {
			g.refused(r, err)
			writeErrorFor(w, r, g.clientError(r, err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h := sha256.New()
		io.WriteString(h, r.Method+" "+r.URL.Path+"\x00")
		h.Write(body)
		hash := hex.EncodeToString(h.Sum(nil))
		scoped := ownerOf(r) + ":" + key
		g.idempotent(w, r, next, scoped, hash)
	})
}

// idempotent runs or replays the request of key scoped.
func (g *Gateway) idempotent(w http.ResponseWriter, r *http.Request, next http.Handler, scoped, hash string) {
	st := g.p.Idempotency()
	ttl := g.opts.IdempotencyTTL
	ctx := r.Context()
	delay := idemPoll
	for {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		rec, claimed, err := st.Claim(sctx, scoped, hash, idemLease, ttl)
		cancel()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			e := &sluice.Error{Code: sluice.CodeOverloaded, RetryAfter: time.Second,
				Message: "Idempotency keys cannot be checked right now; try again.", Err: err}
			g.logError(r, "idempotency store unavailable", e)
			writeErrorFor(w, r, e)
			return
		case claimed:
			g.runIdempotent(w, r, next, scoped)
			return
		case rec.Hash != hash:
			e := &sluice.Error{Code: sluice.CodeIdempotencyConflict, Param: IdempotencyKeyHeader,
				Message: "This Idempotency-Key was used with a different request."}
			g.refused(r, e)
			writeErrorFor(w, r, e)
			return
		case rec.Done:
			g.p.Replayed(r.Context(), &sluice.Request{ID: requestID(r.Context()), Caller: g.callerOf(r, sluice.Caller{})}, rec.Status)
			replay(w, rec)
			return
		case rec.StreamID != "" && g.resumable():
			// The first request is streaming: follow its stream from the
			// start, as a resumed stream.
			w.Header().Set(IdempotentReplayedHeader, "true")
			g.p.Replayed(r.Context(), &sluice.Request{ID: requestID(r.Context()), Caller: g.callerOf(r, sluice.Caller{})}, http.StatusOK)
			g.serveStream(w, r, rec.StreamID, 0)
			return
		}
		// The first request is running: wait for it.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// runIdempotent runs the first request of a key and keeps its answer, or
// releases the key if the answer is not one to replay.
func (g *Gateway) runIdempotent(w http.ResponseWriter, r *http.Request, next http.Handler, scoped string) {
	st := g.p.Idempotency()
	call := &idemCall{}
	rw := &recorder{ResponseWriter: w, onHeader: func(h http.Header) {
		if id := h.Get(StreamIDHeader); id != "" {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
			defer cancel()
			if err := st.SetStream(sctx, scoped, id); err != nil {
				g.logStoreError(r, "idempotency record", err)
			}
		}
	}}
	release := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
		defer cancel()
		if err := st.Release(sctx, scoped); err != nil {
			g.logStoreError(r, "idempotency record", err)
		}
	}
	done := false
	defer func() {
		if !done {
			release() // the handler panicked: repeats must not wait for the lease
		}
	}()
	next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), idemKey{}, call)))
	done = true

	if !replayable(rw.status) || call.failed.Load() || rw.overflow || rw.err != nil {
		release()
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	rec := store.IdemRecord{Status: rw.status, ContentType: rw.Header().Get("Content-Type"), Body: rw.body.Bytes()}
	if err := st.Complete(sctx, scoped, rec, g.opts.IdempotencyTTL); err != nil {
		g.logStoreError(r, "idempotency record", err)
		release() // a repeat runs anew rather than waiting for the lease
	}
}

// replayable reports whether an answer with status is kept for repeats:
// answers and the client's own mistakes are; failures a retry may cure
// (timeouts, rate limits, overload, upstream failures) are not.
func replayable(status int) bool {
	switch {
	case status == 0, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return false
	case status >= 500:
		return false
	}
	return true
}

// replay writes a kept answer.
func replay(w http.ResponseWriter, rec store.IdemRecord) {
	h := w.Header()
	if rec.ContentType != "" {
		h.Set("Content-Type", rec.ContentType)
	}
	h.Set(IdempotentReplayedHeader, "true")
	h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	w.WriteHeader(rec.Status)
	w.Write(rec.Body)
}

// validIdemKey reports whether k is 1 to 255 printable ASCII characters.
func validIdemKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// A recorder passes an answer through to the client and keeps a copy of
// it, up to idemMaxBody.
type recorder struct {
	http.ResponseWriter
	onHeader func(http.Header)
	status   int
	body     bytes.Buffer
	overflow bool
	err      error // the first write the client did not take
}

func (rw *recorder) WriteHeader(status int) {
	if rw.status == 0 {
		rw.status = status
		if rw.onHeader != nil {
			rw.onHeader(rw.Header())
		}
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if !rw.overflow {
		if rw.body.Len()+len(b) > idemMaxBody {
			rw.overflow = true
			rw.body = bytes.Buffer{}
		} else {
			rw.body.Write(b)
		}
	}
	n, err := rw.ResponseWriter.Write(b)
	if err != nil && rw.err == nil {
		rw.err = err
	}
	return n, err
}

// Flush and Unwrap let http.ResponseController reach the connection.
func (rw *recorder) Flush() {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
