package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// wireStreamEvent is the data of any stream event; Type says which fields are
// in use. One value is reused for every event of a stream.
type wireStreamEvent struct {
	Type         string            `json:"type"`
	Message      wireStreamMessage `json:"message"`
	Index        int               `json:"index"`
	ContentBlock wireBlock         `json:"content_block"`
	Delta        wireDelta         `json:"delta"`
	Usage        wireUsage         `json:"usage"`
	Error        wireErrorBody     `json:"error"`
}

// wireStreamMessage is message_start's message.
type wireStreamMessage struct {
	ID    string    `json:"id"`
	Model string    `json:"model"`
	Usage wireUsage `json:"usage"`
}

// wireDelta is the delta of content_block_delta and of message_delta.
type wireDelta struct {
	Type         string `json:"type"`
	Text         string `json:"text"`
	PartialJSON  string `json:"partial_json"`
	Thinking     string `json:"thinking"`
	Signature    string `json:"signature"`
	StopReason   string `json:"stop_reason"`
	StopSequence string `json:"stop_sequence"`
}

// streamDecoder turns an upstream's event stream into sluice events, pulled
// one at a time by the sluice.Stream that owns it.
type streamDecoder struct {
	ctx  context.Context
	name string
	rd   *sse.Reader
	w    wireStreamEvent

	tools  []toolBlock // tool_use blocks: tool Index by block index
	nTools int

	// answerTool, when set, names the tool whose call is the answer (see
	// StructuredTool): its input fragments become text, other text is
	// dropped and its call finishes with stop.
	answerTool string
	answer     int  // the block index of answerTool's call
	answering  bool // answer is set

	// Usage so far; message_delta's counts are cumulative and replace these.
	in, out, cacheWrite, cacheRead int

	stopReason, stopSeq string

	pending    sluice.Event // EventFinish, after message_stop's EventUsage
	hasPending bool
	done       bool
	stopped    bool // message_stop was read
}

func (d *streamDecoder) next() (sluice.Event, error) {
	if d.hasPending {
		d.hasPending = false
		return d.pending, nil
	}
	if d.done {
		return sluice.Event{}, io.EOF
	}
	for {
		sev, err := d.rd.Next()
		if err != nil {
			d.done = true
			return sluice.Event{}, d.readError(err)
		}
		ev, ok, err := d.handle(&sev)
		if err != nil {
			d.done = true
			return sluice.Event{}, err
		}
		if ok {
			return ev, nil
		}
	}
}

// handle decodes one server-sent event. ok is false for events that yield
// nothing: pings, block stops, unknown types.
func (d *streamDecoder) handle(sev *sse.Event) (ev sluice.Event, ok bool, err error) {
	name := sev.Type
	if name == "ping" || len(bytes.TrimSpace(sev.Data)) == 0 {
		return ev, false, nil
	}
	if name == "content_block_delta" {
		if index, kind, v, ok := fastDelta(sev.Data); ok {
			return d.delta(index, kind, v)
		}
	}
	d.w = wireStreamEvent{}
	d.w.Usage.reset()
	d.w.Message.Usage.reset()
	if err := json.Unmarshal(sev.Data, &d.w); err != nil {
		return ev, false, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("anthropic %s: decode %s event: %w", d.name, name, err))
	}
	if name == "" || name == "message" {
		name = d.w.Type
	}
	w := &d.w
	switch name {
	case "message_start":
		d.mergeUsage(&w.Message.Usage)
		u := toUsage(d.in, 0, d.cacheWrite, d.cacheRead)
		return sluice.Event{Type: sluice.EventStart, ID: w.Message.ID, Model: w.Message.Model, Usage: u}, true, nil
	case "content_block_start":
		cb := &w.ContentBlock
		switch cb.Type {
		case "text":
			if cb.Text != "" && d.answerTool == "" {
				return sluice.Event{Type: sluice.EventText, Text: cb.Text}, true, nil
			}
		case "tool_use":
			if d.answerTool != "" && cb.Name == d.answerTool {
				d.answer, d.answering = w.Index, true
				return ev, false, nil
			}
			idx := d.nTools
			d.nTools++
			d.tools = append(d.tools, toolBlock{tool: idx, block: w.Index})
			return sluice.Event{Type: sluice.EventToolCall, Index: idx, ToolCallID: cb.ID, ToolName: cb.Name}, true, nil
		case "thinking":
			if cb.Thinking != "" || cb.Signature != "" {
				return sluice.Event{Type: sluice.EventThinking, Text: cb.Thinking, Signature: cb.Signature}, true, nil
			}
		case "redacted_thinking":
			return sluice.Event{Type: sluice.EventThinking, Redacted: true, Data: cb.Data}, true, nil
		}
	case "content_block_delta":
		dl := &w.Delta
		switch dl.Type {
		case "text_delta":
			return d.delta(w.Index, deltaText, dl.Text)
		case "input_json_delta":
			return d.delta(w.Index, deltaInputJSON, dl.PartialJSON)
		case "thinking_delta":
			return d.delta(w.Index, deltaThinking, dl.Thinking)
		case "signature_delta":
			return d.delta(w.Index, deltaSignature, dl.Signature)
		}
	case "message_delta":
		if w.Delta.StopReason != "" {
			d.stopReason = w.Delta.StopReason
		}
		if w.Delta.StopSequence != "" {
			d.stopSeq = w.Delta.StopSequence
		}
		d.mergeUsage(&w.Usage)
	case "message_stop":
		d.done = true
		d.stopped = true
		fr := finishReason(d.stopReason)
		if d.answering && fr == sluice.FinishToolCalls {
			fr = sluice.FinishStop
		}
		d.pending = sluice.Event{Type: sluice.EventFinish, FinishReason: fr, StopSequence: d.stopSeq}
		d.hasPending = true
		return sluice.Event{Type: sluice.EventUsage, Usage: toUsage(d.in, d.out, d.cacheWrite, d.cacheRead)}, true, nil
	case "error":
		return ev, false, typeError(d.name, 0, &w.Error)
	}
	return ev, false, nil
}

// delta converts a content block delta of the given kind (see fastDelta).
// Empty fragments and fragments of blocks that are not tool_use (server
// tools) yield nothing; with answerTool set, the input of its call yields
// text and text yields nothing.
func (d *streamDecoder) delta(index, kind int, v string) (sluice.Event, bool, error) {
	if v == "" {
		return sluice.Event{}, false, nil
	}
	switch kind {
	case deltaText:
		if d.answerTool != "" {
			break
		}
		return sluice.Event{Type: sluice.EventText, Text: v}, true, nil
	case deltaInputJSON:
		if d.answering && index == d.answer {
			return sluice.Event{Type: sluice.EventText, Text: v}, true, nil
		}
		for i := len(d.tools) - 1; i >= 0; i-- {
			if d.tools[i].block == index {
				return sluice.Event{Type: sluice.EventToolCall, Index: d.tools[i].tool, Arguments: v}, true, nil
			}
		}
	case deltaThinking:
		return sluice.Event{Type: sluice.EventThinking, Text: v}, true, nil
	case deltaSignature:
		return sluice.Event{Type: sluice.EventThinking, Signature: v}, true, nil
	}
	return sluice.Event{}, false, nil
}

// mergeUsage takes the counts u carries (reset marks the absent ones).
func (d *streamDecoder) mergeUsage(u *wireUsage) {
	if u.InputTokens >= 0 {
		d.in = u.InputTokens
	}
	if u.OutputTokens >= 0 {
		d.out = u.OutputTokens
	}
	if u.CacheCreationInputTokens >= 0 {
		d.cacheWrite = u.CacheCreationInputTokens
	}
	if u.CacheReadInputTokens >= 0 {
		d.cacheRead = u.CacheReadInputTokens
	}
}

// readError classifies a stream that ended or broke before message_stop.
func (d *streamDecoder) readError(err error) error {
	if err == io.EOF {
		err = fmt.Errorf("anthropic %s: stream ended before message_stop: %w", d.name, io.ErrUnexpectedEOF)
	} else {
		err = fmt.Errorf("anthropic %s: read stream: %w", d.name, err)
	}
	if cerr := d.ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return sluice.WrapError(sluice.CodeUpstreamTimeout, fmt.Errorf("%w: %w", cerr, err))
		}
		if !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w: %w", context.Canceled, err)
		}
	}
	return &sluice.Error{Code: sluice.CodeStreamInterrupted, Message: sluice.CodeStreamInterrupted.DefaultMessage(), Err: err}
}
