package openai

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

func BenchmarkDecodeRequest(b *testing.B) {
	body, err := appendRequest(nil, richRequest(), true, MaxTokens, "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	req := richRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := appendRequest(make([]byte, 0, requestSize(req)), req, true, MaxTokens, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalResponse(b *testing.B) {
	resp := toolResponse()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that flushes into nothing.
type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// benchTokens are 100 text deltas of typical size.
func benchTokens() []sluice.Event {
	evs := make([]sluice.Event, 0, 103)
	evs = append(evs, sluice.Event{Type: sluice.EventStart, ID: "id", Model: "m"})
	for i := range 100 {
		evs = append(evs, sluice.Event{Type: sluice.EventText, Text: " token" + strconv.Itoa(i)})
	}
	evs = append(evs,
		sluice.Event{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 100, OutputTokens: 100}},
		sluice.Event{Type: sluice.EventFinish, FinishReason: sluice.FinishStop})
	return evs
}

func BenchmarkStreamEncode(b *testing.B) {
	evs := benchTokens()
	w := &discardWriter{h: http.Header{}}
	sw := sse.NewWriter(w)
	b.ReportAllocs()
	for b.Loop() {
		enc := NewStreamEncoder(sw, "chatcmpl-bench", "gpt-4o-mini", testCreated, true)
		for _, ev := range evs {
			if err := enc.Event(ev); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.Done(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "bytes/stream")
}

func BenchmarkStreamDecode(b *testing.B) {
	// The upstream wire: what StreamEncoder writes for 100 text deltas.
	w := &discardWriter{h: http.Header{}}
	var buf bytes.Buffer
	rec := &teeWriter{discardWriter: w, buf: &buf}
	enc := NewStreamEncoder(sse.NewWriter(rec), "chatcmpl-bench", "gpt-4o-mini", testCreated, true)
	for _, ev := range benchTokens() {
		enc.Event(ev)
	}
	enc.Done()
	wire := buf.Bytes()
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		body := io.NopCloser(bytes.NewReader(wire))
		d := &streamDecoder{ctx: context.Background(), provider: "bench", body: body, r: sse.NewReader(body)}
		s := sluice.NewStream(d.next, d.release)
		n := 0
		for _, err := range s.All() {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 103 {
			b.Fatalf("got %d events", n)
		}
	}
}

type teeWriter struct {
	*discardWriter
	buf *bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
