package abi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
)

// TestParseVersion: "MAJOR.MINOR", a bare MAJOR meaning MAJOR.0, and an
// error naming the text for anything else (SPEC §7: "no or malformed abi").
func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
		err          string
	}{
		{"1.0", 1, 0, ""},
		{"1.13", 1, 13, ""},
		{" 2.1 ", 2, 1, ""},
		{"1", 1, 0, ""},
		{"0.9", 0, 9, ""},
		{"", 0, 0, "abi version is empty"},
		{"one", 0, 0, `major "one"`},
		{"1.x", 0, 0, `minor "x"`},
		{"1.0.0", 0, 0, `minor "0.0"`},
		{"-1.0", 0, 0, `major "-1"`},
		{"1.-2", 0, 0, `minor "-2"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			major, minor, err := abi.ParseVersion(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseVersion(%q) = %d, %d, %v; want an error mentioning %q", tc.in, major, minor, err, tc.err)
				}
				return
			}
			if err != nil || major != tc.major || minor != tc.minor {
				t.Fatalf("ParseVersion(%q) = %d, %d, %v; want %d, %d", tc.in, major, minor, err, tc.major, tc.minor)
			}
		})
	}
	if abi.VersionString != fmt.Sprintf("%d.%d", abi.Major, abi.Minor) {
		t.Fatalf("VersionString %q", abi.VersionString)
	}
}

// TestGoldenPayloads: every ABI 1.0 payload (testdata/v1.0) still decodes
// into the current Go types with no field unknown, and encodes back with
// every field and value it had (SPEC §7: minor versions only add). A
// renamed, removed or retyped field fails here.
func TestGoldenPayloads(t *testing.T) {
	for _, tc := range []struct {
		file string
		v    any
	}{
		{"manifest.json", &abi.Manifest{}},
		{"input.json", &abi.Input{}},
		{"filter-result.json", &abi.FilterResult{}},
		{"act-result.json", &abi.ActResult{}},
		{"error-result.json", &abi.FilterResult{}},
		{"error-result.json", &abi.ActResult{}},
	} {
		t.Run(fmt.Sprintf("%s as %T", tc.file, tc.v), func(t *testing.T) {
			golden, err := os.ReadFile(filepath.Join("testdata", "v1.0", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(golden))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if err := dec.Decode(tc.v); err != nil {
				t.Fatalf("a 1.0 payload no longer decodes: %v", err)
			}
			again, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			want, got := generic(t, golden), generic(t, again)
			if missing := subset(want, got, "$"); len(missing) > 0 {
				t.Fatalf("encoding lost 1.0 fields or values:\n  %s\nencoded: %s", strings.Join(missing, "\n  "), again)
			}
		})
	}
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// subset lists what of want is missing or different in got: objects may
// gain keys (a newer minor adds fields), nothing else may change.
func subset(want, got any, at string) []string {
	if wa, ok := want.([]any); ok {
		ga, ok := got.([]any)
		if !ok || len(ga) != len(wa) {
			return []string{fmt.Sprintf("%s: want %d elements, got %v", at, len(wa), got)}
		}
		var out []string
		for i := range wa {
			out = append(out, subset(wa[i], ga[i], fmt.Sprintf("%s[%d]", at, i))...)
		}
		return out
	}
	wm, ok := want.(map[string]any)
	if !ok {
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %v, got %v", at, want, got)}
		}
		return nil
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: want an object, got %v", at, got)}
	}
	var out []string
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s.%s: missing", at, k))
			continue
		}
		out = append(out, subset(wv, gv, at+"."+k)...)
	}
	return out
}
