# runner.py: run one tool call for package sandbox.
#
# Protocol: fd 3 carries the runner's side, one JSON object per line:
# {"waiting": true} once it has started (and hidden what it must hide), then,
# after the call arrives as one JSON object on stdin, {"ready": true} once the
# limits are set and before any tool code runs, then the result. With --init
# the runner is PID 1 of the call's PID namespace and the call runs in a
# child; PID 1 adds {"status": {"code": N}} or {"status": {"signal": N}} once
# that child has ended. The tool's own prints go to
# fds 1 and 2, which the Go side captures separately, so they cannot corrupt
# the protocol. Only the standard library is used (python3 -I -S).
import inspect
import json
import os
import resource
import sys

# The runner's own encoder, bound before tool code runs, so that a tool that
# replaces json.dumps cannot garble its answer.
answer = json.JSONEncoder().encode

# Linux constants for confine().
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
PR_SET_NO_NEW_PRIVS = 38

# The world-writable directories a call gets a private, empty tmpfs over.
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
PRIVATE_OPTS = b"size=64m,nr_inodes=16384,mode=1777"

_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def check(what, rc):
    """Ends the process, before any tool code runs, when a setup step failed."""
    if rc != 0:
        import ctypes

        err = ctypes.get_errno()
        sys.stderr.write(f"sandbox: {what}: {os.strerror(err)}\n")
        sys.stderr.flush()
        os._exit(70)


def mount(src, target, fstype, flags, data):
    enc = lambda s: None if s is None else os.fsencode(s)
    check(f"mount {fstype.decode() if fstype else 'bind'} on {target}", libc().mount(enc(src), enc(target), fstype, flags, data))


def searchable(path, uid, gid):
    """Whether uid:gid, with no supplementary groups, may look inside path."""
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def expose_interpreter(uid, gid):
    """Makes the interpreter's installation reachable, read-only, for uid:gid.

    An interpreter under a home directory the user cannot enter (pyenv's
    /root/.pyenv) would be unusable once the runner drops to uid:gid. The
    topmost directory on the way that the user cannot enter is covered by a
    tmpfs that holds only the path down to the installation (mode 0711, so
    it cannot be listed), and the installation is bind-mounted there.
    """
    wanted = []
    for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable))):
        p = os.path.realpath(p)
        if p not in wanted:
            wanted.append(p)
    wanted = [p for p in wanted if not any(q != p and p.startswith(q + "/") for q in wanted)]
    plan = []  # (installation, an O_PATH descriptor of it, the directory to cover)
    for p in wanted:
        parts = p.split("/")[1:]
        blocked = None
        for i in range(len(parts)):
            d = "/" + "/".join(parts[:i])
            if not searchable(d, uid, gid):
                blocked = d
                break
        if blocked is not None:
            plan.append((p, os.open(p, os.O_PATH | os.O_DIRECTORY), blocked))
    covered = []
    for _, _, blocked in plan:
        if blocked not in covered:
            mount("none", blocked, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64k,mode=0711")
            covered.append(blocked)
    old = os.umask(0)
    for p, fd, _ in plan:
        os.makedirs(p, mode=0o711, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC, None)
        mount(None, p, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
        os.close(fd)
    os.umask(old)


def confine(paths, private, user):
    """Builds the tool's view of the file system in its mount namespace.

    Each of paths is covered with an empty read-only tmpfs. With user, the
    interpreter is made reachable for that identity (expose_interpreter).
    With private, /tmp, /var/tmp and /dev/shm get an empty tmpfs each, and
    the working directory is /tmp.

    Without user the process is root of a user namespace (unshare --mount
    --map-root-user), so it could undo its mounts; it then moves into a
    further user and mount namespace, where mounts inherited from a more
    privileged namespace are locked, so the tool cannot unmount a tmpfs (or
    bind-mount a parent without it) to see what lies beneath. With user the
    process is really root and drops to user before tool code runs, which
    leaves it no right to unmount anything. Any failure ends the process
    before tool code runs.
    """
    for path in paths:
        mount("none", path, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k,mode=555")
    if user:
        expose_interpreter(*user)
    if private:
        for d in PRIVATE_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                mount("none", d, b"tmpfs", MS_NOSUID | MS_NODEV, PRIVATE_OPTS)
        os.chdir("/tmp")
    if not user and (paths or private):
        uid, gid = os.getuid(), os.getgid()
        check("unshare", libc().unshare(CLONE_NEWUSER | CLONE_NEWNS))
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def drop(user):
    """Becomes uid:gid with no supplementary groups and no way back.

    No new privileges: a set-user-ID program the tool runs does not run as
    its owner.
    """
    check("prctl(PR_SET_NO_NEW_PRIVS)", libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    if user:
        uid, gid = user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)


def init(user, report):
    """Serves as PID 1 of the call's PID namespace.

    It forks the process that runs the call and returns in it. In PID 1 it
    drops to user, reaps every process until that one has ended, reports
    how it ended on fd 3 (when report) and exits, which makes the kernel
    kill whatever else is left in the namespace, detached or not.
    """
    import signal

    worker = os.fork()
    if worker == 0:
        return
    # Signals from inside the namespace without a handler do not reach PID 1.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.close(0)
    drop(user)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(70)
        if pid == worker:
            break
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        line, code = {"status": {"signal": sig}}, 128 + sig
    else:
        code = os.WEXITSTATUS(status)
        line = {"status": {"code": code}}
    if report:
        os.write(3, (answer(line) + "\n").encode())
    os._exit(code)


def probe(paths, private, user, pid1):
    """Checks that confinement works: the paths look empty and stay covered,
    the interpreter still imports from its standard library, /tmp is
    private and writable, and the identity is the one asked for."""
    confine(paths, private, user)
    if pid1:
        init(user, False)
    drop(user)
    for path in paths:
        if not os.path.exists(path):
            continue  # under the private /tmp
        if os.listdir(path):
            sys.exit(f"sandbox: {path} is still visible")
        if libc().umount2(os.fsencode(path), 2) == 0:
            sys.exit(f"sandbox: the tmpfs over {path} can be unmounted")
    import colorsys  # noqa: F401  (a module the runner has not imported)

    if user and (os.getuid(), os.getgid(), os.getgroups()) != (user[0], user[1], []):
        sys.exit(f"sandbox: running as {os.getuid()}:{os.getgid()} {os.getgroups()}, not {user}")
    if private:
        if os.listdir("/tmp"):
            sys.exit("sandbox: /tmp is not empty")
        with open("/tmp/probe", "w") as f:
            f.write("ok")
    if pid1 and os.getpid() != 2:
        sys.exit(f"sandbox: pid {os.getpid()} in the call's namespace, not 2")
    print("ok")


def set_limit(which, soft, hard):
    """Lowers both limits, so the tool cannot raise them again."""
    _, current = resource.getrlimit(which)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(which, (soft, hard))


class ReadOnlyDict(dict):
    """A dict the tool can read and json.dumps but not change."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("agent_state is read-only")

    __setitem__ = __delitem__ = __ior__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly


def freeze(value):
    if isinstance(value, dict):
        return ReadOnlyDict((k, freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def package(value):
    """Turns a return value into text the way Letta does."""
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, indent=2, ensure_ascii=False, default=json_default)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def call_tool(req):
    code = compile(req["source"], "<tool>", "exec")
    scope = {"__name__": "__tool__"}
    exec(code, scope)
    name = req["function"]
    fn = scope.get(name)
    if not callable(fn):
        raise NameError(f"function {name!r} is not defined in the tool source")
    kwargs = dict(req.get("args") or {})
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    state = freeze(req.get("agent_state")) if req.get("has_agent_state") else None
    names = list(params)
    if names and names[0] == "self":
        # Letta 0.5 calls fn(**args, self=agent).
        kwargs["self"] = state
    elif req.get("has_agent_state") and (
        "agent_state" in params
        or any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
    ):
        kwargs["agent_state"] = state
    value = fn(**kwargs)
    if inspect.iscoroutine(value):
        import asyncio

        value = asyncio.run(value)
    return package(value)


def main():
    args = sys.argv[1:]
    paths = [args[i + 1] for i in range(len(args) - 1) if args[i] == "--hide"]
    user = [args[i + 1] for i in range(len(args) - 1) if args[i] == "--user"]
    user = tuple(int(n) for n in user[0].split(":")) if user else None
    private, pid1 = "--private-tmp" in args, "--init" in args
    if "--probe" in args:
        probe(paths, private, user, pid1)
        return
    if paths or private or user:
        confine(paths, private, user)
    if pid1:
        init(user, True)
    if user or paths or private:
        drop(user)
    proto = os.fdopen(3, "w", encoding="utf-8")
    proto.write('{"waiting": true}\n')
    proto.flush()
    req = json.loads(sys.stdin.buffer.read())
    os.set_inheritable(3, False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)

    limits = req["limits"]
    set_limit(resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"])
    # SIGXCPU at the soft limit, SIGKILL a second later if it is caught.
    set_limit(resource.RLIMIT_CPU, limits["cpu_seconds"], limits["cpu_seconds"] + 1)
    set_limit(resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"])
    set_limit(resource.RLIMIT_FSIZE, limits["file_bytes"], limits["file_bytes"])
    if limits.get("processes"):
        set_limit(resource.RLIMIT_NPROC, limits["processes"], limits["processes"])
    for k, v in (req.get("env") or {}).items():
        os.environ[k] = v
    proto.write('{"ready": true}\n')
    proto.flush()

    cap = req["output_bytes"]
    try:
        text = call_tool(req)
        result = {"ok": True, "return": text[:cap], "return_chars": len(text)}
    except BaseException as e:  # SystemExit and KeyboardInterrupt are tool failures too
        message = str(e)
        if isinstance(e, MemoryError) and not message:
            message = f"memory limit exceeded ({limits['memory_bytes']} bytes of address space)"
        result = {"ok": False, "type": type(e).__name__, "message": message[:cap]}
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    proto.write(answer(result) + "\n")
    proto.flush()
    # Skip atexit handlers and the wait for the tool's non-daemon threads.
    os._exit(0)


main()
