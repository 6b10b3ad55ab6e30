package postgres

import (
	"reflect"
	"testing"

	"github.com/fraiseql/observer/host/source"
)

func TestFrontier(t *testing.T) {
	type step struct {
		read      []uint64 // new ids read above through
		xmin      uint64   // snapshot xmin of the re-check
		visible   []uint64 // hole ids the re-check sees
		delivered []uint64
		stamp     uint64 // xid stamped afterwards (0: none)
		want      source.Cursor
	}
	cases := []struct {
		name  string
		start source.Cursor
		steps []step
	}{
		{"contiguous ids leave no holes", source.Cursor{}, []step{
			{read: []uint64{1, 2, 3}, want: source.Cursor{Through: 3}},
		}},
		{"gap becomes a hole, delivered when visible", source.Cursor{}, []step{
			{read: []uint64{1, 3}, stamp: 100, want: source.Cursor{Through: 3, Pending: []uint64{2}}},
			{xmin: 90, want: source.Cursor{Through: 3, Pending: []uint64{2}}},
			{xmin: 95, visible: []uint64{2}, delivered: []uint64{2}, read: []uint64{4}, want: source.Cursor{Through: 4}},
		}},
		{"hole dropped once xmin reaches its stamp", source.Cursor{}, []step{
			{read: []uint64{2}, stamp: 100, want: source.Cursor{Through: 2, Pending: []uint64{1}}},
			{xmin: 99, want: source.Cursor{Through: 2, Pending: []uint64{1}}},
			{xmin: 100, want: source.Cursor{Through: 2}},
		}},
		{"unstamped hole is never dropped", source.Cursor{}, []step{
			{read: []uint64{3}, want: source.Cursor{Through: 3, Pending: []uint64{1, 2}}},
			{xmin: 1 << 40, want: source.Cursor{Through: 3, Pending: []uint64{1, 2}}},
		}},
		{"cursor pending ids are holes until stamped and resolved", source.Cursor{Through: 10, Pending: []uint64{9, 4, 4}}, []step{
			{xmin: 1 << 40, visible: []uint64{4}, delivered: []uint64{4}, stamp: 50, want: source.Cursor{Through: 10, Pending: []uint64{9}}},
			{xmin: 50, want: source.Cursor{Through: 10}},
		}},
		{"visible but not delivered (batch full) stays", source.Cursor{Through: 10, Pending: []uint64{3, 5}}, []step{
			{xmin: 1 << 40, visible: []uint64{3, 5}, delivered: []uint64{3}, want: source.Cursor{Through: 10, Pending: []uint64{5}}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFrontier(c.start)
			for i, s := range c.steps {
				vis := map[uint64]bool{}
				for _, v := range s.visible {
					vis[v] = true
				}
				f.resolveHoles(s.xmin, vis, s.delivered)
				f.advance(s.read)
				if s.stamp != 0 {
					f.stamp(s.stamp)
				}
				if got := f.cursor(); !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d: cursor %+v, want %+v", i, got, s.want)
				}
			}
		})
	}
}
