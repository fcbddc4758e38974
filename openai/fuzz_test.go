package openai

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluice-gw/sluice"
)

// FuzzDecodeRequest checks that DecodeRequest never panics, that it fails only
// with an invalid_request *sluice.Error, and that what it accepts survives a
// trip through the provider's encoder and back, less what the provider drops
// on purpose.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`,
		`{"model":"m","messages":[{"role":"system","content":"s"},{"role":"developer","content":[{"type":"text","text":"d"}]},{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":null,"reasoning_content":"r","refusal":"no","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"ok"},{"role":"tool","tool_call_id":"d","content":[{"type":"text","text":"x"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":true}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"},"strict":true}},"max_tokens":5,"max_completion_tokens":6,"temperature":0.5,"top_p":1,"top_k":3,"stop":["a"],"seed":-1,"user":"u","stream":true,"stream_options":{"include_usage":true},"metadata":{"a":"b"}}`,
		`{"model":"m","messages":[{"role":"user","content":5}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f"}},{"function":{"name":true}}]}]}`,
		`{"model":"m","messages":{},"n":2}`,
		`{"model":`,
		`[]`,
		`null`,
	}
	b, err := appendRequest(nil, richRequest(), true, MaxTokens, "")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, string(b))
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := DecodeRequest(body)
		if err != nil {
			if se, ok := err.(*sluice.Error); !ok || se.Code != sluice.CodeInvalidRequest {
				t.Fatalf("error %T %v is not an invalid_request *sluice.Error", err, err)
			}
			return
		}
		wire, err := appendRequest(nil, req, req.Stream, MaxTokens, "")
		if err != nil {
			t.Fatalf("re-encoding a decoded request: %v", err)
		}
		again, _, err := DecodeRequest(wire)
		if err != nil {
			t.Fatalf("decoding the re-encoded request %s: %v", wire, err)
		}
		if diff := cmp.Diff(normalize(req), again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s\nwire: %s", diff, wire)
		}
	})
}

// normalize returns what a decoded request looks like after the provider's
// encoder and the decoder: top_k, metadata, thinking, and tool_choice and
// parallel_tool_calls without tools are dropped, and an
// assistant's text parts are joined, tool calls' empty arguments become "{}".
func normalize(r *sluice.Request) *sluice.Request {
	c := *r
	c.TopK = nil
	c.Metadata = nil
	if len(c.Tools) == 0 {
		c.ToolChoice = sluice.ToolChoice{}
		c.ParallelToolCalls = nil
	}
	c.Messages = make([]sluice.Message, len(r.Messages))
	for i, m := range r.Messages {
		if m.Role == sluice.RoleAssistant {
			var parts []sluice.Part
			if text := sluice.JoinText(m.Parts); text != "" {
				parts = append(parts, sluice.TextPart(text))
			}
			for _, p := range m.Parts {
				if p.Type == sluice.PartToolCall {
					if p.Arguments == "" {
						p.Arguments = "{}"
					}
					parts = append(parts, p)
				}
			}
			m.Parts = parts
		}
		c.Messages[i] = m
	}
	return &c
}
