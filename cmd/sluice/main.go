// Command sluice runs the Sluice LLM gateway (serve), the provider
// simulator (sim), golden-dataset evaluations (eval), and manages keys
// and usage.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/internal/logbuf"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/telemetry"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// run is main with its dependencies passed in, so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling, so a second
	// Ctrl-C ends the process at once instead of waiting for the drain.
	context.AfterFunc(ctx, stop)
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "Sluice is an LLM gateway: OpenAI and Anthropic dialects in, any provider out",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCommand(getenv, stdout, stderr), simCommand(getenv, stdout, stderr),
		keysCommand(getenv, stdout), usageCommand(getenv, stdout), evalCommand(getenv, stdout, stderr))
	return root.ExecuteContext(ctx)
}

// envOr returns the environment's value of key, or def when unset.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// newLogger returns the logger of format (text, json, or auto: text when
// terminal says the output is a terminal, JSON otherwise) writing to w at
// level.
func newLogger(w io.Writer, terminal bool, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if terminal {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want auto, text or json, got %q", format)
}

// How long a log line may wait in the buffer, and how many bytes may; and
// how many may collect while a write to stderr stalls, before request
// handlers wait for it (some 18,000 request lines).
const (
	logFlush  = 100 * time.Millisecond
	logBuffer = 64 << 10
	logLimit  = 8 << 20
)

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func serveCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var (
		configPath, listen, logLevel, logFormat string
		drain                                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway. With no --config and no provider key in the environment it
serves the built-in simulator, so a first request needs nothing else.
OPENAI_API_KEY and ANTHROPIC_API_KEY in the environment add those providers.
Precedence: flags, then environment (SLUICE_*), then the config file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The log is buffered: under load a write a request line
			// costs more than the line, and a disk's pause would stall
			// every request (internal/logbuf). Lines reach stderr within
			// logFlush, and all of them on return.
			logw := logbuf.New(stderr, logFlush, logBuffer, logLimit)
			defer logw.Close()
			logger, err := newLogger(logw, isTerminal(stderr), logLevel, logFormat)
			if err != nil {
				return err
			}
			var cfg *config.Config
			if configPath != "" {
				if cfg, err = config.Load(configPath, getenv); err != nil {
					return err
				}
			} else {
				cfg = config.Default(getenv)
			}
			if v := getenv("SLUICE_LISTEN"); v != "" {
				cfg.Listen = v
			}
			if cmd.Flags().Changed("listen") {
				cfg.Listen = listen
			}
			if v := getenv("SLUICE_DRAIN_TIMEOUT"); v != "" && !cmd.Flags().Changed("drain-timeout") {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("SLUICE_DRAIN_TIMEOUT: %w", err)
				}
				cfg.DrainTimeout = config.Duration(d)
			}
			if cmd.Flags().Changed("drain-timeout") {
				cfg.DrainTimeout = config.Duration(drain)
			}
			return serve(cmd.Context(), cfg, logger, stdout, getenv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", envOr(getenv, "SLUICE_CONFIG", ""), "YAML config file (env SLUICE_CONFIG); none means the zero-config default")
	f.StringVar(&listen, "listen", "", "address to listen on, host:port (env SLUICE_LISTEN; default from the config, else 127.0.0.1:8080)")
	f.DurationVar(&drain, "drain-timeout", 0, "on SIGTERM/SIGINT, how long in-flight requests may finish before they are ended (env SLUICE_DRAIN_TIMEOUT; default from the config, else 10s)")
	f.StringVar(&logLevel, "log-level", envOr(getenv, "SLUICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SLUICE_LOG_LEVEL)")
	f.StringVar(&logFormat, "log-format", envOr(getenv, "SLUICE_LOG_FORMAT", "auto"), "log format: text, json, or auto: text on a terminal, JSON otherwise (env SLUICE_LOG_FORMAT)")
	return cmd
}

// serve runs the gateway until ctx ends, then drains: new connections are
// refused, in-flight calls get the drain time to finish, and the rest are
// ended with an error event in their dialect.
//
// Traces are exported when the standard OTEL_* variables in getenv ask for
// it (telemetry.NewTracing).
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer, getenv func(string) string) error {
	if err := checkOpen(cfg); err != nil {
		return err
	}
	defaultState(cfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.New(reg)
	if err != nil {
		return err
	}
	tracing, err := telemetry.NewTracing(ctx, getenv)
	if err != nil {
		return err
	}
	if tracing != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tracing.Shutdown(sctx); err != nil {
				logger.Warn("trace export", "error", err)
			}
		}()
		logger.Info("exporting traces over OTLP")
	}
	p, err := pipeline.New(ctx, cfg, pipeline.Options{Logger: logger, Metrics: metrics, Tracing: tracing})
	if err != nil {
		return err
	}
	defer p.Close()
	admin, runKey := adminKey(cfg), false
	if admin == "" && cfg.Auth == nil {
		// The zero-config gateway (loopback only, see checkOpen) gets an
		// admin key for this run, printed below, so that its dashboard
		// works out of the box.
		admin, runKey = "sluice-admin-"+newRunKey(), true
	}
	opts := gateway.Options{
		MaxBodyBytes:       cfg.MaxBodyBytes,
		Heartbeat:          cfg.Streams.Heartbeat.D(),
		StreamWriteTimeout: cfg.Streams.WriteTimeout.D(),
		ResumeGrace:        cfg.Streams.ResumeGrace.D(),
		ResumeRetention:    cfg.Streams.ResumeRetention.D(),
		IdempotencyTTL:     cfg.State.IdempotencyTTL.D(),
		AdminKey:           admin,
		Tracing:            tracing,
		Registry:           reg,
	}
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.Metrics.Listen == "" {
		opts.Metrics = metricsHandler
	} else {
		// /metrics on its own listener (an admin network), not the API's.
		addr, stop, err := serveMetrics(cfg.Metrics.Listen, metricsHandler, logger)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", addr)
	}
	gw := gateway.New(logger, p, opts)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Queued jobs run beside the server, until it stops (before the
	// pipeline closes).
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	var jobsDone sync.WaitGroup
	jobsDone.Go(func() { gw.RunJobs(jobsCtx, jobWorkers) })
	defer func() {
		stopJobs()
		jobsDone.Wait()
	}()
	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "sluice listening on http://%s\n", addr)
	if cfg.Simulated {
		fmt.Fprintf(stdout, "no OPENAI_API_KEY or ANTHROPIC_API_KEY set: serving the built-in simulator\n")
	}
	if !cfg.KeysRequired() {
		fmt.Fprintf(stdout, "no auth section: any API key is accepted (add auth to the config to require keys)\n")
	}
	fmt.Fprintf(stdout, "models: %s\n", strings.Join(p.Models(), ", "))
	switch {
	case runKey:
		fmt.Fprintf(stdout, "dashboard: http://%s/ui (admin key for this run: %s; it also opens /admin; to choose one: auth: {admin_key: ..., allow_open: true})\n", addr, admin)
	case admin != "":
		fmt.Fprintf(stdout, "dashboard: http://%s/ui (sign in with auth.admin_key)\n", addr)
	}
	if models := p.Models(); len(models) > 0 {
		fmt.Fprintf(stdout, "try: curl -N http://%s/v1/chat/completions -H 'content-type: application/json' -d '{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'\n", addr, models[0])
	}
	return serveUntil(ctx, gw, ln, time.Duration(cfg.DrainTimeout), logger)
}

// serveMetrics serves GET /metrics (h) and GET /healthz on addr until stop
// is called; bound is the address it listens on.
func serveMetrics(addr string, h http.Handler, logger *slog.Logger) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics listener", "error", err)
		}
	}()
	return ln.Addr().String(), func() {
		srv.Close()
		<-done
	}, nil
}

// newRunKey returns 24 random hex digits.
func newRunKey() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// jobWorkers is how many queued jobs an instance runs at once.
const jobWorkers = 4

// serveUntil serves h on ln until ctx ends, then shuts down gracefully.
func serveUntil(ctx context.Context, gw *gateway.Gateway, ln net.Listener, drain time.Duration, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "drain_timeout", drain)
	gw.Drain()
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	err := srv.Shutdown(dctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		// The drain time is over: end what is left with an error event, and
		// give the handlers a moment to write it.
		logger.Warn("drain timeout reached; ending the remaining requests")
		gw.Abort()
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(actx)
		cancel()
		if err != nil {
			srv.Close()
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func simCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var (
		listen, fault string
		tokens        int
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the provider simulator: an upstream that speaks the OpenAI and Anthropic APIs",
		Long: `Run the provider simulator as an HTTP server speaking both upstream APIs
(POST /v1/chat/completions, POST /v1/messages, GET /v1/models), with faults
from --fault for every request or from the X-Sim-Fault header per request.
Fault syntax: latency=200ms,ttft=1s,chunk_delay=10ms,stall_after=5,drop_after=5,error_at=3,
status=429,retry_after=2s,prose,truncate,tokens=100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := sim.ParseFault(fault)
			if err != nil {
				return fmt.Errorf("--fault: %w", err)
			}
			srv := sim.NewServer(sim.Options{Name: "sim", Fault: f, Tokens: tokens})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			fmt.Fprintf(stdout, "sluice sim listening on http://%s\n", ln.Addr())
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				hs.Close()
			}
			<-errc
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", envOr(getenv, "SLUICE_SIM_LISTEN", "127.0.0.1:9090"), "address to listen on (env SLUICE_SIM_LISTEN)")
	cmd.Flags().StringVar(&fault, "fault", envOr(getenv, "SLUICE_SIM_FAULT", ""), "faults for every request (env SLUICE_SIM_FAULT)")
	cmd.Flags().IntVar(&tokens, "tokens", 0, "answer length in tokens (default 24)")
	return cmd
}
