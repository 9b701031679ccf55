package pytool

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
)

// Schema is the OpenAI function schema Letta stores in Tool.json_schema.
type Schema struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Parameters  Parameters `json:"parameters"` // {"type":"object","properties":{...},"required":[...]}
}

// Parameters is the JSON Schema object in Schema.Parameters, typically
// {"type":"object","properties":{...},"required":[...]}.
//
// It is kept as compact JSON text rather than a map[string]any so that the
// order of properties (the function's parameter order, which LLMs see) is
// preserved through Derive, json.Marshal and json.Unmarshal. Use Properties,
// Property and Required to read it.
//
// The zero value means "no parameters given"; it marshals as
// {"type":"object","properties":{},"required":[]}. Unmarshaling JSON null
// yields the zero value. Any other JSON value is accepted and kept verbatim
// (compacted), so that Validate can reject a malformed client schema with an
// error wrapping ErrInvalid.
type Parameters struct {
	raw json.RawMessage // compact JSON; nil when absent
}

var emptyParameters = []byte(`{"type":"object","properties":{},"required":[]}`)

// MarshalJSON implements json.Marshaler, keeping property order.
func (p Parameters) MarshalJSON() ([]byte, error) {
	if p.raw == nil {
		return bytes.Clone(emptyParameters), nil
	}
	return bytes.Clone(p.raw), nil
}

// UnmarshalJSON implements json.Unmarshaler, keeping property order.
func (p *Parameters) UnmarshalJSON(b []byte) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	if buf.String() == "null" {
		p.raw = nil
		return nil
	}
	p.raw = buf.Bytes()
	return nil
}

// IsZero reports whether no parameters were given (see the type comment).
// It lets a struct field of type Parameters use the omitzero tag option.
func (p Parameters) IsZero() bool { return p.raw == nil }

// Type returns the "type" member, or "" if there is none or it is not a
// string. A zero Parameters has type "object".
func (p Parameters) Type() string {
	if p.raw == nil {
		return "object"
	}
	var t string
	if v, ok := lastField(p.raw, "type"); !ok || json.Unmarshal(v, &t) != nil {
		return ""
	}
	return t
}

// Properties returns the names of the properties, in order. It returns nil
// if there are none or "properties" is not an object.
func (p Parameters) Properties() []string {
	props, ok := lastField(p.raw, "properties")
	if !ok {
		return nil
	}
	fields, ok := objectFields(props)
	if !ok {
		return nil
	}
	var names []string
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if !seen[f.key] {
			seen[f.key] = true
			names = append(names, f.key)
		}
	}
	return names
}

// Property returns the JSON schema of the named property.
func (p Parameters) Property(name string) (json.RawMessage, bool) {
	props, ok := lastField(p.raw, "properties")
	if !ok {
		return nil, false
	}
	v, ok := lastField(props, name)
	return bytes.Clone(v), ok
}

// Required returns the "required" names, in order. It returns nil if there
// are none or "required" is not an array of strings.
func (p Parameters) Required() []string {
	req, err := p.required()
	if err != nil {
		return nil
	}
	return req
}

func (p Parameters) required() ([]string, error) {
	v, ok := lastField(p.raw, "required")
	if !ok {
		return nil, nil
	}
	var req []string
	if err := json.Unmarshal(v, &req); err != nil {
		return nil, errors.New("parameters.required must be an array of strings")
	}
	return req, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks a client-given schema: the name must be non-empty and match
// ^[A-Za-z_][A-Za-z0-9_]*$; if parameters are present they must be an object
// whose "type" is "object", whose "properties" (if present) is an object and
// whose "required" (if present) is an array naming only properties. Errors
// wrap ErrInvalid.
func Validate(s Schema) error {
	if s.Name == "" {
		return invalidf("invalid tool schema: name is empty")
	}
	if !nameRE.MatchString(s.Name) {
		return invalidf("invalid tool schema: name %q must match %s", s.Name, nameRE)
	}
	p := s.Parameters
	if p.IsZero() {
		return nil
	}
	if _, ok := objectFields(p.raw); !ok {
		return invalidf("invalid tool schema: parameters must be a JSON object")
	}
	if t := p.Type(); t != "object" {
		return invalidf("invalid tool schema: parameters.type must be \"object\", not %s", describe(p.raw, "type"))
	}
	props := map[string]bool{}
	if v, ok := lastField(p.raw, "properties"); ok {
		fields, ok := objectFields(v)
		if !ok {
			return invalidf("invalid tool schema: parameters.properties must be an object")
		}
		for _, f := range fields {
			props[f.key] = true
		}
	}
	req, err := p.required()
	if err != nil {
		return invalidf("invalid tool schema: %v", err)
	}
	for _, r := range req {
		if !props[r] {
			return invalidf("invalid tool schema: required parameter %q is not in parameters.properties", r)
		}
	}
	return nil
}

// describe renders the named member of obj for an error message.
func describe(obj []byte, key string) string {
	v, ok := lastField(obj, key)
	if !ok {
		return "missing"
	}
	const keep = 40
	if len(v) > keep {
		return string(v[:keep]) + "..."
	}
	return string(v)
}

type field struct {
	key string
	val json.RawMessage
}

// objectFields returns the members of a JSON object in source order, or
// false if raw is not a JSON object.
func objectFields(raw []byte) ([]field, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, false
		}
		fields = append(fields, field{key: key, val: val})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	return fields, true
}

// lastField returns the member key of the JSON object obj. As with
// encoding/json, the last of duplicate keys wins.
func lastField(obj []byte, key string) (json.RawMessage, bool) {
	fields, _ := objectFields(obj)
	for i := len(fields) - 1; i >= 0; i-- {
		if fields[i].key == key {
			return fields[i].val, true
		}
	}
	return nil, false
}
