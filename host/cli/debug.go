package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fraiseql/observer/host/admin"
	"github.com/fraiseql/observer/host/journal"
)

func (a *app) debugEventCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "debug-event ID",
		Short: "Show what a running observer did with one event: images, routing, filters, effect attempts",
		Long: `debug-event asks a running ` + "`observer run`" + ` (through its admin server) about one
event, by its id SOURCE:POSITION (as in logs and dead letters): its row images,
which observers matched or not and why (condition result), each filter's answer,
the action, every effect attempt with its status code and timing, retries and
dead letters.

Recent events ([admin] journal_size, 10,000 by default) come from the running
instance's memory with everything above. An older event is read from the source
again: its routing is re-evaluated now with the current configuration and its
dead letters are read from the store; what the filters and effects did is then
unknown, and the output says so.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := admin.CheckEventID(id); err != nil {
				return usagef("%v", err)
			}
			c, err := a.adminClient(addr)
			if err != nil {
				return err
			}
			body, err := c.do(cmd.Context(), http.MethodGet, "/events/"+url.PathEscape(id))
			if err != nil {
				var se *adminStatusError
				if errors.As(err, &se) && se.code == http.StatusNotFound {
					return fmt.Errorf("event %s: %s", id, strings.TrimPrefix(se.msg, "event "+id+": "))
				}
				return err
			}
			if done, err := a.emitRaw(body); done {
				return err
			}
			var r journal.Report
			if err := json.Unmarshal(body, &r); err != nil {
				return fmt.Errorf("admin server at %s: /events answer is not an event report: %w", c.addr, err)
			}
			writeReport(a.stdout, &r)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "admin", "", "admin address of the running observer (default: the config's [admin] address)")
	return cmd
}

func jsonText(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

func writeReport(w io.Writer, r *journal.Report) {
	fmt.Fprintf(w, "event %s", r.EventID)
	if ev := r.Event; ev != nil {
		fmt.Fprintf(w, " · %s %s key %s", ev.Entity, ev.Op, ev.Key)
	}
	switch r.State {
	case journal.StateFinished:
		fmt.Fprintf(w, " · finished in %s", fmtMS(r.TotalMS))
		if r.CaptureMS > 0 {
			fmt.Fprintf(w, " (capture %s)", fmtMS(r.CaptureMS))
		}
	case journal.StateInFlight:
		fmt.Fprint(w, " · in flight")
	}
	fmt.Fprintf(w, " · from the %s\n", r.From)
	if r.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Note)
	}
	if r.DecodeError != "" {
		fmt.Fprintf(w, "decode error: %s\n", r.DecodeError)
	}
	if ev := r.Event; ev != nil {
		fmt.Fprintf(w, "commit %s", ev.CommitTime)
		if ev.TxID != "" {
			fmt.Fprintf(w, " · txid %s", ev.TxID)
		}
		if ev.Tenant != "" {
			fmt.Fprintf(w, " · tenant %s", ev.Tenant)
		}
		if ev.Trace != nil && ev.Trace.Traceparent != "" {
			fmt.Fprintf(w, " · traceparent %s", ev.Trace.Traceparent)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "before:  %s\n", jsonText(mapOrNil(ev.Before)))
		fmt.Fprintf(w, "after:   %s\n", jsonText(mapOrNil(ev.After)))
		if len(ev.ChangedFields) > 0 {
			fmt.Fprintf(w, "changed: %s\n", strings.Join(ev.ChangedFields, ", "))
		}
	}
	fmt.Fprintf(w, "\nobservers (%d matched):\n", r.Matched)
	if len(r.Observers) == 0 {
		fmt.Fprintln(w, "  (none configured)")
	}
	for _, o := range r.Observers {
		if !o.Matched {
			fmt.Fprintf(w, "  %s: not matched: %s\n", o.Observer, o.Reason)
			continue
		}
		fmt.Fprintf(w, "  %s: matched (%s)", o.Observer, o.Reason)
		if o.Outcome != "" {
			fmt.Fprintf(w, " → %s", o.Outcome)
		} else if r.From == journal.FromJournal {
			fmt.Fprint(w, " → running")
		}
		if o.RouteMS+o.PluginMS+o.EffectMS > 0 {
			fmt.Fprintf(w, " · route %s · plugin %s · effect %s", fmtMS(o.RouteMS), fmtMS(o.PluginMS), fmtMS(o.EffectMS))
		}
		fmt.Fprintln(w)
		for _, f := range o.Filters {
			verdict := "error"
			if f.Pass != nil {
				verdict = map[bool]string{true: "pass", false: "drop"}[*f.Pass]
			}
			fmt.Fprintf(w, "    filter %s  attempt %d  %s  %s", f.Plugin, f.Attempt, verdict, fmtMS(f.DurationMS))
			if f.Reason != "" {
				fmt.Fprintf(w, "  reason: %s", f.Reason)
			}
			if f.Error != "" {
				fmt.Fprintf(w, "  error: %s", f.Error)
			}
			fmt.Fprintln(w)
		}
		for _, c := range o.Action {
			fmt.Fprintf(w, "    act    %s  attempt %d  %d effects  %s", c.Plugin, c.Attempt, c.Effects, fmtMS(c.DurationMS))
			if c.Error != "" {
				fmt.Fprintf(w, "  error: %s", c.Error)
			}
			fmt.Fprintln(w)
		}
		for _, e := range o.Effects {
			status := "-"
			if e.Status != 0 {
				status = fmt.Sprint(e.Status)
			}
			fmt.Fprintf(w, "    effect #%d %s  attempt %d  status %s  %s", e.Index, e.Type, e.Attempt, status, fmtMS(e.DurationMS))
			switch {
			case e.DryRun:
				fmt.Fprint(w, "  dry run (not executed)")
			case e.Error != "":
				fmt.Fprintf(w, "  error: %s", e.Error)
			case e.Detail != "":
				fmt.Fprintf(w, "  %s", e.Detail)
			}
			if e.IdempotencyKey != "" {
				fmt.Fprintf(w, "  key %s", e.IdempotencyKey)
			}
			fmt.Fprintln(w)
		}
		for _, rt := range o.Retries {
			where := rt.Stage
			if rt.Effect >= 0 {
				where += fmt.Sprintf(" #%d", rt.Effect)
			}
			fmt.Fprintf(w, "    retry  %s after attempt %d, in %s: %s\n", where, rt.Attempt, fmtMS(rt.DelayMS), rt.Error)
		}
		if d := o.DeadLetter; d != nil {
			fmt.Fprintf(w, "    dead letter #%d  stage %s", d.ID, d.Stage)
			if d.Effect >= 0 {
				fmt.Fprintf(w, " effect #%d", d.Effect)
			}
			fmt.Fprintf(w, "  after %d attempts: %s\n", d.Attempts, d.Error)
		}
		if o.Dropped > 0 {
			fmt.Fprintf(w, "    (%d more records not kept)\n", o.Dropped)
		}
	}
}

// mapOrNil keeps a nil image printing as null.
func mapOrNil(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}
