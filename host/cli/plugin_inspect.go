package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/spf13/cobra"
)

// inspection is `plugin inspect --format json`.
type inspection struct {
	Path   string `json:"path"`
	Size   int    `json:"size_bytes"`
	SHA256 string `json:"sha256"`
	// Manifest is what describe returned; nil if the module did not load.
	Manifest *abi.Manifest `json:"manifest"`
	// ABI compares the plugin's version with the host's.
	ABI struct {
		Plugin string `json:"plugin,omitempty"`
		Host   string `json:"host"`
		// Status: "same", "older minor", "newer minor: loaded as HOST", "refused".
		Status string `json:"status"`
	} `json:"abi"`
	// LoadError is why the host refused the module, if it did.
	LoadError string `json:"load_error,omitempty"`
	// Interrupt is how the host stops its calls ("instrument" or "context").
	Interrupt string `json:"interrupt,omitempty"`
	// LoadMS is the time the host took to compile, instantiate and describe it.
	LoadMS int64 `json:"load_ms,omitempty"`
	// HostFunctions summarises the imports: which host services the module
	// uses, and the imports the host denies or refuses.
	HostFunctions struct {
		Config  bool     `json:"config"`
		Log     bool     `json:"log"`
		Vars    bool     `json:"vars"`
		WASI    bool     `json:"wasi"`
		Denied  []string `json:"denied,omitempty"`
		Refused []string `json:"refused,omitempty"`
	} `json:"host_functions"`
	*wasmModule
}

func (a *app) pluginInspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE.wasm",
		Short: "Show a plugin's manifest, exports, imports, size and requested capabilities",
		Long: `inspect reads a WebAssembly plugin and prints its manifest (by loading it in the
sandbox and calling describe), its ABI version against the host's, the roles and
capabilities it asks for (effect types, HTTP hosts, log, config), the host
functions it imports, its exports with their signatures, its memory and its size.
A module the host refuses (another ABI major, a foreign import) is still
described, with the reason, and the command exits 1. --format json prints one
JSON object.`,
		Example: `  observer plugin inspect bin/plugins/webhook.wasm
  observer plugin inspect --format json my-plugin.wasm | jq .manifest.capabilities`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ins, err := inspectPlugin(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			if err := a.emit(ins, func(w io.Writer) { ins.write(w) }); err != nil {
				return err
			}
			if ins.LoadError != "" {
				return errors.New("the host refuses this plugin: " + ins.LoadError)
			}
			return nil
		},
	}
}

func inspectPlugin(ctx context.Context, a *app, path string) (*inspection, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("plugin inspect: %v", err)
	}
	mod, err := parseWasm(b)
	if err != nil {
		return nil, fmt.Errorf("plugin inspect %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	ins := &inspection{Path: path, Size: len(b), SHA256: hex.EncodeToString(sum[:]), wasmModule: mod}
	ins.ABI.Host = abi.VersionString
	for _, im := range mod.Imports {
		full := im.Module + "." + im.Name
		switch im.Module {
		case "extism:host/env":
			switch {
			case im.Name == "config_get":
				ins.HostFunctions.Config = true
			case strings.HasPrefix(im.Name, "log_") || im.Name == "get_log_level":
				ins.HostFunctions.Log = true
			case im.Name == "var_get" || im.Name == "var_set":
				ins.HostFunctions.Vars = true
			case im.Name == "http_request":
				ins.HostFunctions.Denied = append(ins.HostFunctions.Denied, full+" (every call fails: return an http effect instead)")
			}
		case "wasi_snapshot_preview1":
			ins.HostFunctions.WASI = true
		default:
			ins.HostFunctions.Refused = append(ins.HostFunctions.Refused, full+" (only extism:host/env and wasi_snapshot_preview1 may be imported)")
		}
	}

	h, err := pluginhost.New(ctx, pluginhost.Config{CacheDir: pluginCacheDir(), Logger: a.logger("warn", "text")})
	if err != nil {
		return nil, fmt.Errorf("start plugin host: %w", err)
	}
	defer h.Close(context.WithoutCancel(ctx))
	start := time.Now()
	p, err := h.Load(ctx, pluginhost.Spec{Path: path, Wasm: b})
	if err != nil {
		ins.LoadError = err.Error()
		ins.ABI.Status = "refused"
		return ins, nil
	}
	ins.LoadMS = time.Since(start).Milliseconds()
	defer p.Close(context.WithoutCancel(ctx))
	m := p.Manifest()
	ins.Manifest = &m
	ins.Interrupt = string(p.Interrupt())
	ins.ABI.Plugin = m.ABI
	_, minor, _ := abi.ParseVersion(m.ABI)
	switch {
	case minor > abi.Minor:
		ins.ABI.Status = "newer minor: loaded as " + abi.VersionString
	case minor < abi.Minor:
		ins.ABI.Status = "older minor"
	default:
		ins.ABI.Status = "same"
	}
	return ins, nil
}

func (ins *inspection) write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	if m := ins.Manifest; m != nil {
		row("plugin", "%s %s", m.Name, m.Version)
		if m.Description != "" {
			row("description", "%s", m.Description)
		}
	}
	row("file", "%s", ins.Path)
	row("size", "%d bytes (sha256 %s)", ins.Size, ins.SHA256)
	if ins.LoadError != "" {
		row("load", "REFUSED: %s", ins.LoadError)
	} else {
		row("abi", "%s (host %s: %s)", ins.ABI.Plugin, ins.ABI.Host, ins.ABI.Status)
		row("roles", "%s", strings.Join(ins.Manifest.Roles, ", "))
		c := ins.Manifest.Capabilities
		row("effects", "%s", orNone(c.Effects))
		hosts := "any host the operator allows (allow_hosts)"
		if len(c.HTTPHosts) > 0 {
			hosts = strings.Join(c.HTTPHosts, ", ") + " (narrowed by the operator's allow_hosts)"
		}
		if len(c.Effects) > 0 {
			row("http hosts", "%s", hosts)
		}
		row("asks for", "log: %s, config: %s (advisory in ABI 1.0)", yesNo(c.Log), yesNo(c.Config))
		row("load", "%d ms (calls stopped by %s)", ins.LoadMS, ins.Interrupt)
	}
	hf := ins.HostFunctions
	row("host functions", "config_get: %s, log: %s, vars: %s, WASI: %s", yesNo(hf.Config), yesNo(hf.Log), yesNo(hf.Vars), yesNo(hf.WASI))
	for _, d := range hf.Denied {
		row("", "DENIED: %s", d)
	}
	for _, r := range hf.Refused {
		row("", "REFUSED: %s", r)
	}
	if mem := ins.Memory; mem != nil {
		max := "no maximum"
		if mem.MaxPages != nil {
			max = fmt.Sprintf("maximum %d pages", *mem.MaxPages)
		}
		how := "defined"
		if mem.Imported {
			how = "imported"
		}
		row("memory", "%s, %d pages (%d KiB) at start, %s", how, mem.MinPages, mem.MinPages*64, max)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "exports (%d):\n", len(ins.Exports))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range ins.Exports {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Name, e.Kind, e.Type)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "imports (%d):\n", len(ins.Imports))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, im := range ins.Imports {
		fmt.Fprintf(tw, "  %s.%s\t%s\t%s\n", im.Module, im.Name, im.Kind, im.Type)
	}
	_ = tw.Flush()
	if len(ins.Custom) > 0 {
		var cs []string
		for _, c := range ins.Custom {
			cs = append(cs, fmt.Sprintf("%s (%d bytes)", c.Name, c.Size))
		}
		fmt.Fprintf(w, "custom sections: %s\n", strings.Join(cs, ", "))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
