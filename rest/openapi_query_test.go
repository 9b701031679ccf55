package rest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/service"
)

// The query parameters a route documents are checked against its code:
// TestQueryParams parses rest's source, follows the registration code from
// newHandler to the function each pattern is bound to, and gathers the keys
// that function reads through the query helper (decode.go), following the
// calls it passes its request or its query to. A key read but not declared
// in modernIO or oldIO fails, as does one declared but never read, or
// declared as another kind than its getter reads.

// queryGetters maps the query helper's getters to the kind (queryKinds)
// they read a key as. has reads presence only: it takes the kind of the
// key's other getters, and is a string alone.
var queryGetters = map[string]string{
	"str": "", "has": "", "strs": "strs", "list": "list", "intp": "int", "atLeast": "int",
	"ints": "ints", "boolean": "bool", "seq": "seq", "datetime": "time",
}

// externalHandlers are the patterns bound to a handler outside rest, which
// reads no query parameter of the helper's.
var externalHandlers = map[string]bool{"GET /metrics": true}

// TestQueryParams: every served route declares exactly the query
// parameters its code reads, each as the kind its getter reads. The handler
// needs no node: only its registered patterns are used.
func TestQueryParams(t *testing.T) {
	src := parseRest(t)
	h := newHandler(&service.Service{}, Config{Metrics: metrics.New()})
	reads := routeReads(t, src, h.patterns)
	for _, e := range src.errs {
		t.Error(e)
	}
	for _, w := range src.queryReadsOutsideHelper() {
		t.Errorf("%s reads the query outside the query helper, where this test cannot see its keys", w)
	}
	for _, pattern := range h.patterns {
		r, ok := reads[pattern]
		if !ok {
			continue
		}
		rio, _, _ := ioFor(pattern)
		compareQuery(t, pattern, rio.params, r)
	}
}

// compareQuery fails for each difference between a route's declared query
// parameters and the ones its code reads.
func compareQuery(t *testing.T, pattern string, declared []queryParam, reads keyReads) {
	t.Helper()
	kinds := map[string]string{}
	for _, p := range declared {
		kinds[p.name] = p.kind
		if reads[p.name] == nil {
			t.Errorf("%s declares query parameter %q, which its handler never reads", pattern, p.name)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(reads)) {
		kind, err := reads.kind(key)
		getters := slices.Sorted(maps.Keys(reads[key]))
		want, ok := kinds[key]
		switch {
		case err != nil:
			t.Errorf("%s: query parameter %q is %v", pattern, key, err)
		case !ok:
			t.Errorf("%s reads query parameter %q (q.%s) but does not declare it: add %q to its routeIO", pattern, key, strings.Join(getters, ", q."), spec(key, kind))
		case want != kind:
			t.Errorf("%s declares query parameter %q as %q, but its handler reads it as %q (q.%s)", pattern, key, spec(key, want), spec(key, kind), strings.Join(getters, ", q."))
		}
	}
}

// spec writes a parameter as routeIO.query takes it.
func spec(name, kind string) string {
	if kind == "" {
		return name
	}
	return name + ":" + kind
}

// restSource is rest's non-test source, parsed, with what the analysis
// has learned of it.
type restSource struct {
	files   []*ast.File
	funcs   map[string]*ast.FuncDecl // package functions by name
	methods map[string]*ast.FuncDecl // methods by "receiver.name": "handler.listAgents"
	consts  map[string]string        // string constants by name
	reads   map[ast.Node]keyReads    // each function's, once worked out
	errs    []string
}

// keyReads maps a query key to the getters that read it.
type keyReads map[string]map[string]bool

func (k keyReads) add(key, getter string) {
	if k[key] == nil {
		k[key] = map[string]bool{}
	}
	k[key][getter] = true
}

func (k keyReads) merge(o keyReads) {
	for key, gs := range o {
		for g := range gs {
			k.add(key, g)
		}
	}
}

// kind is the kind a key is read as, or an error when its getters
// disagree.
func (k keyReads) kind(key string) (string, error) {
	kinds := map[string]bool{}
	for g := range k[key] {
		if g != "has" {
			kinds[queryGetters[g]] = true
		}
	}
	switch len(kinds) {
	case 0:
		return "", nil
	case 1:
		for kind := range kinds {
			return kind, nil
		}
	}
	return "", fmt.Errorf("read with getters of different kinds: %v", slices.Sorted(maps.Keys(k[key])))
}

func parseRest(t *testing.T) *restSource {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	s := &restSource{funcs: map[string]*ast.FuncDecl{}, methods: map[string]*ast.FuncDecl{}, consts: map[string]string{}, reads: map[ast.Node]keyReads{}}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.files = append(s.files, f)
		s.index(f)
	}
	return s
}

// index records f's functions, methods and string constants.
func (s *restSource) index(f *ast.File) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				s.funcs[d.Name.Name] = d
			} else {
				s.methods[receiverName(d)+"."+d.Name.Name] = d
			}
		case *ast.GenDecl:
			if d.Tok != token.CONST {
				continue
			}
			for _, spec := range d.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringLit(vs.Values[i]); ok {
							s.consts[n.Name] = v
						}
					}
				}
			}
		}
	}
}

func receiverName(d *ast.FuncDecl) string {
	t := d.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

func (s *restSource) errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func funcName(fn ast.Node) string {
	if d, ok := fn.(*ast.FuncDecl); ok {
		if d.Recv != nil {
			return receiverName(d) + "." + d.Name.Name
		}
		return d.Name.Name
	}
	return "a function literal"
}

// carriers names fn's values that carry the query: its *http.Request and
// *query parameters (of fn and of the closures in it), and the results of
// queryOf.
func carriers(fn ast.Node) map[string]string {
	vars := map[string]string{}
	fields := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			var what string
			switch types.ExprString(f.Type) {
			case "*http.Request":
				what = "request"
			case "*query":
				what = "query"
			default:
				continue
			}
			for _, n := range f.Names {
				vars[n.Name] = what
			}
		}
	}
	if d, ok := fn.(*ast.FuncDecl); ok {
		fields(d.Recv)
	}
	ast.Inspect(fn, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncType:
			fields(n.Params)
		case *ast.AssignStmt:
			for i, rhs := range n.Rhs {
				if len(n.Lhs) != len(n.Rhs) || !isCallTo(rhs, "queryOf") {
					continue
				}
				if lhs, ok := n.Lhs[i].(*ast.Ident); ok {
					vars[lhs.Name] = "query"
				}
			}
		}
		return true
	})
	return vars
}

func isCallTo(e ast.Expr, name string) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	id, ok := call.Fun.(*ast.Ident)
	return ok && id.Name == name
}

// readsOf gathers the query keys fn reads: through a getter called on a
// query it holds, or in the functions it passes its request or query to
// (rest's functions, the handler's methods, and the query's own helpers
// such as page). A cycle reads what was found before it closed.
func (s *restSource) readsOf(fn ast.Node) keyReads {
	if r, ok := s.reads[fn]; ok {
		return r
	}
	out := keyReads{}
	s.reads[fn] = out
	vars := carriers(fn)
	ast.Inspect(fn, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && isQuery(sel.X, vars) {
			s.queryCall(fn, sel.Sel.Name, call, out)
			return true
		}
		if passesCarrier(call, vars) {
			if callee := s.callee(call); callee != nil {
				out.merge(s.readsOf(callee))
			}
		}
		return true
	})
	return out
}

// queryCall records a getter's key, or follows a helper method of query.
func (s *restSource) queryCall(fn ast.Node, method string, call *ast.CallExpr, out keyReads) {
	if _, ok := queryGetters[method]; ok {
		key, ok := s.constant(call.Args[0])
		switch name := funcName(fn); {
		case !ok && strings.HasPrefix(name, "query."):
			s.errorf("%s reads a key it is passed: if it is a getter, add it to queryGetters", name)
			return
		case !ok:
			s.errorf("%s reads the query key %s, which is not a constant: the test cannot name it", name, types.ExprString(call.Args[0]))
			return
		}
		out.add(key, method)
		return
	}
	if m := s.methods["query."+method]; m != nil {
		out.merge(s.readsOf(m))
	}
}

func (s *restSource) constant(e ast.Expr) (string, bool) {
	if v, ok := stringLit(e); ok {
		return v, true
	}
	if id, ok := e.(*ast.Ident); ok {
		v, ok := s.consts[id.Name]
		return v, ok
	}
	return "", false
}

// isQuery reports whether e is a query: a variable holding one, or
// queryOf(…) itself.
func isQuery(e ast.Expr, vars map[string]string) bool {
	if id, ok := e.(*ast.Ident); ok {
		return vars[id.Name] == "query"
	}
	return isCallTo(e, "queryOf")
}

func passesCarrier(call *ast.CallExpr, vars map[string]string) bool {
	for _, a := range call.Args {
		if id, ok := a.(*ast.Ident); ok && vars[id.Name] != "" {
			return true
		}
	}
	return false
}

// callee finds the function a call runs: one of rest's, or a method of the
// handler (h.name). Calls through function values are not followed.
func (s *restSource) callee(call *ast.CallExpr) *ast.FuncDecl {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return s.funcs[f.Name]
	case *ast.SelectorExpr:
		if _, ok := f.X.(*ast.Ident); ok {
			return s.methods["handler."+f.Sel.Name]
		}
	}
	return nil
}

// regValue is a value the registration code computes: a string (a pattern
// or a part of one), a closure it may call, or a handler, as the functions
// a request runs through (the endpoint and the wrappers around it, such as
// to05; none when the handler is not rest's).
type regValue struct {
	str   *string
	fn    *ast.FuncLit
	scope map[string]regValue
	fns   []ast.Node
}

// registrations runs the registration code from newHandler symbolically
// and answers the functions bound to each pattern. It knows the
// statements that code uses (assignments, loops over literal lists, ifs,
// calls of the handler's methods and of closures): a registration it
// cannot follow is an error, not a silent gap.
func (s *restSource) registrations() map[string][]ast.Node {
	in := &regInterp{src: s, routes: map[string][]ast.Node{}}
	d := s.funcs["newHandler"]
	in.enter(d.Type, d.Body, nil, nil, nil)
	return in.routes
}

type regInterp struct {
	src    *restSource
	routes map[string][]ast.Node
	depth  int
}

func (in *regInterp) exec(stmts []ast.Stmt, env map[string]regValue) {
	for _, st := range stmts {
		switch st := st.(type) {
		case *ast.AssignStmt:
			if len(st.Lhs) != len(st.Rhs) {
				continue
			}
			for i, l := range st.Lhs {
				if id, ok := l.(*ast.Ident); ok {
					env[id.Name] = in.eval(st.Rhs[i], env)
				}
			}
		case *ast.RangeStmt:
			in.loop(st, env)
		case *ast.IfStmt:
			in.exec(st.Body.List, env)
			if els, ok := st.Else.(*ast.BlockStmt); ok {
				in.exec(els.List, env)
			}
		case *ast.BlockStmt:
			in.exec(st.List, env)
		case *ast.ExprStmt:
			if call, ok := st.X.(*ast.CallExpr); ok {
				in.call(call, env)
			}
		}
	}
}

// loop runs a range over a literal list once for each element.
func (in *regInterp) loop(st *ast.RangeStmt, env map[string]regValue) {
	lit, ok := st.X.(*ast.CompositeLit)
	v, isID := st.Value.(*ast.Ident)
	if !ok || !isID {
		in.src.errorf("registration code ranges over %s, not a literal list", types.ExprString(st.X))
		return
	}
	for _, e := range lit.Elts {
		inner := maps.Clone(env)
		inner[v.Name] = in.eval(e, env)
		in.exec(st.Body.List, inner)
	}
}

func (in *regInterp) call(call *ast.CallExpr, env map[string]regValue) {
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		if name := f.Sel.Name; name == "handle" || name == "handleFunc" {
			in.register(call, env)
		} else if d := in.src.methods["handler."+name]; d != nil {
			in.enter(d.Type, d.Body, call.Args, env, nil)
		}
	case *ast.Ident:
		if v := env[f.Name]; v.fn != nil {
			in.enter(v.fn.Type, v.fn.Body, call.Args, env, v.scope)
		}
	}
}

func (in *regInterp) register(call *ast.CallExpr, env map[string]regValue) {
	pattern := in.eval(call.Args[0], env)
	if pattern.str == nil {
		in.src.errorf("a route's pattern is not made of constants: %s", types.ExprString(call.Args[0]))
		return
	}
	in.routes[*pattern.str] = in.eval(call.Args[1], env).fns
}

// enter runs a function's body with its parameters bound to args
// (evaluated in argEnv), in scope: a closure's, or none.
func (in *regInterp) enter(ft *ast.FuncType, body *ast.BlockStmt, args []ast.Expr, argEnv, scope map[string]regValue) {
	if in.depth > 10 {
		in.src.errorf("registration code recurses")
		return
	}
	env := maps.Clone(scope)
	if env == nil {
		env = map[string]regValue{}
	}
	i := 0
	for _, f := range ft.Params.List {
		for _, n := range f.Names {
			if i < len(args) {
				env[n.Name] = in.eval(args[i], argEnv)
			}
			i++
		}
	}
	in.depth++
	in.exec(body.List, env)
	in.depth--
}

func (in *regInterp) eval(e ast.Expr, env map[string]regValue) regValue {
	switch e := e.(type) {
	case *ast.BasicLit:
		if v, ok := stringLit(e); ok {
			return regValue{str: &v}
		}
	case *ast.Ident:
		if v, ok := env[e.Name]; ok {
			return v
		}
		if v, ok := in.src.consts[e.Name]; ok {
			return regValue{str: &v}
		}
	case *ast.ParenExpr:
		return in.eval(e.X, env)
	case *ast.BinaryExpr:
		x, y := in.eval(e.X, env), in.eval(e.Y, env)
		if e.Op == token.ADD && x.str != nil && y.str != nil {
			v := *x.str + *y.str
			return regValue{str: &v}
		}
	case *ast.FuncLit:
		return regValue{fn: e, scope: env, fns: []ast.Node{e}}
	case *ast.SelectorExpr: // h.name, a method value
		if d := in.src.methods["handler."+e.Sel.Name]; d != nil {
			return regValue{fns: []ast.Node{d}}
		}
	case *ast.CallExpr: // a wrapper: the function called, and the handlers it is passed
		var v regValue
		if id, ok := e.Fun.(*ast.Ident); ok {
			if c := env[id.Name]; c.fn != nil {
				v.fns = append(v.fns, c.fn)
			} else if d := in.src.funcs[id.Name]; d != nil {
				v.fns = append(v.fns, d)
			}
		}
		for _, a := range e.Args {
			v.fns = append(v.fns, in.eval(a, env).fns...)
		}
		return v
	}
	return regValue{}
}

// routeReads answers each served pattern's query reads: its handler's and
// ServeHTTP's, which every request passes through.
func routeReads(t *testing.T, src *restSource, patterns []string) map[string]keyReads {
	t.Helper()
	regs := src.registrations()
	serve := src.readsOf(src.methods["handler.ServeHTTP"])
	out := map[string]keyReads{}
	for _, pattern := range patterns {
		fns, ok := regs[pattern]
		switch {
		case !ok:
			t.Errorf("%s is served but the registration code does not register it (as far as the test can follow it)", pattern)
			continue
		case len(fns) == 0 && !externalHandlers[pattern]:
			t.Errorf("%s: the test cannot tell which function serves it", pattern)
			continue
		}
		reads := keyReads{}
		reads.merge(serve)
		for _, fn := range fns {
			reads.merge(src.readsOf(fn))
		}
		out[pattern] = reads
	}
	return out
}

// queryReadsOutsideHelper finds code reading the query string other than
// through queryOf, which the analysis would not see.
func (s *restSource) queryReadsOutsideHelper() []string {
	var found []string
	for _, f := range s.files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name == "queryOf" {
				continue
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				switch x := types.ExprString(sel.X); {
				case strings.HasSuffix(x, ".URL") && (sel.Sel.Name == "Query" || sel.Sel.Name == "RawQuery"),
					sel.Sel.Name == "FormValue" || sel.Sel.Name == "ParseForm" || sel.Sel.Name == "Form":
					found = append(found, funcName(fd)+": "+types.ExprString(sel))
				}
				return true
			})
		}
	}
	return found
}
