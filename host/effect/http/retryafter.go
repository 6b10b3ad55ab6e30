package http

import (
	nethttp "net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxRetryAfter caps the wait a receiver can ask for with
// Retry-After: an event waiting holds up the other events of its key, and a
// receiver must not be able to park them for days.
const DefaultMaxRetryAfter = 5 * time.Minute

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): a number
// of seconds or an HTTP date. A date in the past is a wait of 0. A wait
// above maxWait is capped (capped true). ok is false for an absent or
// malformed value.
func parseRetryAfter(v string, now time.Time, maxWait time.Duration) (wait time.Duration, capped, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false, false
	}
	if allDigits(v) {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > uint64(maxWait/time.Second) {
			return maxWait, true, true // only a number too large fails to parse
		}
		return time.Duration(secs) * time.Second, false, true
	}
	t, err := nethttp.ParseTime(v)
	if err != nil {
		return 0, false, false
	}
	wait = max(t.Sub(now), 0)
	if wait > maxWait {
		return maxWait, true, true
	}
	return wait, false, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
