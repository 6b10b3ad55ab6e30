package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/fraiseql/observer/host/admin"
)

func (a *app) reloadCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a running observer reload observer.toml and its plugin files",
		Long: `reload asks a running ` + "`observer run`" + ` (through its admin server) to load its
configuration file and plugins again, as SIGHUP does. The new configuration is
built while the old one keeps running; when it is refused (a config error, a
plugin that does not load) the error is printed, the exit code is 1 and the old
configuration keeps running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.adminClient(addr)
			if err != nil {
				return err
			}
			body, err := c.do(cmd.Context(), http.MethodPost, "/reload")
			if err != nil {
				var se *adminStatusError
				if errors.As(err, &se) && se.code == http.StatusUnprocessableEntity {
					return fmt.Errorf("reload refused by the observer at %s: %s", c.addr, se.msg)
				}
				return err
			}
			if done, err := a.emitRaw(body); done {
				return err
			}
			var res admin.ReloadResult
			if err := json.Unmarshal(body, &res); err != nil {
				return fmt.Errorf("admin server at %s: /reload answer is not JSON: %w", c.addr, err)
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "reloaded %s: %s\n", res.Config, res.Message)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "admin", "", "admin address of the running observer (default: the config's [admin] address)")
	return cmd
}
