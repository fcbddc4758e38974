package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/sluice-gw/sluice/store"
)

const keyColumns = `id, hash, name, tenant, tier, user_id, created, disabled, rotated`

// CreateKey implements store.Keys. An empty ID or Hash is an error too.
func (db *DB) CreateKey(ctx context.Context, k store.Key) error {
	if k.ID == "" || k.Hash == "" {
		return errors.New("create key: the key has no ID or no hash")
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Hash, k.Name, k.Tenant, k.Tier, k.User, k.Created.UnixMicro(), nullMicro(k.Disabled), nullMicro(k.Rotated))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY):
		return fmt.Errorf("create key %q: the ID exists", k.ID)
	case errors.Is(err, sqlite3.CONSTRAINT_UNIQUE):
		return fmt.Errorf("create key %q: the hash belongs to another key", k.ID)
	}
	return fmt.Errorf("create key %q: %w", k.ID, err)
}

// KeyByHash implements store.Keys.
func (db *DB) KeyByHash(ctx context.Context, hash string) (store.Key, error) {
	k, err := scanKey(db.read.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = ?`, hash))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, err
}

// KeyByID implements store.Keys.
func (db *DB) KeyByID(ctx context.Context, id string) (store.Key, error) {
	k, err := scanKey(db.read.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Key{}, fmt.Errorf("key %q: %w", id, err)
	}
	return k, err
}

// ListKeys implements store.Keys. Keys created at the same time come in
// order of ID.
func (db *DB) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created, id`)
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
	res, err := db.write.ExecContext(ctx, `UPDATE keys SET disabled = coalesce(disabled, ?) WHERE id = ?`, now.UnixMicro(), id)
	if err != nil {
		return fmt.Errorf("disable key %q: %w", id, err)
	}
	return oneRow(res)
}

// RotateKey implements store.Keys. A hash that belongs to another key is an
// error.
func (db *DB) RotateKey(ctx context.Context, id, hash string, now time.Time) error {
	if hash == "" {
		return fmt.Errorf("rotate key %q: no hash", id)
	}
	res, err := db.write.ExecContext(ctx, `UPDATE keys SET hash = ?, rotated = ? WHERE id = ?`, hash, now.UnixMicro(), id)
	if errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		return fmt.Errorf("rotate key %q: the hash belongs to another key", id)
	}
	if err != nil {
		return fmt.Errorf("rotate key %q: %w", id, err)
	}
	return oneRow(res)
}

// oneRow returns ErrNotFound unless res changed a row.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// scanKey scans the keyColumns of a row; sql.ErrNoRows is ErrNotFound.
func scanKey(row interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var created int64
	var disabled, rotated sql.NullInt64
	err := row.Scan(&k.ID, &k.Hash, &k.Name, &k.Tenant, &k.Tier, &k.User, &created, &disabled, &rotated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, store.ErrNotFound
	}
	if err != nil {
		return store.Key{}, err
	}
	k.Created = time.UnixMicro(created).UTC()
	k.Disabled, k.Rotated = fromMicro(disabled), fromMicro(rotated)
	return k, nil
}
