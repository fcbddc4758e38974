package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	anthropicv2 "github.com/anthropics/anthropic-sdk-go/v2"
	anssestream "github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"
	"github.com/openai/openai-go/v3"
	oassestream "github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/internal/testutil"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/sse"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
)

// resumeDialects are the two client dialects with a 100-token streamed
// request each.
var resumeDialects = []struct {
	name, path, body, last string
}{
	{"openai", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "[DONE]"},
	{"anthropic", "/v1/messages", `{"model":"m","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, `{"type":"message_stop"}`},
}

const resumeConfig = `
providers:
  - {name: s, type: sim, tokens: 100, fault: "chunk_delay=3ms"}
models:
  - {name: m, targets: [{provider: s, model: m}]}
`

// streamClient is one client connection to a stream.
type streamClient struct {
	resp   *http.Response
	cancel context.CancelFunc
	raw    bytes.Buffer // the bytes of the events read
	ids    []uint64
	data   []string
}

// open starts a request; hdr are header name, value pairs.
func openStream(t testing.TB, method, url, body string, hdr ...string) *streamClient {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer key-1")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &streamClient{resp: resp, cancel: cancel}
	t.Cleanup(c.close)
	return c
}

func (c *streamClient) close() { c.cancel(); c.resp.Body.Close() }

// read reads events until the one with id stop (0: to the end), keeping
// each one's wire form.
func (c *streamClient) read(t testing.TB, stop uint64) {
	t.Helper()
	rd := sse.NewReader(c.resp.Body)
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		id, err := strconv.ParseUint(ev.ID, 10, 64)
		if err != nil {
			t.Fatalf("event without a numeric id: %+v", ev)
		}
		c.ids = append(c.ids, id)
		c.data = append(c.data, string(ev.Data))
		c.raw.WriteString(wireForm(ev))
		if id == stop {
			return
		}
	}
}

// wireForm is the gateway's wire form of a read event.
func wireForm(ev sse.Event) string {
	return string(sse.AppendEvent([]byte("id: "+ev.ID+"\n"), "", ev.Type, ev.Data))
}

// TestResume drops a client at event 20 of a running stream and resumes it
// with Last-Event-ID, on the same instance (memory log) and on a second
// instance sharing Redis: the resumed connection gets events 21 to the end
// exactly once, in order, and the two parts make the whole stream, byte for
// byte as a full replay gives it.
func TestResume(t *testing.T) {
	type pair struct{ create, resume *httptest.Server }
	instances := map[string]func(t *testing.T) pair{
		"same instance": func(t *testing.T) pair {
			gw := gatewayFromYAML(t, resumeConfig, gateway.Options{})
			return pair{gw, gw}
		},
		"two instances on redis": func(t *testing.T) pair {
			src := resumeConfig + "state: {redis: " + testutil.RedisURL(t) + "}\n"
			return pair{gatewayFromYAML(t, src, gateway.Options{}), gatewayFromYAML(t, src, gateway.Options{})}
		},
	}
	for _, where := range []string{"same instance", "two instances on redis"} {
		for _, d := range resumeDialects {
			t.Run(where+"/"+d.name, func(t *testing.T) {
				p := instances[where](t)
				first := openStream(t, "POST", p.create.URL+d.path, d.body)
				if first.resp.StatusCode != 200 {
					t.Fatalf("status %d", first.resp.StatusCode)
				}
				id := first.resp.Header.Get(gateway.StreamIDHeader)
				if !strings.HasPrefix(id, "str_") {
					t.Fatalf("%s = %q", gateway.StreamIDHeader, id)
				}
				first.read(t, 20)
				first.close() // the connection breaks at event 20

				second := openStream(t, "GET", p.resume.URL+"/v1/streams/"+id, "", "Last-Event-ID", "20")
				if second.resp.StatusCode != 200 || second.resp.Header.Get(gateway.StreamIDHeader) != id ||
					second.resp.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("resume: status %d, headers %v", second.resp.StatusCode, second.resp.Header)
				}
				second.read(t, 0)
				checkSeq(t, first.ids, 1)
				checkSeq(t, second.ids, 21)
				if n := len(second.data); n < 80 || second.data[n-1] != d.last {
					t.Fatalf("resumed part: %d events ending %q, want at least 80 ending %q", n, second.data[n-1], d.last)
				}

				// The finished stream replays whole, and equals the two parts.
				replay := openStream(t, "GET", p.resume.URL+"/v1/streams/"+id, "")
				replay.read(t, 0)
				if got, want := replay.raw.String(), first.raw.String()+second.raw.String(); got != want {
					t.Errorf("replay differs from the two parts:\nreplay %q\nparts  %q", got, want)
				}
				checkText(t, d.name, replay.data, 100)
			})
		}
	}
}

// checkSeq checks that ids run on from first without gap or repeat.
func checkSeq(t testing.TB, ids []uint64, first uint64) {
	t.Helper()
	for i, id := range ids {
		if id != first+uint64(i) {
			t.Fatalf("event ids %v: want a run from %d", ids, first)
		}
	}
}

// checkText checks that a stream's text deltas make the simulator's whole
// answer of the given number of tokens (one word each).
func checkText(t testing.TB, dialect string, data []string, words int) {
	t.Helper()
	if n := len(strings.Fields(streamText(dialect, data))); n != words {
		t.Errorf("the stream's text has %d words, want %d", n, words)
	}
}

// streamText returns the text of a stream's events in a dialect.
func streamText(dialect string, data []string) string {
	var text strings.Builder
	for _, d := range data {
		var v struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Delta struct{ Text string } `json:"delta"`
		}
		if json.Unmarshal([]byte(d), &v) != nil {
			continue
		}
		if dialect == "openai" && len(v.Choices) > 0 {
			text.WriteString(v.Choices[0].Delta.Content)
		} else {
			text.WriteString(v.Delta.Text)
		}
	}
	return text.String()
}

// TestResumeOnlyByOwner checks that a stream is resumed only with the
// credential that created it, and that bad resumes get errors.
func TestResumeOnlyByOwner(t *testing.T) {
	gw := gatewayFromYAML(t, resumeConfig, gateway.Options{})
	first := openStream(t, "POST", gw.URL+"/v1/chat/completions", resumeDialects[0].body)
	id := first.resp.Header.Get(gateway.StreamIDHeader)
	first.read(t, 0)

	for _, tc := range []struct {
		name   string
		path   string
		hdr    []string
		status int
		code   string
	}{
		{"other key", "/v1/streams/" + id, []string{"Authorization", "Bearer key-2"}, 404, "not_found"},
		{"no key", "/v1/streams/" + id, []string{"Authorization", ""}, 404, "not_found"},
		{"unknown stream", "/v1/streams/str_00", nil, 404, "not_found"},
		{"bad Last-Event-ID", "/v1/streams/" + id, []string{"Last-Event-ID", "x"}, 400, "invalid_request"},
		{"same key as x-api-key", "/v1/streams/" + id, []string{"Authorization", "", "X-Api-Key", "key-1"}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openStream(t, "GET", gw.URL+tc.path, "", tc.hdr...)
			b, _ := io.ReadAll(c.resp.Body)
			if c.resp.StatusCode != tc.status || !strings.Contains(string(b), tc.code) {
				t.Errorf("status %d body %s; want %d %s", c.resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
}

// TestResumeGrace checks the upstream side of a client that leaves: with a
// grace period the call goes on while a reader comes back in time, and is
// cancelled once the grace passes with none, its log ending in a
// stream_interrupted error; without one it is cancelled at once.
func TestResumeGrace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{{"grace", 150 * time.Millisecond}, {"no grace", time.Duration(config.Off)}} {
		t.Run(tc.name, func(t *testing.T) {
			gw, up := gatewayWithSim(t, "chunk_delay=5ms,tokens=60000", gateway.Options{ResumeGrace: tc.grace})
			first := openStream(t, "POST", gw.URL+"/v1/messages", `{"model":"m","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			id := first.resp.Header.Get(gateway.StreamIDHeader)
			first.read(t, 5)
			first.close()
			if tc.grace > 0 {
				// A reader that comes back keeps the call going past the
				// grace period.
				second := openStream(t, "GET", gw.URL+"/v1/streams/"+id, "", "Last-Event-ID", "5")
				second.read(t, 5+uint64(3*tc.grace/(5*time.Millisecond)))
				if up.OpenStreams() != 1 {
					t.Fatalf("upstream stopped while a resumed reader was attached")
				}
				second.close()
			}
			waitFor(t, "the upstream call to be cancelled", func() bool { return up.OpenStreams() == 0 })
			replay := openStream(t, "GET", gw.URL+"/v1/streams/"+id, "")
			replay.read(t, 0)
			last := replay.data[len(replay.data)-1]
			if !strings.Contains(last, `"type":"error"`) || !strings.Contains(last, "did not resume") {
				t.Errorf("the log ends with %q, want a stream_interrupted error event", last)
			}
		})
	}
}

// TestResumeOff checks that with both resume_grace and resume_retention off
// streams carry no id and the upstream call ends with the client.
func TestResumeOff(t *testing.T) {
	gw := gatewayFromYAML(t, resumeConfig, gateway.Options{ResumeGrace: -1, ResumeRetention: -1})
	c := openStream(t, "POST", gw.URL+"/v1/chat/completions", resumeDialects[0].body)
	b, _ := io.ReadAll(c.resp.Body)
	if c.resp.Header.Get(gateway.StreamIDHeader) != "" || strings.Contains(string(b), "id:") || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Errorf("header %q, body %q", c.resp.Header.Get(gateway.StreamIDHeader), b)
	}
}

// gatewayWithSim serves a gateway whose model m is served by an in-process
// simulator with the given faults, and returns the simulator too.
func gatewayWithSim(t testing.TB, fault string, opts gateway.Options) (*httptest.Server, *sim.Provider) {
	t.Helper()
	p := pipelineFromYAML(t, "providers:\n  - {name: s, type: sim, fault: \""+fault+"\"}\nmodels:\n  - {name: m, targets: [{provider: s, model: m}]}\n", pipeline.Options{})
	prov, _ := p.Provider("s")
	gw := httptest.NewServer(gateway.NewServer(nil, p, opts))
	t.Cleanup(gw.Close)
	return gw, prov.(*sim.Provider)
}

// TestResumeWithSDKDecoders reads resumed streams with the official SDKs'
// own SSE stream decoders: the tail of an OpenAI stream decodes as
// chat.completion.chunk values and ends at [DONE], that of an Anthropic
// stream as message stream events ending with message_stop, and the text
// of the two parts makes the whole answer.
func TestResumeWithSDKDecoders(t *testing.T) {
	gw := gatewayFromYAML(t, resumeConfig, gateway.Options{})
	for _, d := range resumeDialects {
		t.Run(d.name, func(t *testing.T) {
			first := openStream(t, "POST", gw.URL+d.path, d.body)
			id := first.resp.Header.Get(gateway.StreamIDHeader)
			first.read(t, 10)
			first.close()
			second := openStream(t, "GET", gw.URL+"/v1/streams/"+id, "", "Last-Event-ID", "10")
			text := streamText(d.name, first.data)
			var ended bool
			switch d.name {
			case "openai":
				s := oassestream.NewStream[openai.ChatCompletionChunk](oassestream.NewDecoder(second.resp), nil)
				for s.Next() {
					if c := s.Current(); len(c.Choices) > 0 {
						text += c.Choices[0].Delta.Content
						ended = ended || c.Choices[0].FinishReason == "stop"
					}
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
			case "anthropic":
				s := anssestream.NewStream[anthropicv2.MessageStreamEventUnion](anssestream.NewDecoder(second.resp), nil)
				for s.Next() {
					ev := s.Current()
					if ev.Type == "content_block_delta" {
						text += ev.Delta.Text
					}
					ended = ended || ev.Type == "message_stop"
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(strings.Fields(text)); n != 100 || !ended {
				t.Errorf("resumed through the SDK decoder: %d words (want 100), ended %v", n, ended)
			}
		})
	}
}

// failingLog is a memory stream log whose appends fail from event failAt on.
type failingLog struct {
	store.StreamLog
	failAt uint64
}

func (l failingLog) Append(ctx context.Context, id string, seq uint64, frame []byte) error {
	if seq >= l.failAt {
		return errors.New("store down")
	}
	return l.StreamLog.Append(ctx, id, seq, frame)
}

// TestResumeLogFailures checks the edges of the log: a log that missed
// events is not replayed as if complete, and with retention off a reader
// still attached gets the stream's end.
func TestResumeLogFailures(t *testing.T) {
	t.Run("append fails", func(t *testing.T) {
		p := pipelineFromYAML(t, resumeConfig, pipeline.Options{StreamLog: failingLog{memory.NewStreamLog(memory.StreamLogOptions{}), 10}})
		gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
		defer gw.Close()
		first := openStream(t, "POST", gw.URL+"/v1/chat/completions", resumeDialects[0].body)
		id := first.resp.Header.Get(gateway.StreamIDHeader)
		first.read(t, 0) // the client itself gets the whole stream
		if last := first.data[len(first.data)-1]; last != "[DONE]" {
			t.Fatalf("the client's stream ends with %q", last)
		}
		// The log lost events from 10 on: resuming must not look complete.
		c := openStream(t, "GET", gw.URL+"/v1/streams/"+id, "")
		b, _ := io.ReadAll(c.resp.Body)
		if c.resp.StatusCode == 200 && !strings.Contains(string(b), `"code":"stream_interrupted"`) || strings.Contains(string(b), "[DONE]") {
			t.Errorf("resuming a broken log: status %d, body %q", c.resp.StatusCode, b)
		}
	})
	t.Run("retention off", func(t *testing.T) {
		gw := gatewayFromYAML(t, resumeConfig, gateway.Options{ResumeRetention: time.Duration(config.Off)})
		first := openStream(t, "POST", gw.URL+"/v1/messages", resumeDialects[1].body)
		id := first.resp.Header.Get(gateway.StreamIDHeader)
		first.read(t, 5)
		first.close()
		second := openStream(t, "GET", gw.URL+"/v1/streams/"+id, "", "Last-Event-ID", "5")
		second.read(t, 0)
		checkSeq(t, second.ids, 6)
		if last := second.data[len(second.data)-1]; last != resumeDialects[1].last {
			t.Errorf("attached reader's stream ends with %q, want the end", last)
		}
	})
}
