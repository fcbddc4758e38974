package pipeline

import (
	"context"
	"fmt"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/redis"
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
