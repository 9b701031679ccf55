package client_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestRESTLinksNoNode checks that package client, and a program that talks
// to a server through it, link neither the embedded NATS server nor Bleve:
// those belong to the node, which package client/local runs. A REST-only
// program that linked them would carry the whole server (some 470 packages
// instead of some 210).
func TestRESTLinksNoNode(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH:", err)
	}
	for _, pkg := range []string{".", "../examples/restclient"} {
		cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg)
		out, err := cmd.Output()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		} else if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		imports := map[string][]string{} // package -> what it imports
		var root string                  // go list prints the named package last
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			imports[f[0]], root = f[1:], f[0]
		}
		var bad []string
		for p := range imports {
			if strings.Contains(p, "nats-server") || strings.Contains(p, "bleve") {
				bad = append(bad, p)
			}
		}
		slices.Sort(bad)
		for i, p := range bad {
			if i == 3 { // the first chains say what to undo; the rest is noise
				t.Errorf("%s links %d such packages in all", pkg, len(bad))
				break
			}
			t.Errorf("%s links %s: %s", pkg, p, strings.Join(importPath(imports, root, p), " -> "))
		}
	}
}

// importPath returns a shortest chain of imports from one package to
// another, so that a failure says which import brought the package in.
func importPath(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "?", to}
}
