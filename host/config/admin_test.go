package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminSection(t *testing.T) {
	const base = "[source]\ntype = \"sqlite\"\ndsn = \"x.db\"\n"
	env := map[string]string{"ADMIN_TOKEN": "tok-from-env-123", "EMPTY": ""}
	cases := []struct {
		name      string
		admin     string
		stateOnly bool
		want      Admin
		wantErr   []string // substrings; nil means no error
	}{
		{name: "defaults", admin: "",
			want: Admin{Enabled: true, Address: "127.0.0.1:9464", JournalSize: DefaultJournalSize}},
		{name: "disabled by flag", admin: "[admin]\nenabled = false\n",
			want: Admin{Enabled: false, Address: "127.0.0.1:9464", JournalSize: DefaultJournalSize}},
		{name: "disabled by empty address", admin: "[admin]\naddress = \"\"\n",
			want: Admin{Enabled: false, Address: "", JournalSize: DefaultJournalSize}},
		{name: "localhost and ipv6 loopback need no token", admin: "[admin]\naddress = \"[::1]:9000\"\njournal_size = 0\n",
			want: Admin{Enabled: true, Address: "[::1]:9000", JournalSize: 0}},
		{name: "token from env", admin: "[admin]\naddress = \"0.0.0.0:9464\"\ntoken_env = \"ADMIN_TOKEN\"\n",
			want: Admin{Enabled: true, Address: "0.0.0.0:9464", Token: "tok-from-env-123", TokenFrom: "token_env:ADMIN_TOKEN", JournalSize: DefaultJournalSize}},
		{name: "token env unset", admin: "[admin]\ntoken_env = \"NOPE\"\n",
			wantErr: []string{"admin.token_env", "NOPE is not set"}},
		{name: "token env empty", admin: "[admin]\ntoken_env = \"EMPTY\"\n",
			wantErr: []string{"admin.token_env", "EMPTY is not set or empty"}},
		{name: "token env unset is fine for state-only commands", admin: "[admin]\naddress = \"0.0.0.0:1\"\ntoken_env = \"NOPE\"\n", stateOnly: true,
			want: Admin{Enabled: true, Address: "0.0.0.0:1", JournalSize: DefaultJournalSize}},
		{name: "both token sources", admin: "[admin]\ntoken_env = \"ADMIN_TOKEN\"\ntoken_file = \"t\"\n",
			wantErr: []string{"admin.token_env", "only one of token_env and token_file"}},
		{name: "missing token file", admin: "[admin]\ntoken_file = \"no-such-file\"\n",
			wantErr: []string{"admin.token_file", "cannot read", "no-such-file"}},
		{name: "not host:port", admin: "[admin]\naddress = \"9464\"\n",
			wantErr: []string{"admin.address", `got "9464", want host:port`}},
		{name: "all interfaces without token", admin: "[admin]\naddress = \":9464\"\n",
			wantErr: []string{"admin.address", "not a loopback address", "token_env or token_file"}},
		{name: "host name without token", admin: "[admin]\naddress = \"observer.example.com:9464\"\n",
			wantErr: []string{"admin.address", "not a loopback address"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &decoder{file: "observer.toml", dir: t.TempDir(), env: lookup(env), stateOnly: c.stateOnly}
			cfg, err := d.finish("observer.toml", d.dir, d.decode([]byte(base+c.admin)))
			if c.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one naming %q", c.wantErr)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not contain %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin != c.want {
				t.Errorf("admin = %+v, want %+v", cfg.Admin, c.want)
			}
			if c.want.Token != "" {
				js, _ := json.Marshal(cfg)
				for _, s := range []string{cfg.String(), string(js)} {
					if strings.Contains(s, c.want.Token) {
						t.Errorf("the admin token is printed:\n%s", s)
					}
				}
			}
		})
	}
}

// TestLoadAdmin: the [admin] table is read even when the rest of the file
// does not load (a reload is how a running instance refuses such a file),
// with [admin]'s own rules; a missing table is the default address.
func TestLoadAdmin(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, toml, addr, err string
	}{
		{"rest broken", "[observer]\nconcurency = 3\n[admin]\naddress = \"127.0.0.1:9999\"\n", "127.0.0.1:9999", ""},
		{"no table", "[source]\ntype = \"nope\"\n", DefaultAdminAddress, ""},
		{"bad admin", "[admin]\naddress = 9\n", "", "admin.address"},
		{"syntax", "[admin\n", "", "TOML syntax"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".toml")
			if err := os.WriteFile(p, []byte(c.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := LoadAdmin(p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want one naming %s and %q", err, p, c.err)
				}
				return
			}
			if err != nil || a.Address != c.addr || !a.Enabled {
				t.Fatalf("LoadAdmin = %+v, %v; want address %s", a, err, c.addr)
			}
		})
	}
}
