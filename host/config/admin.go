package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/fraiseql/observer/host/admin"
)

// Admin defaults.
const (
	DefaultAdminAddress = admin.DefaultAddress
	DefaultJournalSize  = 10000
	MaxJournalSize      = 1000000
)

// Admin is the [admin] table: the admin HTTP server (metrics, health,
// status, debug-event, reload).
type Admin struct {
	// Enabled is false when the table says enabled = false or address = "".
	Enabled bool
	// Address is host:port. An address that is not loopback requires a
	// token (checked at load).
	Address string
	// Token is the bearer token every endpoint but /healthz and /readyz
	// requires; "" for none. Never printed.
	Token string
	// TokenFrom says where Token came from: "token_env:VAR" or
	// "token_file:PATH"; "" when there is none.
	TokenFrom string
	// JournalSize is how many recent events `observer debug-event` can
	// explain in full; 0 keeps no journal.
	JournalSize int
}

// adminSettings reads [admin]; t may be an empty table.
func (d *decoder) adminSettings(t *table) Admin {
	a := Admin{
		Enabled:     t.boolean("enabled", true),
		Address:     strings.TrimSpace(t.str("address", DefaultAdminAddress)),
		JournalSize: t.integer("journal_size", DefaultJournalSize, 0, MaxJournalSize),
	}
	envName := t.str("token_env", "")
	file := t.str("token_file", "")
	t.done()
	if a.Address == "" {
		a.Enabled = false
	}
	if envName != "" && file != "" {
		t.errorf("token_env", "set only one of token_env and token_file")
		return a
	}
	var tokenErr string
	tokenKey := "token_env"
	switch {
	case envName != "":
		if v, ok := d.env(envName); ok && strings.TrimSpace(v) != "" {
			a.Token, a.TokenFrom = strings.TrimSpace(v), "token_env:"+envName
		} else {
			tokenErr = "environment variable " + envName + " is not set or empty"
		}
	case file != "":
		tokenKey = "token_file"
		p := d.resolve(file)
		b, err := os.ReadFile(p)
		switch {
		case err != nil:
			tokenErr = "cannot read " + p + ": " + errors.Unwrap(err).Error()
		case strings.TrimSpace(string(b)) == "":
			tokenErr = p + " is empty"
		default:
			a.Token, a.TokenFrom = strings.TrimSpace(string(b)), "token_file:"+p
		}
	}
	if !a.Enabled {
		return a
	}
	// A command that only talks to a running instance (LoadForState) uses
	// the token when it can have it and lets the server refuse otherwise.
	if tokenErr != "" && !d.stateOnly {
		t.errorf(tokenKey, "%s", tokenErr)
		return a
	}
	if lo, err := admin.Loopback(a.Address); err != nil {
		t.errorf("address", "got %q, want host:port such as %q, or \"\" to disable the admin server", a.Address, DefaultAdminAddress)
	} else if !lo && a.Token == "" && !d.stateOnly {
		t.errorf("address", "%q is not a loopback address: anyone who can reach it could reload the observer and read events; set token_env or token_file, or bind to 127.0.0.1", a.Address)
	}
	return a
}

type adminView struct {
	Enabled     bool   `json:"enabled"`
	Address     string `json:"address"`
	Token       string `json:"token,omitempty"`
	TokenFrom   string `json:"token_from,omitempty"`
	JournalSize int    `json:"journal_size"`
}

func (a Admin) view() adminView {
	v := adminView{Enabled: a.Enabled, Address: a.Address, TokenFrom: a.TokenFrom, JournalSize: a.JournalSize}
	if a.Token != "" {
		v.Token = Redacted
	}
	return v
}

// LoadAdmin reads only the [admin] table of the file at path, for the
// commands that talk to a running instance (status, reload, debug-event):
// they must find it even when the rest of the file is being edited and no
// longer loads — that is when `observer reload` is asked to refuse it.
// Errors are those of [admin] alone, or of the TOML syntax.
func LoadAdmin(path string) (Admin, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Admin{}, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return Admin{}, fmt.Errorf("%s: TOML syntax: %w", path, err)
	}
	d := &decoder{file: path, dir: filepath.Dir(path), env: os.LookupEnv, stateOnly: true}
	m, _ := doc["admin"].(map[string]any)
	a := d.adminSettings(d.table("admin", "", m))
	if len(d.errs) > 0 {
		return Admin{}, &LoadError{File: path, Errs: d.errs}
	}
	return a, nil
}
