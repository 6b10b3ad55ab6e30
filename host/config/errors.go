package config

import (
	"fmt"
	"strings"
)

// KeyError is one problem in a config file. Line and Col are set for TOML
// syntax errors only (the decoder does not keep positions of keys).
type KeyError struct {
	File string
	// Key is the key path, such as observers[1].retry.max_attempts; empty
	// for a syntax error.
	Key string
	// Observer names the observer the key belongs to, if any.
	Observer string
	Line     int
	Col      int
	Msg      string
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		if e.Observer != "" {
			fmt.Fprintf(&b, " (observer %q)", e.Observer)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadError holds every problem found in one file.
type LoadError struct {
	File string
	Errs []*KeyError
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, k := range e.Errs {
		lines[i] = k.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.As and errors.Is.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, k := range e.Errs {
		out[i] = k
	}
	return out
}
