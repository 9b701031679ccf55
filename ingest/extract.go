package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// Extract returns the text of a file: name and mimeType (either may be empty)
// choose the format as [Detect] does, and data is the whole content. Line
// endings become "\n". An empty file gives "" and no error.
//
// Errors: [ErrTooLarge] if data is over [MaxFileSize]; [ErrUnsupported] if
// the type is not one this package reads; [ErrCorrupt] if the content cannot
// be read as its type (invalid UTF-8 or binary bytes in a text file, invalid
// JSON, a PDF that does not parse). Extract never panics on bad input.
func Extract(name, mimeType string, data []byte) (string, error) {
	if err := CheckSize(int64(len(data)), MaxFileSize); err != nil {
		err.(*Error).Name = name
		return "", err
	}
	f, _, err := Detect(name, mimeType, data)
	if err != nil {
		return "", err
	}
	if len(data) == 0 {
		return "", nil
	}
	return extractFormat(name, f, data)
}

func extractFormat(name string, f Format, data []byte) (string, error) {
	var (
		text   string
		detail string
		err    error
		limit  = TextLimit(int64(len(data)))
	)
	switch f {
	case FormatPDF:
		text, detail, err = extractPDF(data, int(limit))
	case FormatHTML:
		var s string
		if s, detail = decodeText(data); detail == "" {
			text = extractHTML(s)
		}
	case FormatJSON:
		var s string
		if s, detail = decodeText(data); detail == "" {
			text, detail, err = extractJSON(s, int(limit))
		}
	default:
		text, detail = decodeText(data)
	}
	if errors.Is(err, errTextLimit) || int64(len(text)) > limit {
		return "", textTooLarge(name, f, int64(len(data)), limit)
	}
	if detail != "" || err != nil {
		return "", &Error{Name: name, Type: string(f), Kind: ErrCorrupt, Detail: detail, Err: err}
	}
	return text, nil
}

// errTextLimit stops an extraction whose text passed the file's limit.
var errTextLimit = errors.New("the text limit was passed")

// decodeText turns data into UTF-8 text with "\n" line endings. A UTF-8 BOM
// is dropped; a UTF-16 BOM selects UTF-16. The detail is non-empty if data is
// not text.
func decodeText(data []byte) (string, string) {
	switch {
	case bytes.HasPrefix(data, bomUTF16LE), bytes.HasPrefix(data, bomUTF16BE):
		if len(data)%2 != 0 {
			return "", "UTF-16 text with an odd number of bytes"
		}
		u := make([]uint16, 0, len(data)/2-1)
		for i := 2; i+1 < len(data); i += 2 {
			if data[0] == 0xFF {
				u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		data = []byte(string(utf16.Decode(u)))
	default:
		data = bytes.TrimPrefix(data, bomUTF8)
	}
	if i := firstInvalid(data); i >= 0 {
		if data[i] == 0 {
			return "", fmt.Sprintf("NUL byte at offset %d: binary data, not text", i)
		}
		return "", fmt.Sprintf("invalid UTF-8 at byte offset %d: binary data or an unsupported encoding", i)
	}
	s := string(data)
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return s, ""
}

// firstInvalid returns the offset of the first byte that is not valid UTF-8
// or is NUL, or -1.
func firstInvalid(b []byte) int {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		if j := invalidUTF8(b[:i]); j >= 0 {
			return j
		}
		return i
	}
	return invalidUTF8(b)
}

func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// extractJSON renders every JSON value in s (one document, or JSON Lines) as
// lines of "path: value", in document order, so that keys and values are both
// searchable and each line says where it came from ("users[0].name: Ada").
// Several top-level documents are separated by a blank line.
//
// The error is errTextLimit when the text grows past limit bytes.
func extractJSON(s string, limit int) (string, string, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var b strings.Builder
	for n := 0; ; n++ {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err == nil {
			if n > 0 {
				b.WriteString("\n")
			}
			err = walkJSON(dec, &b, "", tok, 0, limit)
		}
		if errors.Is(err, errTextLimit) {
			return "", "", err
		}
		if err != nil {
			return "", jsonDetail(s, dec, err), nil
		}
	}
	return b.String(), "", nil
}

// maxJSONDepth bounds nesting, as encoding/json does for Unmarshal.
const maxJSONDepth = 10000

var errJSONDepth = errors.New("nested too deeply")

// walkJSON writes the value that starts with tok.
func walkJSON(dec *json.Decoder, b *strings.Builder, path string, tok json.Token, depth, limit int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	if b.Len() > limit {
		return errTextLimit
	}
	switch t := tok.(type) {
	case json.Delim:
		empty := "{}"
		if t == '[' {
			empty = "[]"
		}
		if !dec.More() {
			writeLine(b, path, empty)
			_, err := dec.Token() // the closing delimiter
			return err
		}
		for i := 0; dec.More(); i++ {
			p := path + "[" + strconv.Itoa(i) + "]"
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				p = joinPath(path, fmt.Sprint(k))
			}
			v, err := dec.Token()
			if err != nil {
				return err
			}
			if err := walkJSON(dec, b, p, v, depth+1, limit); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case string:
		writeLine(b, path, t)
	case json.Number:
		writeLine(b, path, t.String())
	case bool:
		writeLine(b, path, strconv.FormatBool(t))
	case nil:
		writeLine(b, path, "null")
	}
	return nil
}

func jsonDetail(s string, dec *json.Decoder, err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte offset %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Sprintf("invalid JSON: truncated after %d bytes", len(s))
	default:
		return fmt.Sprintf("invalid JSON near byte offset %d: %v", dec.InputOffset(), err)
	}
}

func writeLine(b *strings.Builder, path, value string) {
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	b.WriteString(value)
	b.WriteByte('\n')
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
