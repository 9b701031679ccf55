package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/runner"
	"github.com/engram-dev/engram/service"
)

// AddToolOptions are the optional parameters of AddTool.
type AddToolOptions struct {
	// Update says what to do when a tool of that name exists: nil or true
	// replaces it (keeping its id), false fails with fault.Invalid.
	Update *bool
	Tags   []string
	// TimeoutSeconds is the wall-clock limit per call; 0 means 30 s. The
	// function's context is cancelled then; a function that ignores it is
	// reported as timed out all the same.
	TimeoutSeconds float64
}

// AddTool registers a Go function as a tool, as the seed's add_tool registers
// a Python function; agents call it like any tool, and it runs in this
// process (so the sandbox does not apply: it is the embedder's own code).
//
// fn must have the type func(context.Context, A) (R, error), where A is a
// struct (or a pointer to one) whose exported fields are the parameters. The
// schema comes from A as github.com/invopop/jsonschema reflects it: the name
// from the json tag; the description from a `description:"..."` tag, or
// `jsonschema:"description=..."` or `jsonschema_description:"..."`; a
// parameter is required unless its json tag has omitempty; nested structs,
// slices and maps become nested schemas, inline. The model's arguments are
// decoded into A (unknown or missing required ones fail the call). A string
// R is returned to the model as it is, nil as "None", anything else as
// indented JSON. An error fails the call with its text; so does a panic.
//
// The tool is stored like any other (source_type "go", no source); after the
// node restarts, call AddTool again, or the agent is told the tool is not
// registered. Go functions cannot cross HTTP, so the REST client has no
// AddTool.
func (l *Client) AddTool(ctx context.Context, name, description string, fn any, opts AddToolOptions) (*api.Tool, error) {
	params, call, err := goToolFunc(fn)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "add tool %s", name)
	}
	t, err := l.node.AddGoTool(ctx, service.GoTool{
		Schema: pytool.Schema{Name: name, Description: description, Parameters: params},
		Tags:   opts.Tags, TimeoutSeconds: opts.TimeoutSeconds,
		Upsert: opts.Update == nil || *opts.Update,
	}, call)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// goToolFunc checks fn's type, derives the parameters' schema and wraps fn as
// a runner.GoFunc.
func goToolFunc(fn any) (pytool.Parameters, runner.GoFunc, error) {
	var params pytool.Parameters
	v := reflect.ValueOf(fn)
	if fn == nil || v.Kind() != reflect.Func || v.IsNil() {
		return params, nil, fmt.Errorf("fn is %T, not a function", fn)
	}
	t := v.Type()
	if t.NumIn() != 2 || t.In(0) != ctxType || t.NumOut() != 2 || t.Out(1) != errorType || t.IsVariadic() {
		return params, nil, fmt.Errorf("fn is %s; want func(context.Context, Args) (Result, error)", t)
	}
	argType := t.In(1)
	structType := argType
	if structType.Kind() == reflect.Pointer {
		structType = structType.Elem()
	}
	if structType.Kind() != reflect.Struct {
		return params, nil, fmt.Errorf("the arguments are %s; want a struct whose fields are the parameters", argType)
	}
	if path := recursion(structType, nil); path != "" {
		return params, nil, fmt.Errorf("the arguments type is recursive (%s); tool schemas cannot express that", path)
	}
	r := jsonschema.Reflector{
		DoNotReference:            true,
		ExpandedStruct:            true,
		AllowAdditionalProperties: true,
		Anonymous:                 true,
		LookupComment:             descriptionTag,
	}
	s := r.ReflectFromType(structType)
	s.Version, s.ID = "", ""
	b, err := json.Marshal(s)
	if err != nil {
		return params, nil, fmt.Errorf("schema of %s: %w", structType, err)
	}
	if err := json.Unmarshal(b, &params); err != nil {
		return params, nil, fmt.Errorf("schema of %s: %w", structType, err)
	}
	required := params.Required()

	call := func(ctx context.Context, raw json.RawMessage) (string, error) {
		var present map[string]json.RawMessage
		if err := json.Unmarshal(raw, &present); err != nil {
			return "", fmt.Errorf("TypeError: arguments are not a JSON object: %v", err)
		}
		for _, name := range required {
			if _, ok := present[name]; !ok {
				return "", fmt.Errorf("TypeError: missing required argument '%s'", name)
			}
		}
		arg := reflect.New(structType)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(arg.Interface()); err != nil {
			return "", fmt.Errorf("TypeError: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		if argType.Kind() != reflect.Pointer {
			arg = arg.Elem()
		}
		out := v.Call([]reflect.Value{reflect.ValueOf(ctx), arg})
		if err, _ := out[1].Interface().(error); err != nil {
			return "", err
		}
		return packageReturn(out[0])
	}
	return params, call, nil
}

// packageReturn turns a Go tool's result into the text for the model.
func packageReturn(v reflect.Value) (string, error) {
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return "None", nil
		}
	}
	if s, ok := v.Interface().(string); ok {
		return s, nil
	}
	b, err := json.MarshalIndent(v.Interface(), "", "  ")
	if err != nil {
		return "", errors.New("the tool's result cannot be encoded as JSON: " + err.Error())
	}
	return string(b), nil
}

// descriptionTag gives a field's `description:"..."` tag to the reflector,
// which otherwise reads only its own jsonschema tags.
func descriptionTag(t reflect.Type, field string) string {
	if field == "" || t.Kind() != reflect.Struct {
		return ""
	}
	if f, ok := t.FieldByName(field); ok {
		return f.Tag.Get("description")
	}
	return ""
}

// recursion returns the path of a struct type that contains itself, or "".
func recursion(t reflect.Type, seen []reflect.Type) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	for i, s := range seen {
		if s == t {
			names := make([]string, 0, len(seen)-i+1)
			for _, x := range seen[i:] {
				names = append(names, x.String())
			}
			return strings.Join(append(names, t.String()), " → ")
		}
	}
	seen = append(seen, t)
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			if p := recursion(f.Type, seen); p != "" {
				return p
			}
		}
	}
	return ""
}
