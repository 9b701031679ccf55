package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// drainWait bounds how long output is read after the process group is dead,
// in case something that escaped the group still holds a pipe.
const drainWait = time.Second

// process is one running interpreter and the capture of its output.
type process struct {
	cmd     *exec.Cmd
	readers []*os.File     // parent ends of stdout, stderr, fd 3
	wg      sync.WaitGroup // the reading goroutines
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

// start runs the runner in dir with input on stdin. The process group is
// killed when ctx is done.
func (r *Runner) start(ctx context.Context, dir string, input []byte) (*process, error) {
	args := []string{"-I", "-S", "-c", runnerScript}
	name := r.python
	if r.unshare != "" {
		name = r.unshare
		ns := []string{"--net", "--map-root-user"}
		if len(r.hide) > 0 {
			ns = append([]string{"--mount"}, ns...)
			for _, d := range r.hide {
				args = append(args, "--hide", d)
			}
		}
		args = append(append(ns, r.python), args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	cmd.Stdin = bytes.NewReader(input)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = drainWait

	p := &process{
		cmd:        cmd,
		budget:     r.cfg.OutputBytes,
		capBytes:   r.cfg.OutputBytes,
		protoLimit: 12*r.cfg.OutputBytes + 64<<10, // JSON-escaped return and message
	}
	var writers []*os.File
	closeAll := func() {
		for _, f := range append(writers, p.readers...) {
			f.Close()
		}
	}
	for range 3 {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, err
		}
		p.readers = append(p.readers, pr)
		writers = append(writers, pw)
	}
	cmd.Stdout, cmd.Stderr = writers[0], writers[1]
	cmd.ExtraFiles = []*os.File{writers[2]} // fd 3
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
	return p, nil
}

// wait waits for the interpreter, kills what is left of its process group and
// finishes reading its output.
func (p *process) wait() {
	p.cmd.Wait()
	p.state = p.cmd.ProcessState
	killGroup(p.cmd)
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

// readProto reads fd 3 up to protoLimit bytes.
func (p *process) readProto(f *os.File) {
	defer p.wg.Done()
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
