package guard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

// KeyPrefix starts every API key Sluice makes, so that a key found in a
// log or a repository is recognisable (and can be scanned for).
const KeyPrefix = "sk-sluice-"

// Key formats: the secret is KeyPrefix and 43 base62 digits (32 random
// bytes); the id, which may be shown anywhere, is "key_" and 16 base62
// digits (about 95 random bits).
const (
	secretDigits = 43
	idDigits     = 16
	// maxSecretLen bounds what is hashed and looked up: longer values are
	// refused at once (their length says nothing about which keys exist).
	maxSecretLen = 256
)

// NewKey returns a new random API key and a new public id for it. Only
// HashKey(secret) is stored; the secret is shown once, to whoever asked
// for it.
func NewKey() (secret, id string) {
	return KeyPrefix + randomBase62(32, secretDigits), "key_" + randomBase62(12, idDigits)
}

// randomBase62 returns n random bytes as exactly digits base62 digits.
func randomBase62(n, digits int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	s := new(big.Int).SetBytes(b).Text(62)
	if len(s) < digits {
		s = strings.Repeat("0", digits-len(s)) + s
	}
	return s[len(s)-digits:]
}

// HashKey returns the hex SHA-256 of secret: what store.Key.Hash holds.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// WellFormed reports whether secret has the shape of a key NewKey makes.
// Authenticate does not use it to skip the lookup: a malformed key is
// hashed and looked up like any other.
func WellFormed(secret string) bool {
	rest, ok := strings.CutPrefix(secret, KeyPrefix)
	if !ok || len(rest) != secretDigits {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// KeyFromHeader returns the API key a request presents: the token of
// "Authorization: Bearer <key>" (OpenAI's SDKs and Anthropic's v2 SDK), or
// else the x-api-key header (Anthropic's v1 SDK). It returns "" when there
// is neither.
func KeyFromHeader(h http.Header) string {
	if a := h.Get("Authorization"); a != "" {
		scheme, token, ok := strings.Cut(a, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
	}
	return strings.TrimSpace(h.Get("X-Api-Key"))
}

// errUnauthenticated is the one answer to every key that does not work:
// missing, malformed, unknown, disabled or replaced.
func errUnauthenticated(cause error) error {
	return &sluice.Error{Code: sluice.CodeUnauthenticated, Message: sluice.CodeUnauthenticated.DefaultMessage(), Err: cause}
}

var (
	errNoKey       = errors.New("no API key")
	errKeyTooLong  = errors.New("API key too long")
	errUnknownKey  = errors.New("unknown API key")
	errDisabledKey = errors.New("disabled API key")
)

// AuthOptions tune an Authenticator. The zero value of each field means its
// default.
type AuthOptions struct {
	// TTL is how long a key found in the store is trusted without asking
	// again (default 30s). It bounds how long a key disabled or rotated on
	// another instance keeps working here; this instance forgets at once.
	TTL time.Duration
	// NegativeTTL is how long a key not found (or disabled) is refused
	// without asking again (default 5s). It bounds how long a key created
	// on another instance is refused here.
	NegativeTTL time.Duration
	// MaxStale is how long past its TTL a trusted key is still accepted
	// while the store fails to answer (default 5m; negative: never).
	// Within it, a trusted key past its TTL is also accepted while another
	// call asks the store again for it, so that a busy key's expiry sends
	// one lookup to the store, not every call in flight.
	MaxStale time.Duration
	// MaxEntries bounds the cache (default 10000 keys; entries are keyed by
	// hash, never by secret).
	MaxEntries int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (o *AuthOptions) fill() {
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 5 * time.Second
	}
	if o.MaxStale == 0 {
		o.MaxStale = 5 * time.Minute
	} else if o.MaxStale < 0 {
		o.MaxStale = 0
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// An Authenticator checks API keys against a store.Keys, through a small
// cache, and manages keys (create, list, disable, rotate) so that its
// cache forgets changed keys at once. It is safe for concurrent use.
//
// Every key presented is hashed, then looked up once, in the cache or else
// the store, whatever its shape: unknown, disabled, replaced and malformed
// keys take the same path and get the same unauthenticated error, so the
// answer's timing does not tell which keys exist. (Known and unknown keys
// are both cached; only whether a key was presented in the last seconds
// shows.)
type Authenticator struct {
	keys store.Keys
	opts AuthOptions

	mu    sync.RWMutex
	cache map[string]authEntry // by hash
	// gen counts invalidations (Forget, Create): the answer of a lookup
	// that raced with one is not cached, so a key disabled during its
	// lookup is not trusted for a TTL.
	gen uint64
	// refreshing holds the hashes being looked up again past their TTL.
	refreshing map[string]struct{}
}

type authEntry struct {
	key     store.Key // zero for a refused key
	ok      bool
	expires time.Time
}

// NewAuthenticator returns an Authenticator over keys.
func NewAuthenticator(keys store.Keys, opts AuthOptions) *Authenticator {
	opts.fill()
	return &Authenticator{keys: keys, opts: opts, cache: make(map[string]authEntry), refreshing: make(map[string]struct{})}
}

// Authenticate returns the stored key whose secret is secret. Any key that
// does not work is an *sluice.Error with code unauthenticated; a store that
// fails (with no recent answer cached) is an internal error.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (store.Key, error) {
	if secret == "" {
		return store.Key{}, errUnauthenticated(errNoKey)
	}
	if len(secret) > maxSecretLen {
		return store.Key{}, errUnauthenticated(errKeyTooLong)
	}
	hash := HashKey(secret)
	now := a.opts.Now()
	a.mu.RLock()
	e, cached := a.cache[hash]
	gen := a.gen
	a.mu.RUnlock()
	if cached && now.Before(e.expires) {
		return e.result()
	}
	if cached && e.ok && now.Before(e.expires.Add(a.opts.MaxStale)) {
		// A trusted key past its TTL: one call asks the store again and
		// the others keep the key until the answer is back. Without this,
		// every call of a busy key in flight at its expiry queued at the
		// store. (A refused key is asked again by every call: it may have
		// been created since, and it is rarely busy.)
		if !a.startRefresh(hash) {
			return e.result()
		}
		defer a.endRefresh(hash)
	}
	k, err := a.keys.KeyByHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.put(hash, authEntry{expires: now.Add(a.opts.NegativeTTL)}, now, gen)
		return store.Key{}, errUnauthenticated(errUnknownKey)
	case err != nil:
		if cached && e.ok && now.Before(e.expires.Add(a.opts.MaxStale)) {
			return e.key, nil
		}
		return store.Key{}, sluice.WrapError(sluice.CodeInternal, fmt.Errorf("look up API key: %w", err))
	case !k.Disabled.IsZero():
		a.put(hash, authEntry{expires: now.Add(a.opts.NegativeTTL)}, now, gen)
		return store.Key{}, errUnauthenticated(errDisabledKey)
	}
	a.put(hash, authEntry{key: k, ok: true, expires: now.Add(a.opts.TTL)}, now, gen)
	return k, nil
}

// startRefresh reports whether the caller is to look hash up again, no
// other call doing it.
func (a *Authenticator) startRefresh(hash string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, busy := a.refreshing[hash]; busy {
		return false
	}
	a.refreshing[hash] = struct{}{}
	return true
}

func (a *Authenticator) endRefresh(hash string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.refreshing, hash)
}

func (e authEntry) result() (store.Key, error) {
	if e.ok {
		return e.key, nil
	}
	return store.Key{}, errUnauthenticated(errUnknownKey)
}

// put caches e, unless Forget was called since the lookup began (gen),
// making room first when the cache is full: expired entries go, then (if
// that was not enough) an arbitrary tenth.
func (a *Authenticator) put(hash string, e authEntry, now time.Time, gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return
	}
	if _, ok := a.cache[hash]; !ok && len(a.cache) >= a.opts.MaxEntries {
		for h, old := range a.cache {
			if !now.Before(old.expires.Add(a.opts.MaxStale)) {
				delete(a.cache, h)
			}
		}
		for h := range a.cache {
			if len(a.cache) < a.opts.MaxEntries-a.opts.MaxEntries/10 {
				break
			}
			delete(a.cache, h)
		}
	}
	a.cache[hash] = e
}

// Forget drops what the cache holds of key id, so that its next use asks
// the store. Call it when another instance reports a change to the key;
// Disable and Rotate call it themselves.
func (a *Authenticator) Forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	for h, e := range a.cache {
		if e.key.ID == id {
			delete(a.cache, h)
		}
	}
}

// KeySpec describes a key to create.
type KeySpec struct {
	Name   string // a label for people
	Tenant string // the owner
	Tier   string // the name of the key's tier
	User   string // the end user the key acts for; optional
}

// Create makes a new key, stores its hash and returns the secret (shown
// once, never stored) and the stored key.
func (a *Authenticator) Create(ctx context.Context, spec KeySpec) (secret string, k store.Key, err error) {
	secret, id := NewKey()
	k = store.Key{
		ID: id, Hash: HashKey(secret),
		Name: spec.Name, Tenant: spec.Tenant, Tier: spec.Tier, User: spec.User,
		Created: a.opts.Now().UTC(),
	}
	if err := a.keys.CreateKey(ctx, k); err != nil {
		return "", store.Key{}, fmt.Errorf("create API key: %w", err)
	}
	// The new hash may be cached as unknown (someone presented it before
	// it existed: vanishingly unlikely, but cheap to rule out).
	a.mu.Lock()
	a.gen++
	delete(a.cache, k.Hash)
	a.mu.Unlock()
	return secret, k, nil
}

// List returns every key, oldest first.
func (a *Authenticator) List(ctx context.Context) ([]store.Key, error) {
	return a.keys.ListKeys(ctx)
}

// Disable disables key id. It stops working on this instance at once and
// on others within their AuthOptions.TTL. It returns store.ErrNotFound for
// an unknown id.
func (a *Authenticator) Disable(ctx context.Context, id string) error {
	err := a.keys.DisableKey(ctx, id, a.opts.Now().UTC())
	a.Forget(id)
	return err
}

// Rotate gives key id a new secret and returns it. The old secret stops
// working on this instance at once and on others within their
// AuthOptions.TTL. It returns store.ErrNotFound for an unknown id.
func (a *Authenticator) Rotate(ctx context.Context, id string) (secret string, err error) {
	secret, _ = NewKey()
	err = a.keys.RotateKey(ctx, id, HashKey(secret), a.opts.Now().UTC())
	a.Forget(id)
	if err != nil {
		return "", err
	}
	return secret, nil
}
