package sluice

import (
	"errors"
	"io"
	"iter"
	"sync"
)

// EventType says which fields of an Event are meaningful.
type EventType uint8

// The kinds of Event, in the order a stream produces them: one EventStart, then
// any number of content deltas, then usage, then one EventFinish.
const (
	EventStart    EventType = iota + 1 // ID, Model; Usage may hold input tokens already known
	EventText                          // Text
	EventToolCall                      // Index; ToolCallID and ToolName on a call's first delta; Arguments fragment
	EventThinking                      // Text fragment, or Signature fragment; Redacted with Data
	EventUsage                         // Usage: the cumulative usage so far (the last one wins)
	EventFinish                        // FinishReason, StopSequence
	// EventError carries a failure as an event, for code that hands events on
	// (encoders, stream logs). A Provider's Stream never yields it: it reports a
	// failure as the error of All.
	EventError // Err, a *Error when it comes from Sluice
)

var eventTypeNames = [...]string{"", "start", "text", "tool_call", "thinking", "usage", "finish", "error"}

func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return "unknown"
}

// An Event is one step of a streamed answer.
type Event struct {
	Type EventType

	ID    string // EventStart
	Model string // EventStart

	Text string // EventText, EventThinking

	// Index numbers the tool calls of one answer from 0, in the order they
	// start. A tool call's first delta carries ToolCallID and ToolName; later
	// deltas carry Arguments fragments only.
	Index      int
	ToolCallID string
	ToolName   string
	Arguments  string

	Signature string // EventThinking: a signature fragment
	Redacted  bool   // EventThinking: a redacted block, opaque Data
	Data      string

	Usage Usage // EventUsage (cumulative), EventStart (what is known)

	FinishReason FinishReason // EventFinish
	StopSequence string       // EventFinish
	// Failovers counts, on EventFinish, the targets that took over the
	// stream after it broke mid-way (a route's failover: mid_stream); the
	// dialects report it as a "sluice" extension field of the last event.
	Failovers int

	Err error // EventError
}

// A Stream is a single-use sequence of events from one upstream call.
// Ranging over All to the end, or breaking out early, releases the upstream;
// Close releases a Stream that is never ranged over. Close is idempotent.
//
// An error yielded by All happened after the upstream accepted the call: it
// must not be retried, and a gateway ends the client's stream with an error
// event. A stream that ends without error has yielded an EventFinish.
type Stream interface {
	All() iter.Seq2[Event, error]
	Close() error
}

// NewStream returns a Stream that pulls events from next until next returns
// io.EOF, then calls release. Any other error from next is yielded once and
// ends the stream. release runs exactly once: at the end of ranging, when the
// caller breaks out, or on Close, whichever comes first.
func NewStream(next func() (Event, error), release func() error) Stream {
	return &pullStream{next: next, release: release}
}

type pullStream struct {
	next    func() (Event, error)
	release func() error
	once    sync.Once
	err     error
	used    bool
}

func (s *pullStream) All() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if s.used {
			yield(Event{}, errors.New("sluice: stream already consumed"))
			return
		}
		s.used = true
		defer s.Close()
		for {
			ev, err := s.next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

func (s *pullStream) Close() error {
	s.once.Do(func() {
		if s.release != nil {
			s.err = s.release()
		}
	})
	return s.err
}

// Pull returns a function that reads s one event at a time, returning
// io.EOF after the last, and stop, which releases s (like Close) and may be
// called at any time; a Stream must be either ranged over or pulled, not
// both. After next returns an error, s is released. Streams made by
// NewStream are pulled directly; others through iter.Pull2.
func Pull(s Stream) (next func() (Event, error), stop func()) {
	if ps, ok := s.(*pullStream); ok && !ps.used {
		ps.used = true
		done := false
		return func() (Event, error) {
			if done {
				return Event{}, io.EOF
			}
			ev, err := ps.next()
			if err != nil {
				done = true
				ps.Close()
			}
			return ev, err
		}, func() { ps.Close() }
	}
	pull, pstop := iter.Pull2(s.All())
	return func() (Event, error) {
		ev, err, ok := pull()
		if !ok {
			return Event{}, io.EOF
		}
		if err != nil {
			pstop()
		}
		return ev, err
	}, func() { pstop(); s.Close() }
}

// EventsStream returns a Stream over a fixed list of events, for tests, caches
// and replays.
func EventsStream(events []Event) Stream {
	i := 0
	return NewStream(func() (Event, error) {
		if i >= len(events) {
			return Event{}, io.EOF
		}
		i++
		return events[i-1], nil
	}, nil)
}
