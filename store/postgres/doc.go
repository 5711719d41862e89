// Package postgres is a store.Backend on PostgreSQL.
package postgres
