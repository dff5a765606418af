"""Integration test harness for refine-server: the names the tests import.

Starts the real binary on a free port with a temporary database and speaks the
wire protocol of protocol/PROTOCOL.md over a WebSocket (subprotocol refine.v1,
one MessagePack map per binary frame). The code lives in support/, one module
per concern, like Redis's tests/support (see support/__init__.py): the server
runner (support/server.py), raw sockets for hostile tests (support/raw.py), the
protocol client (support/client.py), the room state model (support/state.py),
the wire constants (support/wire.py) and the test-case bases (support/case.py).
This file re-exports them, so test files keep `from harness import ...`.

Only Debian's Python and its packages are used: websockets 10.4 (asyncio API)
and msgpack 1.0.3.

Environment:
  REFINE_SERVER  the binary (default build/refine-server of this checkout)
  REFINE_KEEP    when set, temporary directories are kept
  TSAN_OPTIONS   set (by scripts/test for build-tsan/): the server runs under
                 ThreadSanitizer; memory bounds allow for its shadow memory (TSAN)
"""

from support.case import (AsyncTestCase, ServerPerTestCase, SharedServerTestCase,
                          main, run_async)
from support.client import Client, create_room, join, pipeline
from support.raw import RawWs, raw_http, ws_handshake_request
from support.server import (ASAN, DEFAULT_SERVER, HERE, ROOT, SANITIZER_MARKERS, TSAN,
                            Server, ServerError, free_port, http_get, server_binary)
from support.state import RoomState, comparable_snapshot, rank_key
from support.wire import (ERROR_CODES, ITEM_FIELDS, RANK_RE, ROLES, SUBPROTOCOL,
                          TOKEN_RE, URLSAFE_RE, is_event, pack, summarize, unpack)

__all__ = [
    "AsyncTestCase", "ServerPerTestCase", "SharedServerTestCase", "main", "run_async",
    "Client", "create_room", "join", "pipeline",
    "RawWs", "raw_http", "ws_handshake_request",
    "ASAN", "DEFAULT_SERVER", "HERE", "ROOT", "SANITIZER_MARKERS", "TSAN", "Server", "ServerError",
    "free_port", "http_get", "server_binary",
    "RoomState", "comparable_snapshot", "rank_key",
    "ERROR_CODES", "ITEM_FIELDS", "RANK_RE", "ROLES", "SUBPROTOCOL", "TOKEN_RE", "URLSAFE_RE",
    "is_event", "pack", "summarize", "unpack",
]
