package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sse"
)

// Pipeline calls cases in-process, through p: the same routes, contracts,
// limits and providers as the gateway serving p's config. Route calls
// stream (for the time to first token); contract calls do not (so that
// they may be repaired).
type Pipeline struct{ P *pipeline.Pipeline }

// Call implements Caller.
func (pc Pipeline) Call(ctx context.Context, kind, target string, c *Case) Attempt {
	var rec *pipeline.Record
	ctx = pipeline.WithRecordFunc(ctx, func(r pipeline.Record) { rec = &r })
	start := time.Now()
	var a Attempt
	switch kind {
	case "contract":
		a.Schema = true
		out, err := pc.P.Contract(ctx, target, c.Input)
		a.Output, a.Valid = string(out), err == nil
		if err != nil {
			a.Code = string(sluice.ErrorCode(err))
		}
	default:
		text, err := pc.stream(ctx, target, c)
		a.Output = text
		if err != nil {
			a.Code = string(sluice.ErrorCode(err))
		}
	}
	a.Latency = time.Since(start)
	if rec != nil {
		a.Model, a.Provider = rec.UpstreamModel, rec.Provider
		a.TTFT = rec.TTFT
		a.InputTokens, a.OutputTokens, a.CostUSD = rec.Usage.InputTokens, rec.Usage.OutputTokens, rec.Cost
		a.Repairs = rec.Repairs
	}
	return a
}

// stream calls route with c's messages as a stream and returns the
// answer's text.
func (pc Pipeline) stream(ctx context.Context, route string, c *Case) (string, error) {
	req := &sluice.Request{Model: route, Stream: true}
	for _, m := range c.Messages {
		if m.Role == "system" {
			req.System = append(req.System, sluice.TextPart(m.Content))
			continue
		}
		req.Messages = append(req.Messages, sluice.Message{Role: sluice.Role(m.Role), Parts: []sluice.Part{sluice.TextPart(m.Content)}})
	}
	s, err := pc.P.Stream(ctx, req)
	if err != nil {
		return "", err
	}
	defer s.Close()
	var b strings.Builder
	for ev, err := range s.All() {
		if err != nil {
			return b.String(), err
		}
		if ev.Type == sluice.EventText {
			b.WriteString(ev.Text)
		}
	}
	return b.String(), nil
}

// HTTP calls cases on a running gateway: routes as OpenAI-dialect streams
// (POST /v1/chat/completions with include_usage), contracts at POST
// /v1/contracts/{name}. The gateway reports a contract call's tokens, cost
// and repairs in its Sluice-* answer headers; a route call's cost is
// computed with Price, when set, from the usage the stream reported.
type HTTP struct {
	BaseURL string // the gateway's base URL, such as http://127.0.0.1:8080
	Key     string // the API key; empty for a gateway that needs none
	Client  *http.Client
	// Price returns the cost of a route's call from its usage; nil: 0.
	Price func(route string, u sluice.Usage) float64
}

// Call implements Caller.
func (hc HTTP) Call(ctx context.Context, kind, target string, c *Case) Attempt {
	start := time.Now()
	var a Attempt
	var err error
	switch kind {
	case "contract":
		a.Schema = true
		err = hc.contract(ctx, target, c, &a)
		a.Valid = err == nil && a.Code == ""
	default:
		err = hc.chat(ctx, target, c, &a, start)
	}
	if err != nil && a.Code == "" {
		a.Code = string(sluice.CodeUpstreamUnavailable) // the gateway itself could not be reached or read
	}
	a.Latency = time.Since(start)
	return a
}

func (hc HTTP) client() *http.Client {
	if hc.Client != nil {
		return hc.Client
	}
	return http.DefaultClient
}

func (hc HTTP) post(ctx context.Context, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(hc.BaseURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if hc.Key != "" {
		req.Header.Set("Authorization", "Bearer "+hc.Key)
	}
	return hc.client().Do(req)
}

// errorCode returns the code of an error answer in either of the
// gateway's shapes.
func errorCode(body []byte, status int) string {
	var v struct {
		Error struct {
			Code string `json:"code"`
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && v.Error.Code != "" {
		return v.Error.Code
	}
	return "http_" + strconv.Itoa(status)
}

func (hc HTTP) contract(ctx context.Context, name string, c *Case, a *Attempt) error {
	resp, err := hc.post(ctx, "/v1/contracts/"+name, map[string]any{"input": c.Input})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	h := resp.Header
	a.InputTokens, _ = strconv.Atoi(h.Get("Sluice-Input-Tokens"))
	a.OutputTokens, _ = strconv.Atoi(h.Get("Sluice-Output-Tokens"))
	a.CostUSD, _ = strconv.ParseFloat(h.Get("Sluice-Cost-Usd"), 64)
	a.Repairs, _ = strconv.Atoi(h.Get("Sluice-Repairs"))
	if resp.StatusCode != http.StatusOK {
		a.Code = errorCode(body, resp.StatusCode)
		return nil
	}
	a.Output = string(body)
	return nil
}

func (hc HTTP) chat(ctx context.Context, route string, c *Case, a *Attempt, start time.Time) error {
	resp, err := hc.post(ctx, "/v1/chat/completions", map[string]any{
		"model": route, "messages": c.Messages, "stream": true,
		"stream_options": map[string]bool{"include_usage": true},
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		a.Code = errorCode(body, resp.StatusCode)
		return nil
	}
	var text strings.Builder
	var usage sluice.Usage
	rd := sse.NewReader(resp.Body)
	done := false
	for !done {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if string(ev.Data) == "[DONE]" {
			done = true
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				Prompt     int `json:"prompt_tokens"`
				Completion int `json:"completion_tokens"`
			} `json:"usage"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if jerr := json.Unmarshal(ev.Data, &chunk); jerr != nil {
			return fmt.Errorf("eval: bad stream chunk: %w", jerr)
		}
		if chunk.Error != nil {
			a.Code = chunk.Error.Code
			break
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Content != "" && a.TTFT == 0 {
				a.TTFT = time.Since(start)
			}
			text.WriteString(ch.Delta.Content)
		}
		if chunk.Usage != nil {
			usage = sluice.Usage{InputTokens: chunk.Usage.Prompt, OutputTokens: chunk.Usage.Completion}
		}
	}
	if !done && a.Code == "" {
		// The stream ended without its [DONE]: cut short.
		a.Code = string(sluice.CodeStreamInterrupted)
	}
	a.Output = text.String()
	a.InputTokens, a.OutputTokens = usage.InputTokens, usage.OutputTokens
	if hc.Price != nil {
		a.CostUSD = hc.Price(route, usage)
	}
	return nil
}
