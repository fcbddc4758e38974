package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/eval"
	"github.com/sluice-gw/sluice/pipeline"
)

// An exitError ends the command with its code (main's exit status).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is an eval usage or dataset error: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

func evalCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var (
		configPath, datasetPath, gatewayURL, key, baseline, out string
		routes, contracts                                       []string
		repeat, concurrency                                     int
		maxCost                                                 float64
		strict                                                  bool
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Run a golden dataset through routes or contracts and report pass rates, latency and cost",
		Long: `Run a JSONL dataset (docs/eval.md) through one or two model routes (--route)
or contracts (--contract), in-process from --config or against a running
gateway (--gateway, --key), and write DIR/report.json and DIR/report.html.
With --baseline, compare with an earlier report.json.
Exit status: 0 no regression, 1 a regression against the baseline,
2 a usage or dataset error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kind, targets := "route", routes
			switch {
			case len(routes) > 0 && len(contracts) > 0:
				return usageError("give --route or --contract, not both")
			case len(contracts) > 0:
				kind, targets = "contract", contracts
			case len(routes) == 0:
				return usageError("give --route NAME or --contract NAME")
			}
			if datasetPath == "" || out == "" {
				return usageError("--dataset and --out are required")
			}
			if repeat < 1 || concurrency < 1 {
				return usageError("--repeat and --concurrency must be at least 1")
			}
			if gatewayURL == "" && configPath == "" {
				return usageError("give --config (to run in-process) or --gateway URL")
			}
			cases, err := readDataset(datasetPath, kind, strict, stderr)
			if err != nil {
				return err
			}
			var base *eval.Report
			if baseline != "" {
				if base, err = readReport(baseline); err != nil {
					return usageError("--baseline: %v", err)
				}
			}
			var cfg *config.Config
			if configPath != "" {
				if cfg, err = config.Load(configPath, getenv); err != nil {
					return usageError("%v", err)
				}
			}
			caller, closeCaller, err := evalCaller(cmd.Context(), cfg, gatewayURL, key, kind, targets)
			if err != nil {
				return err
			}
			defer closeCaller()
			runner := &eval.Runner{Caller: caller, Repeat: repeat, Concurrency: concurrency, MaxCostUSD: maxCost,
				Progress: progress(stderr)}
			info := eval.RunInfo{Dataset: filepath.Base(datasetPath), Kind: kind, Targets: targets, Gateway: gatewayURL}
			attempts, info := runner.Run(cmd.Context(), info, cases)
			fmt.Fprintln(stderr)
			report := eval.NewReport(info, cases, attempts)
			if base != nil {
				report.Baseline = baseline
				report.Regressions = eval.Compare(base, report, eval.Thresholds{})
				report.Notes = eval.Notes(base, report)
			}
			if err := writeReports(out, report); err != nil {
				return &exitError{2, err}
			}
			report.Summary(stdout)
			fmt.Fprintf(stdout, "reports: %s, %s\n", filepath.Join(out, "report.json"), filepath.Join(out, "report.html"))
			switch info.Stopped {
			case "interrupted":
				fmt.Fprintf(stdout, "interrupted: the report covers the %d attempts made of %d\n", len(attempts), info.Planned)
			case "max_cost":
				fmt.Fprintf(stdout, "stopped at --max-cost $%g: the report covers the %d attempts made of %d\n", maxCost, len(attempts), info.Planned)
			}
			if n := len(report.Regressions); n > 0 {
				// Summary listed them.
				return &exitError{1, fmt.Errorf("%d regression(s) against %s", n, baseline)}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{2, err} })
	f := cmd.Flags()
	f.StringVar(&configPath, "config", envOr(getenv, "SLUICE_CONFIG", ""), "YAML config: the routes and contracts to run in-process (with --gateway: only its prices)")
	f.StringVar(&datasetPath, "dataset", "", "JSONL dataset (docs/eval.md)")
	f.StringArrayVar(&routes, "route", nil, "model route to run (twice for a side-by-side comparison)")
	f.StringArrayVar(&contracts, "contract", nil, "contract to run (twice for a side-by-side comparison)")
	f.StringVar(&gatewayURL, "gateway", "", "base URL of a running gateway to call instead of running in-process")
	f.StringVar(&key, "key", envOr(getenv, "SLUICE_EVAL_KEY", ""), "API key for --gateway (env SLUICE_EVAL_KEY)")
	f.IntVar(&repeat, "repeat", 1, "repetitions of each case (to measure flakiness)")
	f.IntVar(&concurrency, "concurrency", 4, "calls in flight at once")
	f.StringVar(&baseline, "baseline", "", "an earlier report.json to compare with; a regression exits 1")
	f.Float64Var(&maxCost, "max-cost", 0, "stop starting calls once the run has cost this many US dollars (0: no limit)")
	f.StringVar(&out, "out", "", "directory for report.json and report.html")
	f.BoolVar(&strict, "strict", false, "treat any bad dataset line as an error (exit 2) instead of skipping it")
	return cmd
}

// readDataset reads and checks the dataset at path for a run of kind;
// bad lines are reported on stderr and skipped (an error with strict).
func readDataset(path, kind string, strict bool, stderr io.Writer) ([]eval.Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError("--dataset: %v", err)
	}
	defer f.Close()
	cases, problems, err := eval.ParseDataset(f)
	if err != nil {
		return nil, usageError("--dataset: %v", err)
	}
	misfits := eval.CheckFits(cases, kind)
	problems = append(problems, misfits...)
	for _, p := range problems {
		fmt.Fprintf(stderr, "%s:%d: %s\n", path, p.Line, p.Msg)
	}
	if len(problems) > 0 && strict {
		return nil, usageError("%s: %d bad line(s)", path, len(problems))
	}
	bad := map[int]bool{}
	for _, p := range misfits {
		bad[p.Line] = true
	}
	cases = slices.DeleteFunc(cases, func(c eval.Case) bool { return bad[c.Line] })
	if len(cases) == 0 {
		return nil, usageError("%s: no usable case", path)
	}
	return cases, nil
}

func readReport(path string) (*eval.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return eval.ReadReport(f)
}

// evalCaller returns the caller of a run: over HTTP to gatewayURL, or
// in-process through a pipeline built from cfg, which close releases.
func evalCaller(ctx context.Context, cfg *config.Config, gatewayURL, key, kind string, targets []string) (eval.Caller, func(), error) {
	if gatewayURL != "" {
		hc := eval.HTTP{BaseURL: gatewayURL, Key: key}
		if cfg != nil {
			hc.Price = pipeline.RouteCost(cfg)
			var known []string
			for _, m := range cfg.Models {
				if kind == "route" {
					known = append(known, m.Name)
				}
			}
			for _, c := range cfg.Contracts {
				if kind == "contract" {
					known = append(known, c.Name)
				}
			}
			if err := checkTargets(kind, targets, known); err != nil {
				return nil, nil, err
			}
		}
		return hc, func() {}, nil
	}
	p, err := pipeline.New(ctx, cfg, pipeline.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	known := p.Models()
	if kind == "contract" {
		known = nil
		for _, c := range p.Contracts() {
			known = append(known, c.Name)
		}
	}
	if err := checkTargets(kind, targets, known); err != nil {
		p.Close()
		return nil, nil, err
	}
	return eval.Pipeline{P: p}, func() { p.Close() }, nil
}

// checkTargets returns a usage error naming the first of targets not in
// known.
func checkTargets(kind string, targets, known []string) error {
	for _, t := range targets {
		if !slices.Contains(known, t) {
			return usageError("no %s %q in the config (it has: %s)", kind, t, strings.Join(known, ", "))
		}
	}
	return nil
}

// progress returns the run's progress display: a bar on a terminal, a
// line every tenth of the run otherwise.
func progress(stderr io.Writer) func(done, planned int) {
	if isTerminal(stderr) {
		var bar *progressbar.ProgressBar
		return func(done, planned int) {
			if bar == nil {
				bar = progressbar.NewOptions(planned, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("eval"), progressbar.OptionShowCount(), progressbar.OptionSetWidth(30))
			}
			bar.Set(done)
		}
	}
	last := -1
	return func(done, planned int) {
		if tenth := done * 10 / max(planned, 1); tenth != last || done == planned {
			last = tenth
			fmt.Fprintf(stderr, "eval: %d/%d attempts\n", done, planned)
		}
	}
}

// writeReports writes report.json and report.html into dir.
func writeReports(dir string, r *eval.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, w := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"report.json", r.WriteJSON},
		{"report.html", func(w io.Writer) error { return eval.WriteHTML(w, r) }},
	} {
		path := filepath.Join(dir, w.name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := w.write(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
