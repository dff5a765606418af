"""The wire protocol's constants and framing (protocol/PROTOCOL.md): one MessagePack map per
binary WebSocket frame, subprotocol refine.v1."""

import re

import msgpack

SUBPROTOCOL = "refine.v1"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
URLSAFE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
RANK_RE = re.compile(r"^[0-9A-Za-z]+$")
ROLES = ("facilitator", "owner", "member", "observer")
ERROR_CODES = ("bad_request", "unknown_op", "not_joined", "auth_failed", "forbidden",
               "not_found", "conflict", "too_large", "rate_limited", "room_full", "internal")
ERROR_CODES += ("wrong_instance",)  # issue #13: a room that lives on another instance
ERROR_CODES += ("moved", "unavailable")  # issue #13: moving a room
ITEM_FIELDS = ("id", "title", "kind", "persona", "goal", "benefit", "notes", "acceptance",
               "estimate", "value", "moscow", "status", "parent", "rank", "labels", "updated_at",
               "business_value", "time_criticality", "risk_reduction")


def is_event(msg):
    return isinstance(msg, dict) and "seq" in msg and msg.get("t") not in ("ok", "err", "snapshot")


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False)


def summarize(msg, limit=300):
    s = repr(msg)
    return s if len(s) <= limit else s[:limit] + "..."
