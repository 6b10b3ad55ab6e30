package source

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestCursorNormalize(t *testing.T) {
	cases := []struct {
		in   Cursor
		want Cursor
	}{
		{Cursor{}, Cursor{}},
		{Cursor{Through: 10, Pending: []uint64{7, 3, 7, 12, 3}}, Cursor{Through: 10, Pending: []uint64{3, 7}}},
		{Cursor{Through: 5, Pending: []uint64{6, 9}}, Cursor{Through: 5}},
		{Cursor{Through: 5, Pending: []uint64{5}}, Cursor{Through: 5, Pending: []uint64{5}}},
	}
	for _, c := range cases {
		in := slices.Clone(c.in.Pending)
		got := c.in.Normalize()
		if got.Through != c.want.Through || !slices.Equal(got.Pending, c.want.Pending) {
			t.Errorf("%+v.Normalize() = %+v, want %+v", c.in, got, c.want)
		}
		if !slices.Equal(c.in.Pending, in) {
			t.Errorf("Normalize changed its receiver's Pending: %v → %v", in, c.in.Pending)
		}
	}
}

func TestDecodeErrorUnwraps(t *testing.T) {
	inner := errors.New("op \"MERGE\" is not INSERT, UPDATE or DELETE")
	err := fmt.Errorf("read: %w", &DecodeError{Source: "main", Position: 42, Err: inner})
	if !errors.Is(err, inner) {
		t.Error("DecodeError does not unwrap to its cause")
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Position != 42 {
		t.Errorf("errors.As: %v", de)
	}
	if want := `read: source main: decode change-log row 42: op "MERGE" is not INSERT, UPDATE or DELETE`; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
}
