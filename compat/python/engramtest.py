"""Starts the Go harness (compat/harness) for the Python compatibility suite.

The harness runs, on loopback, an engram server on a fresh data directory and
a scripted model (llmtest). It prints its URLs as one JSON line and stops
when its stdin closes; see compat/harness/main.go. This module starts it,
talks to its control endpoint, and holds the small builders the tests share
(scripted model steps, unique names). conftest.py turns it into fixtures.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# TOKEN is the token the harness's engram requires; both clients send it as
# a Bearer token.
TOKEN = "compat-secret-token"

# The model handles the harness lists (its -chat-model and -embedding-model
# defaults); the embedding dimension is the handle's size.
CHAT_HANDLE = "openai/gpt-4o-mini"
EMBEDDING_HANDLE = "openai/text-embedding-3-small"
EMBEDDING_DIM = 64


def unique(prefix="x"):
    """A name no other test uses: prefix, a dash and 8 hex digits."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def unique_ident(prefix="x"):
    """Like unique, but a Python identifier (for tool function names)."""
    return unique(prefix).replace("-", "_")


def call(name, args):
    """An llmtest tool call: the model calls tool name with args (a dict)."""
    return {"Name": name, "Arguments": json.dumps(args)}


def say(text, thought="I should answer the user."):
    """An llmtest step in which the model thinks, then calls send_message(text)."""
    return {"Content": thought, "ToolCalls": [call("send_message", {"message": text})]}


class Model:
    """The scripted model, through the harness's control endpoint.

    Steps are llmtest steps with Go's field names: Content, ToolCalls
    ([{"Name", "Arguments"}], see call), Finish, Status, ErrorBody, Delay
    (nanoseconds), Malformed. Each completion request engram makes consumes
    the next step; the script is shared by every test in the session.
    """

    def __init__(self, control_url):
        self.control_url = control_url

    def _do(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"harness {method} {path}: {e.code} {e.read().decode(errors='replace')}") from None

    def script(self, *steps):
        """Appends steps to the script: script(a, b) or script([a, b]).

        Returns how many steps are pending after the append.
        """
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = steps[0]
        return self._do("POST", "/script", list(steps))["pending"]

    def pending(self):
        """How many scripted steps no request has consumed yet."""
        return self._do("GET", "/pending")["pending"]

    def requests(self):
        """Every completion request the model received, oldest first, decoded
        (llmtest.Recorded: Model, Stream, Messages, Tools, ToolChoice, ...)."""
        return self._do("GET", "/requests") or []

    def embeddings(self):
        """{"requests": n, "inputs": n}: what the embeddings endpoint served."""
        return self._do("GET", "/embeddings")


class Harness:
    """A running harness: urls (engram, model, control, data_dir) and model.

    start() builds it if needed and waits for its URLs; stop() closes its
    stdin, which shuts it down, and waits for it to exit.
    """

    def __init__(self, proc, urls, build_dir=None):
        self.proc = proc
        self.urls = urls
        self.engram_url = urls["engram"]
        if os.environ.get("ENGRAM_COMPAT_TLS_DIR") and not self.engram_url.startswith("https://"):
            raise RuntimeError(f"asked for HTTPS, the harness serves {self.engram_url}")
        self.model = Model(urls["control"])
        self._build_dir = build_dir

    @classmethod
    def start(cls, binary=None, verbose=False, timeout=120):
        """Starts the harness binary; with none given, $ENGRAM_COMPAT_HARNESS,
        else one built with go build into a temporary directory."""
        binary = binary or os.environ.get("ENGRAM_COMPAT_HARNESS")
        build_dir = None
        if not binary:
            build_dir = tempfile.mkdtemp(prefix="engram-compat-bin-")
            binary = os.path.join(build_dir, "harness")
            subprocess.run(["go", "build", "-o", binary, "./compat/harness"], cwd=REPO_ROOT, check=True)
        args = [binary, "-token", TOKEN]
        if os.environ.get("ENGRAM_COMPAT_TLS_DIR"):  # compat/tls.sh: engram over HTTPS
            args += ["-tls-dir", os.environ["ENGRAM_COMPAT_TLS_DIR"]]
        if verbose:
            args.append("-v")
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True)

        got = {}

        def read_line():
            got["line"] = proc.stdout.readline()

        reader = threading.Thread(target=read_line, daemon=True)
        reader.start()
        reader.join(timeout)
        line = got.get("line")
        try:
            if line is None:
                raise RuntimeError(f"the harness printed no URLs within {timeout} s")
            if line == "":
                raise RuntimeError(f"the harness exited (code {proc.wait(10)}) before printing its URLs")
            try:
                urls = json.loads(line)
            except ValueError as e:
                raise RuntimeError(f"the harness printed {line!r}, not JSON: {e}") from None
        except BaseException:
            proc.kill()
            proc.wait()
            if build_dir:
                shutil.rmtree(build_dir, ignore_errors=True)
            raise
        return cls(proc, urls, build_dir)

    def stop(self, timeout=30):
        """Closes the harness's stdin and waits for it; kills it after timeout s."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._build_dir:
            shutil.rmtree(self._build_dir, ignore_errors=True)
        return self.proc.returncode
