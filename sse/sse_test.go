package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ev struct {
	Type, Data, ID string
	Retry          time.Duration
}

func readAll(t testing.TB, r io.Reader) ([]ev, error) {
	t.Helper()
	rd := NewReader(r)
	var out []ev
	for {
		e, err := rd.Next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		out = append(out, ev{e.Type, string(e.Data), e.ID, e.Retry})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []ev
		wantErr error
	}{
		{"simple", "data: hello\n\n", []ev{{Data: "hello"}}, nil},
		{"no space", "data:hello\n\n", []ev{{Data: "hello"}}, nil},
		{"two spaces keeps one", "data:  hello\n\n", []ev{{Data: " hello"}}, nil},
		{"multi-line", "data: a\ndata: b\n\n", []ev{{Data: "a\nb"}}, nil},
		{"event and id", "event: ping\nid: 7\ndata: {}\n\n", []ev{{Type: "ping", Data: "{}", ID: "7"}}, nil},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []ev{{Data: "a", ID: "1"}, {Data: "b", ID: "1"}}, nil},
		{"comment ignored", ": keep-alive\n\ndata: x\n\n", []ev{{Data: "x"}}, nil},
		{"CRLF", "data: a\r\ndata: b\r\n\r\n", []ev{{Data: "a\nb"}}, nil},
		{"CR", "data: a\rdata: b\r\r", []ev{{Data: "a\nb"}}, nil},
		{"BOM", "\xEF\xBB\xBFdata: a\n\n", []ev{{Data: "a"}}, nil},
		{"retry", "retry: 1500\ndata: a\n\n", []ev{{Data: "a", Retry: 1500 * time.Millisecond}}, nil},
		{"bad retry ignored", "retry: soon\ndata: a\n\n", []ev{{Data: "a"}}, nil},
		{"unknown field", "foo: bar\ndata: a\n\n", []ev{{Data: "a"}}, nil},
		{"event without data not dispatched", "event: x\n\ndata: a\n\n", []ev{{Data: "a"}}, nil},
		{"empty data dispatched", "data\n\n", []ev{{Data: ""}}, nil},
		{"trailing whitespace kept", "data: [DONE]  \n\n", []ev{{Data: "[DONE]  "}}, nil},
		{"cut mid event", "data: a\n\ndata: b\n", []ev{{Data: "a"}}, io.ErrUnexpectedEOF},
		{"cut mid line", "data: a\n\ndata: b", []ev{{Data: "a"}}, io.ErrUnexpectedEOF},
		{"empty", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got, err := readAll(t, r)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestReaderLineLimit(t *testing.T) {
	rd := NewReader(strings.NewReader("data: " + strings.Repeat("x", 100) + "\n\n"))
	rd.SetMaxLine(50)
	if _, err := rd.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	if err := w.WriteEvent("message_start", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteComment("ping"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEventID("9", "", []byte("line1\nline2\r\nline3")); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Error("writer did not flush")
	}
	want := "event: message_start\ndata: {\"a\":1}\n\n: ping\n\nid: 9\ndata: line1\ndata: line2\ndata: line3\n\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("wire = %q, want %q", got, want)
	}
	got, err := readAll(t, bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	wantEv := []ev{{Type: "message_start", Data: `{"a":1}`}, {Data: "line1\nline2\nline3", ID: "9"}}
	if diff := cmp.Diff(wantEv, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// failAfter is a ResponseWriter whose writes fail after n succeed.
type failAfter struct {
	*httptest.ResponseRecorder
	n int
}

func (f *failAfter) Write(b []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("client gone")
	}
	f.n--
	return f.ResponseRecorder.Write(b)
}

// TestWriterLog checks that a Writer with a log numbers its events, logs
// each as sent, and goes on logging after the client fails.
func TestWriterLog(t *testing.T) {
	fw := &failAfter{ResponseRecorder: httptest.NewRecorder(), n: 2}
	w := NewWriter(fw)
	var logged []string
	var seqs []uint64
	w.SetLog(func(seq uint64, frame []byte) {
		seqs = append(seqs, seq)
		logged = append(logged, string(frame))
	})
	for _, d := range []string{"a", "b\nc", "d"} {
		if err := w.WriteEvent("x", []byte(d)); err != nil {
			t.Fatalf("WriteEvent(%q) = %v; with a log it must not fail", d, err)
		}
	}
	if err := w.WriteEvent("", []byte("e")); err != nil {
		t.Fatal(err)
	}
	want := []string{"id: 1\nevent: x\ndata: a\n\n", "id: 2\nevent: x\ndata: b\ndata: c\n\n", "id: 3\nevent: x\ndata: d\n\n", "id: 4\ndata: e\n\n"}
	if diff := cmp.Diff(want, logged); diff != "" {
		t.Errorf("logged (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4}, seqs); diff != "" {
		t.Errorf("sequence numbers (-want +got):\n%s", diff)
	}
	if got := fw.Body.String(); got != want[0]+want[1] {
		t.Errorf("client got %q, want the first two events", got)
	}
	if w.Err() == nil {
		t.Error("Err() = nil after a failed write")
	}
	if err := w.WriteComment(""); err == nil {
		t.Error("WriteComment to a failed client succeeded")
	}
	// The events read back with their ids.
	got, err := readAll(t, strings.NewReader(strings.Join(want, "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3].ID != "4" || got[1].Data != "b\nc" {
		t.Errorf("read back %+v", got)
	}
}

// FuzzReader checks that no input panics and that whatever the writer emits
// reads back to the same data.
func FuzzReader(f *testing.F) {
	for _, s := range []string{"data: a\n\n", "event: x\ndata: y\r\n\r\n", ":c\rdata:z\r\r", "id: 1\nretry: 5\ndata\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rd := NewReader(strings.NewReader(in))
		for range 1000 {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
		// Round trip: data written by AppendEvent reads back with line breaks
		// normalised to \n.
		data := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\r", "\n")
		wire := AppendEvent(nil, "", "t", []byte(data))
		got, err := readAll(t, bytes.NewReader(wire))
		if err != nil || len(got) != 1 || got[0].Data != data || got[0].Type != "t" {
			t.Fatalf("round trip of %q: got %+v, %v", data, got, err)
		}
	})
}

// trackBody records whether it was read to EOF and closed.
type trackBody struct {
	io.Reader
	eof, closed bool
}

func (b *trackBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *trackBody) Close() error { b.closed = true; return nil }

func TestCloseBody(t *testing.T) {
	for _, ended := range []bool{true, false} {
		b := &trackBody{Reader: strings.NewReader("0\r\n\r\n")}
		CloseBody(b, ended)
		if !b.closed || b.eof != ended {
			t.Errorf("ended=%v: closed=%v read to EOF=%v", ended, b.closed, b.eof)
		}
	}
	// A body that never ends is cut: closing the pipe unblocks the read.
	pr, pw := io.Pipe()
	defer pw.Close()
	if err := CloseBody(pr, true); err != nil {
		t.Fatal(err)
	}
}

func TestReaderEventLimit(t *testing.T) {
	rd := NewReader(strings.NewReader(strings.Repeat("data: 0123456789\n", 20) + "\n"))
	rd.SetMaxLine(64)
	if _, err := rd.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong for an event over the limit", err)
	}
}

func TestAppendEventNoInjection(t *testing.T) {
	wire := AppendEvent(nil, "1\ndata: evil\x00", "x\r\nevent: y", []byte("ok"))
	got, err := readAll(t, bytes.NewReader(wire))
	if err != nil || len(got) != 1 || got[0].Data != "ok" || got[0].Type != "xevent: y" || got[0].ID != "1data: evil" {
		t.Fatalf("got %+v, %v from %q", got, err, wire)
	}
}
