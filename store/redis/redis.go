// Package redis implements the store interfaces on a Redis server, so that
// several Sluice instances share their state: the stream logs that let a
// client resume a stream on any instance, rate limits (limit.go),
// Idempotency-Key records (idempotency.go) and the response cache
// (cache.go), each file describing its keys.
//
// # Layout
//
// Every key starts with a prefix given to the store ("sluice:" by default).
// The prefix should not contain braces, which would change the keys' hash
// tag. A stream log is two keys whose common hash tag {id} puts them in one
// cluster slot, so that a script may use both:
//
//   - <prefix>stream:{<id>}:info is a hash: dialect, owner, touched (when a
//     reader last attached, in Unix milliseconds; absent if none did),
//     finished ("1" once finished) and last (the sequence number of the
//     last event appended, "0" before the first).
//   - <prefix>stream:{<id>}:log is a Redis stream holding event n as the
//     entry with ID 0-n and one field, d, the frame's bytes. Finishing the
//     log adds the entry 1-0, which is greater than every 0-n: it wakes the
//     readers blocked on the stream and tells them the log ended. The key
//     exists from the first event (or the finish) on.
//
// Numbers are stored as decimal strings. Both keys carry the same expiry:
// Create gives the info key the ttl, the append that creates the log key
// gives it the info key's remaining time to live, and Finish sets both to
// the retention. A ttl or retention of zero or less makes the log expire at
// once.
//
// Append and Finish each run as one Lua script, so the order of events is
// checked and kept atomically, whichever instance writes.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// DB is a connection pool to one Redis server. It is safe for concurrent
// use; the stores of this package share it.
type DB struct {
	client *goredis.Client
	// blocking serves the commands that wait (XREAD BLOCK): each holds a
	// connection while it waits, so they have a pool of their own and
	// cannot starve the appends of running streams.
	blocking *goredis.Client
	addr     string // host:port, for messages
}

// blockingPoolSize bounds the connections of waiting readers (resumed
// streams reading their live tail) on one instance.
const blockingPoolSize = 256

// Open connects to the Redis server at rawURL (redis://, rediss:// or
// unix://, with the user, password, database and query options that
// go-redis's ParseURL takes) and checks that it answers a PING within ctx.
// Commands on the returned DB honour the deadlines of their contexts.
//
// Errors name the server's address but never its password.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, parseError(rawURL, err)
	}
	opt.ContextTimeoutEnabled = true
	client := goredis.NewClient(opt)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		err = redact(err, opt.Password)
		if cerr := ctxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
			// The socket deadline taken from ctx fired: say so.
			return nil, fmt.Errorf("open redis at %s: %w: %w", opt.Addr, cerr, err)
		}
		return nil, fmt.Errorf("open redis at %s: %w", opt.Addr, err)
	}
	bopt := *opt
	bopt.PoolSize = blockingPoolSize
	return &DB{client: client, blocking: goredis.NewClient(&bopt), addr: opt.Addr}, nil
}

// Close closes the pool. Commands running on the DB fail.
func (db *DB) Close() error {
	err := errors.Join(db.client.Close(), db.blocking.Close())
	if err != nil {
		return fmt.Errorf("close redis at %s: %w", db.addr, err)
	}
	return nil
}

// parseError returns err, the error of parsing rawURL, without the URL's
// password. If rawURL is not even a URL its password cannot be told apart,
// so the cause is dropped.
func parseError(rawURL string, err error) error {
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return errors.New("open redis: the URL cannot be parsed")
	}
	var secrets []string
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	secrets = append(secrets, u.Query()["password"]...)
	return fmt.Errorf("open redis at %s: %w", u.Host, redact(err, secrets...))
}

// redact returns err, or if its message contains one of secrets, a new
// error whose message has them replaced (dropping err's chain, which would
// still hold them).
func redact(err error, secrets ...string) error {
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
