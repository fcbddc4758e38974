package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// example returns the absolute path of a file of examples/eval.
func example(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "examples", "eval", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runEval runs sluice eval with args and env, returning its output and
// exit status (0 when run returned nil).
func runEval(t *testing.T, ctx context.Context, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut syncBuffer
	err := run(ctx, append([]string{"eval"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	code = 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintln(&errOut, "error:", err)
	}
	return out.String(), errOut.String(), code
}

func readJSONReport(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEvalExample runs the example dataset on the simulator (passing),
// then again with an injected fault against the first report as baseline:
// it exits 1 naming the regressed cases.
func TestEvalExample(t *testing.T) {
	dir := t.TempDir()
	cfg, data := example(t, "sluice.yaml"), example(t, "triage.jsonl")
	out, errOut, code := runEval(t, t.Context(), nil, "--config", cfg, "--dataset", data, "--contract", "triage", "--repeat", "2", "--out", filepath.Join(dir, "a"))
	if code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, f := range []string{"report.json", "report.html"} {
		if st, err := os.Stat(filepath.Join(dir, "a", f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(out, "triage") {
		t.Errorf("the summary does not name the contract:\n%s", out)
	}
	rep := readJSONReport(t, filepath.Join(dir, "a", "report.json"))
	target := rep["targets"].([]any)[0].(map[string]any)
	if target["attempts"] != 12.0 || target["passed"] != 12.0 {
		t.Errorf("first run: %v attempts, %v passed; want 12 and 12\n%s", target["attempts"], target["passed"], out)
	}

	out, errOut, code = runEval(t, t.Context(), map[string]string{"SIM_FAULT": "schema_break"},
		"--config", cfg, "--dataset", data, "--contract", "triage", "--baseline", filepath.Join(dir, "a", "report.json"), "--out", filepath.Join(dir, "b"))
	if code != 1 {
		t.Fatalf("run with a fault against the baseline: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, c := range []string{"refund", "crash", "gdpr"} {
		if !strings.Contains(out, c) {
			t.Errorf("the regressions do not name case %s:\n%s", c, out)
		}
	}
	rep = readJSONReport(t, filepath.Join(dir, "b", "report.json"))
	if regs, _ := rep["regressions"].([]any); len(regs) == 0 {
		t.Error("report.json lists no regression")
	}
}

// TestEvalUsageErrors checks exit status 2 for usage and dataset errors,
// and that bad dataset lines are reported with their line numbers and
// skipped unless --strict.
func TestEvalUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := example(t, "sluice.yaml")
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"id": "ok", "input": "hello"}
not json
{"id": "extra", "input": "x", "colour": "blue"}
{"id": "ok2", "input": "again", "expect": {"valid": true}}
`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no target", []string{"--config", cfg, "--dataset", bad, "--out", dir}, 2, "--route"},
		{"both kinds", []string{"--config", cfg, "--dataset", bad, "--route", "chat", "--contract", "triage", "--out", dir}, 2, "not both"},
		{"no out", []string{"--config", cfg, "--dataset", bad, "--contract", "triage"}, 2, "--out"},
		{"unknown contract", []string{"--config", cfg, "--dataset", bad, "--contract", "nope", "--out", dir}, 2, "nope"},
		{"bad flag", []string{"--config", cfg, "--repeat", "many"}, 2, "many"},
		{"no repetition", []string{"--config", cfg, "--dataset", bad, "--contract", "triage", "--repeat", "0", "--out", dir}, 2, "--repeat"},
		{"unknown contract over HTTP", []string{"--config", cfg, "--gateway", "http://127.0.0.1:1", "--dataset", bad, "--contract", "nope", "--out", dir}, 2, "nope"},
		{"missing dataset", []string{"--config", cfg, "--dataset", filepath.Join(dir, "none.jsonl"), "--contract", "triage", "--out", dir}, 2, "none.jsonl"},
		{"strict", []string{"--config", cfg, "--dataset", bad, "--contract", "triage", "--strict", "--out", dir}, 2, "bad.jsonl:2"},
		{"lenient", []string{"--config", cfg, "--dataset", bad, "--contract", "triage", "--out", filepath.Join(dir, "lenient")}, 0, "bad.jsonl:3"},
		{"route cases on a contract", []string{"--config", cfg, "--dataset", bad, "--route", "chat", "--out", dir}, 2, "no usable case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runEval(t, t.Context(), nil, tc.args...)
			if code != tc.code || !strings.Contains(errOut+out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q?\nstdout: %s\nstderr: %s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
	rep := readJSONReport(t, filepath.Join(dir, "lenient", "report.json"))
	if n := rep["run"].(map[string]any)["cases"]; n != 2.0 {
		t.Errorf("lenient run had %v cases, want the 2 good ones", n)
	}
}

// TestEvalGateway runs the example against a running gateway over HTTP.
func TestEvalGateway(t *testing.T) {
	cfg, data := example(t, "sluice.yaml"), example(t, "triage.jsonl")
	base, stop, _ := startServe(t, nil, "--config", cfg)
	dir := t.TempDir()
	out, errOut, code := runEval(t, t.Context(), nil, "--gateway", base, "--dataset", data, "--contract", "triage", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := readJSONReport(t, filepath.Join(dir, "report.json"))
	target := rep["targets"].([]any)[0].(map[string]any)
	if target["passed"] != 6.0 || target["output_tokens"] == 0.0 {
		t.Errorf("over HTTP: %v", target)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestEvalInterrupted interrupts a slow run: it stops cleanly and still
// writes the partial report.
func TestEvalInterrupted(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "many.jsonl")
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"id": "c%d", "input": "Ticket %d."}`+"\n", i, i)
	}
	os.WriteFile(data, []byte(b.String()), 0o600)
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	out, errOut, code := runEval(t, ctx, map[string]string{"SIM_FAULT": "latency=300ms"},
		"--config", example(t, "sluice.yaml"), "--dataset", data, "--contract", "triage", "--concurrency", "2", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := readJSONReport(t, filepath.Join(dir, "report.json"))
	run := rep["run"].(map[string]any)
	attempts := rep["attempts"].([]any)
	if run["stopped"] != "interrupted" || len(attempts) == 0 || len(attempts) >= 40 {
		t.Errorf("stopped %v with %d attempts; want interrupted, some but not all", run["stopped"], len(attempts))
	}
	if !strings.Contains(out, "interrupted") {
		t.Errorf("the summary does not say the run was interrupted:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Error(err)
	}
}

// TestEvalTwoRoutes runs one chat dataset on two routes side by side.
func TestEvalTwoRoutes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "chat.jsonl")
	os.WriteFile(data, []byte(`{"id": "hello", "messages": [{"role": "user", "content": "Say hello."}], "expect": {"not_contains": ["<script>"]}}
{"id": "json", "messages": [{"role": "user", "content": "Answer in JSON."}], "expect": {"valid": true}}
`), 0o600)
	out, errOut, code := runEval(t, t.Context(), nil, "--config", example(t, "sluice.yaml"), "--dataset", data,
		"--route", "chat", "--route", "triage-model", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := readJSONReport(t, filepath.Join(dir, "report.json"))
	if n := len(rep["targets"].([]any)); n != 2 {
		t.Errorf("%d targets in the report, want 2", n)
	}
	if !strings.Contains(out, "chat") || !strings.Contains(out, "triage-model") {
		t.Errorf("the summary lacks a side-by-side table of both routes:\n%s", out)
	}
}
