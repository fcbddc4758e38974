package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/store"
)

// Idempotency keeps Idempotency-Key records in Redis, so that every
// instance sharing the server honours the same keys. It is safe for
// concurrent use.
//
// A record is the hash <prefix>idem:{<key>} with the fields hash, done ("1"
// once complete), lease (Unix milliseconds, by the server's clock), stream,
// status, ctype and body, and the record's expiry as the key's.
type Idempotency struct {
	db     *DB
	prefix string
}

// NewIdempotency returns an Idempotency on db whose keys start with prefix
// ("" means DefaultPrefix).
func NewIdempotency(db *DB, prefix string) *Idempotency {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Idempotency{db: db, prefix: prefix}
}

func (s *Idempotency) key(k string) string { return s.prefix + "idem:{" + k + "}" }

// claimScript claims a key unless a record is there that is done or whose
// lease has not ended. KEYS: record. ARGV: hash, lease ms, ttl ms. Returns
// {1} when claimed, else {0, hash, done, lease, stream, status, ctype,
// body}.
var claimScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'hash', 'done', 'lease', 'stream', 'status', 'ctype', 'body')
if r[1] and (r[2] == '1' or tonumber(r[3]) > now) then
  return {0, r[1], r[2] or '0', r[3] or '0', r[4] or '', r[5] or '0', r[6] or '', r[7] or ''}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'done', '0', 'lease', tostring(now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1}
`)

// Claim implements store.Idempotency.
func (s *Idempotency) Claim(ctx context.Context, key, hash string, lease, ttl time.Duration) (store.IdemRecord, bool, error) {
	v, err := claimScript.Run(ctx, s.db.client, []string{s.key(key)}, hash, lease.Milliseconds(), max(ttl.Milliseconds(), 1)).Slice()
	if err != nil {
		return store.IdemRecord{}, false, err
	}
	if n, _ := v[0].(int64); n == 1 {
		return store.IdemRecord{}, true, nil
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	lms, _ := strconv.ParseInt(str(3), 10, 64)
	status, _ := strconv.Atoi(str(5))
	return store.IdemRecord{
		Hash: str(1), Done: str(2) == "1", Lease: time.UnixMilli(lms), StreamID: str(4),
		Status: status, ContentType: str(6), Body: []byte(str(7)),
	}, false, nil
}

// setStreamScript sets the stream of a running record. KEYS: record. ARGV:
// stream id. Returns 0 if there is no record.
var setStreamScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'stream', ARGV[1])
return 1
`)

// SetStream implements store.Idempotency.
func (s *Idempotency) SetStream(ctx context.Context, key, streamID string) error {
	n, err := setStreamScript.Run(ctx, s.db.client, []string{s.key(key)}, streamID).Int()
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

// completeScript stores the answer of a running record. KEYS: record. ARGV:
// status, ctype, body, ttl ms. Returns 0 if there is no record.
var completeScript = goredis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'done')
if not d then return 0 end
if d == '1' then return 1 end
redis.call('HSET', KEYS[1], 'done', '1', 'status', ARGV[1], 'ctype', ARGV[2], 'body', ARGV[3])
redis.call('HDEL', KEYS[1], 'stream')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Complete implements store.Idempotency.
func (s *Idempotency) Complete(ctx context.Context, key string, rec store.IdemRecord, ttl time.Duration) error {
	n, err := completeScript.Run(ctx, s.db.client, []string{s.key(key)}, rec.Status, rec.ContentType, rec.Body, max(ttl.Milliseconds(), 1)).Int()
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

// releaseScript deletes a record that is not done. KEYS: record.
var releaseScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'done') == '0' then redis.call('DEL', KEYS[1]) end
return 1
`)

// Release implements store.Idempotency.
func (s *Idempotency) Release(ctx context.Context, key string) error {
	return releaseScript.Run(ctx, s.db.client, []string{s.key(key)}).Err()
}

// Get implements store.Idempotency.
func (s *Idempotency) Get(ctx context.Context, key string) (store.IdemRecord, error) {
	v, err := s.db.client.HMGet(ctx, s.key(key), "hash", "done", "lease", "stream", "status", "ctype", "body").Result()
	if err != nil {
		return store.IdemRecord{}, err
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	if v[0] == nil {
		return store.IdemRecord{}, store.ErrNotFound
	}
	lms, _ := strconv.ParseInt(str(2), 10, 64)
	status, _ := strconv.Atoi(str(4))
	return store.IdemRecord{
		Hash: str(0), Done: str(1) == "1", Lease: time.UnixMilli(lms), StreamID: str(3),
		Status: status, ContentType: str(5), Body: []byte(str(6)),
	}, nil
}
