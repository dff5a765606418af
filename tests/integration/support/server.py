"""The refine-server process under test: the real binary (REFINE_SERVER) on a free port with a
temporary database, started, stopped with SIGTERM (exit status 0 required), killed with
SIGKILL, restarted on the same database; its stderr is kept in the temporary directory and
must hold no sanitizer report."""

import asyncio
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SERVER = os.path.join(ROOT, "build", "refine-server")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer")


def _binary_has(marker):
    """Whether the server binary under test holds `marker` (a sanitizer runtime's symbol)."""
    try:
        with open(os.environ.get("REFINE_SERVER") or DEFAULT_SERVER, "rb") as f:
            return marker in f.read()
    except OSError:
        return False


# Under AddressSanitizer (redzones, a quarantine of freed memory) and ThreadSanitizer (shadow
# memory for every byte of the heap) the tests that bound the server's memory allow for it. Told
# by the environment scripts/test sets (ASAN_OPTIONS for build-asan/, TSAN_OPTIONS for
# build-tsan/) or, when a sanitizer build is run by hand with plain ctest, by the binary itself.
ASAN = bool(os.environ.get("ASAN_OPTIONS")) or _binary_has(b"__asan_init")
TSAN = bool(os.environ.get("TSAN_OPTIONS")) or _binary_has(b"__tsan_init")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def server_binary():
    return os.environ.get("REFINE_SERVER") or DEFAULT_SERVER


class ServerError(AssertionError):
    pass


class Server:
    """The refine-server process.

    Use as a context manager, sync (`with Server() as s`) or async
    (`async with Server() as s`; waits then yield to the event loop so that
    connected clients can answer the server's closing handshake).

    On exit the server is sent SIGTERM and must exit with code 0, unless the
    test killed it deliberately (kill9) and did not restart it. Its stderr
    (kept across restarts in DIR/stderr.log) must not hold sanitizer reports.
    """

    def __init__(self, *extra_args, web=None, port=None, tmpdir=None, db=None, binary=None,
                 cwd=None):
        self.binary = binary or server_binary()
        self.extra_args = [str(a) for a in extra_args]
        self.web = web                # --web DIR; None: the web client built into the binary
        self.cwd = cwd
        self.port = port or free_port()
        self._own_tmpdir = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="refine-it-")
        self.db = db or os.path.join(self.tmpdir, "refine.db")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.proc = None
        self.killed = False          # the current process was killed on purpose
        self.stopped = False         # the current process was stopped by the test (SIGTERM)
        self.exit_codes = []         # exit code of every process that ended
        self._stderr_file = None

    # -- addresses ---------------------------------------------------------
    @property
    def ws_url(self):
        return "ws://127.0.0.1:%d/ws" % self.port

    @property
    def http_base(self):
        return "http://127.0.0.1:%d" % self.port

    # -- lifecycle ---------------------------------------------------------
    def command(self):
        # Functional tests pipeline hundreds of requests: the per-connection rate limit is
        # lifted unless a test sets its own (the hardening tests do).
        limits = [] if "--rate" in self.extra_args else ["--rate", "100000"]
        web = ["--web", self.web] if self.web else []
        return [self.binary, "--port", str(self.port), "--db", self.db, "--log-level", "warn"] + \
            web + limits + self.extra_args

    def start(self, timeout=10.0):
        if not os.path.exists(self.binary):
            raise ServerError("server binary %s does not exist (set REFINE_SERVER)" % self.binary)
        if self.proc is not None and self.proc.poll() is None:
            raise ServerError("server already running")
        env = dict(os.environ)
        env.pop("REFINE_WEB", None)  # only an explicit web= serves a directory
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if self._stderr_file is not None:
            self._stderr_file.close()
        self._stderr_file = open(self.stderr_path, "ab")
        self._stderr_file.write(("=== start: %s\n" % " ".join(self.command())).encode())
        self._stderr_file.flush()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr_file, stderr=self._stderr_file,
                                     env=env, cwd=self.cwd)
        self.killed = False
        self.stopped = False
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.exit_codes.append(code)
                raise ServerError("server exited with code %s during start-up; stderr:\n%s"
                                  % (code, self.stderr_text()))
            try:
                status = self.probe()
                if status == 200:
                    return self
                last = "status %s" % status
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise ServerError("GET /healthz did not answer 200 within %.0f s (last: %s); "
                                  "stderr:\n%s" % (timeout, last, self.stderr_text()))
            time.sleep(0.05)

    def probe(self):
        """The status of GET /healthz (start() waits for 200); raises OSError when it cannot
        connect."""
        status, _, _ = http_get(self.port, "/healthz", timeout=1.0)
        return status

    def kill9(self):
        """SIGKILL the server (deliberately) and reap it."""
        assert self.proc is not None
        self.killed = True
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.exit_codes.append(self.proc.returncode)

    def kill9_nowait(self):
        """SIGKILL without reaping (usable inside callbacks); call kill9() later to reap."""
        self.killed = True
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self, timeout=15.0):
        """SIGTERM, wait, return the exit code (blocking)."""
        if self.proc is None:
            return None
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_codes.append("hung")
                raise ServerError("server did not exit within %.0f s of SIGTERM; stderr:\n%s"
                                  % (timeout, self.stderr_text()))
            self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    async def astop(self, timeout=15.0):
        """SIGTERM and wait while the event loop keeps running; return the exit code."""
        if self.proc is None:
            return None
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None:
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    self.exit_codes.append("hung")
                    raise ServerError("server did not exit within %.0f s of SIGTERM; stderr:\n%s"
                                      % (timeout, self.stderr_text()))
                await asyncio.sleep(0.02)
            self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def restart(self, timeout=10.0):
        """Start again on the same database and port. A running server is stopped first
        (and must exit with 0)."""
        if self.proc is not None and self.proc.poll() is None:
            code = self.stop()
            if code != 0:
                raise ServerError("server exited with code %s on SIGTERM before restart; "
                                  "stderr:\n%s" % (code, self.stderr_text()))
        # A just-killed server's port can take a moment to be bindable for some stacks.
        return self.start(timeout)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- diagnostics -------------------------------------------------------
    def stderr_text(self):
        try:
            if self._stderr_file:
                self._stderr_file.flush()
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        text = self.stderr_text()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                start = text.rfind("\n", 0, max(0, i - 200)) + 1
                return text[start:start + 6000]
        return None

    def _finish(self, exc):
        problems = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                code = self.stop()
                if code != 0:
                    problems.append("server exited with code %s on SIGTERM (expected 0)" % code)
            elif self.proc is not None and not self.killed and not self.stopped:
                problems.append("server died on its own during the test (exit code %s)"
                                % self.proc.returncode)
        except ServerError as e:
            problems.append(str(e))
        report = self.sanitizer_report()
        if report:
            problems.append("sanitizer report in server stderr:\n" + report)
        if self._stderr_file:
            self._stderr_file.close()
            self._stderr_file = None
        failed = exc is not None or problems
        if failed:
            sys.stderr.write("\n----- refine-server stderr (%s) -----\n%s\n----- end -----\n"
                             % (self.stderr_path, self.stderr_text()[-20000:]))
        if self._own_tmpdir and not failed and not os.environ.get("REFINE_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems and exc is None:
            raise ServerError("\n".join(problems))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, et, ev, tb):
        self._finish(ev)
        return False

    async def __aenter__(self):
        self.start()
        return self

    async def __aexit__(self, et, ev, tb):
        if self.proc is not None and self.proc.poll() is None:
            try:
                code = await self.astop()
            except ServerError:
                code = "hung"
            if code != 0 and ev is None:
                self._finish(None)
                raise ServerError("server exited with code %s on SIGTERM (expected 0); "
                                  "stderr:\n%s" % (code, self.stderr_text()[-8000:]))
        self._finish(ev)
        return False


def http_get(port, path, timeout=5.0, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()
