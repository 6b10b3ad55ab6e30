package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/metrics"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// metricsDoc is the operator's reference, relative to the repository root.
const metricsDoc = "docs/metrics.md"

// docInspector answers every scrape-time look-up, so the head, lag and
// dead-letter gauges are exported.
type docInspector struct{}

func (docInspector) Head(context.Context, uint64) (source.Head, error) {
	return source.Head{Position: 9, Behind: 2, OldestUnread: time.Unix(1, 0)}, nil
}

func (docInspector) Event(context.Context, uint64) (source.Record, error) {
	return source.Record{}, source.ErrNotFound
}

func (docInspector) DeadCount(context.Context, string, string) (int64, error) { return 1, nil }

type docStats struct{ st engine.Stats }

func (d *docStats) Stats() engine.Stats { return d.st }

type docBreakers struct{}

func (docBreakers) Snapshot() []resilience.BreakerSnapshot {
	return []resilience.BreakerSnapshot{{Observer: "o", Endpoint: "http://127.0.0.1:9", State: resilience.Open}}
}

// everyFamily returns the families of a registry fed with every hook and
// pointed at a target with every view, so that every vector has a child
// and every scrape-time series is exported.
func everyFamily(t *testing.T, runtime bool) []*dto.MetricFamily {
	t.Helper()
	m := metrics.New(metrics.Options{Version: "doc-test", NoRuntimeCollectors: !runtime})
	m.SetTarget(metrics.Target{Source: "db", Group: "g", Type: "sqlite",
		Engine: &docStats{engine.Stats{EventsRead: 1, CheckpointThrough: 7,
			Observers: []engine.ObserverStats{{Name: "o", Entity: "orders"}}}},
		Inspector: docInspector{}, Breakers: docBreakers{}})
	m.SetLeader(true)
	m.Reloaded(nil)
	m.BreakerChanged(resilience.StateChange{Observer: "o", Endpoint: "http://127.0.0.1:9", From: resilience.Closed, To: resilience.Open})
	h := m.Hooks()
	h.EventFinished(engine.EventFinished{EventID: "db:1", Position: 1, Matched: 1, Capture: time.Millisecond, Total: time.Millisecond})
	h.UnitFinished(engine.UnitFinished{EventID: "db:1", Position: 1, Observer: "o", Outcome: engine.UnitDone,
		Route: time.Millisecond, Plugin: time.Millisecond, Effect: time.Millisecond})
	h.PluginDone(engine.PluginDone{EventID: "db:1", Observer: "o", Plugin: "p", Role: abi.RoleFilter, Duration: time.Millisecond, Pass: true})
	h.PluginDone(engine.PluginDone{EventID: "db:1", Observer: "o", Plugin: "p", Role: abi.RoleAct, Duration: time.Millisecond})
	h.EffectDone(engine.EffectDone{EventID: "db:1", Observer: "o", Type: abi.EffectHTTP, Duration: time.Millisecond, Err: errors.New("503")})
	h.RetryScheduled(engine.RetryScheduled{EventID: "db:1", Observer: "o", Stage: engine.StageEffect, Attempt: 1, Delay: time.Second})
	h.DeadLettered(source.DeadLetter{Source: "db", Group: "g", EventID: "db:1", Observer: "o", Stage: engine.StageEffect})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// repoRoot walks up from the working directory to the directory whose
// go.mod declares this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" && f[1] == "github.com/fraiseql/observer" {
					return dir
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod with module github.com/fraiseql/observer above the working directory")
		}
		dir = parent
	}
}

// docRow is one row of a reference table: | `name` | type | `label`, … | … |
type docRow struct {
	line   int
	typ    string
	labels []string
}

var (
	docName  = regexp.MustCompile(`observer_[a-z0-9_]*[a-z0-9]`)
	backtick = regexp.MustCompile("`([^`]+)`")
)

// parseDoc returns the reference rows by metric name and every observer_*
// name the page mentions anywhere, with the line of its first mention.
func parseDoc(t *testing.T, text string) (rows map[string]docRow, mentions map[string]int) {
	t.Helper()
	rows, mentions = map[string]docRow{}, map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		for _, name := range docName.FindAllString(line, -1) {
			if _, ok := mentions[name]; !ok {
				mentions[name] = n
			}
		}
		if !strings.HasPrefix(line, "| `observer_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Errorf("%s:%d: a reference row needs | metric | type | labels | meaning |", metricsDoc, n)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if prev, dup := rows[name]; dup {
			t.Errorf("%s:%d: %s has a second reference row (first on line %d)", metricsDoc, n, name, prev.line)
		}
		r := docRow{line: n, typ: strings.TrimSpace(cells[2]), labels: []string{}}
		for _, mt := range backtick.FindAllStringSubmatch(cells[3], -1) {
			r.labels = append(r.labels, mt[1])
		}
		slices.Sort(r.labels)
		rows[name] = r
	}
	return rows, mentions
}

// TestMetricsDocumented keeps docs/metrics.md and the registry in step:
// every family the registry exports has one reference row with its type
// and label names, and every observer_* name the page mentions (a
// histogram's _bucket, _sum and _count series included) is exported.
func TestMetricsDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), metricsDoc))
	if err != nil {
		t.Fatal(err)
	}
	rows, mentions := parseDoc(t, string(b))

	families := map[string]*dto.MetricFamily{}
	for _, mf := range everyFamily(t, false) {
		name := mf.GetName()
		families[name] = mf
		if !strings.HasPrefix(name, "observer_") {
			t.Errorf("family %s is not named observer_*: the page's checks only see observer_* names", name)
		}
		r, ok := rows[name]
		if !ok {
			t.Errorf("%s is exported but has no reference row in %s (| `%s` | type | labels | meaning |)", name, metricsDoc, name)
			continue
		}
		if want := strings.ToLower(mf.GetType().String()); r.typ != want {
			t.Errorf("%s:%d: %s is documented as %q, the registry says %q", metricsDoc, r.line, name, r.typ, want)
		}
		labels := []string{}
		if len(mf.GetMetric()) > 0 {
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		slices.Sort(labels)
		if !slices.Equal(r.labels, labels) {
			t.Errorf("%s:%d: %s is documented with labels %v, the registry has %v", metricsDoc, r.line, name, r.labels, labels)
		}
	}
	if len(families) < 20 {
		t.Errorf("only %d families gathered: the test no longer feeds every hook", len(families))
	}

	for name, line := range mentions {
		if _, ok := families[name]; ok {
			continue
		}
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(name, suf); ok {
				base = s
				break
			}
		}
		if mf, ok := families[base]; ok && base != name && mf.GetType() == dto.MetricType_HISTOGRAM {
			continue
		}
		t.Errorf("%s:%d: names %s, which the registry does not export", metricsDoc, line, name)
	}
}

// TestRuntimeFamilies: with the runtime collectors on (as in `observer
// run`), the only families beyond the documented observer_* ones are the
// standard go_* and process_* collectors the page mentions as a whole.
func TestRuntimeFamilies(t *testing.T) {
	for _, mf := range everyFamily(t, true) {
		name := mf.GetName()
		if !strings.HasPrefix(name, "observer_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("family %s is neither observer_*, go_* nor process_*: document it in %s and extend the checks", name, metricsDoc)
		}
	}
}
