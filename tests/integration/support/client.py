"""The protocol client: one WebSocket connection (websockets 10.4, asyncio API) whose requests
are matched to their replies by id, with the events kept in order and the protocol's
invariants checked as messages arrive; and the helpers that create and join rooms."""

import asyncio
import collections
import time

import websockets
import websockets.exceptions

from .state import RoomState
from .wire import ERROR_CODES, SUBPROTOCOL, is_event, pack, summarize, unpack

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


async def pipeline(client, requests, window=50):
    """Send (op, fields) requests with up to `window` in flight; return replies in order."""
    sem = asyncio.Semaphore(window)

    async def one(op, fields):
        async with sem:
            return await client.request(op, _timeout=30, **fields)

    return await asyncio.gather(*(one(op, f) for op, f in requests))
