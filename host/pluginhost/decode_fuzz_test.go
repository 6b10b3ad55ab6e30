package pluginhost

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
)

// decodeSeeds are outputs a guest could set, good and bad; the committed
// corpus in testdata/fuzz/FuzzDecodeResult adds more.
var decodeSeeds = []string{
	`{"abi":"1.0","pass":true,"reason":"after.amount = 11.99 >= 9.99"}`,
	`{"pass":false}`,
	`{"abi":"1.0","effects":[{"type":"http","http":{"method":"POST","url":"https://hooks.example.com/p","body":"{}"}},{"type":"log","log":{"message":"m","fields":{"a":"b"}}}]}`,
	`{"abi":"1.0","effects":[]}`,
	`{"abi":"1.0","error":{"message":"config.op is bad","code":"bad_config","retryable":false}}`,
	`{"error":{}}`,
	`{"pass": tru`,
	`{"pass":true} {"pass":false}`,
	`{"abi":"2.0","pass":true}`,
	`{"abi":"one","pass":true}`,
	`{"abi":"1.0"}`,
	`{"effects":[{"type":"kafka"}]}`,
	`{"effects":[{"type":"http","http":{"url":"http://x","body":"a","body_json":{"a":1}}}]}`,
	`{"effects":[{"type":"log"}]}`,
	`null`,
	`[]`,
	"",
	" \n\t",
	`{"pass":true,"reason":"\ud800"}`,
	`{"effects":[{"type":"http","http":{"url":"http://x","body_json":123456789012345678901234567890.5}}]}`,
	strings.Repeat("[", 10000),
	`{"effects":[]} }`, // a stray closer after the object (Decoder.More says no more)
}

// FuzzDecodeResult feeds arbitrary guest output to the filter and act
// decoders. They must never panic; they must accept only one valid JSON
// object that follows the result rules (checked here independently of the
// decoder: encoding/json's validator, the pass or effects member, each
// effect's type and member); and they must classify every failure as bad
// output, except an error result, which is the guest's own error.
func FuzzDecodeResult(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	declared := []string{abi.EffectHTTP, abi.EffectLog}
	f.Fuzz(func(t *testing.T, out []byte) {
		fr, fkind, ferr := decodeFilterResult(out)
		checkOutcome(t, "filter", out, fkind, ferr)
		if ferr == nil && fr.Error != nil {
			t.Fatalf("filter accepted %q with an error result", out)
		}

		ar, akind, aerr := decodeActResult(out, declared)
		checkOutcome(t, "act", out, akind, aerr)
		if aerr == nil {
			if ar.Effects == nil {
				t.Fatalf("act accepted %q without effects", out)
			}
			for i, e := range ar.Effects {
				ok := (e.Type == abi.EffectHTTP && e.HTTP != nil && e.HTTP.URL != "" && (e.HTTP.Body == "" || len(e.HTTP.BodyJSON) == 0)) ||
					(e.Type == abi.EffectLog && e.Log != nil)
				if !ok {
					t.Fatalf("act accepted %q with an invalid effects[%d]: %+v", out, i, e)
				}
			}
			// What was accepted survives a round trip unchanged.
			b, err := json.Marshal(ar)
			if err != nil {
				t.Fatalf("accepted act result does not encode: %v", err)
			}
			again, _, err := decodeActResult(b, declared)
			if err != nil || len(again.Effects) != len(ar.Effects) {
				t.Fatalf("accepted act result %s does not decode again: %v", b, err)
			}
		}
		// Only undeclared effect types are refused for being undeclared.
		if _, _, err := decodeActResult(out, nil); aerr == nil && err == nil && len(ar.Effects) > 0 {
			t.Fatalf("act accepted %q with effects although none is declared", out)
		}
	})
}

// checkOutcome checks what any decoder must do with out.
func checkOutcome(t *testing.T, role string, out []byte, kind ErrorKind, err error) {
	t.Helper()
	valid := json.Valid(out) && bytes.HasPrefix(bytes.TrimLeft(out, " \t\r\n"), []byte("{"))
	if err == nil {
		if kind != 0 {
			t.Fatalf("%s: kind %v without an error", role, kind)
		}
		if !valid {
			t.Fatalf("%s accepted %q, which is not one JSON object", role, out)
		}
		return
	}
	if err.Error() == "" {
		t.Fatalf("%s: empty error message for %q", role, out)
	}
	switch kind {
	case KindBadOutput:
	case KindGuest:
		var ae *abi.Error
		if !valid || !errors.As(err, &ae) || ae.Message == "" {
			t.Fatalf("%s: guest error %v for %q, which is not an error result", role, err, out)
		}
	default:
		t.Fatalf("%s: kind %v for %q, want bad output or guest error: %v", role, kind, out, err)
	}
	if !valid && kind != KindBadOutput {
		t.Fatalf("%s: %q is not one JSON object but the kind is %v", role, out, kind)
	}
}

// TestDecodeResultCases pins the classification of the seeds, so that the
// fuzz target's properties rest on known answers.
func TestDecodeResultCases(t *testing.T) {
	declared := []string{abi.EffectHTTP, abi.EffectLog}
	for _, tc := range []struct {
		out         string
		filter, act ErrorKind // 0: accepted
		mention     string
		pass        bool
		effects     int
	}{
		{out: decodeSeeds[0], act: KindBadOutput, pass: true, mention: "neither"},
		{out: decodeSeeds[2], filter: KindBadOutput, effects: 2, mention: "neither"},
		{out: decodeSeeds[4], filter: KindGuest, act: KindGuest, mention: "config.op is bad"},
		{out: decodeSeeds[5], filter: KindGuest, act: KindGuest, mention: "(no message)"},
		{out: decodeSeeds[6], filter: KindBadOutput, act: KindBadOutput, mention: "not a JSON result object"},
		{out: decodeSeeds[7], filter: KindBadOutput, act: KindBadOutput, mention: "trailing data"},
		{out: `{"effects":[]} }`, filter: KindBadOutput, act: KindBadOutput, mention: "trailing data"},
		{out: decodeSeeds[8], filter: KindBadOutput, act: KindBadOutput, mention: "ABI 2.0"},
		{out: decodeSeeds[11], filter: KindBadOutput, act: KindBadOutput, mention: `unknown effect type "kafka"`},
		{out: decodeSeeds[12], filter: KindBadOutput, act: KindBadOutput, mention: "both body and body_json"},
		{out: decodeSeeds[14], filter: KindBadOutput, act: KindBadOutput, mention: "neither"},
		{out: decodeSeeds[16], filter: KindBadOutput, act: KindBadOutput, mention: "no output"},
		{out: decodeSeeds[20], filter: KindBadOutput, act: KindBadOutput, mention: "not a JSON result object"},
	} {
		fr, fk, ferr := decodeFilterResult([]byte(tc.out))
		ar, ak, aerr := decodeActResult([]byte(tc.out), declared)
		if fk != tc.filter || ak != tc.act {
			t.Errorf("%.60q: kinds filter %v act %v, want %v and %v (%v; %v)", tc.out, fk, ak, tc.filter, tc.act, ferr, aerr)
			continue
		}
		if msg := errors.Join(ferr, aerr); msg == nil || !strings.Contains(msg.Error(), tc.mention) {
			t.Errorf("%.60q: errors %v do not mention %q", tc.out, msg, tc.mention)
		}
		if ferr == nil && fr.Pass != tc.pass {
			t.Errorf("%.60q: pass %v", tc.out, fr.Pass)
		}
		if aerr == nil && len(ar.Effects) != tc.effects {
			t.Errorf("%.60q: %d effects", tc.out, len(ar.Effects))
		}
	}
	if _, k, err := decodeActResult([]byte(decodeSeeds[2]), []string{abi.EffectLog}); k != KindBadOutput || !strings.Contains(err.Error(), "does not ask for it") || !slices.Contains(declared, abi.EffectHTTP) {
		t.Errorf("an undeclared http effect: kind %v, %v", k, err)
	}
}
