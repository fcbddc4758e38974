package sim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxTokens bounds Fault.Tokens: a fault can come from a client's header, and
// an answer is built in memory before it streams.
const MaxTokens = 65536

// Fault describes how the simulator misbehaves. The zero Fault means none:
// answer at once, in full. A Fault is a value; it is safe to share.
type Fault struct {
	// Latency is slept before the answer: before Stream returns, so before
	// response headers when a server streams.
	Latency time.Duration
	// TTFT is slept before the first content event of a stream, after
	// EventStart.
	TTFT time.Duration
	// ChunkDelay is slept between content events.
	ChunkDelay time.Duration
	// StallAfter, when positive, stalls the stream after that many content
	// events: it blocks until ctx ends, then fails with ctx's error. It has
	// no effect when the answer has fewer content events.
	StallAfter int
	// DropAfter, when positive, ends the stream after that many content
	// events with a stream_interrupted error. It has no effect when the
	// answer has fewer content events.
	DropAfter int
	// ErrorAt, when positive, replaces the stream's ErrorAt-th content event
	// with an upstream error (overloaded, as Anthropic's overloaded_error
	// after a 200): 1 fails before any content. A simulator server sends it
	// as its dialect's error event. No effect when the answer has fewer
	// content events.
	ErrorAt int
	// Status, when non-zero, makes the call fail before any event with this
	// upstream HTTP status (429, 500, 502, 503, 529...), after Latency.
	Status int
	// RetryAfter is the Retry-After advice of a Status failure.
	RetryAfter time.Duration
	// StatusFirst, when positive, limits Status to the first StatusFirst
	// calls that carry it, counted by the Provider across requests (a
	// server counts every request it serves): an upstream that fails, then
	// recovers.
	StatusFirst int
	// TailP and Tail add a long tail to the time to first token: with
	// probability TailP (0 to 1) a call waits Tail more before its first
	// content event, on top of TTFT.
	TailP float64
	Tail  time.Duration
	// Prose answers prose even when JSON output was asked for.
	Prose bool
	// Truncate cuts the answer half way and finishes with "length".
	Truncate bool
	// SchemaBreak answers JSON that breaks the requested schema (the valid
	// answer wrapped in an array), when JSON output was asked for.
	SchemaBreak bool
	// Fences wraps a JSON answer in a Markdown code fence.
	Fences bool
	// Attempts, when positive, limits Prose, SchemaBreak, Fences and
	// Truncate to a call's first Attempts attempts, counted by the
	// assistant messages of the request: a repair request (the broken
	// answer, then a correction) is attempt 2.
	Attempts int
	// Tokens is the answer length in tokens (words) for text answers; zero
	// means the provider's default. At most MaxTokens.
	Tokens int
}

// Merge returns f with the fields set in over (non-zero, or true) replacing
// its own. A false boolean in over does not clear one set in f.
func (f Fault) Merge(over Fault) Fault {
	if over.Latency != 0 {
		f.Latency = over.Latency
	}
	if over.TTFT != 0 {
		f.TTFT = over.TTFT
	}
	if over.ChunkDelay != 0 {
		f.ChunkDelay = over.ChunkDelay
	}
	if over.StallAfter != 0 {
		f.StallAfter = over.StallAfter
	}
	if over.DropAfter != 0 {
		f.DropAfter = over.DropAfter
	}
	if over.ErrorAt != 0 {
		f.ErrorAt = over.ErrorAt
	}
	if over.Status != 0 {
		f.Status = over.Status
	}
	if over.RetryAfter != 0 {
		f.RetryAfter = over.RetryAfter
	}
	if over.StatusFirst != 0 {
		f.StatusFirst = over.StatusFirst
	}
	if over.TailP != 0 || over.Tail != 0 {
		f.TailP, f.Tail = over.TailP, over.Tail
	}
	if over.Prose {
		f.Prose = true
	}
	if over.Truncate {
		f.Truncate = true
	}
	if over.SchemaBreak {
		f.SchemaBreak = true
	}
	if over.Fences {
		f.Fences = true
	}
	if over.Attempts != 0 {
		f.Attempts = over.Attempts
	}
	if over.Tokens != 0 {
		f.Tokens = over.Tokens
	}
	return f
}

// String returns f in ParseFault's syntax, fields in a fixed order, zero
// fields left out; the zero Fault is "". ParseFault(f.String()) returns f for
// every Fault that ParseFault accepts.
func (f Fault) String() string {
	var b []byte
	dur := func(key string, d time.Duration) {
		if d != 0 {
			b = append(b, ',')
			b = append(b, key...)
			b = append(b, '=')
			b = append(b, d.String()...)
		}
	}
	num := func(key string, n int) {
		if n != 0 {
			b = append(b, ',')
			b = append(b, key...)
			b = append(b, '=')
			b = strconv.AppendInt(b, int64(n), 10)
		}
	}
	flag := func(key string, on bool) {
		if on {
			b = append(b, ',')
			b = append(b, key...)
		}
	}
	dur("latency", f.Latency)
	dur("ttft", f.TTFT)
	dur("chunk_delay", f.ChunkDelay)
	num("stall_after", f.StallAfter)
	num("drop_after", f.DropAfter)
	num("error_at", f.ErrorAt)
	num("status", f.Status)
	dur("retry_after", f.RetryAfter)
	num("status_first", f.StatusFirst)
	if f.TailP != 0 || f.Tail != 0 {
		b = append(b, ",tail="...)
		b = strconv.AppendFloat(b, f.TailP, 'g', -1, 64)
		b = append(b, ':')
		b = append(b, f.Tail.String()...)
	}
	flag("prose", f.Prose)
	flag("truncate", f.Truncate)
	flag("schema_break", f.SchemaBreak)
	flag("fences", f.Fences)
	num("attempts", f.Attempts)
	num("tokens", f.Tokens)
	if len(b) == 0 {
		return ""
	}
	return string(b[1:])
}

// ParseFault parses a comma-separated list of fault items, such as
// "latency=200ms,ttft=1s,chunk_delay=10ms,stall_after=5,drop_after=5,
// error_at=3,status=429,retry_after=2s,status_first=2,tail=0.05:2s,prose,
// truncate,schema_break,fences,attempts=1,tokens=100". Durations use
// time.ParseDuration's syntax and must not be negative; counts are
// non-negative integers; status is an HTTP error status (400 to 599); tokens
// is at most MaxTokens; tail is a probability from 0 to 1 and a duration;
// prose and truncate are flags (or =true, =false).
// Spaces around items are ignored and the empty string is the zero Fault.
// Errors name the bad item; a key given twice is an error.
func ParseFault(s string) (Fault, error) {
	var f Fault
	seen := make(map[string]bool, 4)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		bad := func(why string) error {
			return fmt.Errorf("sim: fault item %q: %s", item, why)
		}
		if seen[key] {
			return Fault{}, bad("given twice")
		}
		seen[key] = true
		dur := func(d *time.Duration) error {
			if !hasVal {
				return bad("want " + key + "=<duration>")
			}
			v, err := time.ParseDuration(val)
			if err != nil {
				return bad("not a duration such as 200ms")
			}
			if v < 0 {
				return bad("must not be negative")
			}
			*d = v
			return nil
		}
		num := func(n *int, lo, hi int) error {
			if !hasVal {
				return bad("want " + key + "=<number>")
			}
			v, err := strconv.Atoi(val)
			if err != nil {
				return bad("not a whole number")
			}
			if v < lo || v > hi {
				return bad(fmt.Sprintf("want %d to %d", lo, hi))
			}
			*n = v
			return nil
		}
		flag := func(b *bool) error {
			if !hasVal {
				*b = true
				return nil
			}
			v, err := strconv.ParseBool(val)
			if err != nil {
				return bad("want true or false")
			}
			*b = v
			return nil
		}
		var err error
		switch key {
		case "latency":
			err = dur(&f.Latency)
		case "ttft":
			err = dur(&f.TTFT)
		case "chunk_delay":
			err = dur(&f.ChunkDelay)
		case "stall_after":
			err = num(&f.StallAfter, 0, 1<<31-1)
		case "drop_after":
			err = num(&f.DropAfter, 0, 1<<31-1)
		case "error_at":
			err = num(&f.ErrorAt, 0, 1<<31-1)
		case "status":
			err = num(&f.Status, 400, 599)
		case "retry_after":
			err = dur(&f.RetryAfter)
		case "status_first":
			err = num(&f.StatusFirst, 0, 1<<31-1)
		case "tail":
			p, d, ok := strings.Cut(val, ":")
			if !hasVal || !ok {
				err = bad("want tail=<probability>:<duration>, such as tail=0.05:2s")
				break
			}
			if f.TailP, err = strconv.ParseFloat(strings.TrimSpace(p), 64); err != nil || !(f.TailP >= 0 && f.TailP <= 1) {
				err = bad("the probability must be a number from 0 to 1")
				break
			}
			if f.Tail, err = time.ParseDuration(strings.TrimSpace(d)); err != nil || f.Tail < 0 {
				err = bad("the duration must be a non-negative duration such as 2s")
			}
		case "prose":
			err = flag(&f.Prose)
		case "truncate":
			err = flag(&f.Truncate)
		case "schema_break":
			err = flag(&f.SchemaBreak)
		case "fences":
			err = flag(&f.Fences)
		case "attempts":
			err = num(&f.Attempts, 0, 1<<31-1)
		case "tokens":
			err = num(&f.Tokens, 0, MaxTokens)
		default:
			err = bad("unknown fault (want latency, ttft, chunk_delay, stall_after, drop_after, error_at, status, retry_after, status_first, tail, prose, truncate, schema_break, fences, attempts or tokens)")
		}
		if err != nil {
			return Fault{}, err
		}
	}
	return f, nil
}

type faultKey struct{}

// WithFault returns a context that carries a per-request fault. The provider
// merges it over its Options.Fault, field by field.
func WithFault(ctx context.Context, f Fault) context.Context {
	return context.WithValue(ctx, faultKey{}, f)
}

// FaultFrom returns the fault WithFault put in ctx, if any.
func FaultFrom(ctx context.Context) (Fault, bool) {
	f, ok := ctx.Value(faultKey{}).(Fault)
	return f, ok
}
