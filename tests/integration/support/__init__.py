"""Support modules of the integration tests (tests/integration/harness.py re-exports them).

  wire    the protocol's constants and MessagePack framing (pack, unpack, is_event, summarize)
  server  the refine-server process: a free port, a temporary database, start, SIGTERM stop,
          kill -9, restart, its stderr log checked for sanitizer reports
  raw     raw sockets for hostile tests: HTTP requests as bytes, a WebSocket of single frames
  client  the protocol client: requests matched to replies, events, seq tracking, invariants
  state   the room state model: a snapshot kept current by applying events, as a client would
  case    unittest base classes (clients closed and invariants asserted at tear-down)
"""
