package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("postgres source: closed")

// errUndefinedTable marks a change-log table or column found missing.
var errUndefinedTable = errors.New("undefined table")

// permanent reports whether err is one that reconnecting cannot fix: the
// database or role does not exist, authentication fails, or the change-log
// table is missing. Open fails on these; Read keeps retrying them (it has no
// other way to report), logging each failure.
func permanent(err error) bool {
	if errors.Is(err, errUndefinedTable) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "3D000", // invalid_catalog_name: database does not exist
		"28000", "28P01", // invalid authorization / password
		"42P01", // undefined_table
		"42703", // undefined_column
		"3F000", // invalid_schema_name
		"42501": // insufficient_privilege
		return true
	}
	return false
}
