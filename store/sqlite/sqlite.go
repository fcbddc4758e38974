// Package sqlite implements Sluice's stores on a SQLite database file: the
// usage ledger and the API keys of a single instance, kept across restarts
// with nothing to set up. It uses github.com/ncruces/go-sqlite3, which needs
// no cgo.
//
// # Layout
//
// Open applies the migrations in migrations/ with goose, which records them
// in the table goose_db_version. The table ledger holds one row per
// request, one column per field of store.LedgerRow; keys holds the API
// keys. Times are integers, Unix microseconds; durations are integer
// microseconds; booleans 0 or 1. Times and durations are therefore kept to
// the microsecond, as in the PostgreSQL store. Usage groups days in UTC.
//
// The database runs in WAL mode with synchronous=NORMAL: readers do not
// wait for the writer, and commits do not wait for the disk (the log is
// synced at checkpoints), so a power loss may undo the last transactions
// but never corrupts the file. Writes queue for the one writer connection;
// a lock held by another process is waited for up to 10 seconds.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	"github.com/pressly/goose/v3"

	"github.com/sluice-gw/sluice/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for a lock held by another
// connection (another process on the same file; in this process the writer
// pool has one connection) before it fails.
const busyTimeout = 10 * time.Second

// DB is a SQLite database file holding the usage ledger and the API keys.
// It implements store.Ledger and store.Keys and is safe for concurrent use.
type DB struct {
	// SQLite has one writer at a time: writes go through a pool of one
	// connection, so they queue in Go rather than poll the file lock;
	// reads use a pool of read-only connections, which WAL mode lets run
	// beside the writer.
	write *sql.DB
	read  *sql.DB
	path  string
}

var (
	_ store.Ledger = (*DB)(nil)
	_ store.Keys   = (*DB)(nil)
)

// Open opens the SQLite database at path (a file name, or a "file:" URI as
// SQLite takes them), creating it if it does not exist, and brings its
// schema up to date within ctx. An in-memory database is refused: the
// stores of package memory serve that purpose.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite: no path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file::memory:") || strings.Contains(path, "mode=memory") {
		// Each connection of the pools would have a database of its own.
		return nil, errors.New("open sqlite: an in-memory database cannot be shared by connections; use store/memory")
	}
	db := &DB{path: path}
	var err error
	db.write, err = driver.Open(path, func(c *sqlite3.Conn) error { return initConn(c, false) })
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)
	if err := db.open(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

func (db *DB) open(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return err
	}
	if err := migrate(ctx, db.write); err != nil {
		return err
	}
	var err error
	db.read, err = driver.Open(db.path, func(c *sqlite3.Conn) error { return initConn(c, true) })
	if err != nil {
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	return db.read.PingContext(ctx)
}

// initConn sets up a new connection.
func initConn(c *sqlite3.Conn, readOnly bool) error {
	if err := c.BusyTimeout(busyTimeout); err != nil {
		return err
	}
	pragmas := `PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;`
	if readOnly {
		pragmas += `PRAGMA query_only=ON;`
	} else {
		// The journal mode is kept in the file; the writer sets it
		// before anything else runs.
		pragmas = `PRAGMA journal_mode=WAL;` + pragmas
	}
	return c.Exec(pragmas)
}

// migrate brings the schema up to date.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the database. Calls running on it fail.
func (db *DB) Close() error {
	var errs []error
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite %s: %w", db.path, err)
	}
	return nil
}

// nullMicro returns t as stored, or nil for the zero time.
func nullMicro(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicro returns a stored time; NULL is the zero time.
func fromMicro(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return time.UnixMicro(us.Int64).UTC()
}
