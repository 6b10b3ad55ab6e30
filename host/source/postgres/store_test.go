package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/source"
)

func TestStoreDeadLetters(t *testing.T) {
	t.Parallel()
	dsn, _ := scratch(t)
	ctx := context.Background()
	st, err := OpenStore(ctx, dsn, "obs_state")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Opening again over existing tables is fine.
	st2, err := OpenStore(ctx, dsn, "obs_state")
	if err != nil {
		t.Fatalf("reopen store: %v", err)
	}
	st2.Close()

	created := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	in := []source.DeadLetter{
		{Source: "pg", Group: "g", Observer: "big-payments", EventID: "pg:7", Position: 7,
			Event: json.RawMessage(`{"id":"pg:7","after":{"amount":12345678901234567890.25}}`), Effect: 0, Stage: "effect",
			Error: "http 500", Attempts: 5, CreatedAt: created},
		{Source: "pg", Group: "g", Observer: "returns", EventID: "pg:8", Position: 8, Event: json.RawMessage(`null`), Effect: -1, Stage: "decode", Error: "bad op", Attempts: 1},
		{Source: "other", Group: "g", Observer: "returns", EventID: "other:1", Position: 1, Effect: -1, Stage: "filter", Error: "trap", Attempts: 3},
	}
	var ids []int64
	for _, d := range in {
		id, err := st.PutDead(ctx, d)
		if err != nil {
			t.Fatalf("put %s: %v", d.EventID, err)
		}
		ids = append(ids, id)
	}
	if _, err := st.PutDead(ctx, source.DeadLetter{EventID: "x", Event: json.RawMessage(`{`)}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("invalid event JSON: %v", err)
	}
	got, err := st.GetDead(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ids[0] || got.Observer != "big-payments" || got.Position != 7 || got.Stage != "effect" ||
		got.Attempts != 5 || got.Effect != 0 || !got.CreatedAt.Equal(created) || got.Error != "http 500" {
		t.Fatalf("get: %+v", got)
	}
	var ev map[string]any
	dec := json.NewDecoder(strings.NewReader(string(got.Event)))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil || ev["after"].(map[string]any)["amount"] != json.Number("12345678901234567890.25") {
		t.Fatalf("event did not survive exactly: %s (%v)", got.Event, err)
	}
	cases := []struct {
		name string
		f    source.DeadFilter
		want int
	}{
		{"all", source.DeadFilter{}, 3},
		{"by source", source.DeadFilter{Source: "pg"}, 2},
		{"by observer", source.DeadFilter{Observer: "returns"}, 2},
		{"by both", source.DeadFilter{Source: "pg", Observer: "returns"}, 1},
		{"limit", source.DeadFilter{Limit: 1}, 1},
		{"other group", source.DeadFilter{Group: "h"}, 0},
	}
	for _, c := range cases {
		l, err := st.ListDead(ctx, c.f)
		if err != nil || len(l) != c.want {
			t.Errorf("%s: %d letters (%v), want %d", c.name, len(l), err, c.want)
		}
	}
	n, err := st.DeleteDead(ctx, ids[0], ids[1], 999999)
	if err != nil || n != 2 {
		t.Fatalf("delete: %d %v", n, err)
	}
	if _, err := st.GetDead(ctx, ids[0]); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
	if n, err := st.DeleteDead(ctx); n != 0 || err != nil {
		t.Fatalf("delete nothing: %d %v", n, err)
	}
}
