// Command hostile is a misbehaving filter for the plugin host's tests,
// written with the Go guest SDK. Input.Config {"mode": "..."} picks the
// misbehaviour for one call, so a test can check that the next call on the
// same plugin still works:
//
//	ok         pass
//	loop       spin forever
//	panic      panic (a trap)
//	exit       os.Exit(3)
//	memhog     allocate until memory runs out
//	hugeout    return a 2 MiB result
//	retryable  return a retryable error result
//	permanent  return a permanent error result
//	http       call the http_request import, which observer denies
//	clock      pass, with the guest's clock and random bytes as the reason
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"time"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

//go:wasmimport extism:host/env http_request
func httpRequest(req, body uint64) uint64

var sink [][]byte
var counter int

func init() {
	observer.Register(observer.Plugin{
		Name:    "hostile",
		Version: "0.0.1",
		Filter: func(in *observer.Input) (observer.FilterResult, error) {
			var c struct{ Mode string }
			_ = json.Unmarshal(in.Config, &c)
			switch c.Mode {
			case "loop":
				for {
					counter++
				}
			case "panic":
				panic("hostile guest panics on purpose")
			case "exit":
				os.Exit(3)
			case "memhog":
				for {
					b := make([]byte, 4<<20)
					b[0] = 1
					sink = append(sink, b)
				}
			case "hugeout":
				return observer.Pass(strings.Repeat("x", 2<<20)), nil
			case "retryable":
				return observer.FilterResult{}, observer.Retryable("not_ready", "lookup not ready yet")
			case "permanent":
				return observer.FilterResult{}, observer.Errorf("bad_amount", "amount is not a number")
			case "http":
				httpRequest(0, 0)
			case "clock":
				var r [8]byte
				_, _ = rand.Read(r[:])
				return observer.Pass(time.Now().UTC().Format(time.RFC3339) + " " + hex.EncodeToString(r[:])), nil
			}
			return observer.Pass("mode " + c.Mode), nil
		},
	})
}

func main() {}
