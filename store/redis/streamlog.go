package redis

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/store"
)

// DefaultPrefix starts the keys of a store whose prefix is "".
const DefaultPrefix = "sluice:"

// defaultBlockTime is how long a reader waits in one XREAD by default.
const defaultBlockTime = time.Second

// readCount is the most entries one XREAD returns.
const readCount = 256

// endID is the ID of the entry that Finish adds after every event.
const endID = "1-0"

// StreamLog is a store.StreamLog kept in Redis, laid out as the package
// documentation describes. It is safe for concurrent use, and several
// StreamLogs on several DBs (one per instance) with the same prefix share
// their logs.
type StreamLog struct {
	db     *DB
	prefix string

	// BlockTime is how long Read waits for new events in one command
	// before it checks that the log still exists (it may have expired) and
	// whether its context ended; the default, when zero, is one second.
	// It bounds how late a reader notices expiry or cancellation (a context
	// deadline is noticed on time). Set it before the first Read.
	BlockTime time.Duration
}

var _ store.StreamLog = (*StreamLog)(nil)

// NewStreamLog returns a StreamLog on db whose keys start with prefix (""
// means DefaultPrefix).
func NewStreamLog(db *DB, prefix string) *StreamLog {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &StreamLog{db: db, prefix: prefix}
}

// keys returns the info and log keys of stream id.
func (l *StreamLog) keys(id string) (info, log string) {
	base := l.prefix + "stream:{" + id + "}:"
	return base + "info", base + "log"
}

// createScript creates the info key of a stream unless it exists, and
// deletes a log key left over by an expired stream of the same id.
// KEYS: info, log. ARGV: dialect, owner, ttl in ms. Returns 1, or 0 if the
// stream exists.
var createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'dialect', ARGV[1], 'owner', ARGV[2], 'last', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// Create implements store.StreamLog. It fails if stream id exists.
func (l *StreamLog) Create(ctx context.Context, id string, info store.StreamInfo, ttl time.Duration) error {
	ik, lk := l.keys(id)
	n, err := createScript.Run(ctx, l.db.client, []string{ik, lk}, info.Dialect, info.Owner, millis(ttl)).Int()
	if err != nil {
		return fmt.Errorf("create stream log %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("create stream log %s: it exists already", id)
	}
	return nil
}

// Results of appendScript.
const (
	appendOK         = 0
	appendNotFound   = 1
	appendFinished   = 2
	appendOutOfOrder = 3
)

// appendScript adds an event to a log if its sequence number follows the
// last one, and gives the log key the info key's time to live when it
// creates it. KEYS: info, log. ARGV: the last sequence number expected, the
// event's sequence number, the frame. Returns {result, last}.
var appendScript = goredis.NewScript(`
local last = redis.call('HGET', KEYS[1], 'last')
if not last then
	return {1, ''}
end
if redis.call('HGET', KEYS[1], 'finished') == '1' then
	return {2, last}
end
if last == ARGV[2] then
	-- The same event again (a retried append whose answer was lost) is
	-- accepted; other bytes under its number are not.
	local e = redis.call('XRANGE', KEYS[2], '0-' .. ARGV[2], '0-' .. ARGV[2])
	if e[1] and e[1][2][2] == ARGV[3] then
		return {0, last}
	end
	return {3, last}
end
if last ~= ARGV[1] then
	return {3, last}
end
local created = redis.call('EXISTS', KEYS[2]) == 0
redis.call('XADD', KEYS[2], '0-' .. ARGV[2], 'd', ARGV[3])
redis.call('HSET', KEYS[1], 'last', ARGV[2])
if created then
	local ttl = redis.call('PTTL', KEYS[1])
	if ttl > 0 then
		redis.call('PEXPIRE', KEYS[2], ttl)
	end
end
return {0, last}
`)

// Append implements store.StreamLog. It fails unless seq is one more than
// the sequence number of the last event, and if the log is finished; it
// returns an error wrapping store.ErrNotFound if the log does not exist.
func (l *StreamLog) Append(ctx context.Context, id string, seq uint64, frame []byte) error {
	if seq == 0 {
		return fmt.Errorf("append to stream log %s: event 0: sequence numbers start at 1", id)
	}
	ik, lk := l.keys(id)
	prev := strconv.FormatUint(seq-1, 10)
	res, err := appendScript.Run(ctx, l.db.client, []string{ik, lk}, prev, strconv.FormatUint(seq, 10), frame).Slice()
	if err != nil {
		return fmt.Errorf("append to stream log %s: %w", id, err)
	}
	code, last, err := scriptResult(res)
	if err != nil {
		return fmt.Errorf("append to stream log %s: %w", id, err)
	}
	switch code {
	case appendOK:
		return nil
	case appendNotFound:
		return fmt.Errorf("append to stream log %s: %w", id, store.ErrNotFound)
	case appendFinished:
		return fmt.Errorf("append to stream log %s: event %d: the log is finished", id, seq)
	case appendOutOfOrder:
		return fmt.Errorf("append to stream log %s: event %d out of order: the last is %s", id, seq, last)
	}
	return fmt.Errorf("append to stream log %s: unexpected script result %d", id, code)
}

// scriptResult decodes the {code, last} reply of appendScript.
func scriptResult(res []any) (int64, string, error) {
	if len(res) == 2 {
		code, ok1 := res[0].(int64)
		last, ok2 := res[1].(string)
		if ok1 && ok2 {
			return code, last, nil
		}
	}
	return 0, "", fmt.Errorf("unexpected script reply %v", res)
}

// finishScript marks a log finished (once), adds its end entry and sets the
// retention of both keys. KEYS: info, log. ARGV: retention in ms. Returns 1,
// or 0 if the log does not exist.
var finishScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
if redis.call('HGET', KEYS[1], 'finished') ~= '1' then
	redis.call('HSET', KEYS[1], 'finished', '1')
	redis.call('XADD', KEYS[2], '1-0', 'd', '')
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`)

// Finish implements store.StreamLog. Finishing a finished log only sets its
// retention again. It returns an error wrapping store.ErrNotFound if the
// log does not exist.
func (l *StreamLog) Finish(ctx context.Context, id string, retention time.Duration) error {
	ik, lk := l.keys(id)
	n, err := finishScript.Run(ctx, l.db.client, []string{ik, lk}, millis(retention)).Int()
	if err != nil {
		return fmt.Errorf("finish stream log %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("finish stream log %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Info implements store.StreamLog.
func (l *StreamLog) Info(ctx context.Context, id string) (store.StreamInfo, error) {
	ik, _ := l.keys(id)
	m, err := l.db.client.HGetAll(ctx, ik).Result()
	if err != nil {
		return store.StreamInfo{}, fmt.Errorf("stream log %s info: %w", id, err)
	}
	if len(m) == 0 {
		return store.StreamInfo{}, fmt.Errorf("stream log %s info: %w", id, store.ErrNotFound)
	}
	info := store.StreamInfo{
		Dialect:  m["dialect"],
		Owner:    m["owner"],
		Finished: m["finished"] == "1",
	}
	if s := m["touched"]; s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return store.StreamInfo{}, fmt.Errorf("stream log %s info: bad touched %q", id, s)
		}
		if ms != 0 {
			info.Touched = time.UnixMilli(ms)
		}
	}
	return info, nil
}

// touchScript sets the touched field of an existing info key. KEYS: info.
// ARGV: the time in Unix ms. Returns 1, or 0 if the key does not exist.
var touchScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
redis.call('HSET', KEYS[1], 'touched', ARGV[1])
return 1
`)

// Touch implements store.StreamLog.
func (l *StreamLog) Touch(ctx context.Context, id string, now time.Time) error {
	ik, _ := l.keys(id)
	n, err := touchScript.Run(ctx, l.db.client, []string{ik}, strconv.FormatInt(now.UnixMilli(), 10)).Int()
	if err != nil {
		return fmt.Errorf("touch stream log %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("touch stream log %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Read implements store.StreamLog. It waits for new events with XREAD
// BLOCK, in the caller's goroutine, BlockTime at a time; between waits
// that time out it checks that the log still exists. A cancelled ctx is
// noticed within BlockTime, a ctx deadline when it passes.
func (l *StreamLog) Read(ctx context.Context, id string, after uint64) iter.Seq2[store.Frame, error] {
	return func(yield func(store.Frame, error) bool) {
		ik, lk := l.keys(id)
		fail := func(err error) {
			if cerr := ctxErr(ctx); cerr != nil {
				err = cerr
			} else {
				err = fmt.Errorf("read stream log %s: %w", id, err)
			}
			yield(store.Frame{}, err)
		}
		exists := func() bool {
			n, err := l.db.client.Exists(ctx, ik).Result()
			if err != nil {
				fail(err)
				return false
			}
			if n == 0 {
				fail(store.ErrNotFound)
				return false
			}
			return true
		}
		if !exists() {
			return
		}
		block := l.BlockTime
		if block <= 0 {
			block = defaultBlockTime
		}
		lastID := "0-" + strconv.FormatUint(after, 10)
		for {
			if err := ctxErr(ctx); err != nil {
				yield(store.Frame{}, err)
				return
			}
			wait := block
			if d, ok := ctx.Deadline(); ok {
				// End the wait on the server when ctx does, rather than
				// by a socket timeout that costs the connection.
				wait = min(wait, time.Until(d))
				if wait < time.Millisecond { // BLOCK 0 would wait forever
					yield(store.Frame{}, context.DeadlineExceeded)
					return
				}
			}
			res, err := l.db.blocking.XRead(ctx, &goredis.XReadArgs{
				Streams: []string{lk, lastID},
				Count:   readCount,
				Block:   wait,
			}).Result()
			if errors.Is(err, goredis.Nil) {
				if !exists() {
					return
				}
				continue
			}
			if err != nil {
				fail(err)
				return
			}
			for _, s := range res {
				for _, m := range s.Messages {
					if m.ID == endID {
						return
					}
					f, err := frame(m)
					if err != nil {
						fail(err)
						return
					}
					if !yield(f, nil) {
						return
					}
					lastID = m.ID
				}
			}
		}
	}
}

// frame decodes the stream entry of an event.
func frame(m goredis.XMessage) (store.Frame, error) {
	s, ok := strings.CutPrefix(m.ID, "0-")
	seq, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		return store.Frame{}, fmt.Errorf("bad entry ID %q", m.ID)
	}
	d, ok := m.Values["d"].(string)
	if !ok {
		return store.Frame{}, fmt.Errorf("entry %s has no frame", m.ID)
	}
	return store.Frame{Seq: seq, Data: []byte(d)}, nil
}

// ctxErr returns ctx's error, or context.DeadlineExceeded if ctx's deadline
// has passed but its timer has not yet fired (a socket deadline set from it
// may fire first).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// millis returns d in whole milliseconds as a decimal string, rounded up so
// that a short positive duration does not become zero; zero or less gives
// "0", which makes PEXPIRE delete the key.
func millis(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	ms := d / time.Millisecond
	if d%time.Millisecond != 0 {
		ms++
	}
	return strconv.FormatInt(int64(ms), 10)
}
