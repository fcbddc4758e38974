package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
)

// toolUpstream answers every call with one tool call: the name and
// arguments the request's last user message asks for ("call NAME ARGS"),
// plain or streamed.
func toolUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Stream   bool
			Messages []struct{ Content string }
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		var name, args string
		fmt.Sscanf(body.Messages[len(body.Messages)-1].Content, "call %s %s", &name, &args)
		qargs, _ := json.Marshal(args)
		if !body.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":%q,"arguments":%s}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`, name, qargs)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":%q,\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n", name)
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":%s}}]},\"finish_reason\":null}]}\n\n", qargs)
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(s.Close)
	return s
}

// TestToolCallChecks checks the answer side of tool allowlists: a call of
// a tool the request did not offer is an error (or dropped, per the
// route), and a call whose arguments break the tool's schema is a
// schema_violation, in plain and streamed answers.
func TestToolCallChecks(t *testing.T) {
	up := toolUpstream(t)
	cfg, err := config.Parse([]byte(`
providers:
  - {name: o, type: openai, base_url: `+up.URL+`/v1, api_key: k}
models:
  - {name: strict, targets: [{provider: o, model: m}]}
  - {name: lenient, targets: [{provider: o, model: m}], tools: [get_weather], tool_policy: drop}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	weather := sluice.Tool{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`)}
	run := func(model, ask string, stream bool) (calls int, err error) {
		req := userRequest(model, ask)
		req.Tools = []sluice.Tool{weather}
		if !stream {
			resp, err := p.Complete(context.Background(), req)
			if err != nil {
				return 0, err
			}
			return len(resp.Message.ToolCalls()), nil
		}
		req.Stream = true
		s, err := p.Stream(context.Background(), req)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		seen := map[int]bool{}
		for ev, err := range s.All() {
			if err != nil {
				return len(seen), err
			}
			if ev.Type == sluice.EventToolCall {
				seen[ev.Index] = true
			}
		}
		return len(seen), nil
	}
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "complete", true: "stream"}[stream]
		t.Run(name, func(t *testing.T) {
			if n, err := run("strict", `call get_weather {"city":"Paris"}`, stream); err != nil || n != 1 {
				t.Errorf("allowed call: %d calls, %v", n, err)
			}
			n, err := run("strict", `call delete_everything {}`, stream)
			if e := sluice.AsError(err); err == nil || e.Code != sluice.CodeUpstreamError || !strings.Contains(e.Message, "delete_everything") {
				t.Errorf("call of a tool not offered: %d calls, %v", n, err)
			}
			if n, err := run("lenient", `call delete_everything {}`, stream); err != nil || n != 0 {
				t.Errorf("dropped call: %d calls, %v", n, err)
			}
			_, err = run("strict", `call get_weather {"town":"Paris"}`, stream)
			if e := sluice.AsError(err); err == nil || e.Code != sluice.CodeSchemaViolation || len(e.Details) == 0 {
				t.Errorf("arguments that break the schema: %v", err)
			}
		})
	}
}
