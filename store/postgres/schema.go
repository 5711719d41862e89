package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema returns the SQL script that creates the table of a Backend[T, ID]
// named table (with the sequence, functions and triggers it needs), for
// running from a migration tool instead of letting New create it. The
// script is idempotent: it creates what is missing and replaces the
// functions and triggers. It needs PostgreSQL 14 or later (CREATE OR
// REPLACE TRIGGER). The objects go to the first schema of the search_path
// it runs with. The package documentation describes what each part does.
func Schema[ID Key](table string) (string, error) {
	c := config{table: table, backoffMin: 1, backoffMax: 1}
	if err := c.check(); err != nil {
		return "", fmt.Errorf("postgres: schema: %w", err)
	}
	return schema(table, textKey[ID]()), nil
}

// names are the SQL names of a table's objects, quoted.
type names struct {
	table, seq, ordIndex, stamp, feed, channel string
}

func newNames(table string) names {
	q := func(s string) string { return `"` + s + `"` }
	return names{
		table:    q(table),
		seq:      q(table + "_version"),
		ordIndex: q(table + "_ord"),
		stamp:    q(table + "_stamp"),
		feed:     q(table + "_feed"),
		channel:  channelName(table),
	}
}

// channelName is the NOTIFY channel of a table: one per table name in a
// database (notifications do not cross databases).
func channelName(table string) string { return "nexus." + table }

func schema(table string, text bool) string {
	n := newNames(table)
	id := "id BIGINT PRIMARY KEY"
	if text {
		id = `id TEXT PRIMARY KEY CONSTRAINT "` + table + `_id_length" CHECK (octet_length(id) <= ` + strconv.Itoa(MaxIDBytes) + `)`
	}
	channel := "'" + n.channel + "'"
	return `CREATE TABLE IF NOT EXISTS ` + n.table + ` (
	` + id + `,
	data JSONB NOT NULL,
	version BIGINT NOT NULL,
	ord BIGINT NOT NULL,
	updated TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS ` + n.seq + ` AS BIGINT OWNED BY ` + n.table + `.version;
CREATE UNIQUE INDEX IF NOT EXISTS ` + n.ordIndex + ` ON ` + n.table + ` (ord);

-- Every write, also by plain SQL, takes a new version from the sequence (so
-- versions grow and never repeat, across deletes too) and stamps the time;
-- an insert takes its place in listing order (ord), an update keeps it.
CREATE OR REPLACE FUNCTION ` + n.stamp + `() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	NEW.version := nextval('` + n.seq + `');
	IF TG_OP = 'INSERT' THEN
		NEW.ord := NEW.version;
	ELSE
		NEW.ord := OLD.ord;
	END IF;
	NEW.updated := clock_timestamp();
	RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER ` + n.stamp + ` BEFORE INSERT OR UPDATE ON ` + n.table + `
	FOR EACH ROW EXECUTE FUNCTION ` + n.stamp + `();

-- The change feed: every committed change is announced on the table's
-- channel as "s|d,<version>,<Unix microseconds>,<id>" (save or delete), and
-- a TRUNCATE as "r". Notifications are sent at commit, in commit order.
CREATE OR REPLACE FUNCTION ` + n.feed + `() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		PERFORM pg_notify(` + channel + `, 'r');
	ELSIF TG_OP = 'DELETE' THEN
		PERFORM pg_notify(` + channel + `, 'd,' || OLD.version || ',' ||
			(extract(epoch FROM clock_timestamp()) * 1000000)::bigint || ',' || OLD.id);
	ELSE
		PERFORM pg_notify(` + channel + `, 's,' || NEW.version || ',' ||
			(extract(epoch FROM NEW.updated) * 1000000)::bigint || ',' || NEW.id);
	END IF;
	RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER ` + n.feed + ` AFTER INSERT OR UPDATE OR DELETE ON ` + n.table + `
	FOR EACH ROW EXECUTE FUNCTION ` + n.feed + `();
CREATE OR REPLACE TRIGGER "` + table + `_truncate" AFTER TRUNCATE ON ` + n.table + `
	FOR EACH STATEMENT EXECUTE FUNCTION ` + n.feed + `();
`
}

// statements are the SQL texts of a Backend, built once for its table.
type statements struct {
	get      string // data, version, updated of one id
	getLock  string // get, locking the row until the transaction ends
	list     string // id::text, data, version, updated in listing order; one LIMIT argument (NULL: all)
	upsert   string // unconditional save; returns version, updated
	insert   string // save only if absent; returns version, updated, or no row
	update   string // save only at a version; returns version, updated, or no row
	delete   string // unconditional delete
	deleteIf string // delete only at a version
}

func newStatements(table string) statements {
	t := newNames(table).table
	insert := `INSERT INTO ` + t + ` (id, data) VALUES ($1, $2::jsonb)`
	get := `SELECT data, version, updated FROM ` + t + ` WHERE id = $1`
	return statements{
		get:      get,
		getLock:  get + ` FOR UPDATE`,
		list:     `SELECT id::text, data, version, updated FROM ` + t + ` ORDER BY ord LIMIT $1`,
		upsert:   insert + ` ON CONFLICT (id) DO UPDATE SET data = excluded.data RETURNING version, updated`,
		insert:   insert + ` ON CONFLICT (id) DO NOTHING RETURNING version, updated`,
		update:   `UPDATE ` + t + ` SET data = $2::jsonb WHERE id = $1 AND version = $3 RETURNING version, updated`,
		delete:   `DELETE FROM ` + t + ` WHERE id = $1`,
		deleteIf: `DELETE FROM ` + t + ` WHERE id = $1 AND version = $2`,
	}
}

// ensureSchema creates the table and its objects when the table or one of
// its triggers is missing, and checks an existing table. Concurrent calls
// (replicas starting together) are serialized by an advisory lock: CREATE
// ... IF NOT EXISTS alone can fail when two sessions race.
func ensureSchema(ctx context.Context, pool *pgxpool.Pool, table string, text bool) error {
	ok, err := checkSchema(ctx, pool, table, text)
	if err != nil || ok {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('github.com/nexusstore/nexus/store/postgres'), hashtext($1))`, table); err != nil {
		return err
	}
	// Checked again under the lock: another session may have just made it,
	// or made it with another key type.
	if ok, err := checkSchema(ctx, tx, table, text); err != nil || ok {
		return err
	}
	if _, err := tx.Exec(ctx, schema(table, text)); err != nil {
		return err
	}
	if ok, err := checkSchema(ctx, tx, table, text); err != nil || !ok {
		return errors.Join(err, fmt.Errorf("table %q is still incomplete after creating it", table))
	}
	return tx.Commit(ctx)
}

// querier is what a pool, a connection and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// checkSchema reports whether table exists with its triggers. It fails on
// an existing table that would not work: a missing column or one of another
// type, or an id column of the other key type (an int64 Backend on a TEXT
// table would never find "1").
func checkSchema(ctx context.Context, q querier, table string, text bool) (bool, error) {
	n := newNames(table)
	rows, err := q.Query(ctx, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, n.table)
	if err != nil {
		return false, err
	}
	cols := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		cols[name] = typ
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(cols) == 0 {
		return false, nil // no such table
	}
	want := map[string]string{"id": "bigint", "data": "jsonb", "version": "bigint", "ord": "bigint", "updated": "timestamp with time zone"}
	if text {
		want["id"] = "text"
	}
	for _, c := range []string{"id", "data", "version", "ord", "updated"} {
		got, ok := cols[c]
		switch {
		case !ok:
			return false, fmt.Errorf("table %q exists without column %q", table, c)
		case c == "id" && got != want[c]:
			return false, fmt.Errorf("table %q exists with an id column of type %s; this ID type needs %s", table, got, strings.ToUpper(want[c]))
		case got != want[c]:
			return false, fmt.Errorf("table %q exists with column %q of type %s; want %s", table, c, got, want[c])
		}
	}
	var pk bool
	var triggers int
	err = q.QueryRow(ctx, `SELECT
	EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisprimary
		AND i.indnkeyatts = 1 AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'id')),
	(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal AND tgname = ANY($2))`,
		n.table, []string{table + "_stamp", table + "_feed", table + "_truncate"}).Scan(&pk, &triggers)
	if err != nil {
		return false, err
	}
	if !pk {
		return false, fmt.Errorf("table %q exists without a primary key on id", table)
	}
	return triggers == 3, nil
}
