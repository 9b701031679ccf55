package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
)

// decode reads r's JSON body into v, refusing fields v does not declare.
//
// A body over the limit is 413; an empty body is 422; malformed JSON or data
// after the object is 400; an unknown field or a value of the wrong type is
// 422.
func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return unprocessable("a JSON object body is required")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err, "cannot read the request body")
	}
	return decodeJSON(body, v)
}

// decodeOptional is decode for a body that may be absent or empty, which
// leaves v as it is.
func decodeOptional(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err, "cannot read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	if t := bytes.TrimSpace(body); len(t) == 0 || string(t) == "null" {
		return unprocessable("a JSON object body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("malformed JSON: unexpected data after the object")
	}
	return nil
}

// jsonError explains a decoding error in a sentence a client can act on.
func jsonError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return invalid("malformed JSON: %v (at byte %d)", syntax, syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return unprocessable("the request body must be a JSON object, not %s", typ.Value)
		}
		return unprocessable("field %q must be %s, not %s", typ.Field, jsonType(typ.Type), typ.Value)
	}
	// encoding/json has no type for this one.
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return unprocessable("unknown field %s", field)
	}
	return invalid("malformed JSON: %v", err)
}

// jsonType names the JSON type that decodes into t.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// query reads a request's query parameters. The first problem it meets is
// kept in err; the getters then return defaults.
//
// An empty value ("key=") counts as absent, as the SDKs send null that way;
// list parameters repeat the key ("tags=a&tags=b").
type query struct {
	v   url.Values
	err error
}

func queryOf(r *http.Request) *query {
	v, err := url.ParseQuery(r.URL.RawQuery)
	q := &query{v: v}
	if err != nil {
		q.err = invalid("malformed query string: %v", err)
	}
	return q
}

func (q *query) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

// str returns the first non-empty value of key, or "".
func (q *query) str(key string) string {
	for _, s := range q.v[key] {
		if s != "" {
			return s
		}
	}
	return ""
}

// strs returns the non-empty values of key.
func (q *query) strs(key string) []string {
	var out []string
	for _, s := range q.v[key] {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// list returns the values of key, each split at commas, without empty ones:
// "k=a&k=b" and "k=a,b" are the same list.
func (q *query) list(key string) []string {
	var out []string
	for _, s := range q.v[key] {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// intp reads an optional integer: nil when absent, 422 when not a number.
func (q *query) intp(key string) *int {
	s := q.str(key)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		q.fail(unprocessable("query parameter %s must be an integer, not %q", key, s))
		return nil
	}
	return &n
}

// ints reads a repeated integer parameter.
func (q *query) ints(key string) []int {
	var out []int
	for _, s := range q.strs(key) {
		n, err := strconv.Atoi(s)
		if err != nil {
			q.fail(unprocessable("query parameter %s must be integers, not %q", key, s))
			return nil
		}
		out = append(out, n)
	}
	return out
}

// atLeast reads an optional integer no smaller than least (a count such as
// limit): nil when absent, 422 when not a number or too small, with a
// message that names the range.
func (q *query) atLeast(key string, least int) *int {
	s := q.str(key)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least {
		q.fail(unprocessable("query parameter %s must be %s, not %q", key, intRange(least), s))
		return nil
	}
	return &n
}

func intRange(least int) string {
	switch least {
	case 0:
		return "a non-negative integer"
	case 1:
		return "a positive integer"
	}
	return fmt.Sprintf("an integer of at least %d", least)
}

// has reports whether key has a non-empty value.
func (q *query) has(key string) bool { return q.str(key) != "" }

// boolean reads "true" or "false" in any case (Python's requests sends
// "True"), or "1" or "0"; anything else is 422.
func (q *query) boolean(key string, def bool) bool {
	switch s := strings.ToLower(q.str(key)); s {
	case "":
		return def
	case "true", "1":
		return true
	case "false", "0":
		return false
	default:
		q.fail(unprocessable("query parameter %s must be true or false, not %q", key, q.str(key)))
		return def
	}
}

// datetime reads an ISO 8601 time (a date alone means its midnight UTC);
// absent is the zero time.
func (q *query) datetime(key string) time.Time {
	v := q.str(key)
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC()
		}
	}
	q.fail(unprocessable("query parameter %s must be an ISO 8601 time, not %q", key, v))
	return time.Time{}
}

// page reads before, after (or its old alias cursor), limit and order.
func (q *query) page() api.Page {
	p := api.Page{Before: q.str("before"), After: q.str("after"), Order: q.str("order")}
	if p.After == "" {
		p.After = q.str("cursor")
	}
	if n := q.atLeast("limit", 0); n != nil {
		p.Limit = *n
	}
	if p.Order != "" && p.Order != "asc" && p.Order != "desc" {
		q.fail(unprocessable("query parameter order must be asc or desc, not %q", p.Order))
	}
	return p
}
