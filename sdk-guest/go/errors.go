package observer

import "fmt"

// Errorf returns a permanent error for a result: the input can never
// succeed, so the host dead-letters the event at once instead of retrying.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Code: code}
}

// Retryable returns an error that asks the host to retry the call later.
func Retryable(code, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Code: code, Retryable: true}
}

// Error codes the SDK itself reports.
const (
	// CodeBadInput: the input was not valid JSON, or not an ABI v1 input.
	CodeBadInput = "bad_input"
	// CodeNoHandler: the role was called but the plugin registered no handler for it.
	CodeNoHandler = "no_handler"
	// CodeBadConfig: the plugin's configuration (Input.Config) is invalid.
	CodeBadConfig = "bad_config"
)
