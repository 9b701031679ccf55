# runner.py: run one tool call for package sandbox.
#
# Protocol: fd 3 carries the runner's side, one JSON object per line:
# {"waiting": true} once it has started (and hidden what it must hide), then,
# after the call arrives as one JSON object on stdin, {"ready": true} once the
# limits are set and before any tool code runs, then the result. The tool's own prints go to
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

# Linux constants for hide().
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def hide(paths):
    """Covers each path with an empty read-only tmpfs, then locks the mounts.

    The process must be in its own mount namespace, as root of a user
    namespace (unshare --mount --map-root-user). After the mounts it moves
    into a further user and mount namespace: mounts inherited from a more
    privileged namespace are locked there, so the tool cannot unmount the
    tmpfs (or bind-mount a parent without it) to see what lies beneath.
    Any failure ends the process before tool code runs.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.unshare.argtypes = [ctypes.c_int]

    def check(what, rc):
        if rc != 0:
            err = ctypes.get_errno()
            sys.stderr.write(f"sandbox: {what}: {os.strerror(err)}\n")
            sys.stderr.flush()
            os._exit(70)

    for path in paths:
        flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        check(f"mount tmpfs over {path}", libc.mount(b"none", os.fsencode(path), b"tmpfs", flags, b"size=4k,mode=555"))
    uid, gid = os.getuid(), os.getgid()
    check("unshare", libc.unshare(CLONE_NEWUSER | CLONE_NEWNS))
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def probe(paths):
    """Checks that hide() works: the paths look empty and stay covered."""
    import ctypes

    hide(paths)
    libc = ctypes.CDLL(None, use_errno=True)
    for path in paths:
        if os.listdir(path):
            sys.exit(f"sandbox: {path} is still visible")
        if libc.umount2(os.fsencode(path), 2) == 0:
            sys.exit(f"sandbox: the tmpfs over {path} can be unmounted")
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
    if "--probe" in args:
        probe(paths)
        return
    if paths:
        hide(paths)
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
