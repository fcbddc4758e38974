package guard

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		secret, id := NewKey()
		if !WellFormed(secret) || len(secret) != len(KeyPrefix)+secretDigits {
			t.Fatalf("NewKey secret %q is not well formed", secret)
		}
		if !strings.HasPrefix(id, "key_") || len(id) != 4+idDigits {
			t.Fatalf("NewKey id %q", id)
		}
		if seen[secret] || seen[id] {
			t.Fatalf("NewKey repeated itself")
		}
		seen[secret], seen[id] = true, true
	}
	if h := HashKey("abc"); h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashKey(abc) = %s", h)
	}
	for _, bad := range []string{"", "sk-sluice-", "sk-sluice-" + strings.Repeat("a", 42), "sk-sluice-" + strings.Repeat("a", 42) + "!", "sk-other-" + strings.Repeat("a", 43)} {
		if WellFormed(bad) {
			t.Errorf("WellFormed(%q)", bad)
		}
	}
}

func TestKeyFromHeader(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Authorization": {"Bearer sk-1"}}, "sk-1"},
		{http.Header{"Authorization": {"bearer  sk-1 "}}, "sk-1"},
		{http.Header{"X-Api-Key": {"sk-2"}}, "sk-2"},
		{http.Header{"Authorization": {"Bearer sk-1"}, "X-Api-Key": {"sk-2"}}, "sk-1"},
		{http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}, "X-Api-Key": {"sk-2"}}, "sk-2"},
		{http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, ""},
		{http.Header{}, ""},
	} {
		if got := KeyFromHeader(tc.h); got != tc.want {
			t.Errorf("KeyFromHeader(%v) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

func isUnauthenticated(err error) bool {
	var e *sluice.Error
	return errors.As(err, &e) && e.Code == sluice.CodeUnauthenticated && e.Message == sluice.CodeUnauthenticated.DefaultMessage()
}

func TestAuthenticate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		keys := &fakeKeys{}
		a := NewAuthenticator(keys, AuthOptions{TTL: 30 * time.Second, NegativeTTL: 5 * time.Second})
		secret, k, err := a.Create(ctx, KeySpec{Name: "ci", Tenant: "acme", Tier: "pro", User: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		if k.Hash != HashKey(secret) || k.Tenant != "acme" || k.Tier != "pro" || k.User != "u1" || k.Created.IsZero() {
			t.Fatalf("created %+v", k)
		}
		got, err := a.Authenticate(ctx, secret)
		if err != nil || got.ID != k.ID {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		// Cached: no second lookup within the TTL.
		a.Authenticate(ctx, secret)
		if n := keys.count(); n != 1 {
			t.Errorf("%d lookups, want 1 (cached)", n)
		}

		// Unknown, malformed, empty and huge keys are all unauthenticated,
		// with one message; all but empty and huge ones are looked up.
		before := keys.count()
		for _, bad := range []string{NewKeyOnly(), "sk-sluice-short", "x", "not a key at all!"} {
			if _, err := a.Authenticate(ctx, bad); !isUnauthenticated(err) {
				t.Errorf("Authenticate(%q) = %v, want unauthenticated", bad, err)
			}
		}
		if n := keys.count() - before; n != 4 {
			t.Errorf("%d lookups for 4 bad keys, want 4 (malformed keys are looked up too)", n)
		}
		for _, bad := range []string{"", strings.Repeat("k", maxSecretLen+1)} {
			if _, err := a.Authenticate(ctx, bad); !isUnauthenticated(err) {
				t.Errorf("Authenticate(%.10q…) = %v, want unauthenticated", bad, err)
			}
		}
		// An unknown key is cached as such too.
		before = keys.count()
		a.Authenticate(ctx, "x")
		if keys.count() != before {
			t.Error("an unknown key was looked up again within the negative TTL")
		}

		// Rotate: the old secret stops at once here, the new one works.
		newSecret, err := a.Rotate(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, secret); !isUnauthenticated(err) {
			t.Errorf("old secret after rotation: %v", err)
		}
		if got, err := a.Authenticate(ctx, newSecret); err != nil || got.ID != k.ID || got.Rotated.IsZero() {
			t.Errorf("new secret after rotation: %+v, %v", got, err)
		}

		// Disable: refused at once here.
		if err := a.Disable(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, newSecret); !isUnauthenticated(err) {
			t.Errorf("disabled key: %v", err)
		}
		if err := a.Disable(ctx, "key_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Disable(unknown) = %v", err)
		}
		if _, err := a.Rotate(ctx, "key_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Rotate(unknown) = %v", err)
		}
		list, err := a.List(ctx)
		if err != nil || len(list) != 1 || list[0].Disabled.IsZero() {
			t.Errorf("List = %+v, %v", list, err)
		}
	})
}

// NewKeyOnly returns a well-formed secret that no store holds.
func NewKeyOnly() string {
	s, _ := NewKey()
	return s
}

// TestAuthenticateOtherInstance: a key disabled or rotated through another
// instance (the store changes under this one) keeps working here until its
// TTL ends, then stops; Forget ends it at once.
func TestAuthenticateOtherInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		keys := &fakeKeys{}
		here := NewAuthenticator(keys, AuthOptions{TTL: 30 * time.Second})
		there := NewAuthenticator(keys, AuthOptions{})
		secret, k, err := there.Create(ctx, KeySpec{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := here.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		there.Disable(ctx, k.ID)
		time.Sleep(29 * time.Second)
		if _, err := here.Authenticate(ctx, secret); err != nil {
			t.Errorf("within the TTL: %v, want the cached key", err)
		}
		time.Sleep(2 * time.Second)
		if _, err := here.Authenticate(ctx, secret); !isUnauthenticated(err) {
			t.Errorf("after the TTL: %v, want unauthenticated", err)
		}

		secret2, k2, _ := there.Create(ctx, KeySpec{Tenant: "acme"})
		here.Authenticate(ctx, secret2)
		there.Rotate(ctx, k2.ID)
		here.Forget(k2.ID)
		if _, err := here.Authenticate(ctx, secret2); !isUnauthenticated(err) {
			t.Errorf("after Forget: %v, want unauthenticated", err)
		}

		// A key created elsewhere after being presented here is refused for
		// at most the negative TTL.
		secret3, id3 := NewKey()
		if _, err := here.Authenticate(ctx, secret3); !isUnauthenticated(err) {
			t.Fatal(err)
		}
		keys.CreateKey(ctx, store.Key{ID: id3, Hash: HashKey(secret3)})
		time.Sleep(6 * time.Second)
		if _, err := here.Authenticate(ctx, secret3); err != nil {
			t.Errorf("after the negative TTL: %v", err)
		}
	})
}

func TestAuthenticateStoreDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		keys := &fakeKeys{}
		a := NewAuthenticator(keys, AuthOptions{TTL: 10 * time.Second, MaxStale: time.Minute})
		secret, _, _ := a.Create(ctx, KeySpec{})
		a.Authenticate(ctx, secret)
		keys.setFail(errors.New("database is locked"))
		time.Sleep(30 * time.Second)
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Errorf("stale key while the store is down: %v", err)
		}
		time.Sleep(time.Minute)
		_, err := a.Authenticate(ctx, secret)
		if sluice.ErrorCode(err) != sluice.CodeInternal || strings.Contains(sluice.AsError(err).Message, "locked") {
			t.Errorf("store down, nothing fresh enough cached: %v, want a safe internal error", err)
		}
		if _, err := a.Authenticate(ctx, NewKeyOnly()); sluice.ErrorCode(err) != sluice.CodeInternal {
			t.Errorf("unknown key while the store is down: %v, want internal", err)
		}
	})
}

func TestAuthenticateCacheBound(t *testing.T) {
	ctx := context.Background()
	keys := &fakeKeys{}
	a := NewAuthenticator(keys, AuthOptions{MaxEntries: 100})
	for range 1000 {
		a.Authenticate(ctx, NewKeyOnly())
	}
	a.mu.RLock()
	n := len(a.cache)
	a.mu.RUnlock()
	if n > 100 {
		t.Errorf("cache holds %d entries, bound 100", n)
	}
}

func TestAuthenticateConcurrent(t *testing.T) {
	ctx := context.Background()
	keys := &fakeKeys{}
	a := NewAuthenticator(keys, AuthOptions{MaxEntries: 50})
	secret, k, _ := a.Create(ctx, KeySpec{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if j%3 == 0 {
					a.Authenticate(ctx, NewKeyOnly())
					continue
				}
				if got, err := a.Authenticate(ctx, secret); err != nil || got.ID != k.ID {
					t.Errorf("goroutine %d: %v", i, err)
					return
				}
				if j%50 == 0 {
					a.Forget(k.ID)
				}
			}
		})
	}
	wg.Wait()
}

// gatedKeys counts the lookups of its keys and holds each at gate while one
// is set.
type gatedKeys struct {
	*fakeKeys
	calls atomic.Int32
	gate  atomic.Pointer[chan struct{}]
}

func (g *gatedKeys) KeyByHash(ctx context.Context, hash string) (store.Key, error) {
	g.calls.Add(1)
	if c := g.gate.Load(); c != nil {
		<-*c
	}
	return g.fakeKeys.KeyByHash(ctx, hash)
}

// A busy key past its TTL is looked up once: the calls made meanwhile get
// the answer cached, and the refreshed answer holds for a new TTL. A key
// disabled elsewhere is refused once the one lookup has seen it.
func TestAuthenticateExpiryLooksUpOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		keys := &gatedKeys{fakeKeys: &fakeKeys{}}
		a := NewAuthenticator(keys, AuthOptions{TTL: 30 * time.Second})
		secret, k, err := a.Create(ctx, KeySpec{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		time.Sleep(31 * time.Second)

		gate := make(chan struct{})
		keys.gate.Store(&gate)
		before := keys.calls.Load()
		refreshed := make(chan error, 1)
		go func() {
			_, err := a.Authenticate(ctx, secret)
			refreshed <- err
		}()
		synctest.Wait() // the first call waits on the store
		for i := range 50 {
			if got, err := a.Authenticate(ctx, secret); err != nil || got.ID != k.ID {
				t.Fatalf("call %d during the lookup: %+v, %v, want the cached key", i, got, err)
			}
		}
		if n := keys.calls.Load() - before; n != 1 {
			t.Errorf("%d lookups for 51 calls past the TTL, want 1", n)
		}
		keys.gate.Store(nil)
		close(gate)
		if err := <-refreshed; err != nil {
			t.Fatal(err)
		}
		time.Sleep(29 * time.Second)
		if _, err := a.Authenticate(ctx, secret); err != nil || keys.calls.Load()-before != 1 {
			t.Errorf("within the new TTL: %v after %d lookups, want the refreshed key and no lookup", err, keys.calls.Load()-before)
		}

		// Disabled on another instance: past the TTL, the call that looks
		// it up is refused, and so is every call after it.
		there := NewAuthenticator(keys.fakeKeys, AuthOptions{})
		if err := there.Disable(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		for i := range 3 {
			if _, err := a.Authenticate(ctx, secret); !isUnauthenticated(err) {
				t.Errorf("call %d after the TTL of a disabled key: %v, want unauthenticated", i, err)
			}
		}
	})
}
