"""Raw sockets for hostile tests, where a full client library gets in the way: an HTTP request
sent as bytes, a WebSocket handshake built by hand, and RawWs, a blocking WebSocket that sends
and reads single frames."""

import base64
import os
import socket

from .wire import SUBPROTOCOL, pack, unpack

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
