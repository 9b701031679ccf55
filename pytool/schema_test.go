package pytool

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParametersRoundTripKeepsOrder(t *testing.T) {
	in := `{"name":"f","description":"d","parameters":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"},"mid":{"type":"array","items":{"type":"string"}}},"required":["zeta","mid"],"x-extra":true}}`
	var s Schema
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"zeta", "alpha", "mid"}, s.Parameters.Properties()); diff != "" {
		t.Errorf("Properties() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"zeta", "mid"}, s.Parameters.Required()); diff != "" {
		t.Errorf("Required() (-want +got):\n%s", diff)
	}
	if got := s.Parameters.Type(); got != "object" {
		t.Errorf("Type() = %q", got)
	}
	if p, ok := s.Parameters.Property("alpha"); !ok || string(p) != `{"type":"integer"}` {
		t.Errorf("Property(alpha) = %s, %v", p, ok)
	}
	if _, ok := s.Parameters.Property("nope"); ok {
		t.Error("Property(nope) found")
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("round trip changed the JSON:\n got %s\nwant %s", out, in)
	}
	if err := Validate(s); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParametersZero(t *testing.T) {
	var p Parameters
	if !p.IsZero() || p.Properties() != nil || p.Required() != nil || p.Type() != "object" {
		t.Errorf("zero Parameters: IsZero %v, Properties %v, Required %v, Type %q", p.IsZero(), p.Properties(), p.Required(), p.Type())
	}
	out, err := json.Marshal(Schema{Name: "f"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"f","description":"","parameters":{"type":"object","properties":{},"required":[]}}`
	if string(out) != want {
		t.Errorf("Marshal = %s, want %s", out, want)
	}
	for _, in := range []string{`{"name":"f"}`, `{"name":"f","parameters":null}`} {
		var s Schema
		if err := json.Unmarshal([]byte(in), &s); err != nil {
			t.Fatal(err)
		}
		if !s.Parameters.IsZero() {
			t.Errorf("%s: parameters not zero", in)
		}
	}
	var s struct {
		P Parameters `json:"p,omitzero"`
	}
	if out, _ := json.Marshal(s); string(out) != `{}` {
		t.Errorf("omitzero: %s", out)
	}
}

func TestParametersUnmarshalRejectsBadJSON(t *testing.T) {
	var p Parameters
	if err := p.UnmarshalJSON([]byte(`{"type":`)); err == nil {
		t.Error("UnmarshalJSON accepted truncated JSON")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		wantErr string // "" for valid
	}{
		{"minimal", `{"name":"f"}`, ""},
		{"underscore name", `{"name":"_f_1","parameters":{"type":"object"}}`, ""},
		{"empty properties", `{"name":"f","parameters":{"type":"object","properties":{},"required":[]}}`, ""},
		{"full", `{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}`, ""},
		{"empty name", `{"name":"","parameters":{"type":"object"}}`, "name is empty"},
		{"name with dash", `{"name":"my-tool"}`, "must match"},
		{"name with leading digit", `{"name":"1f"}`, "must match"},
		{"name with space", `{"name":"f g"}`, "must match"},
		{"parameters not object", `{"name":"f","parameters":[1]}`, "parameters must be a JSON object"},
		{"parameters string", `{"name":"f","parameters":"object"}`, "parameters must be a JSON object"},
		{"type missing", `{"name":"f","parameters":{"properties":{}}}`, `parameters.type must be "object", not missing`},
		{"type array", `{"name":"f","parameters":{"type":"array"}}`, `parameters.type must be "object", not "array"`},
		{"properties not object", `{"name":"f","parameters":{"type":"object","properties":[]}}`, "parameters.properties must be an object"},
		{"required not array", `{"name":"f","parameters":{"type":"object","properties":{"a":{}},"required":"a"}}`, "array of strings"},
		{"required unknown", `{"name":"f","parameters":{"type":"object","properties":{"a":{}},"required":["a","b"]}}`, `required parameter "b" is not in parameters.properties`},
		{"required without properties", `{"name":"f","parameters":{"type":"object","required":["a"]}}`, `required parameter "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Schema
			if err := json.Unmarshal([]byte(tt.schema), &s); err != nil {
				t.Fatal(err)
			}
			err := Validate(s)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want error containing %q", tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
