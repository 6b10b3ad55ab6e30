package cli

import (
	"bytes"
	"encoding/json"
	"strings"
)

func jsonIndent(sb *strings.Builder, b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return err
	}
	sb.Write(buf.Bytes())
	return nil
}
