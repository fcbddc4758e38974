package pipeline

import (
	"context"
	"fmt"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/postgres"
	"github.com/sluice-gw/sluice/store/redis"
	"github.com/sluice-gw/sluice/store/sqlite"
)

// openState opens the stores cfg.State names, or takes the ones opts
// gives: Redis (shared by instances) where state.redis is set, memory
// otherwise.
func (p *Pipeline) openState(ctx context.Context, cfg *config.Config, opts Options) error {
	var rdb *redis.DB
	shared := func() (*redis.DB, error) {
		if rdb != nil || cfg.State.Redis == "" {
			return rdb, nil
		}
		db, err := redis.Open(ctx, cfg.State.Redis.Value())
		if err != nil {
			return nil, fmt.Errorf("pipeline: state.redis: %w", err)
		}
		p.closers = append(p.closers, db.Close)
		rdb = db
		return db, nil
	}

	p.streams = opts.StreamLog
	if p.streams == nil {
		db, err := shared()
		if err != nil {
			return err
		}
		if db != nil {
			p.streams = redis.NewStreamLog(db, "")
		} else {
			p.streams = memory.NewStreamLog(memory.StreamLogOptions{MaxBytes: cfg.Streams.ResumeMaxBytes})
		}
	}

	p.limiter = opts.Limiter
	if p.limiter == nil {
		db, err := shared()
		if err != nil {
			return err
		}
		if db != nil {
			p.limiter = redis.NewLimiter(db, "")
		}
	}

	p.ledgerStore, p.keys, p.jobs = opts.Ledger, opts.Keys, opts.Jobs
	if p.ledgerStore == nil || p.keys == nil || p.jobs == nil {
		var l store.Ledger
		var k store.Keys
		var j store.Jobs
		switch path := cfg.State.SQLite; {
		case cfg.State.Postgres != "":
			db, err := postgres.Open(ctx, cfg.State.Postgres.Value())
			if err != nil {
				return fmt.Errorf("pipeline: state.postgres: %w", err)
			}
			p.closers = append(p.closers, db.Close)
			l, k, j = db, db, db
		case path != "" && path != "off":
			db, err := sqlite.Open(ctx, path)
			if err != nil {
				return fmt.Errorf("pipeline: state.sqlite: %w", err)
			}
			p.closers = append(p.closers, db.Close)
			l, k, j = db, db, db
		default:
			l, k, j = memory.NewLedger(memory.LedgerOptions{}), memory.NewKeys(), memory.NewJobs()
		}
		if p.jobs == nil {
			p.jobs = j
		}
		if p.ledgerStore == nil {
			p.ledgerStore = l
		}
		if p.keys == nil {
			p.keys = k
		}
	}
	p.ledger = store.NewLedgerWriter(p.ledgerStore, store.LedgerWriterOptions{
		OnError: func(err error, rows int) {
			p.logger.Error("usage ledger write failed; rows kept for a retry", "error", err, "rows", rows)
		},
		OnDrop: func(rows int) {
			p.logger.Error("usage ledger rows dropped: the ledger did not take them in time", "rows", rows)
		},
	})

	if db, err := shared(); err != nil {
		return err
	} else if db != nil {
		p.cache = redis.NewCache(db, "")
	} else {
		p.cache = memory.NewCache(memory.CacheOptions{})
	}

	p.idem = opts.Idempotency
	if p.idem == nil {
		db, err := shared()
		if err != nil {
			return err
		}
		if db != nil {
			p.idem = redis.NewIdempotency(db, "")
		} else {
			p.idem = memory.NewIdempotency(memory.IdempotencyOptions{})
		}
	}
	return nil
}
