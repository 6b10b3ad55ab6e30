package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
	"github.com/spf13/cobra"
)

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, retry and purge dead-lettered events",
		Long: `An event is dead-lettered for one observer after its last attempt or a permanent
error (an HTTP 4xx other than 408/429, a plugin's non-retryable error, a row that
cannot be decoded). The checkpoint moves past it, so other events keep flowing;
the entry keeps the event, the observer, the failing effect, the error and the
number of attempts until you retry or purge it.`,
	}
	cmd.AddCommand(a.dlqListCommand(), a.dlqShowCommand(), a.dlqRetryCommand(), a.dlqPurgeCommand())
	return cmd
}

// withStore loads the config and opens the state store.
func (a *app) withStore(ctx context.Context, fn func(source.Store, dlqScope) error) error {
	cfg, err := a.loadStateConfig()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open state store for source %q: %w", cfg.Source.Name, err)
	}
	defer st.Close()
	return fn(st, dlqScope{source: cfg.Source.Name, group: cfg.Observer.Group})
}

// dlqScope is the part of the dead-letter queue a config's commands work
// on: its source and checkpoint group. Another group on the same database
// (a dry run's GROUP.dry-run, a second deployment) has entries of its
// own, for other endpoints: they are not listed, purged or retried here.
type dlqScope struct{ source, group string }

func (sc dlqScope) filter() source.DeadFilter {
	return source.DeadFilter{Source: sc.source, Group: sc.group}
}

// get reads entry id, which must belong to the scope.
func (sc dlqScope) get(ctx context.Context, st source.Store, id int64) (source.DeadLetter, error) {
	d, err := st.GetDead(ctx, id)
	switch {
	case errors.Is(err, source.ErrNotFound):
		return d, fmt.Errorf("dead letter %d: %w", id, source.ErrNotFound)
	case err != nil:
		return d, fmt.Errorf("dead letter %d: %w", id, err)
	case d.Source != sc.source || d.Group != sc.group:
		return d, usagef("dead letter %d belongs to source %q group %q, not to this config's source %q group %q: use that group's config",
			id, d.Source, d.Group, sc.source, sc.group)
	}
	return d, nil
}

func parseIDs(args []string) ([]int64, error) {
	ids := make([]int64, 0, len(args))
	for _, s := range args {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, usagef("dead-letter id %q: want a positive integer", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func (a *app) dlqListCommand() *cobra.Command {
	var observer string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-lettered events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("dlq list: --limit %d: want 0 (all) or more", limit)
			}
			return a.withStore(cmd.Context(), func(st source.Store, sc dlqScope) error {
				f := sc.filter()
				f.Observer, f.Limit = observer, limit
				ds, err := st.ListDead(cmd.Context(), f)
				if err != nil {
					return fmt.Errorf("list dead letters: %w", err)
				}
				if ds == nil {
					ds = []source.DeadLetter{}
				}
				return a.emit(ds, func(w io.Writer) {
					if len(ds) == 0 {
						fmt.Fprintln(w, "no dead-lettered events")
						return
					}
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tOBSERVER\tEVENT\tSTAGE\tATTEMPTS\tCREATED\tERROR")
					for _, d := range ds {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Observer, d.EventID, d.Stage, d.Attempts,
							d.CreatedAt.UTC().Format("2006-01-02 15:04:05"), oneLine(d.Error, 80))
					}
					tw.Flush()
				})
			})
		},
	}
	cmd.Flags().StringVar(&observer, "observer", "", "only this observer's entries")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries (0: all)")
	return cmd
}

func (a *app) dlqShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead-lettered event whole",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(st source.Store, sc dlqScope) error {
				d, err := sc.get(cmd.Context(), st, ids[0])
				if err != nil {
					return err
				}
				return a.emit(d, func(w io.Writer) {
					fmt.Fprintf(w, "id:        %d\nobserver:  %s\nevent:     %s (position %d, source %s, group %s)\nstage:     %s\neffect:    %d\nattempts:  %d\ncreated:   %s\nerror:     %s\nevent json:\n%s\n",
						d.ID, d.Observer, d.EventID, d.Position, d.Source, d.Group, d.Stage, d.Effect, d.Attempts,
						d.CreatedAt.UTC().Format("2006-01-02 15:04:05.000Z"), d.Error, indentJSON(d.Event))
				})
			})
		},
	}
}

func (a *app) dlqPurgeCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "purge ID... | --all",
		Short: "Delete dead-lettered events without retrying them",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usagef("dlq purge: give dead-letter ids or --all, not both or neither")
			}
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(st source.Store, sc dlqScope) error {
				if all {
					ds, err := st.ListDead(cmd.Context(), sc.filter())
					if err != nil {
						return fmt.Errorf("list dead letters: %w", err)
					}
					for _, d := range ds {
						ids = append(ids, d.ID)
					}
				} else {
					for _, id := range ids {
						if _, err := sc.get(cmd.Context(), st, id); err != nil && !errors.Is(err, source.ErrNotFound) {
							return err // another group's entry: nothing is deleted
						}
					}
				}
				n := int64(0)
				if len(ids) > 0 {
					if n, err = st.DeleteDead(cmd.Context(), ids...); err != nil {
						return fmt.Errorf("purge dead letters: %w", err)
					}
				}
				if err := a.emit(map[string]int64{"purged": n}, func(w io.Writer) { fmt.Fprintf(w, "purged %d dead-lettered %s\n", n, plural(n, "event")) }); err != nil {
					return err
				}
				if !all && n < int64(len(ids)) {
					return fmt.Errorf("%d of the %d dead-letter ids given were not found", int64(len(ids))-n, len(ids))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "purge every entry of this source and group")
	return cmd
}

// retryOutcome is one entry's result in `dlq retry`.
type retryOutcome struct {
	ID       int64  `json:"id"`
	Observer string `json:"observer"`
	EventID  string `json:"event_id"`
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
}

func (a *app) dlqRetryCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "retry ID... | --all",
		Short: "Run dead-lettered events through their observer again",
		Long: `retry runs each entry's event through its observer's full pipeline once more
(filters, action, effects), with the plugins and settings of the current config.
An entry that succeeds is removed; one that fails again stays as it was (its
stored error and attempts unchanged) and the new error is printed. Entries
dead-lettered at decode have no observer and cannot be retried: the checkpoint
has passed their row, so fixing it does not deliver it; purge them. Only this
config's source and observer.group are retried.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usagef("dlq retry: give dead-letter ids or --all, not both or neither")
			}
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := a.logger(cfg.Observer.LogLevel.String(), cfg.Observer.LogFormat)
			s, err := build(ctx, cfg, log, buildOptions{})
			if err != nil {
				return err
			}
			defer s.Close(context.WithoutCancel(ctx))
			sc := dlqScope{source: cfg.Source.Name, group: cfg.Observer.Group}
			entries := []source.DeadLetter{}
			if all {
				if entries, err = s.store.ListDead(ctx, sc.filter()); err != nil {
					return fmt.Errorf("list dead letters: %w", err)
				}
			}
			for _, id := range ids {
				d, err := sc.get(ctx, s.store, id)
				if err != nil {
					return err
				}
				entries = append(entries, d)
			}
			outs := []retryOutcome{}
			failed := 0
			for _, d := range entries {
				o := retryOutcome{ID: d.ID, Observer: d.Observer, EventID: d.EventID}
				err := retryOne(ctx, s, d)
				if err == nil {
					if _, err = s.store.DeleteDead(ctx, d.ID); err != nil {
						err = fmt.Errorf("succeeded, but removing the entry failed: %w", err)
					}
				}
				if err != nil {
					o.Error = err.Error()
					failed++
				} else {
					o.OK = true
				}
				outs = append(outs, o)
			}
			if err := a.emit(outs, func(w io.Writer) {
				for _, o := range outs {
					if o.OK {
						fmt.Fprintf(w, "retried %d (%s, %s): ok, removed\n", o.ID, o.Observer, o.EventID)
					} else {
						fmt.Fprintf(w, "retried %d (%s, %s): failed again: %s\n", o.ID, o.Observer, o.EventID, o.Error)
					}
				}
				fmt.Fprintf(w, "%d retried, %d failed\n", len(outs)-failed, failed)
			}); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d dead letters failed again", failed, len(outs))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "retry every entry of this source and group")
	return cmd
}

func retryOne(ctx context.Context, s *stack, d source.DeadLetter) error {
	if d.Observer == "" {
		return fmt.Errorf("dead-lettered at %s (the row could not be decoded), for no observer: it cannot be retried; purge it once you have dealt with the row", d.Stage)
	}
	ev, err := event.Decode(d.Event)
	if err != nil {
		return fmt.Errorf("stored event: %w", err)
	}
	return s.engine.ProcessOne(ctx, ev, d.Observer)
}

func indentJSON(b []byte) string {
	var sb strings.Builder
	if err := jsonIndent(&sb, b); err != nil {
		return string(b)
	}
	return sb.String()
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
