package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
)

// citySchema is a JSON Schema as a client sends it, spaces and all.
const citySchema = `{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}`

// structuredRequest is a request for a JSON answer of type out.
func structuredRequest(out sluice.OutputType) *sluice.Request {
	req := simpleRequest()
	req.System = []sluice.Part{sluice.TextPart("Be exact.")}
	req.Output = sluice.Output{Type: out}
	if out == sluice.OutputJSONSchema {
		req.Output = sluice.Output{Type: out, Name: "city", Description: "The city named.", Schema: json.RawMessage(citySchema), Strict: true}
	}
	return req
}

// answerJSON is an upstream's answer to a structured request.
func answerJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{\"city\":\"Paris\"}"},"finish_reason":"stop"}]}`)
}

// TestStructuredOutputUpstream checks the exact bytes each structured
// output mode and server sends upstream, against
// testdata/request_*.golden.
func TestStructuredOutputUpstream(t *testing.T) {
	schemaNoName := structuredRequest(sluice.OutputJSONSchema)
	schemaNoName.Output.Name, schemaNoName.Output.Description = "", ""
	emptySchema := structuredRequest(sluice.OutputJSONSchema)
	emptySchema.Output.Schema = nil
	tests := []struct {
		name       string
		structured string
		server     string
		req        *sluice.Request
	}{
		{"native_json_schema", "", "", structuredRequest(sluice.OutputJSONSchema)},
		{"native_json_object", StructuredNative, ServerOpenAI, structuredRequest(sluice.OutputJSONObject)},
		{"ollama_json_schema", "", ServerOllama, structuredRequest(sluice.OutputJSONSchema)},
		{"ollama_json_object", "", ServerOllama, structuredRequest(sluice.OutputJSONObject)},
		{"vllm_json_schema", "", ServerVLLM, structuredRequest(sluice.OutputJSONSchema)},
		{"vllm_json_object", "", ServerVLLM, structuredRequest(sluice.OutputJSONObject)},
		{"vllm_empty_schema", "", ServerVLLM, emptySchema},
		{"prompt_json_schema", StructuredPrompt, "", structuredRequest(sluice.OutputJSONSchema)},
		{"prompt_json_schema_no_description", StructuredPrompt, ServerVLLM, schemaNoName},
		{"prompt_json_object", StructuredPrompt, ServerOllama, structuredRequest(sluice.OutputJSONObject)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := upstream(t, answerJSON)
			p := testProvider(t, srv, func(c *Config) { c.StructuredOutput, c.Server = tt.structured, tt.server })
			orig := *tt.req
			orig.System = append([]sluice.Part(nil), tt.req.System...)
			resp, err := p.Complete(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Message.Text(); got != `{"city":"Paris"}` {
				t.Errorf("answer text = %q", got)
			}
			body := (<-reqs).body
			if !json.Valid(body) {
				t.Fatalf("upstream body is not JSON: %s", body)
			}
			golden(t, "request_"+tt.name, append(body, '\n'))
			if diff := cmp.Diff(&orig, tt.req); diff != "" {
				t.Errorf("the caller's request changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestStructuredOutputStream checks that a streamed call carries the same
// structured output fields as a whole one, before the stream fields.
func TestStructuredOutputStream(t *testing.T) {
	for _, server := range []string{ServerOpenAI, ServerVLLM} {
		t.Run(server, func(t *testing.T) {
			srv, reqs := upstream(t, serveFile(t, "upstream_text.sse"))
			p := testProvider(t, srv, func(c *Config) { c.Server = server })
			req := structuredRequest(sluice.OutputJSONSchema)
			s, err := p.Stream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := collectEvents(t, s); err != nil {
				t.Fatal(err)
			}
			whole, err := appendRequest(nil, req, false, MaxTokens, server)
			if err != nil {
				t.Fatal(err)
			}
			want := append(whole[:len(whole)-1:len(whole)-1], `,"stream":true,"stream_options":{"include_usage":true}}`...)
			if got := (<-reqs).body; !bytes.Equal(got, want) {
				t.Errorf("stream body:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestStructuredOutputTextUnchanged checks that a request for text is sent
// the same in every mode.
func TestStructuredOutputTextUnchanged(t *testing.T) {
	want, err := appendRequest(nil, structuredRequest(sluice.OutputText), false, MaxTokens, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{StructuredNative, StructuredPrompt} {
		for _, server := range []string{ServerOpenAI, ServerVLLM, ServerOllama} {
			srv, reqs := upstream(t, answerJSON)
			p := testProvider(t, srv, func(c *Config) { c.StructuredOutput, c.Server = mode, server })
			if _, err := p.Complete(context.Background(), structuredRequest(sluice.OutputText)); err != nil {
				t.Fatal(err)
			}
			if got := (<-reqs).body; !bytes.Equal(got, want) {
				t.Errorf("%s/%s: text request\n%s\nwant\n%s", mode, server, got, want)
			}
		}
	}
}

// TestStructuredOutputBadSchema checks that a schema that is not JSON is
// refused before any upstream call, in every mode.
func TestStructuredOutputBadSchema(t *testing.T) {
	for _, mode := range []string{StructuredNative, StructuredPrompt} {
		for _, server := range []string{ServerOpenAI, ServerVLLM} {
			srv, reqs := upstream(t, answerJSON)
			p := testProvider(t, srv, func(c *Config) { c.StructuredOutput, c.Server = mode, server })
			req := structuredRequest(sluice.OutputJSONSchema)
			req.Output.Schema = json.RawMessage(`{"type":`)
			_, err := p.Complete(context.Background(), req)
			se := checkClientSafe(t, err, sluice.CodeInvalidRequest, "")
			if se.Param != "response_format.json_schema.schema" {
				t.Errorf("%s/%s: param = %q", mode, server, se.Param)
			}
			select {
			case c := <-reqs:
				t.Errorf("%s/%s: upstream called with %s", mode, server, c.body)
			default:
			}
		}
	}
}

func TestNewProviderStructuredPanics(t *testing.T) {
	for _, cfg := range []Config{{StructuredOutput: "tool"}, {StructuredOutput: "Native"}, {Server: "llamacpp"}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "openai: invalid ") {
					t.Errorf("NewProvider(%+v): recovered %v, want a panic", cfg, r)
				}
			}()
			NewProvider(cfg)
		}()
	}
}
