package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// drainWait bounds how long output is read after the process group is dead,
// in case something that escaped the group still holds a pipe.
const drainWait = time.Second

// process is one running interpreter and the capture of its output. It
// serves exactly one call: the runner reads one request, answers it and
// exits.
type process struct {
	cmd     *exec.Cmd
	dir     string         // its working directory, removed after the call
	stdin   *os.File       // parent end of its stdin
	readers []*os.File     // parent ends of stdout, stderr, fd 3
	wg      sync.WaitGroup // the reading goroutines
	exited  chan struct{}  // closed once the interpreter has exited and its group is killed
	warm    chan struct{}  // closed once the runner waits for its request
	state   *os.ProcessState

	mu            sync.Mutex // guards budget, stdout, stderr and the dropped flags
	budget        int        // bytes of stdout+stderr still to keep
	stdout        bytes.Buffer
	stderr        bytes.Buffer
	outFull       bool // stdout lost bytes to the budget
	errFull       bool // stderr lost bytes to the budget
	capBytes      int
	proto         bytes.Buffer // fd 3, written only by its reader
	protoLimit    int
	protoOverflow bool
}

// start runs the runner in a new directory. It waits on stdin for its one
// request (see send); until then it has hidden HideDirs and imported what it
// needs, and nothing else.
func (r *Runner) start() (*process, error) {
	// A contained call works in its private /tmp; otherwise it gets a
	// fresh directory on the host.
	dir, home := "", "/tmp"
	if !r.contained {
		var err error
		if dir, err = os.MkdirTemp("", "engram-sandbox-"); err != nil {
			return nil, err
		}
		home = dir
	}
	args := append([]string{"-I", "-S", "-c", runnerScript}, r.runArgs...)
	name := r.python
	if r.unshare != "" {
		name = r.unshare
		args = append(append(slices.Clone(r.nsFlags), r.python), args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = home
	if dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	p := &process{
		cmd:        cmd,
		dir:        dir,
		exited:     make(chan struct{}),
		warm:       make(chan struct{}),
		budget:     r.cfg.OutputBytes,
		capBytes:   r.cfg.OutputBytes,
		protoLimit: 12*r.cfg.OutputBytes + 64<<10, // JSON-escaped return and message
	}
	var writers []*os.File
	closeAll := func() {
		for _, f := range writers {
			f.Close()
		}
		for _, f := range p.readers {
			f.Close()
		}
		if p.stdin != nil {
			p.stdin.Close()
		}
		removeDir(dir)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	p.stdin = inW
	writers = append(writers, inR)
	for range 3 {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, err
		}
		p.readers = append(p.readers, pr)
		writers = append(writers, pw)
	}
	cmd.Stdin = inR
	cmd.Stdout, cmd.Stderr = writers[1], writers[2]
	cmd.ExtraFiles = []*os.File{writers[3]} // fd 3
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, err
	}
	for _, w := range writers {
		w.Close()
	}
	p.wg.Add(3)
	go p.capture(p.readers[0], &p.stdout, &p.outFull)
	go p.capture(p.readers[1], &p.stderr, &p.errFull)
	go p.readProto(p.readers[2])
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		killGroup(cmd) // children that outlived the interpreter
		close(p.exited)
	}()
	return p, nil
}

// send gives the process its request and closes its stdin. It does not block:
// a process that does not read (it died, or hangs before reading) is dealt
// with by the caller's timeout.
func (p *process) send(input []byte) {
	go func() {
		p.stdin.Write(input)
		p.stdin.Close()
	}()
}

// isWarm reports whether the runner has started and waits for its request.
func (p *process) isWarm() bool {
	select {
	case <-p.warm:
		return true
	default:
		return false
	}
}

// alive reports whether the process has not exited.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// watch kills the process group when ctx is done before the process exits.
func (p *process) watch(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
			killGroup(p.cmd)
		case <-p.exited:
		}
	}()
}

// discard kills an unused process and removes its directory.
func (p *process) discard() {
	killGroup(p.cmd)
	p.wait()
	removeDir(p.dir)
}

// wait waits for the interpreter and its group to be gone and finishes
// reading its output.
func (p *process) wait() {
	<-p.exited
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainWait):
		for _, f := range p.readers {
			f.Close() // unblocks the readers
		}
		<-done
	}
	for _, f := range p.readers {
		f.Close()
	}
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// capture reads one output stream, keeping what fits in the shared budget and
// draining the rest so the tool never blocks on a full pipe.
func (p *process) capture(f *os.File, buf *bytes.Buffer, full *bool) {
	defer p.wg.Done()
	chunk := make([]byte, 32<<10)
	for {
		n, err := f.Read(chunk)
		if n > 0 {
			p.mu.Lock()
			keep := min(n, p.budget)
			buf.Write(chunk[:keep])
			p.budget -= keep
			if keep < n {
				*full = true
			}
			p.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// waitingLine is what the runner writes on fd 3 once it has started and is
// about to read its request.
const waitingLine = `{"waiting": true}` + "\n"

// readProto reads fd 3 up to protoLimit bytes, first the waiting line.
func (p *process) readProto(f *os.File) {
	defer p.wg.Done()
	line := make([]byte, len(waitingLine))
	if _, err := io.ReadFull(f, line); err != nil || string(line) != waitingLine {
		p.proto.Write(line) // not the runner speaking: kept for the error
	} else {
		close(p.warm)
	}
	n, _ := io.Copy(&p.proto, io.LimitReader(f, int64(p.protoLimit)+1))
	if n > int64(p.protoLimit) {
		p.protoOverflow = true
		io.Copy(io.Discard, f)
	}
}

// lines returns the captured output as lines, with a note on the stream that
// overflowed.
func (p *process) lines() (stdout, stderr []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	note := fmt.Sprintf("[sandbox: output truncated: stdout and stderr exceeded %d bytes]", p.capBytes)
	return splitLines(p.stdout.Bytes(), p.outFull, note), splitLines(p.stderr.Bytes(), p.errFull, note)
}

func splitLines(b []byte, truncated bool, note string) []string {
	var lines []string
	if s := strings.ToValidUTF8(string(b), "\uFFFD"); s != "" {
		lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	}
	if truncated {
		lines = append(lines, note)
	}
	return lines
}
