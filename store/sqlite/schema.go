package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// dsnParams make concurrent writers safe (see doc.go): WAL lets readers run
// beside the one writer, busy_timeout makes a writer wait for the lock
// instead of failing at once, and _txlock=immediate takes the write lock at
// BEGIN, so that a transaction that read first never has to upgrade its lock
// (an upgrade that loses a race fails with SQLITE_BUSY however long the
// timeout).
const dsnParams = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"

// dsn turns a file system path into the driver's URI form, escaping the
// characters a URI gives a meaning to ('?', '#', '%', ...).
func dsn(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") { // a Windows volume: file:/C:/dir/db
		p = "/" + p
	}
	u := url.URL{Scheme: "file", Path: p, OmitHost: true}
	return u.String() + "?" + dsnParams, nil
}

// statements are the SQL texts of a Backend, built once for its table.
type statements struct {
	get      string // data, version, updated of one id
	list     string // id, data, version, updated of all rows in first-saved order; one LIMIT argument
	upsert   string // unconditional save; returns the new version
	insert   string // save only if absent; returns the version, or no row
	update   string // save only at a version; returns the new version, or no row
	delete   string // unconditional delete
	deleteIf string // delete only at a version
}

func newStatements(table string) statements {
	t := `"` + table + `"`
	// seq is the order in which an ID was first saved: an insert takes the
	// next number, an update keeps it. Every write runs in an immediate
	// transaction (or is a single statement), so two inserts cannot read the
	// same MAX(seq).
	nextSeq := `(SELECT COALESCE(MAX(seq), 0) + 1 FROM ` + t + `)`
	// A new item starts above every version a deleted item had (see
	// createTable), so a write based on a deleted incarnation cannot match
	// its successor (ABA). Updates add 1.
	firstVersion := `(SELECT COALESCE(MAX(value), 0) + 1 FROM "` + table + `_meta" WHERE name = 'deleted_version')`
	insert := `INSERT INTO ` + t + ` (id, data, version, updated, seq) VALUES (?1, ?2, ` + firstVersion + `, ?3, ` + nextSeq + `)`
	return statements{
		get:  `SELECT data, version, updated FROM ` + t + ` WHERE id = ?`,
		list: `SELECT id, data, version, updated FROM ` + t + ` ORDER BY seq LIMIT ?`,
		upsert: insert + `
ON CONFLICT (id) DO UPDATE SET data = excluded.data, version = version + 1, updated = excluded.updated
RETURNING version`,
		insert: insert + `
ON CONFLICT (id) DO NOTHING
RETURNING version`,
		update:   `UPDATE ` + t + ` SET data = ?2, version = version + 1, updated = ?3 WHERE id = ?1 AND version = ?4 RETURNING version`,
		delete:   `DELETE FROM ` + t + ` WHERE id = ?`,
		deleteIf: `DELETE FROM ` + t + ` WHERE id = ? AND version = ?`,
	}
}

// createTable creates, unless they exist, the item table, its seq index,
// and its companion table TABLE_meta, whose row deleted_version a trigger
// keeps at the highest version of any deleted item (also when something else
// deletes rows with SQL). It checks that an existing item table has the
// columns this package relies on.
func createTable(ctx context.Context, db *sql.DB, table string, text bool) error {
	keyType := "INTEGER"
	if text {
		keyType = "TEXT"
	}
	t := `"` + table + `"`
	meta := `"` + table + `_meta"`
	create := `CREATE TABLE IF NOT EXISTS ` + t + ` (
	id ` + keyType + ` PRIMARY KEY NOT NULL,
	data TEXT NOT NULL,
	version INTEGER NOT NULL,
	updated INTEGER NOT NULL,
	seq INTEGER NOT NULL
)`
	rest := []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS "` + table + `_seq" ON ` + t + ` (seq)`,
		`CREATE TABLE IF NOT EXISTS ` + meta + ` (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)`,
		`INSERT OR IGNORE INTO ` + meta + ` (name, value) VALUES ('deleted_version', 0)`,
		`CREATE TRIGGER IF NOT EXISTS "` + table + `_deleted_version" AFTER DELETE ON ` + t + `
BEGIN
	UPDATE ` + meta + ` SET value = max(value, OLD.version) WHERE name = 'deleted_version';
END`,
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return err
	}
	// Before the rest, which needs the columns.
	if err := checkSchema(ctx, tx, table, keyType); err != nil {
		return err
	}
	for _, s := range rest {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// checkSchema rejects a pre-existing table that would not work: a missing
// column, or an id column of the other key type (an int64 Backend on a TEXT
// table would store "1" and 1 as different keys).
func checkSchema(ctx context.Context, tx *sql.Tx, table, keyType string) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, type, pk FROM pragma_table_info(?)`, table)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols := map[string]string{}
	idPK := false
	for rows.Next() {
		var name, typ string
		var pk int
		if err := rows.Scan(&name, &typ, &pk); err != nil {
			return err
		}
		cols[strings.ToLower(name)] = strings.ToUpper(typ)
		if strings.EqualFold(name, "id") && pk == 1 {
			idPK = true
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range []string{"id", "data", "version", "updated", "seq"} {
		if _, ok := cols[c]; !ok {
			return fmt.Errorf("table %q exists without column %q", table, c)
		}
	}
	if !idPK || cols["id"] != keyType {
		return fmt.Errorf("table %q exists with id column of type %q (primary key: %t); this ID type needs %s PRIMARY KEY",
			table, cols["id"], idPK, keyType)
	}
	return nil
}
