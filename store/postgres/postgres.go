// Package postgres implements Sluice's stores on a PostgreSQL server, so
// that several instances share them: the usage ledger and the API keys. It
// uses github.com/jackc/pgx/v5.
//
// # Layout
//
// The tables live in the schema the connection's search_path names first
// (for example postgres://host/db?search_path=sluice; the schema must
// exist), so that several deployments, or tests, may share a database.
// Open applies the migrations in migrations/ with goose, which records them
// in the table goose_db_version of that schema; instances starting together
// take turns through an advisory lock.
//
// The table ledger holds one row per request, one column per field of
// store.LedgerRow; keys holds the API keys. Times are timestamptz, kept to
// the microsecond as in the SQLite store; durations are bigint
// microseconds. Usage groups days in UTC and orders groups bytewise (the
// "C" collation), whatever the database's collation.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/sluice-gw/sluice/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a connection pool to a PostgreSQL server holding the usage ledger
// and the API keys. It implements store.Ledger and store.Keys and is safe
// for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	name string // host and database, for messages
}

var (
	_ store.Ledger = (*DB)(nil)
	_ store.Keys   = (*DB)(nil)
)

// Open connects to the PostgreSQL server at url (a postgres:// URL or a
// key=value connection string, as pgx takes them, with pgxpool's pool_*
// options), checks that it answers within ctx, and brings the schema up to
// date.
//
// Errors name the server but never its password.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message shows the URL with its password masked.
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	cc := cfg.ConnConfig
	db := &DB{name: net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database}
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", db.name, err)
	}
	if err := db.open(ctx); err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", db.name, err)
	}
	return db, nil
}

func (db *DB) open(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return err
	}
	var schema *string
	if err := db.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema of the search_path exists")
	}
	return migrate(ctx, db.pool, *schema)
}

// migrate brings the tables of schema up to date, through the pool's
// connections.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Instances migrating the same schema take turns; other schemas do
	// not wait for them.
	h := fnv.New64a()
	h.Write([]byte("sluice migrations\x00" + schema))
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return nil
}

// Close closes the pool, waiting for the connections in use to be
// returned. It always returns nil.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// nullTime returns t as stored: NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNull returns a stored time in UTC; NULL is the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
