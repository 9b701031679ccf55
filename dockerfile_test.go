package engram_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfile reads the Dockerfile as its instructions, continuation lines
// joined and comments dropped.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur += rest + " "
			continue
		}
		cur += trimmed
		op, args, _ := strings.Cut(cur, " ")
		out = append(out, [2]string{strings.ToUpper(op), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// TestDockerfile builds the binary with the Dockerfile's own go build
// command (building the image needs a container runtime, which the test
// machine lacks) and checks the image it describes: multi-stage, a
// distroless runtime with python3, a non-root user, data in a volume.
func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ins := dockerfile(t)
	var froms, build []string
	var user, volume, entrypoint, dataDir string
	for _, in := range ins {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "RUN":
			if strings.Contains(in[1], "go build") {
				build = append(build, in[1])
			}
		case "USER":
			user = in[1]
		case "VOLUME":
			volume = in[1]
		case "ENTRYPOINT":
			entrypoint = in[1]
		case "ENV":
			if v, ok := strings.CutPrefix(in[1], "ENGRAM_DATA_DIR="); ok {
				dataDir = v
			}
		}
	}
	if len(froms) < 2 || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("not a multi-stage build: FROM %q", froms)
	}
	if runtime := froms[len(froms)-1]; !strings.Contains(runtime, "python3") {
		t.Errorf("the runtime image %q has no python3 for tools", runtime)
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("runs as %q", user)
	}
	if volume != `["/data"]` || dataDir != "/data" {
		t.Errorf("VOLUME %s, ENGRAM_DATA_DIR %q", volume, dataDir)
	}
	if entrypoint != `["/usr/local/bin/engram"]` {
		t.Errorf("ENTRYPOINT %s", entrypoint)
	}
	if len(build) != 1 {
		t.Fatalf("want one go build in the Dockerfile, found %q", build)
	}

	// Run the build stage's command as its shell would, writing where the
	// test says instead of /out.
	out := t.TempDir()
	cmd := strings.ReplaceAll(build[0], "/out/", out+"/")
	sh := exec.Command("sh", "-c", cmd)
	sh.Env = append(os.Environ(), "VERSION=docker-test")
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	bin := filepath.Join(out, "engram")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked; the runtime image must not need a libc it may lack")
		}
	}
	f.Close()
	v, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(v)) != "engram docker-test" {
		t.Errorf("version: %q %v", v, err)
	}
	// The CMD's flags are flags the server takes.
	help, _ := exec.Command(bin, "server", "-h").CombinedOutput()
	for _, flag := range regexp.MustCompile(`"(--[a-z-]+)"`).FindAllStringSubmatch(ins[len(ins)-1][1], -1) {
		if !strings.Contains(string(help), "-"+strings.TrimLeft(flag[1], "-")+" ") {
			t.Errorf("CMD passes %s, which engram server does not take:\n%s", flag[1], help)
		}
	}
}

// TestSystemdUnit checks the example unit runs the binary's server with
// flags it takes, as an unprivileged user, with its data in a state
// directory.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("deploy/engram.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{"[Service]", "DynamicUser=yes", "StateDirectory=engram", "Environment=ENGRAM_DATA_DIR=/var/lib/engram", "ExecStart=/usr/local/bin/engram server ", "KillSignal=SIGTERM", "[Install]"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}
