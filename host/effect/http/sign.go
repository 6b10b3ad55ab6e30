package http

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signature errors returned by Verify.
var (
	ErrNoSignature       = errors.New("signature header is missing")
	ErrBadSignatureValue = errors.New("signature header is malformed")
	ErrStaleSignature    = errors.New("signature timestamp is outside the tolerance")
	ErrSignatureMismatch = errors.New("signature does not match the body")
)

// Sign returns the X-Observer-Signature value for body at time t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signature header against body: the HMAC must match (any
// of several v1 values may, as during a secret rotation) and, when
// tolerance > 0, t must be within tolerance of now. The comparison is
// constant-time.
func Verify(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrNoSignature
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrBadSignatureValue, part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: v1 is not hex", ErrBadSignatureValue)
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t=%q is not a unix time", ErrBadSignatureValue, ts)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrBadSignatureValue)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: signed at %s, %s from now (tolerance %s)", ErrStaleSignature,
				time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
		}
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
