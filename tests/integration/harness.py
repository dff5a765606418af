"""Integration test harness for refine-server.

Starts the real binary on a free port with a temporary database and speaks the
wire protocol of protocol/PROTOCOL.md over a WebSocket (subprotocol refine.v1,
one MessagePack map per binary frame).

Only Debian's Python and its packages are used: websockets 10.4 (asyncio API)
and msgpack 1.0.3.

Environment:
  REFINE_SERVER  the binary (default /work/main/build/refine-server)
  REFINE_KEEP    when set, temporary directories are kept
"""

import asyncio
import base64
import collections
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SERVER = os.path.join(ROOT, "build", "refine-server")

SUBPROTOCOL = "refine.v1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer")
# Under ThreadSanitizer (scripts/test sets TSAN_OPTIONS for build-tsan/) every byte of the heap
# has shadow memory: tests that bound the server's memory allow for it.
TSAN = bool(os.environ.get("TSAN_OPTIONS"))
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
URLSAFE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
RANK_RE = re.compile(r"^[0-9A-Za-z]+$")
ROLES = ("facilitator", "owner", "member", "observer")
ERROR_CODES = ("bad_request", "unknown_op", "not_joined", "auth_failed", "forbidden",
               "not_found", "conflict", "too_large", "rate_limited", "room_full", "internal")
ITEM_FIELDS = ("id", "title", "kind", "persona", "goal", "benefit", "notes", "acceptance",
               "estimate", "value", "moscow", "status", "parent", "rank", "labels", "updated_at")

# ---------------------------------------------------------------------------
# Server process
# ---------------------------------------------------------------------------


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
                status, _, _ = http_get(self.port, "/healthz", timeout=1.0)
                if status == 200:
                    return self
                last = "status %s" % status
            except OSError as e:
                last = repr(e)
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise ServerError("GET /healthz did not answer 200 within %.0f s (last: %s); "
                                  "stderr:\n%s" % (timeout, last, self.stderr_text()))
            time.sleep(0.05)

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


# ---------------------------------------------------------------------------
# Plain HTTP helpers
# ---------------------------------------------------------------------------


def http_get(port, path, timeout=5.0, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def raw_http(port, request_bytes, timeout=5.0):
    """Send raw bytes; return (status, headers dict lowercased, raw head text).
    Reads only up to the end of the response head."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        if not data:
            head = "<the server closed the connection without any HTTP response>"
        lines = head.split("\r\n")
        status = None
        if lines and lines[0].startswith("HTTP/"):
            parts = lines[0].split(" ", 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers, head
    finally:
        s.close()


def ws_handshake_request(port, path="/ws", subprotocol=SUBPROTOCOL, origin=None, host=None):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path,
             "Host: %s" % (host or "127.0.0.1:%d" % port),
             "Upgrade: websocket",
             "Connection: Upgrade",
             "Sec-WebSocket-Key: %s" % key,
             "Sec-WebSocket-Version: 13"]
    if subprotocol:
        lines.append("Sec-WebSocket-Protocol: %s" % subprotocol)
    if origin:
        lines.append("Origin: %s" % origin)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawWs:
    """A minimal blocking WebSocket client over a plain socket, for checks where a full client
    library gets in the way (e.g. reading the close frame that answers an over-size message
    while the client is still sending)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(ws_handshake_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("handshake: connection closed")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("handshake refused: %r" % head[:200])

    def send_frame(self, opcode, payload, fin=True):
        b0 = (0x80 if fin else 0) | opcode
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = bytes([b0, 0x80 | n])
        elif n < 65536:
            hdr = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
        m = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") \
            if n else b""
        self.sock.sendall(hdr + mask + masked)

    def send_msg(self, obj):
        self.send_frame(2, pack(obj))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._need(2), "big")
        elif n == 127:
            n = int.from_bytes(self._need(8), "big")
        if b1 & 0x80:
            mask = self._need(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._need(n)))
        else:
            data = self._need(n)
        return b0 & 0x0F, data

    def recv_msg(self):
        while True:
            op, data = self.read_frame()
            if op == 2:
                return unpack(data)
            if op == 8:
                raise EOFError("close frame %r" % data[:40])

    def close_code(self):
        """Read frames until a close frame; return its status code (None: TCP closed first)."""
        try:
            while True:
                op, data = self.read_frame()
                if op == 8:
                    return int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
        except (EOFError, OSError):
            return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# WebSocket client
# ---------------------------------------------------------------------------


def is_event(msg):
    return isinstance(msg, dict) and "seq" in msg and msg.get("t") not in ("ok", "err", "snapshot")


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False)


def summarize(msg, limit=300):
    s = repr(msg)
    return s if len(s) <= limit else s[:limit] + "..."


class Client:
    """One WebSocket connection.

    `await c.request(op, **fields)` sends {t: op, id: next_id, **fields} and returns the reply
    matched by id. Every other incoming message goes to `c.inbox` in arrival order; every
    message (replies included) is kept in `c.all`. Raw frames (bytes or str) are also kept in
    a queue read by `recv_raw()`.

    The reader also checks protocol invariants and records violations in `c.violations`:
    replies in request order, the event before its ok, events contiguous by seq after join,
    the snapshot right after a snapshot-mode join ok, `at`/`by` on events, only binary frames.
    """

    _counter = 0

    def __init__(self, ws, label=None):
        Client._counter += 1
        self.label = label or "c%d" % Client._counter
        self.ws = ws
        self.next_id = 1
        self.inbox = []
        self.all = []
        self.raw_frames = collections.deque()
        self.violations = []
        self.close_code = None
        self.close_reason = None
        self._pending = {}             # id -> (op, fields, future)
        self._outstanding = collections.deque()   # ids in send order
        self._new = asyncio.Event()
        self._closed = asyncio.Event()
        self._sendq = asyncio.Queue()
        # join / seq tracking
        self.joined = False
        self.join_ok = None
        self.pid = None
        self.secret = None
        self.role = None
        self.room = None
        self.snapshot = None
        self.state = None              # RoomState kept by catch_up()
        self._expect_seq = None
        self._awaiting_snapshot = False
        self.event_seqs = set()
        self._reader = asyncio.ensure_future(self._read_loop())
        self._sender = asyncio.ensure_future(self._send_loop())

    @classmethod
    async def connect(cls, url, label=None, origin=None, **kw):
        ws = await websockets.connect(url, subprotocols=[SUBPROTOCOL], max_size=None,
                                      ping_interval=None, close_timeout=3, origin=origin, **kw)
        if ws.subprotocol != SUBPROTOCOL:
            await ws.close()
            raise AssertionError("server did not select subprotocol %s (got %r)"
                                 % (SUBPROTOCOL, ws.subprotocol))
        return cls(ws, label)

    # -- background tasks --------------------------------------------------
    async def _send_loop(self):
        while True:
            data, done = await self._sendq.get()
            try:
                await self.ws.send(data)
                if done is not None and not done.done():
                    done.set_result(None)
            except Exception as e:  # connection closed
                if done is not None and not done.done():
                    done.set_exception(e)

    async def _read_loop(self):
        try:
            async for frame in self.ws:
                self.raw_frames.append(frame)
                if isinstance(frame, str):
                    self.violations.append("server sent a text frame: %r" % frame[:200])
                    msg = {"t": "_text", "data": frame}
                else:
                    try:
                        msg = unpack(frame)
                    except Exception as e:
                        self.violations.append("server sent undecodable frame (%s): %r"
                                               % (e, frame[:100]))
                        msg = {"t": "_undecodable", "data": frame}
                    if not isinstance(msg, dict):
                        self.violations.append("server sent a non-map message: %s" % summarize(msg))
                        msg = {"t": "_nonmap", "data": msg}
                self._dispatch(msg)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # pragma: no cover - harness bug
            self.violations.append("reader crashed: %r" % e)
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self._closed.set()
            self._new.set()
            for _id, (op, fields, fut) in list(self._pending.items()):
                if not fut.done():
                    fut.set_exception(ConnectionError(
                        "connection closed (code %s) before the reply to %s id %s"
                        % (self.close_code, op, _id)))
            self._pending.clear()

    def _dispatch(self, msg):
        self.all.append(msg)
        t = msg.get("t")
        if t in ("ok", "err") and msg.get("id") in self._pending:
            rid = msg["id"]
            op, fields, fut = self._pending.pop(rid)
            if self._outstanding and self._outstanding[0] != rid:
                self.violations.append("reply to id %s (%s) arrived before the reply to id %s"
                                       % (rid, op, self._outstanding[0]))
            try:
                self._outstanding.remove(rid)
            except ValueError:
                pass
            if t == "err":
                if msg.get("code") not in ERROR_CODES:
                    self.violations.append("unknown error code in %s" % summarize(msg))
                if not isinstance(msg.get("msg"), str) or not msg.get("msg"):
                    self.violations.append("err without a msg sentence: %s" % summarize(msg))
            if t == "ok" and op == "join":
                self._on_join_ok(msg, fields)
            elif t == "ok" and "seq" in msg:
                s = msg["seq"]
                if s not in self.event_seqs:
                    self.violations.append("ok for %s id %s carries seq %s but the event with "
                                           "that seq was not received before the ok"
                                           % (op, rid, s))
            if not fut.done():
                fut.set_result(msg)
            return
        if t == "snapshot":
            if not self._awaiting_snapshot:
                self.violations.append("unexpected snapshot (not right after a snapshot-mode "
                                       "join ok): seq %s" % msg.get("seq"))
            elif self.join_ok is not None and msg.get("seq") != self.join_ok.get("seq"):
                self.violations.append("snapshot seq %s != join ok seq %s"
                                       % (msg.get("seq"), self.join_ok.get("seq")))
            self._awaiting_snapshot = False
        elif is_event(msg):
            s = msg["seq"]
            if not self.joined:
                self.violations.append("event received before the join ok: %s" % summarize(msg))
            elif self._awaiting_snapshot:
                self.violations.append("event received between join ok and snapshot: %s"
                                       % summarize(msg))
            elif self._expect_seq is not None and s != self._expect_seq:
                self.violations.append("event seq %s but expected %s (gap or reorder): %s"
                                       % (s, self._expect_seq, summarize(msg)))
            self._expect_seq = s + 1
            self.event_seqs.add(s)
            if not isinstance(msg.get("at"), int):
                self.violations.append("event without integer `at`: %s" % summarize(msg))
            if "by" not in msg:
                self.violations.append("event without `by`: %s" % summarize(msg))
        self.inbox.append(msg)
        self._new.set()

    def _on_join_ok(self, msg, fields):
        self.joined = True
        self.join_ok = msg
        self.pid = msg.get("pid")
        self.secret = msg.get("secret")
        self.role = msg.get("role")
        self.room = fields.get("room")
        mode = msg.get("mode")
        if mode == "replay":
            since = fields.get("since")
            self._expect_seq = (since if isinstance(since, int) else 0) + 1
            self._awaiting_snapshot = False
        else:
            self._expect_seq = (msg.get("seq") or 0) + 1
            self._awaiting_snapshot = True

    # -- sending -----------------------------------------------------------
    def send_request(self, op, **fields):
        """Queue a request now (ids and send order follow call order); return the reply future."""
        rid = self.next_id
        self.next_id += 1
        msg = {"t": op, "id": rid}
        msg.update(fields)
        fut = asyncio.get_event_loop().create_future()
        if self._closed.is_set():
            fut.set_exception(ConnectionError("connection already closed (code %s)"
                                              % self.close_code))
            return fut
        self._pending[rid] = (op, fields, fut)
        self._outstanding.append(rid)
        self._sendq.put_nowait((pack(msg), None))
        return fut

    async def request(self, op, _timeout=10.0, **fields):
        fut = self.send_request(op, **fields)
        try:
            return await asyncio.wait_for(fut, _timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: no reply to %s within %.0f s (fields %s)"
                                 % (self.label, op, _timeout, summarize(fields)))

    async def expect_ok(self, op, **fields):
        r = await self.request(op, **fields)
        if r.get("t") != "ok":
            raise AssertionError("%s: expected ok for %s %s, got %s"
                                 % (self.label, op, summarize(fields, 200), summarize(r)))
        return r

    async def expect_err(self, code, op, **fields):
        r = await self.request(op, **fields)
        if r.get("t") != "err" or r.get("code") != code:
            raise AssertionError("%s: expected err %s for %s %s, got %s"
                                 % (self.label, code, op, summarize(fields, 200), summarize(r)))
        return r

    async def raw_send(self, data):
        """Send bytes (binary frame) or str (text frame), or an iterable of them (fragments)."""
        done = asyncio.get_event_loop().create_future()
        self._sendq.put_nowait((data, done))
        await done

    async def recv_raw(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not self.raw_frames:
            if self._closed.is_set():
                raise AssertionError("%s: connection closed (code %s) while waiting for a frame"
                                     % (self.label, self.close_code))
            rem = deadline - time.monotonic()
            if rem <= 0:
                raise AssertionError("%s: no frame within %.1f s" % (self.label, timeout))
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), rem)
            except asyncio.TimeoutError:
                pass
        return self.raw_frames.popleft()

    # -- receiving ---------------------------------------------------------
    async def next_message(self, t=None, timeout=5.0, pred=None):
        """Remove and return the first inbox message with type t (any when None) matching pred."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if (t is None or m.get("t") == t) and (pred is None or pred(m)):
                    del self.inbox[i]
                    return m
            if self._closed.is_set():
                raise AssertionError("%s: connection closed (code %s) while waiting for %s; "
                                     "inbox: %s" % (self.label, self.close_code, t or "a message",
                                                    [summarize(m, 120) for m in self.inbox[-5:]]))
            rem = deadline - time.monotonic()
            if rem <= 0:
                raise AssertionError("%s: timed out after %.1f s waiting for %s; inbox tail: %s"
                                     % (self.label, timeout, t or "a message",
                                        [summarize(m, 120) for m in self.inbox[-5:]]))
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), rem)
            except asyncio.TimeoutError:
                pass

    async def next_event(self, timeout=5.0):
        return await self.next_message(timeout=timeout, pred=is_event)

    async def events_until(self, seq, timeout=10.0):
        """Remove from the inbox and return the events up to and including `seq`, in order."""
        out = []
        deadline = time.monotonic() + timeout
        while not out or out[-1]["seq"] < seq:
            rem = deadline - time.monotonic()
            if rem <= 0:
                raise AssertionError("%s: timed out waiting for events up to seq %s (got up to %s)"
                                     % (self.label, seq, out[-1]["seq"] if out else None))
            try:
                ev = await self.next_message(pred=is_event, timeout=rem)
            except AssertionError:
                raise AssertionError("%s: did not receive events up to seq %s (got up to %s; "
                                     "close code %s)" % (self.label, seq,
                                                         out[-1]["seq"] if out else None,
                                                         self.close_code))
            if out and ev["seq"] <= out[-1]["seq"]:
                raise AssertionError("%s: event seq went backwards: %s after %s"
                                     % (self.label, ev["seq"], out[-1]["seq"]))
            out.append(ev)
        return out

    async def catch_up(self, seq, timeout=10.0, strict=True):
        """Apply events up to `seq` to self.state (created from the join snapshot)."""
        if self.state is None:
            raise AssertionError("%s: catch_up without a snapshot state" % self.label)
        if self.state.seq >= seq:
            return []
        evs = await self.events_until(seq, timeout)
        for ev in evs:
            self.state.apply(ev, strict=strict)
        return evs

    def seen_events(self):
        return [m for m in self.all if is_event(m)]

    @property
    def closed(self):
        return self._closed.is_set()

    async def wait_closed(self, timeout=5.0):
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: connection not closed within %.1f s" % (self.label, timeout))
        return self.close_code

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            pass
        try:
            await asyncio.wait_for(self._reader, 5)
        except Exception:
            pass
        self._sender.cancel()
        try:
            await self._sender
        except BaseException:
            pass


# ---------------------------------------------------------------------------
# Room state model (applies events to a snapshot)
# ---------------------------------------------------------------------------


def rank_key(item):
    return (item["rank"].encode("utf-8"), item["id"])


class RoomState:
    """State built from a snapshot and kept current by applying events, as a client would."""

    def __init__(self, snapshot):
        self.seq = snapshot["seq"]
        self.room = dict(snapshot["room"])
        self.participants = {p["pid"]: dict(p) for p in snapshot["participants"]}
        self.items = {it["id"]: dict(it) for it in snapshot["items"]}
        self.focus = snapshot.get("focus")
        self.reranks = 0

    def order(self):
        return [it["id"] for it in sorted(self.items.values(), key=rank_key)]

    def _check_position(self, item_id, after, what):
        order = self.order()
        pos = order.index(item_id)
        if after is None:
            if pos != 0:
                raise AssertionError("%s: %s should be at the top, is at %d" % (what, item_id, pos))
        else:
            if after not in order:
                raise AssertionError("%s: after-item %s unknown" % (what, after))
            if pos != order.index(after) + 1:
                raise AssertionError("%s: %s should be right below %s; order %s"
                                     % (what, item_id, after, order))

    def apply(self, ev, strict=True):
        if ev["seq"] != self.seq + 1:
            raise AssertionError("event seq %s applied to state at seq %s" % (ev["seq"], self.seq))
        t = ev["t"]
        if t == "item.added":
            it = dict(ev["item"])
            if it["id"] in self.items:
                raise AssertionError("item.added for existing id %s" % it["id"])
            self.items[it["id"]] = it
        elif t == "item.updated":
            it = self.items[ev["item"]]
            it.update(ev["set"])
        elif t == "item.moved":
            it = self.items[ev["item"]]
            it["rank"] = ev["rank"]
            if strict:
                self._check_position(ev["item"], ev.get("after"), "item.moved seq %s" % ev["seq"])
        elif t == "item.removed":
            del self.items[ev["item"]]
            if self.focus == ev["item"]:
                self.focus = None
        elif t == "item.split":
            parent = self.items[ev["item"]]
            parent["status"] = "split"
            prev = ev["item"]
            for ch in ev["children"]:
                self.items[ch["id"]] = dict(ch)
            if strict:
                for ch in ev["children"]:
                    self._check_position(ch["id"], prev, "item.split seq %s" % ev["seq"])
                    prev = ch["id"]
        elif t == "items.reranked":
            before = self.order()
            ranks = ev["ranks"]
            if strict and set(ranks) != set(self.items):
                raise AssertionError("items.reranked does not map every item id: missing %s, "
                                     "extra %s" % (sorted(set(self.items) - set(ranks))[:10],
                                                   sorted(set(ranks) - set(self.items))[:10]))
            for k, r in ranks.items():
                if k in self.items:
                    self.items[k]["rank"] = r
            self.reranks += 1
            if strict and self.order() != before:
                raise AssertionError("items.reranked changed the order of the backlog")
        elif t == "focus":
            self.focus = ev["item"]
        elif t == "room.updated":
            self.room.update(ev["set"])
        elif t == "participant.updated":
            p = self.participants.setdefault(ev["pid"], {"pid": ev["pid"]})
            for k, v in ev.items():
                if k not in ("t", "seq", "at", "by"):
                    p[k] = v
        else:
            raise AssertionError("unknown event type %r: %s" % (t, summarize(ev)))
        self.seq = ev["seq"]

    def comparable(self, with_participants=True):
        items = {}
        for k, it in self.items.items():
            items[k] = {f: v for f, v in it.items() if f != "updated_at"}
        out = {"seq": self.seq, "room": self.room, "items": items, "focus": self.focus,
               "order": self.order()}
        if with_participants:
            out["participants"] = {p: (v.get("name"), v.get("role"))
                                   for p, v in self.participants.items()}
        return out


def comparable_snapshot(snapshot, with_participants=True):
    return RoomState(snapshot).comparable(with_participants)


# ---------------------------------------------------------------------------
# Protocol helpers
# ---------------------------------------------------------------------------


async def create_room(client, name, deck=None):
    fields = {"name": name}
    if deck is not None:
        fields["deck"] = deck
    r = await client.expect_ok("room.create", **fields)
    return r["room"], r["tokens"]


async def join(client, room, token, name, since=None, pid=None, secret=None, expect_mode=None,
               epoch=None):
    """Join; returns the ok. In snapshot mode the snapshot is awaited and stored in
    client.snapshot and client.state (a RoomState)."""
    fields = {"room": room, "name": name}
    for k, v in (("token", token), ("pid", pid), ("secret", secret), ("since", since),
                 ("epoch", epoch)):
        if v is not None:
            fields[k] = v
    ok = await client.expect_ok("join", **fields)
    if expect_mode is not None and ok.get("mode") != expect_mode:
        raise AssertionError("join: expected mode %r, got %s" % (expect_mode, summarize(ok)))
    if ok.get("mode") == "snapshot":
        snap = await client.next_message("snapshot")
        client.snapshot = snap
        client.state = RoomState(snap)
    elif ok.get("mode") != "replay":
        raise AssertionError("join ok has no valid mode: %s" % summarize(ok))
    return ok


def run_async(coro):
    return asyncio.run(coro)


async def pipeline(client, requests, window=50):
    """Send (op, fields) requests with up to `window` in flight; return replies in order."""
    sem = asyncio.Semaphore(window)

    async def one(op, fields):
        async with sem:
            return await client.request(op, _timeout=30, **fields)

    return await asyncio.gather(*(one(op, f) for op, f in requests))


class AsyncTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: `await self.connect(server)` gives a Client that is closed at tear-down,
    where the protocol invariants every client recorded are asserted."""

    async def asyncSetUp(self):
        self._clients = []
        # IsolatedAsyncioTestCase runs the loop in debug mode; silence slow-callback noise
        asyncio.get_running_loop().slow_callback_duration = 10.0

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            srv = getattr(self, "server", None)
            if isinstance(srv, Server):
                sys.stderr.write("\n----- refine-server stderr (%s), tail -----\n%s\n----- end -----\n"
                                 % (srv.stderr_path, srv.stderr_text()[-8000:]))
        return out

    async def connect(self, server, label=None, origin=None):
        c = await Client.connect(server.ws_url, label=label, origin=origin)
        self._clients.append(c)
        return c

    async def joined(self, server, room, token, name, label=None, **kw):
        c = await self.connect(server, label=label or name)
        await join(c, room, token, name, **kw)
        return c

    async def asyncTearDown(self):
        problems = []
        for c in self._clients:
            await c.close()
            for v in c.violations:
                problems.append("%s: %s" % (c.label, v))
        self._clients = []
        if problems:
            self.fail("protocol invariant violations:\n  " + "\n  ".join(problems[:40]))

    def assertNoViolations(self, *clients):
        problems = ["%s: %s" % (c.label, v) for c in clients for v in c.violations]
        if problems:
            self.fail("protocol invariant violations:\n  " + "\n  ".join(problems[:40]))


class ServerPerTestCase(AsyncTestCase):
    """A test class whose every test gets a fresh server (started with `server_args`) as
    self.server, stopped after it (SIGTERM, exit status 0 required)."""
    server_args = ()

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = Server(*self.server_args)
        self.server.start()

    async def asyncTearDown(self):
        try:
            await super().asyncTearDown()
        finally:
            code = await self.server.astop()
            self.server._finish(None)
            self.assertEqual(code, 0, "server exit code on SIGTERM")


class SharedServerTestCase(AsyncTestCase):
    """A test class whose tests share one server, started before the first and stopped
    (SIGTERM, exit status 0 required) after the last."""
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        code = srv.stop()
        srv._finish(None)
        if code != 0:
            raise AssertionError("server exit code on SIGTERM: %s (expected 0)" % code)


def main():
    unittest.main(verbosity=2)
