#!/usr/bin/python3
"""WebSocket conformance (RFC 6455) of the real binary, over raw sockets (issue 10, item 4;
PROTOCOL.md: Transport): unmasked client frames, pongs after a burst of pings, the close
handshake (invalid codes, an invalid UTF-8 reason, one close frame per connection) and the
handshake's Sec-WebSocket-Version."""

import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (  # noqa: E402
    RawWs,
    SharedServerTestCase,
    pack,
    raw_http,
    unpack,
    ws_handshake_request,
)


def frame(opcode, payload, fin=True, masked=True, mask=None):
    """The bytes of one client frame (masked unless masked=False)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        hdr = bytes([b0, bit | n])
    elif n < 65536:
        hdr = bytes([b0, bit | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([b0, bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return hdr + payload
    mask = mask or os.urandom(4)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def frames_until_end(x, timeout=3.0):
    """Every frame a RawWs receives until the server closes the TCP connection (or `timeout`
    seconds of silence). Returns (frames [(opcode, payload)], how it ended)."""
    frames = []
    x.sock.settimeout(timeout)
    try:
        while True:
            frames.append(x.read_frame())
    except EOFError:
        return frames, "EOF"
    except socket.timeout:
        return frames, "timeout"
    except OSError as e:
        return frames, "socket error %r" % e


def close_codes(frames):
    return [int.from_bytes(d[:2], "big") if len(d) >= 2 else 1005 for op, d in frames if op == 8]


def version_handshake(port, version):
    """A handshake request with Sec-WebSocket-Version `version` (None: without the header)."""
    req = ws_handshake_request(port).decode()
    line = "" if version is None else "Sec-WebSocket-Version: %s\r\n" % version
    return req.replace("Sec-WebSocket-Version: 13\r\n", line).encode()


class ConformanceTests(SharedServerTestCase):
    def ws(self):
        return RawWs(self.server.port)

    def assertAlive(self):
        """The server still answers a fresh connection."""
        x = self.ws()
        try:
            x.send_msg({"t": "nosuch", "id": 7})
            msg = x.recv_msg()
            self.assertEqual((msg.get("t"), msg.get("id")), ("err", 7))
        finally:
            x.close()

    # -- RFC 6455 5.1: a client masks every frame; a server closes on an unmasked one (1002) --
    def test_unmasked_frame_is_closed_with_1002(self):
        x = self.ws()
        try:
            x.sock.sendall(frame(2, pack({"t": "nosuch", "id": 1}), masked=False))
            frames, how = frames_until_end(x)
            self.assertEqual([op for op, _ in frames], [8],
                             "an unmasked frame: no answer, one close frame (got %r, %s)"
                             % (frames, how))
            self.assertEqual(close_codes(frames), [1002])
        finally:
            x.close()
        self.assertAlive()

    def test_unmasked_frame_after_a_masked_one(self):
        x = self.ws()
        try:
            x.sock.sendall(frame(2, pack({"t": "nosuch", "id": 1})) +
                           frame(2, pack({"t": "nosuch", "id": 2}), masked=False))
            frames, how = frames_until_end(x)
            answers = [unpack(d).get("id") for op, d in frames if op == 2]
            self.assertEqual(answers, [1], "only the masked request is answered (%s)" % how)
            self.assertEqual(close_codes(frames), [1002])
        finally:
            x.close()

    def test_unmasked_control_frame(self):
        x = self.ws()
        try:
            x.sock.sendall(frame(9, b"hi", masked=False))
            frames, how = frames_until_end(x)
            self.assertEqual(close_codes(frames), [1002], "%r %s" % (frames, how))
            self.assertNotIn(10, [op for op, _ in frames], "no pong to an unmasked ping")
        finally:
            x.close()

    # -- RFC 6455 5.5.2/5.5.3: every ping gets a pong, at least the most recent of a burst --
    def test_newest_ping_of_a_burst_gets_a_pong(self):
        for size in (2, 60, 125):
            x = self.ws()
            try:
                payloads = [(b"%d-" % i).ljust(size, b"p") for i in range(10)]
                x.sock.sendall(b"".join(frame(9, p) for p in payloads))
                pongs = []
                x.sock.settimeout(2.0)
                try:
                    while payloads[-1] not in pongs:
                        op, data = x.read_frame()
                        if op == 10:
                            pongs.append(data)
                except socket.timeout:
                    pass
                self.assertIn(payloads[-1], pongs, "%d-byte pings: the newest of ten gets a pong "
                              "(pongs: %r)" % (size, [p[:3] for p in pongs]))
                for p in pongs:
                    self.assertIn(p, payloads, "a pong carries a ping's payload")
                # and the connection goes on
                x.send_msg({"t": "nosuch", "id": 3})
                self.assertEqual(x.recv_msg().get("id"), 3)
            finally:
                x.close()

    def test_pings_between_messages_each_get_a_pong(self):
        x = self.ws()
        try:
            for i in range(5):
                x.sock.sendall(frame(9, b"q%d" % i) + frame(2, pack({"t": "nosuch", "id": i})))
                got = []
                while len(got) < 2:
                    op, data = x.read_frame()
                    got.append((op, data if op == 10 else unpack(data).get("id")))
                self.assertIn((10, b"q%d" % i), got)
        finally:
            x.close()

    def test_frames_split_anywhere(self):
        """Frames cut at every kind of place across reads (headers of 2, 4 and 10 bytes, control
        frames, payloads) reach the server intact: every request is answered, the last ping gets
        its pong (server/wsguard.c holds a cut header or control frame for the next read)."""
        stream = b""
        ids = []
        for i, size in enumerate((10, 200, 70000 - 6000, 3, 1000)):
            stream += frame(9, b"k%d" % i)
            stream += frame(2, pack({"t": "nosuch", "id": i, "x": "a" * size}))
            ids.append(i)
        stream += frame(10, b"unasked") + frame(9, b"last")
        x = self.ws()
        try:
            x.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for cut in (1, 2, 3, 5, 7, 11, 13, 64, 130, 1500):
                pos = 0
                for n in range(0, len(stream), 997):
                    # cut each 997-byte stretch into `cut`-byte sends, then the rest at once
                    piece = stream[n:n + 997]
                    x.sock.sendall(piece[:cut])
                    time.sleep(0.002)
                    x.sock.sendall(piece[cut:])
                    pos = n
                answered, pongs = [], []
                x.sock.settimeout(5)
                while len(answered) < len(ids) or b"last" not in pongs:
                    op, data = x.read_frame()
                    self.assertNotEqual(op, 8, "cut %d: closed %r" % (cut, data))
                    if op == 2:
                        answered.append(unpack(data).get("id"))
                    elif op == 10:
                        pongs.append(data)
                self.assertEqual(answered, ids, "cut %d (last at %d)" % (cut, pos))
        finally:
            x.close()

    # -- RFC 6455 7.4: close codes; 8.1: a close reason is UTF-8 --
    def close_answer(self, payload, timeout=3.0):
        """(code, payload) of the one close frame the server sends after a client close frame
        with `payload`; the server must then close the TCP connection within `timeout` s."""
        x = self.ws()
        try:
            x.sock.sendall(frame(8, payload))
            frames, how = frames_until_end(x, timeout)
            self.assertEqual(how, "EOF", "the server closes the TCP connection after the close "
                             "handshake (payload %r, frames %r)" % (payload, frames))
            self.assertEqual([op for op, _ in frames], [8], "payload %r: one close frame, "
                             "nothing else (got %r)" % (payload, frames))
            return close_codes(frames)[0], frames[0][1]
        finally:
            x.close()

    def test_invalid_close_codes_get_1002(self):
        for code in (0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
            for reason in (b"", b"bye"):
                got, _ = self.close_answer(code.to_bytes(2, "big") + reason)
                self.assertEqual(got, 1002, "a close with code %d (reason %r)" % (code, reason))

    def test_one_byte_close_payload_gets_1002(self):
        # lws 4.1.6 is told to close with 1002 (no room for a code in the payload lws echoes)
        # and then waits up to 5 s for the peer to hang up after it (server/net.c, peer_close)
        got, _ = self.close_answer(b"\x03", timeout=7.0)
        self.assertEqual(got, 1002, "a 1-byte close payload")

    def test_invalid_utf8_close_reason_gets_1007(self):
        for reason in (b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"):
            got, data = self.close_answer(b"\x03\xe8" + reason)
            self.assertEqual(got, 1007, "close reason %r: 1007" % reason)
            self.assertNotIn(reason, data, "the invalid reason is not echoed")

    def test_valid_close_codes_are_echoed(self):
        for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000,
                     4999):
            got, data = self.close_answer(code.to_bytes(2, "big") + "fin é".encode())
            self.assertEqual(got, code, "a valid close code %d is echoed" % code)
        got, data = self.close_answer(b"")
        self.assertEqual(data, b"", "an empty close is answered by an empty close")

    # -- RFC 6455 5.5.1: a close frame is sent once --
    def test_1009_close_is_sent_once(self):
        big = pack({"t": "nosuch", "id": 1, "x": "a" * 70000})
        cases = {
            "one frame": frame(2, big),
            "the client keeps sending": frame(2, big) + frame(2, pack({"t": "n", "id": 2})) * 50,
            "fragments": frame(2, big[:40000], fin=False) + frame(0, big[40000:]),
            "after a ping": frame(9, b"x") + frame(2, big),
        }
        for what, data in cases.items():
            x = self.ws()
            try:
                try:
                    x.sock.sendall(data)
                except OSError:
                    pass
                frames, how = frames_until_end(x)
                self.assertEqual(close_codes(frames), [1009],
                                 "%s: exactly one close frame, 1009 (%s)" % (what, how))
            finally:
                x.close()

    def test_server_close_then_client_close_one_frame(self):
        """A client that answers the server's 1009 with its own close gets nothing more."""
        x = self.ws()
        try:
            x.sock.sendall(frame(2, pack({"t": "n", "id": 1, "x": "a" * 70000})))
            x.sock.settimeout(3)
            op, data = x.read_frame()
            self.assertEqual((op, data[:2]), (8, b"\x03\xf1"))
            x.sock.sendall(frame(8, data[:2]))
            frames, how = frames_until_end(x)
            self.assertEqual(close_codes(frames), [], "no second close frame (%r)" % frames)
        finally:
            x.close()

    # -- RFC 6455 4.2.2 and 4.4: Sec-WebSocket-Version must be 13, else 426 naming 13 --
    def test_other_versions_get_426(self):
        port = self.server.port
        for version in ("8", "7", "12", "14", "0", "13, 8", "abc", "", None):
            st, headers, head = raw_http(port, version_handshake(port, version))
            self.assertEqual(st, 426, "Sec-WebSocket-Version %r: 426 (got %s)" % (version, head))
            self.assertEqual(headers.get("sec-websocket-version"), "13", head)
            self.assertNotIn("sec-websocket-accept", headers)
        st, _, head = raw_http(port, version_handshake(port, "13"))
        self.assertEqual(st, 101, head)
        self.assertAlive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
