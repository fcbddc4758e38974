package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gw/sluice/store"
)

const keyColumns = `id, hash, name, tenant, tier, user_id, created, disabled, rotated`

// uniqueViolation is PostgreSQL's SQLSTATE for a broken unique constraint.
const uniqueViolation = "23505"

// Constraint names PostgreSQL gives the keys table's unique columns.
const (
	keysIDConstraint   = "keys_pkey"
	keysHashConstraint = "keys_hash_key"
)

// CreateKey implements store.Keys. An empty ID or Hash is an error too.
func (db *DB) CreateKey(ctx context.Context, k store.Key) error {
	if k.ID == "" || k.Hash == "" {
		return errors.New("create key: the key has no ID or no hash")
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.ID, k.Hash, k.Name, k.Tenant, k.Tier, k.User, k.Created, nullTime(k.Disabled), nullTime(k.Rotated))
	if err == nil {
		return nil
	}
	switch constraint(err) {
	case keysIDConstraint:
		return fmt.Errorf("create key %q: the ID exists", k.ID)
	case keysHashConstraint:
		return fmt.Errorf("create key %q: the hash belongs to another key", k.ID)
	}
	return fmt.Errorf("create key %q: %w", k.ID, err)
}

// KeyByHash implements store.Keys.
func (db *DB) KeyByHash(ctx context.Context, hash string) (store.Key, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = $1`, hash))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, err
}

// KeyByID implements store.Keys.
func (db *DB) KeyByID(ctx context.Context, id string) (store.Key, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1`, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Key{}, fmt.Errorf("key %q: %w", id, err)
	}
	return k, err
}

// ListKeys implements store.Keys. Keys created at the same time come in
// order of ID, bytewise.
func (db *DB) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	out, err := store.CollectRows(rows, func(r store.Rows) (store.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// DisableKey implements store.Keys.
func (db *DB) DisableKey(ctx context.Context, id string, now time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE keys SET disabled = coalesce(disabled, $2) WHERE id = $1`, id, now)
	if err != nil {
		return fmt.Errorf("disable key %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// RotateKey implements store.Keys. A hash that belongs to another key is an
// error.
func (db *DB) RotateKey(ctx context.Context, id, hash string, now time.Time) error {
	if hash == "" {
		return fmt.Errorf("rotate key %q: no hash", id)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE keys SET hash = $2, rotated = $3 WHERE id = $1`, id, hash, now)
	if constraint(err) == keysHashConstraint {
		return fmt.Errorf("rotate key %q: the hash belongs to another key", id)
	}
	if err != nil {
		return fmt.Errorf("rotate key %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// constraint returns the name of the unique constraint err broke, or "".
func constraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		return pgErr.ConstraintName
	}
	return ""
}

// scanKey scans the keyColumns of a row; pgx.ErrNoRows is ErrNotFound.
func scanKey(row pgx.Row) (store.Key, error) {
	var k store.Key
	var disabled, rotated *time.Time
	err := row.Scan(&k.ID, &k.Hash, &k.Name, &k.Tenant, &k.Tier, &k.User, &k.Created, &disabled, &rotated)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Key{}, store.ErrNotFound
	}
	if err != nil {
		return store.Key{}, err
	}
	k.Created = k.Created.UTC()
	k.Disabled, k.Rotated = fromNull(disabled), fromNull(rotated)
	return k, nil
}
