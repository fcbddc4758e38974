package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/store"
)

// checkOpen refuses to serve on an address other hosts can reach with no
// keys required, unless the config says so (auth.allow_open).
func checkOpen(cfg *config.Config) error {
	if cfg.Auth != nil {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to serve on %s without API keys: add an auth section to the config "+
		"(keys are then required), or set auth: {allow_open: true} to serve it open on purpose", cfg.Listen)
}

// defaultState gives a config that names no database the embedded
// default: the SQLite file DefaultSQLitePath.
func defaultState(cfg *config.Config) {
	if cfg.State.SQLite == "" && cfg.State.Postgres == "" {
		cfg.State.SQLite = config.DefaultSQLitePath
	}
}

func adminKey(cfg *config.Config) string {
	if cfg.Auth == nil {
		return ""
	}
	return cfg.Auth.AdminKey.Value()
}

// withState loads the config at path (or the default), opens the pipeline
// over its state and runs f on it, for the commands that read and write
// keys and the ledger.
func withState(ctx context.Context, path string, getenv func(string) string, f func(*pipeline.Pipeline) error) error {
	cfg := config.Default(getenv)
	if path != "" {
		var err error
		if cfg, err = config.Load(path, getenv); err != nil {
			return err
		}
	}
	defaultState(cfg)
	p, err := pipeline.New(ctx, cfg, pipeline.Options{})
	if err != nil {
		return err
	}
	defer p.Close()
	return f(p)
}

func keysCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, disable and rotate API keys",
		Long: `Manage the API keys in the config's state (state.postgres, else state.sqlite,
default ./sluice.db). Only a hash of each key is stored: a new or rotated key
is printed once, alone on the last line.`,
	}
	cmd.PersistentFlags().StringVar(&configPath, "config", envOr(getenv, "SLUICE_CONFIG", ""), "YAML config file (env SLUICE_CONFIG)")

	var tier, tenant, user, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key; prints it alone on the last line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(cmd.Context(), configPath, getenv, func(p *pipeline.Pipeline) error {
				if !p.HasTier(tier) {
					return fmt.Errorf("--tier %q: no such tier in the config", tier)
				}
				secret, k, err := p.Auth().Create(cmd.Context(), guard.KeySpec{Name: name, Tenant: tenant, Tier: tier, User: user})
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "created key %s (tier %s, tenant %q); it is shown only once:\n%s\n", k.ID, k.Tier, k.Tenant, secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&tier, "tier", "", "the key's tier (required)")
	create.Flags().StringVar(&tenant, "tenant", "", "the tenant that owns the key")
	create.Flags().StringVar(&user, "user", "", "the end user the key acts for")
	create.Flags().StringVar(&name, "name", "", "a label for people")
	create.MarkFlagRequired("tier")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(cmd.Context(), configPath, getenv, func(p *pipeline.Pipeline) error {
				keys, err := p.Auth().List(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					views := make([]gateway.KeyView, 0, len(keys))
					for _, k := range keys {
						views = append(views, gateway.KeyViewOf(k)) // never the hash
					}
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(map[string]any{"keys": views})
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tTENANT\tTIER\tUSER\tCREATED\tSTATE")
				for _, k := range keys {
					state := "active"
					if !k.Disabled.IsZero() {
						state = "disabled " + k.Disabled.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Tenant, k.Tier, k.User, k.Created.UTC().Format(time.RFC3339), state)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	disable := &cobra.Command{
		Use:   "disable ID",
		Short: "Disable a key at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd.Context(), configPath, getenv, func(p *pipeline.Pipeline) error {
				if err := p.Auth().Disable(cmd.Context(), args[0]); err != nil {
					return keyErr(args[0], err)
				}
				fmt.Fprintf(stdout, "disabled %s\n", args[0])
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate ID",
		Short: "Give a key a new secret (the old one stops working); prints it alone on the last line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd.Context(), configPath, getenv, func(p *pipeline.Pipeline) error {
				secret, err := p.Auth().Rotate(cmd.Context(), args[0])
				if err != nil {
					return keyErr(args[0], err)
				}
				fmt.Fprintf(stdout, "rotated %s; the new key is shown only once:\n%s\n", args[0], secret)
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, disable, rotate)
	return cmd
}

func keyErr(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no key %q", id)
	}
	return err
}

func usageCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var configPath, by, from, to, key, tenant string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Print spend and tokens from the usage ledger",
		Long: `Print the usage ledger's totals, grouped by key, tenant, model or day, between
--from and --to (RFC 3339 times or 2006-01-02 dates, UTC). The admin API's
GET /admin/usage serves the same as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := gateway.UsageQuery(by, from, to)
			if err != nil {
				return err
			}
			q.KeyID, q.Tenant = key, tenant
			return withState(cmd.Context(), configPath, getenv, func(p *pipeline.Pipeline) error {
				totals, err := p.Ledger().Usage(cmd.Context(), q)
				if err != nil {
					return err
				}
				report := gateway.UsageReport(by, totals)
				if asJSON {
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(report)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, strings.ToUpper(cmp(by, "all"))+"\tREQUESTS\tERRORS\tINPUT\tOUTPUT\tCACHED\tREASONING\tCOST USD\t")
				rows := append(report["groups"].([]gateway.UsageRow), report["total"].(gateway.UsageRow))
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.6f\t\n", cmp(r.Group, "-"), r.Requests, r.Errors,
						r.InputTokens, r.OutputTokens, r.CachedTokens, r.ReasoningTokens, r.CostUSD)
				}
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", envOr(getenv, "SLUICE_CONFIG", ""), "YAML config file (env SLUICE_CONFIG)")
	f.StringVar(&by, "by", "", "group by key, tenant, model or day (default: one total)")
	f.StringVar(&from, "from", "", "first time counted (RFC 3339 or date)")
	f.StringVar(&to, "to", "", "end of the period, not counted (RFC 3339 or date)")
	f.StringVar(&key, "key", "", "count only this key id")
	f.StringVar(&tenant, "tenant", "", "count only this tenant")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
