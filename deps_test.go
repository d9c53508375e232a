package herald

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/herald-rt/herald"

// goPackage is the part of `go list -json` the dependency rules read.
type goPackage struct {
	ImportPath string
	Name       string
	Deps       []string // transitive
	Imports    []string // direct
	Standard   bool
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestDependencyRules enforces the dependency direction of DESIGN.md. It is a
// statement of policy: change the rules only with the design.
func TestDependencyRules(t *testing.T) {
	rel := func(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }
	isMain := func(p goPackage) bool {
		r := rel(p.ImportPath)
		return p.Name == "main" || strings.HasPrefix(r, "cmd/") || strings.HasPrefix(r, "interop/") || strings.HasPrefix(r, "bench/")
	}
	forbiddenEverywhere := func(dep string) bool {
		return strings.Contains(dep, "redis") || strings.Contains(dep, "prometheus")
	}
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, dep := range p.Deps {
			own := strings.HasPrefix(dep, module)
			d := rel(dep)
			std := !strings.Contains(strings.Split(dep, "/")[0], ".")
			switch {
			case r == "parser" || strings.HasPrefix(r, "internal/codec"):
				if !std {
					t.Errorf("%s imports %s: codecs use the standard library only", r, dep)
				}
			case r == "engineio" || strings.HasPrefix(r, "engineio/"):
				if own && !strings.HasPrefix(d, "engineio") && !strings.HasPrefix(d, "internal/") {
					t.Errorf("%s imports %s: engineio knows nothing of Socket.IO", r, dep)
				}
			case r == "adapter" || strings.HasPrefix(r, "adapter/") || r == "emitter":
				if own && (d == "" || d == "engineio") {
					t.Errorf("%s imports %s: adapters and the emitter never import the server", r, dep)
				}
			case r == "balancer":
				if own && !strings.HasPrefix(d, "internal/") {
					t.Errorf("%s imports %s: the balancer imports no server package", r, dep)
				}
			}
			core := r == "" || r == "engineio" || r == "parser" || r == "adapter"
			if core && forbiddenEverywhere(dep) {
				t.Errorf("%s imports %s: core packages import no Redis client or metrics library", r, dep)
			}
			if !isMain(p) && d == "internal/cliflags" {
				t.Errorf("%s imports %s: only main packages read flags", r, dep)
			}
		}
		// Direct imports only: package testing itself imports flag.
		for _, imp := range p.Imports {
			if !isMain(p) && r != "internal/cliflags" && (imp == "flag" || imp == "os/signal") {
				t.Errorf("%s imports %s: only main packages read flags or signals", r, imp)
			}
		}
	}
}

// TestNoAbsolutePaths keeps machine paths out of the repository.
func TestNoAbsolutePaths(t *testing.T) {
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Skip("not a git checkout")
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name := sc.Text()
		if strings.HasSuffix(name, "package-lock.json") || strings.HasSuffix(name, "deps_test.go") {
			continue
		}
		data, err := exec.Command("git", "show", ":"+name).Output()
		if err != nil {
			continue
		}
		for _, bad := range []string{"/work/main", "/work/shared", "/tmp/suites", "/root/"} {
			if bytes.Contains(data, []byte(bad)) {
				t.Errorf("%s contains the machine path %q", name, bad)
			}
		}
	}
}
