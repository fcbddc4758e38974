package anthropic

import (
	"strconv"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

type blockKind uint8

const (
	blockNone blockKind = iota
	blockText
	blockTool
	blockThinking
)

// toolBlock remembers which content block carries a tool call.
type toolBlock struct {
	tool, block int
}

// A StreamEncoder writes a sluice event stream as the dialect's named
// server-sent events, in the order the Messages API sends them:
//
//	message_start
//	content_block_start, content_block_delta..., content_block_stop (per block)
//	message_delta
//	message_stop
//
// Content block boundaries come from the events: a text delta after anything
// but text opens a text block, a tool-call delta with a new Index opens a
// tool_use block, a thinking delta after anything but unsigned thinking opens
// a thinking block; each new block closes the open one. EventFinish closes the
// stream; later events are ignored.
//
// A StreamEncoder is not safe for concurrent use.
type StreamEncoder struct {
	w         *sse.Writer
	id, model string
	buf       []byte

	started bool
	done    bool

	open   blockKind
	index  int  // the open block's index
	count  int  // blocks opened so far
	tool   int  // the open tool block's tool Index
	signed bool // the open thinking block has a signature
	tools  []toolBlock

	usage sluice.Usage
}

// NewStreamEncoder returns an encoder writing to w. id and model go in
// message_start; when empty, those of the stream's EventStart are used. The
// caller has set the event-stream headers (sse.SetHeaders) and the status.
func NewStreamEncoder(w *sse.Writer, id, model string) *StreamEncoder {
	return &StreamEncoder{w: w, id: id, model: model, buf: make([]byte, 0, 512)}
}

// Event writes the server-sent events for ev, zero or more, each flushed.
// If the stream has not started, message_start is written first. An
// EventError is written as Error does.
func (e *StreamEncoder) Event(ev sluice.Event) error {
	if e.done {
		return nil
	}
	if ev.Type == sluice.EventError {
		return e.Error(sluice.AsError(ev.Err))
	}
	if !e.started {
		if err := e.start(&ev); err != nil {
			return err
		}
		if ev.Type == sluice.EventStart {
			return nil
		}
	}
	switch ev.Type {
	case sluice.EventText:
		if ev.Text == "" {
			return nil
		}
		if e.open != blockText {
			b, err := e.openBlock(blockText)
			if err != nil {
				return err
			}
			if err := e.startBlock(append(b, `{"type":"text","text":""}`...)); err != nil {
				return err
			}
		}
		b := e.deltaHead(e.index, "text_delta")
		b = append(b, `,"text":`...)
		b = appendString(b, ev.Text)
		return e.write("content_block_delta", append(b, "}}"...))
	case sluice.EventToolCall:
		return e.toolCall(&ev)
	case sluice.EventThinking:
		return e.thinking(&ev)
	case sluice.EventUsage:
		e.usage = ev.Usage
	case sluice.EventFinish:
		return e.finish(&ev)
	}
	return nil
}

// start writes message_start. Input tokens come from ev when it is an
// EventStart; output_tokens is 1, as the Messages API reports before the
// first token.
func (e *StreamEncoder) start(ev *sluice.Event) error {
	e.started = true
	id, model := e.id, e.model
	if ev.Type == sluice.EventStart {
		if id == "" {
			id = ev.ID
		}
		if model == "" {
			model = ev.Model
		}
		e.usage = ev.Usage
	}
	b := append(e.buf[:0], `{"type":"message_start","message":{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"type":"message","role":"assistant","content":[],"model":`...)
	b = appendString(b, model)
	b = append(b, `,"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendUsage(b, e.usage, 1)
	return e.write("message_start", append(b, "}}"...))
}

func (e *StreamEncoder) toolCall(ev *sluice.Event) error {
	if ev.Index < 0 {
		return nil
	}
	block := -1
	if e.open == blockTool && e.tool == ev.Index {
		block = e.index
	} else {
		for _, t := range e.tools {
			if t.tool == ev.Index {
				block = t.block
				break
			}
		}
	}
	if block < 0 {
		b, err := e.openBlock(blockTool)
		if err != nil {
			return err
		}
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendString(b, ev.ToolCallID)
		b = append(b, `,"name":`...)
		b = appendString(b, ev.ToolName)
		if err := e.startBlock(append(b, `,"input":{}}`...)); err != nil {
			return err
		}
		e.tool = ev.Index
		e.tools = append(e.tools, toolBlock{tool: ev.Index, block: e.index})
		block = e.index
	}
	// A fragment of a call whose block was closed goes to that block's index:
	// the SDKs accumulate deltas by index, so nothing is lost.
	if ev.Arguments == "" {
		return nil
	}
	b := e.deltaHead(block, "input_json_delta")
	b = append(b, `,"partial_json":`...)
	b = appendString(b, ev.Arguments)
	return e.write("content_block_delta", append(b, "}}"...))
}

func (e *StreamEncoder) thinking(ev *sluice.Event) error {
	if ev.Redacted {
		b, err := e.openBlock(blockThinking)
		if err != nil {
			return err
		}
		b = append(b, `{"type":"redacted_thinking","data":`...)
		b = appendString(b, ev.Data)
		if err := e.startBlock(append(b, '}')); err != nil {
			return err
		}
		return e.closeBlock()
	}
	if ev.Text == "" && ev.Signature == "" {
		return nil
	}
	// A signature ends a thinking block: thinking text after it is a new block.
	if e.open != blockThinking || (e.signed && ev.Text != "") {
		b, err := e.openBlock(blockThinking)
		if err != nil {
			return err
		}
		if err := e.startBlock(append(b, `{"type":"thinking","thinking":"","signature":""}`...)); err != nil {
			return err
		}
	}
	if ev.Text != "" {
		b := e.deltaHead(e.index, "thinking_delta")
		b = append(b, `,"thinking":`...)
		b = appendString(b, ev.Text)
		if err := e.write("content_block_delta", append(b, "}}"...)); err != nil {
			return err
		}
	}
	if ev.Signature != "" {
		e.signed = true
		b := e.deltaHead(e.index, "signature_delta")
		b = append(b, `,"signature":`...)
		b = appendString(b, ev.Signature)
		return e.write("content_block_delta", append(b, "}}"...))
	}
	return nil
}

func (e *StreamEncoder) finish(ev *sluice.Event) error {
	if err := e.closeBlock(); err != nil {
		return err
	}
	e.done = true
	b := append(e.buf[:0], `{"type":"message_delta","delta":{"stop_reason":`...)
	b = appendString(b, stopReason(ev.FinishReason, ev.StopSequence))
	b = append(b, `,"stop_sequence":`...)
	b = appendStopSequence(b, ev.StopSequence)
	b = append(b, `},"usage":`...)
	b = appendUsage(b, e.usage, e.usage.OutputTokens)
	if ev.Failovers > 0 {
		// Sluice's extension: the stream was continued on another target.
		b = append(b, `,"sluice":{"failovers":`...)
		b = strconv.AppendInt(b, int64(ev.Failovers), 10)
		b = append(b, '}')
	}
	if err := e.write("message_delta", append(b, '}')); err != nil {
		return err
	}
	return e.write("message_stop", append(e.buf[:0], `{"type":"message_stop"}`...))
}

// openBlock closes the open block, makes a block of kind k the open one and
// returns its content_block_start data up to the content block, for the
// caller to finish with startBlock.
func (e *StreamEncoder) openBlock(k blockKind) ([]byte, error) {
	if err := e.closeBlock(); err != nil {
		return nil, err
	}
	e.open, e.index, e.signed = k, e.count, false
	e.count++
	b := append(e.buf[:0], `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(e.index), 10)
	return append(b, `,"content_block":`...), nil
}

// startBlock writes a content_block_start whose data openBlock began and the
// caller completed with the content block.
func (e *StreamEncoder) startBlock(b []byte) error {
	return e.write("content_block_start", append(b, '}'))
}

func (e *StreamEncoder) closeBlock() error {
	if e.open == blockNone {
		return nil
	}
	e.open = blockNone
	b := append(e.buf[:0], `{"type":"content_block_stop","index":`...)
	b = strconv.AppendInt(b, int64(e.index), 10)
	return e.write("content_block_stop", append(b, '}'))
}

// deltaHead starts a content_block_delta's data in e.buf, up to the delta's
// type.
func (e *StreamEncoder) deltaHead(index int, typ string) []byte {
	b := append(e.buf[:0], `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, typ...)
	return append(b, '"')
}

func (e *StreamEncoder) write(name string, data []byte) error {
	e.buf = data
	return e.w.WriteEvent(name, data)
}

// Ping writes a ping event, as the Messages API sends to keep a stream alive.
func (e *StreamEncoder) Ping() error {
	return e.w.WriteEvent("ping", []byte(`{"type": "ping"}`))
}

// Error writes an error event, {"type":"error","error":{"type","message"}},
// and ends the stream: later events are ignored. Only err's Code and Message
// are sent; a nil err is internal.
func (e *StreamEncoder) Error(err *sluice.Error) error {
	e.done = true
	e.buf = appendError(e.buf[:0], err)
	return e.w.WriteEvent("error", e.buf)
}
