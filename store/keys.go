package store

import (
	"context"
	"time"
)

// A Key is an API key as stored: never the key itself, only a hash of it.
type Key struct {
	// ID is the key's public identifier (it appears in logs, the ledger and
	// the admin API); Hash the hex SHA-256 of the secret key.
	ID   string
	Hash string
	// Name is a label for people; Tenant owns the key, Tier names its
	// limits, User the end user it acts for (optional).
	Name   string
	Tenant string
	Tier   string
	User   string
	// Created is when the key was made; Disabled when it was disabled (zero
	// while it works); Rotated when its secret last changed (zero if never).
	Created  time.Time
	Disabled time.Time
	Rotated  time.Time
}

// Keys stores API keys. Implementations are safe for concurrent use.
type Keys interface {
	// CreateKey stores k. An ID or Hash already stored is an error.
	CreateKey(ctx context.Context, k Key) error
	// KeyByHash returns the key whose Hash is hash (disabled or not), or
	// ErrNotFound.
	KeyByHash(ctx context.Context, hash string) (Key, error)
	// KeyByID returns key id, or ErrNotFound.
	KeyByID(ctx context.Context, id string) (Key, error)
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]Key, error)
	// DisableKey disables key id at now, or returns ErrNotFound. Disabling
	// a disabled key keeps its first time.
	DisableKey(ctx context.Context, id string, now time.Time) error
	// RotateKey replaces key id's hash (the old secret stops working at
	// once) and sets Rotated to now, or returns ErrNotFound.
	RotateKey(ctx context.Context, id, hash string, now time.Time) error
}
