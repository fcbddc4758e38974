// Package sse reads and writes Server-Sent Events as the WHATWG HTML standard
// defines them (https://html.spec.whatwg.org/multipage/server-sent-events.html):
// fields data, event, id and retry, comment lines, multi-line data, and LF, CR or
// CRLF line endings.
//
// The Writer flushes each event to the client as it is written, through
// http.ResponseController, so no event waits in a buffer.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An Event is one dispatched server-sent event.
type Event struct {
	// Type is the event field; empty means the default type "message".
	Type string
	// Data is the event's data, lines joined by "\n". It is only valid until the
	// next call to Reader.Next.
	Data []byte
	// ID is the last event id seen by the reader (it persists across events, as
	// the spec's "last event ID buffer" does).
	ID string
	// Retry is the reconnection time the server asked for, or zero.
	Retry time.Duration
}

// ErrLineTooLong is returned by Reader.Next when a line, or the data of one
// event, exceeds the reader's limit. The Reader is unusable after it.
var ErrLineTooLong = errors.New("sse: line or event too long")

// A Reader parses an event stream. It is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	max     int
	data    []byte
	typ     []byte
	lastID  string
	retry   time.Duration
	started bool
	hasData bool
	line    []byte
	prevCR  bool
}

// DefaultMaxLine is the longest line, and the most data of one event, that a
// Reader accepts unless told otherwise.
const DefaultMaxLine = 8 << 20

// maxRetry caps the reconnection time a stream may ask for.
const maxRetry = 24 * time.Hour

// NewReader returns a Reader of r that accepts lines up to DefaultMaxLine.
func NewReader(r io.Reader) *Reader {
	// A 4 KiB buffer holds several typical events; longer lines are
	// gathered across reads. Every open upstream stream has one.
	return &Reader{br: bufio.NewReaderSize(r, 4<<10), max: DefaultMaxLine}
}

// SetMaxLine sets the longest line accepted, which is also the most data one
// event may carry; more makes Next return ErrLineTooLong.
func (r *Reader) SetMaxLine(n int) { r.max = n }

// readLine returns the next line without its terminator (LF, CR or CRLF). The
// slice is valid until the next call. The stream ending inside a line is
// io.ErrUnexpectedEOF.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				if len(r.line) > 0 || (err != io.EOF) {
					if err == io.EOF {
						return nil, io.ErrUnexpectedEOF
					}
					return nil, err
				}
				return nil, io.EOF
			}
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		if r.prevCR {
			// A CR ended the previous line; a LF right after it belongs to it.
			r.prevCR = false
			if buf[0] == '\n' {
				r.br.Discard(1)
				continue
			}
		}
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			r.line = append(r.line, buf...)
			r.br.Discard(len(buf))
			if len(r.line) > r.max {
				return nil, ErrLineTooLong
			}
			continue
		}
		r.line = append(r.line, buf[:i]...)
		r.prevCR = buf[i] == '\r'
		r.br.Discard(i + 1)
		if len(r.line) > r.max {
			return nil, ErrLineTooLong
		}
		return r.line, nil
	}
}

// Next returns the next event. It returns io.EOF at the end of the stream; an
// event not terminated by a blank line before the end is discarded, as the
// spec says, and reported as io.ErrUnexpectedEOF.
func (r *Reader) Next() (Event, error) {
	r.data = r.data[:0]
	r.typ = r.typ[:0]
	r.hasData = false
	pending := false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && pending {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			if !r.hasData {
				// Nothing to dispatch: reset the type buffer, keep reading.
				r.typ = r.typ[:0]
				pending = false
				continue
			}
			return Event{Type: string(r.typ), Data: r.data, ID: r.lastID, Retry: r.retry}, nil
		}
		if line[0] == ':' {
			continue // comment
		}
		pending = true
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if len(r.data)+len(value)+1 > r.max {
				return Event{}, ErrLineTooLong
			}
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			r.typ = append(r.typ[:0], value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 63); err == nil {
				r.retry = time.Duration(min(ms, uint64(maxRetry/time.Millisecond))) * time.Millisecond
			}
		}
	}
}

// LastEventID returns the last event id the stream set.
func (r *Reader) LastEventID() string { return r.lastID }

// A Writer writes events to an HTTP response and flushes each one. It is safe
// for concurrent use (a heartbeat may write beside the stream's writer); each
// call writes whole events.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	rc  *http.ResponseController
	buf []byte
	// With a log (see SetLog): the last event's number, and the first
	// failed write to the client, after which the client is written no more.
	log func(seq uint64, frame []byte)
	seq uint64
	err error
}

// SetLog makes w number its events (id: 1, 2, ...) and hand each one, in its
// wire form, to log before sending it, so that a client that reconnects can
// be sent what it missed. log is called with w's lock held; frame is valid
// only during the call.
//
// With a log, a failed write to the client does not fail the call: every
// event still reaches the log, the client is written no more, and Err
// reports the failure. Set the log before the first event.
func (w *Writer) SetLog(log func(seq uint64, frame []byte)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = log
}

// Err returns the error of the first failed write to the client of a Writer
// with a log, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// NewWriter returns a Writer on w. It does not write headers: the caller sets
// Content-Type (see SetHeaders) and the status first.
func NewWriter(w http.ResponseWriter) *Writer {
	return &Writer{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 1024)}
}

// SetHeaders sets the headers of an event-stream response.
func SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
}

// AppendEvent appends the wire form of an event to b: an optional id and event
// line, the data split into data lines at each line break, and the blank line
// that dispatches it. Line breaks (and NUL, in the id) are dropped from id and
// typ, so neither can inject a field.
func AppendEvent(b []byte, id, typ string, data []byte) []byte {
	if id != "" {
		b = append(b, "id: "...)
		b = appendField(b, id, "\r\n\x00")
		b = append(b, '\n')
	}
	if typ != "" {
		b = append(b, "event: "...)
		b = appendField(b, typ, "\r\n")
		b = append(b, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			b = append(b, '\n')
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, '\n')
}

// appendField appends s without the bytes in drop.
func appendField(b []byte, s, drop string) []byte {
	for {
		i := strings.IndexAny(s, drop)
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		s = s[i+1:]
	}
}

// WriteEvent writes one event and flushes it.
func (w *Writer) WriteEvent(typ string, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log == nil {
		w.buf = AppendEvent(w.buf[:0], "", typ, data)
		return w.writeFlush()
	}
	w.seq++
	w.buf = append(w.buf[:0], "id: "...)
	w.buf = strconv.AppendUint(w.buf, w.seq, 10)
	w.buf = append(w.buf, '\n')
	w.buf = AppendEvent(w.buf, "", typ, data)
	w.log(w.seq, w.buf)
	if w.err == nil {
		w.err = w.writeFlush()
	}
	return nil
}

// WriteEventID writes one event with an id and flushes it.
func (w *Writer) WriteEventID(id, typ string, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = AppendEvent(w.buf[:0], id, typ, data)
	return w.writeFlush()
}

// WriteComment writes a comment line (a heartbeat that clients ignore) and
// flushes it.
func (w *Writer) WriteComment(text string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf[:0], ':')
	if text != "" {
		w.buf = append(w.buf, ' ')
		w.buf = appendField(w.buf, text, "\r\n")
	}
	w.buf = append(w.buf, '\n', '\n')
	if w.err != nil {
		return w.err
	}
	err := w.writeFlush()
	if w.log != nil {
		w.err = err
	}
	return err
}

// WriteRaw writes bytes already in event-stream form and flushes them.
func (w *Writer) WriteRaw(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	return w.flush()
}

// Flush sends what has been written to the client.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush()
}

func (w *Writer) flush() error {
	err := w.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// SetWriteDeadline sets the deadline for writes to the client, so a client
// that stops reading cannot hold the stream forever.
func (w *Writer) SetWriteDeadline(t time.Time) error {
	err := w.rc.SetWriteDeadline(t)
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

func (w *Writer) writeFlush() error {
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	return w.flush()
}

// drainGrace and maxDrain bound CloseBody's read of what follows a stream's
// last event.
const (
	drainGrace = 50 * time.Millisecond
	maxDrain   = 4 << 10
)

// CloseBody closes the response body of an upstream event stream. When the
// stream ended cleanly (its protocol's last event was read), it first reads
// what is left, normally only the end of the chunked encoding, so that the
// HTTP transport can reuse the connection instead of closing it. A server
// that holds the stream open after its last event is cut after a short grace.
func CloseBody(body io.ReadCloser, ended bool) error {
	if ended {
		t := time.AfterFunc(drainGrace, func() { body.Close() })
		io.CopyN(io.Discard, body, maxDrain)
		t.Stop()
	}
	return body.Close()
}
