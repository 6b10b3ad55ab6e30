// Command observer watches databases for committed changes and reacts to
// them through sandboxed WebAssembly plugins. See the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fraiseql/observer/host/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
