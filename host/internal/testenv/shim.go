// Package testenv forwards to internal/testenv, its new home (importable
// from examples/ too). It goes away once no test imports this path.
package testenv

import (
	"testing"

	root "github.com/fraiseql/observer/internal/testenv"
)

func Postgres(t testing.TB) string                 { return root.Postgres(t) }
func GoPlugin(t testing.TB, dir string) string     { return root.GoPlugin(t, dir) }
func Missing(t testing.TB, what string, err error) { root.Missing(t, what, err) }
func RepoRoot(t testing.TB) string                 { return root.RepoRoot(t) }
func AdminURL() string                             { return root.AdminURL() }
func BuildGoWasm(dir, out string) error            { return root.BuildGoWasm(dir, out) }
func WithDatabase(url, db string) string           { return root.WithDatabase(url, db) }
