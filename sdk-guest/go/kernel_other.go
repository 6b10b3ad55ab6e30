//go:build !wasip1

package observer

// Outside WebAssembly there is no host: Config reports every key as unset
// and Log discards the line, so a plugin's logic can be tested natively.

// Config returns the value of a host-side configuration key.
func Config(key string) (string, bool) { return "", false }

// Log writes a line through the host's logger.
func Log(level, msg string) {}
