package openai

import (
	"strconv"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// A StreamEncoder writes sluice events to a client as OpenAI
// "chat.completion.chunk" server-sent events, the way the OpenAI API does:
//
//   - a first chunk whose delta is {"role":"assistant","content":"","refusal":null};
//   - one chunk per text delta ({"content":...}) and per thinking delta
//     ({"reasoning_content":...}, the field DeepSeek, vLLM and others use;
//     signatures and redacted thinking are dropped);
//   - tool calls by index: a call's first chunk carries index, id, type
//     "function", the name and arguments "", later chunks the index and an
//     arguments fragment; a call that got no arguments at all gets "{}" before
//     the finish chunk, so clients can parse it;
//   - a chunk with an empty delta and the finish_reason;
//   - with includeUsage, "usage":null on every chunk and, after the finish
//     chunk, a chunk with "choices":[] and the usage;
//   - Done writes "data: [DONE]".
//
// Every chunk is written and flushed at once. The encoder tolerates events out
// of the usual order: the first chunk is written before whatever event comes
// first, usage may come more than once (the last wins), and events after the
// finish are ignored. A StreamEncoder is not safe for concurrent use.
type StreamEncoder struct {
	w            *sse.Writer
	id           string
	includeUsage bool
	prefix       []byte // {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"system_fingerprint":null,"choices":[
	buf          []byte
	started      bool
	finished     bool
	failovers    int  // of the finish event
	failed       bool // Error was written: nothing more may follow
	usageWritten bool
	usage        sluice.Usage
	calls        []callState // by Index
}

type callState struct {
	started bool // the first delta (id, name) was written
	args    bool // a non-empty arguments fragment was written
}

// NewStreamEncoder returns an encoder writing to w. id, model and created
// (Unix seconds; zero means now) are repeated in every chunk, as OpenAI does;
// includeUsage is the client's stream_options.include_usage.
func NewStreamEncoder(w *sse.Writer, id, model string, created int64, includeUsage bool) *StreamEncoder {
	if created == 0 {
		created = time.Now().Unix()
	}
	p := make([]byte, 0, 112+len(id)+len(model))
	p = append(p, `{"id":`...)
	p = appendString(p, id)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, created, 10)
	p = append(p, `,"model":`...)
	p = appendString(p, model)
	p = append(p, `,"system_fingerprint":null,"choices":[`...)
	return &StreamEncoder{
		w:            w,
		id:           id,
		includeUsage: includeUsage,
		prefix:       p,
		buf:          make([]byte, 0, 512+len(p)),
	}
}

// Event writes the chunks for one event (zero or more).
func (e *StreamEncoder) Event(ev sluice.Event) error {
	if ev.Type == sluice.EventError {
		return e.Error(sluice.AsError(ev.Err))
	}
	if e.finished {
		return nil
	}
	if !e.started {
		if err := e.start(); err != nil {
			return err
		}
	}
	switch ev.Type {
	case sluice.EventStart:
		if ev.Usage != (sluice.Usage{}) {
			e.usage = ev.Usage
		}
	case sluice.EventText:
		if ev.Text == "" {
			return nil
		}
		b := e.open()
		b = append(b, `{"content":`...)
		b = appendString(b, ev.Text)
		return e.close(b, "}", "")
	case sluice.EventThinking:
		if ev.Text == "" || ev.Redacted {
			return nil
		}
		b := e.open()
		b = append(b, `{"reasoning_content":`...)
		b = appendString(b, ev.Text)
		return e.close(b, "}", "")
	case sluice.EventToolCall:
		return e.toolCall(ev)
	case sluice.EventUsage:
		e.usage = ev.Usage
	case sluice.EventFinish:
		e.failovers = ev.Failovers
		return e.finish(ev.FinishReason)
	}
	return nil
}

func (e *StreamEncoder) start() error {
	e.started = true
	b := e.open()
	b = append(b, `{"role":"assistant","content":"","refusal":null}`...)
	return e.close(b, "", "")
}

func (e *StreamEncoder) toolCall(ev sluice.Event) error {
	if ev.Index < 0 || ev.Index > 1<<16 {
		return nil
	}
	for len(e.calls) <= ev.Index {
		e.calls = append(e.calls, callState{})
	}
	c := &e.calls[ev.Index]
	if !c.started {
		c.started = true
		id := ev.ToolCallID
		if id == "" {
			id = "call_" + e.id + "_" + strconv.Itoa(ev.Index)
		}
		b := e.open()
		b = append(b, `{"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(ev.Index), 10)
		b = append(b, `,"id":`...)
		b = appendString(b, id)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendString(b, ev.ToolName)
		b = append(b, `,"arguments":""}}]}`...)
		if err := e.close(b, "", ""); err != nil {
			return err
		}
	}
	if ev.Arguments == "" {
		return nil
	}
	c.args = true
	return e.arguments(ev.Index, ev.Arguments)
}

func (e *StreamEncoder) arguments(index int, frag string) error {
	b := e.open()
	b = append(b, `{"tool_calls":[{"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"function":{"arguments":`...)
	b = appendString(b, frag)
	return e.close(b, "}}]}", "")
}

func (e *StreamEncoder) finish(r sluice.FinishReason) error {
	for i := range e.calls {
		if c := &e.calls[i]; c.started && !c.args {
			c.args = true
			if err := e.arguments(i, "{}"); err != nil {
				return err
			}
		}
	}
	e.finished = true
	b := e.open()
	b = append(b, "{}"...)
	if err := e.close(b, "", finishReason(r)); err != nil {
		return err
	}
	return e.writeUsage()
}

func (e *StreamEncoder) writeUsage() error {
	if !e.includeUsage || e.usageWritten {
		return nil
	}
	e.usageWritten = true
	b := append(e.buf[:0], e.prefix...)
	b = append(b, `],"usage":`...)
	b = appendUsage(b, e.usage)
	b = append(b, '}')
	e.buf = b
	return e.w.WriteEvent("", b)
}

// open starts a chunk in the reused buffer, up to the start of the delta.
func (e *StreamEncoder) open() []byte {
	b := append(e.buf[:0], e.prefix...)
	return append(b, `{"index":0,"delta":`...)
}

// close ends the delta with tail, adds finish_reason (null when reason is
// empty) and usage, and writes the chunk.
func (e *StreamEncoder) close(b []byte, tail, reason string) error {
	b = append(b, tail...)
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	if reason == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = append(b, reason...)
		b = append(b, '"')
	}
	b = append(b, "}]"...)
	if e.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	if reason != "" && e.failovers > 0 {
		// Sluice's extension: the stream was continued on another target.
		b = append(b, `,"sluice":{"failovers":`...)
		b = strconv.AppendInt(b, int64(e.failovers), 10)
		b = append(b, '}')
	}
	b = append(b, '}')
	e.buf = b
	return e.w.WriteEvent("", b)
}

// Error ends the stream with a failure: one data event carrying
// {"error":{"message","type","param","code"}}, the same body WriteError sends.
// No [DONE] follows; the caller ends the response.
func (e *StreamEncoder) Error(err *sluice.Error) error {
	if e.failed {
		return nil
	}
	if err == nil {
		err = sluice.WrapError(sluice.CodeInternal, nil)
	}
	e.finished = true
	e.failed = true
	e.usageWritten = true
	e.buf = appendError(e.buf[:0], err)
	return e.w.WriteEvent("", e.buf)
}

var doneData = []byte("[DONE]")

// Done writes "data: [DONE]". If no finish event was seen it first writes the
// chunks a finished stream has (the first chunk, a "stop" finish chunk and,
// when asked for, usage), so the client always gets a well-formed stream.
// After Error it writes nothing: a failed stream ends without [DONE].
func (e *StreamEncoder) Done() error {
	if e.failed {
		return nil
	}
	if !e.finished {
		if !e.started {
			if err := e.start(); err != nil {
				return err
			}
		}
		if err := e.finish(sluice.FinishStop); err != nil {
			return err
		}
	}
	return e.w.WriteEvent("", doneData)
}
