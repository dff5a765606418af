#!/usr/bin/python3
"""Writes the seed corpora of the fuzzers (python3-msgpack):

  tests/fuzz/corpus/frame/  one valid request of every operation of the table
                            (op-*.mp), a few server messages (srv-*.mp), and
                            hostile vectors (bad-*.mp): lengths of 4 GiB,
                            nesting 32/33/100000 deep, trailing bytes, invalid
                            UTF-8, NUL bytes in strings, maps where arrays
                            belong, NaN, negatives...
  tests/fuzz/frame.dict     libFuzzer dictionary: op, field and event names
  tests/fuzz/corpus/room/   meetings for fuzz_room (its input format is
                            described at the top of fuzz_room.c)

The list of operations comes from the generated tables of protocol/PROTOCOL.md
and the operation numbers from protocol/ops.h, so a new operation without an
example here fails the script. Run it after changing the table, and commit
what it writes:

  /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import os
import re
import shutil
import struct
import sys

try:
    import msgpack
except ImportError:
    sys.exit("make_corpus.py needs msgpack (Debian: python3-msgpack); "
             "run it with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

ROOM = "Q4s6u-N4Ec6Ch9KTcBbVA4"
TOKEN = "vYtZ3p1q9dKx0bW2mT7rLa"
PID = "4Dq1nV8sPz2kR6yW0tXcLb"
SECRET = "ZlPy7Qm3Wd9sK1vB5nH0jF"

ITEM_FULL = {
    "title": "Checkout with saved card",
    "kind": "story",
    "persona": "returning buyer",
    "goal": "pay with my saved card",
    "benefit": "I check out in seconds",
    "notes": "",
    "acceptance": ["Given a saved card, when I pay, then no card form is shown"],
    "estimate": None,
    "value": 40,
    "moscow": "must",
    "status": "draft",
    "labels": ["payments"],
}

# One valid request per operation (besides t and id).
REQUESTS = {
    "room.create": [{"name": "Sprint 14 refinement", "deck": "modified"},
                    {"name": "Custom deck", "deck": ["XS", "S", "M", "L", "?", "coffee"]}],
    "join": [{"room": ROOM, "token": TOKEN, "name": "Ana"},
             {"room": ROOM, "pid": PID, "secret": SECRET, "name": "Ana", "since": 3,
              "epoch": "ha5W9tlu"}],
    "role.set": [{"pid": PID, "role": "owner"}],
    "room.update": [{"auto_reveal": True},
                    {"name": "Renamed", "deck": "tshirt", "reveal_on_timer": True,
                     "facilitator_grace": 0}],
    "item.add": [{"item": {"title": "Checkout with saved card"}},
                 {"item": ITEM_FULL, "after": None},
                 {"item": {"title": "Below i1", "kind": "bug"}, "after": "i1"}],
    "item.update": [{"item": "i1", "set": {"moscow": "must", "acceptance": ["Given, when, then"]}},
                    {"item": "i1", "set": {"estimate": None, "value": None, "status": "ready"}}],
    "item.move": [{"item": "i2", "after": None}, {"item": "i2", "after": "i3"}],
    "item.remove": [{"item": "i4"}],
    "item.split": [{"item": "i1", "pattern": "workflow",
                    "children": [{"title": "Pay with saved card"}, {"title": "Manage saved cards"}]}],
    "focus": [{"item": "i3"}, {"item": None}],
    "round.start": [{"item": "i3", "anonymous": False},
                    {"item": "i3", "deck": ["1", "2", "3"], "anonymous": True,
                     "deadline": 1795872670000}],
    "vote": [{"round": "r1", "card": "5", "confidence": "high"}, {"round": "r1", "card": None}],
    "round.reveal": [{"round": "r1"}],
    "round.accept": [{"round": "r1", "estimate": "8"}],
    "round.cancel": [{"round": "r2"}],
    "timer.start": [{"seconds": 120}],
    "timer.stop": [{}],
    "role.claim": [{}],
    "token.rotate": [{"role": "member"}],
    "hint": [{"item": "i1", "what": "editing"}, {"item": "i2", "what": "dragging"},
             {"item": None, "what": None}],
    "kano.answer": [{"item": "i1", "functional": "like", "dysfunctional": "dislike"}],
    "kano.reveal": [{"item": "i1"}],
    "kano.reset": [{"item": "i1"}],
    "item.unsplit": [{"item": "i1"}],
    "undo": [{}, {"seq": 7}],
    "order.propose": [{"method": "value_effort"}, {"method": "wsjf"}, {"method": "moscow_value"}],
    "order.apply": [{"base": "0123456789abcdef", "method": "wsjf"},
                    {"base": "0123456789abcdef", "order": ["i2", "i1", "i3"]}],
    "vision.set": [{"vision": {"target": "remote Scrum teams", "product": "Refine"}}],
    "persona.add": [{"persona": {"name": "Shopper", "description": "buys weekly",
                                 "goals": ["pay fast"]}},
                    {"persona": {"name": "returning buyer"}, "adopt": True}],
    "persona.update": [{"persona": "p1", "set": {"goals": []}}],
    "persona.remove": [{"persona": "p1"}, {"persona": "p2", "force": True}],
    "outcome.add": [{"outcome": {"name": "Fewer abandoned carts", "metric": "abandonment",
                                 "unit": "%", "current": 34, "target": 20.5}}],
    "outcome.update": [{"outcome": "o1", "set": {"current": None, "target": -1}}],
    "outcome.remove": [{"outcome": "o1", "force": True}],
    "kano.answer": [{"item": "i1", "functional": "like", "dysfunctional": "dislike"}],
    "kano.reveal": [{"item": "i1"}],
    "kano.reset": [{"item": "i1"}],
    "map.add": [{"kind": "activity", "name": "Buy"},
                {"kind": "step", "name": "Pay", "activity": "a1", "after": None},
                {"kind": "slice", "name": "Walking skeleton", "capacity": 20, "after": "r3"}],
    "map.update": [{"node": "r3", "name": "MVP", "capacity": None}],
    "map.move": [{"node": "s2", "after": None, "activity": "a1"}],
    "map.remove": [{"node": "a1", "force": True}],
    "map.place": [{"item": "i1", "step": "s2", "slice": "r3"},
                  {"item": "i1", "step": None, "slice": None}],
}

# What the server sends: valid maps too, with other shapes.
SERVER = {
    "ok-create": {"t": "ok", "id": 1, "room": ROOM,
                  "tokens": {"facilitator": TOKEN, "owner": TOKEN, "member": TOKEN,
                             "observer": TOKEN}},
    "err": {"t": "err", "id": None, "code": "bad_request",
            "msg": "Text frames are not accepted; send each message as one binary MessagePack map."},
    "revealed": {"t": "round.revealed", "seq": 12, "at": 1795872550000, "by": PID, "round": "r1",
                 "votes": {PID: "8"},
                 "stats": {"count": 2, "not_voted": 0, "missing": [], "numeric": 2, "min": 5.0,
                           "max": 8.0, "mean": 6.5, "median": 6.5,
                           "distribution": {"5": 1, "8": 1}, "mode": "5", "consensus": False,
                           "spread": 1, "highest": [PID], "lowest": [PID], "suggested": "8",
                           "confidence": {"low": 0, "medium": 0, "high": 1}}},
    "snapshot": {"t": "snapshot", "seq": 0,
                 "room": {"id": ROOM, "epoch": "ha5W9tlu", "name": "Sprint 14", "deck": "modified",
                          "auto_reveal": False, "reveal_on_timer": False,
                          "facilitator_grace": 120, "created_at": 1795872548411},
                 "participants": [{"pid": PID, "name": "Ana", "role": "facilitator",
                                   "online": True}],
                 "items": [dict(ITEM_FULL, id="i1", rank="a0", parent=None,
                                updated_at=1795872548411)],
                 "rounds": [], "round": None, "focus": None, "timer": None},
}


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def fixstr(s):
    b = s.encode()
    return bytes([0xa0 | len(b)]) + b if len(b) < 32 else b"\xd9" + bytes([len(b)]) + b


def protocol_ops():
    """The operation names of PROTOCOL.md's generated table."""
    text = open(os.path.join(ROOT, "protocol", "PROTOCOL.md"), encoding="utf-8").read()
    m = re.search(r"<!-- BEGIN GENERATED: operations -->(.*?)\n\n", text, re.S)
    if not m:
        sys.exit("make_corpus.py: no generated operations table in protocol/PROTOCOL.md")
    return re.findall(r"^\| `([a-z.]+)` \|", m.group(1), re.M)


def op_numbers():
    """enum op_id of protocol/ops.h: name -> number, and OP__COUNT."""
    text = open(os.path.join(ROOT, "protocol", "ops.h"), encoding="utf-8").read()
    body = re.search(r"enum op_id \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"\b(OP_[A-Z_]+)\b", body)
    nums = {n: i for i, n in enumerate(names)}
    return nums, nums["OP__COUNT"]


def pseudo_numbers():
    text = open(os.path.join(HERE, "fuzz_room.c"), encoding="utf-8").read()
    body = re.search(r"enum pseudo \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"\b(P_[A-Z_]+)\b", body)
    return {n: i for i, n in enumerate(names)}


def hostile():
    """name -> bytes."""
    v = {}
    k = fixstr("t") + fixstr("item.add") + fixstr("id") + b"\x01"
    # Lengths far beyond the bytes present.
    v["array32-4gib"] = b"\x83" + k + fixstr("a") + b"\xdd\xff\xff\xff\xff" + b"\x00" * 8
    v["map32-4gib"] = b"\xdf\xff\xff\xff\xff" + fixstr("t") + fixstr("join")
    v["str32-4gib"] = b"\x82" + fixstr("t") + b"\xdb\xff\xff\xff\xff" + b"item.add" + fixstr("id") + b"\x01"
    v["bin32-4gib"] = b"\x83" + k + fixstr("b") + b"\xc6\xff\xff\xff\xff" + b"\x00" * 8
    v["ext32-4gib"] = b"\x83" + k + fixstr("e") + b"\xc9\xff\xff\xff\xff\x01" + b"\x00" * 8
    v["array16-more-than-present"] = b"\x83" + k + fixstr("a") + b"\xdc\x01\x00" + b"\xc0" * 16
    # Nesting: 32 levels are allowed (the map itself is the first), 33 are not.
    v["nest-32"] = b"\x81" + fixstr("a") + b"\x91" * 30 + b"\x90"
    v["nest-33"] = b"\x81" + fixstr("a") + b"\x91" * 31 + b"\x90"
    v["nest-100000"] = b"\x81" + fixstr("a") + b"\x91" * 100000 + b"\xc0"
    v["nest-maps-40"] = (b"\x81" + fixstr("m")) * 40 + b"\x80"
    # Framing.
    v["trailing-byte"] = pack({"t": "timer.stop", "id": 1}) + b"\x00"
    v["two-maps"] = pack({"t": "timer.stop", "id": 1}) * 2
    v["truncated"] = pack({"t": "item.add", "id": 1, "item": {"title": "x"}})[:-3]
    v["empty"] = b""
    v["not-a-map-array"] = pack(["t", "item.add"])
    v["not-a-map-int"] = b"\x05"
    v["byte-c1"] = b"\x82" + fixstr("t") + b"\xc1" + fixstr("id") + b"\x01"
    # Strings.
    bad_utf8 = {
        "invalid-utf8": b"\xc3\x28",
        "overlong-utf8": b"\xc0\xaf",
        "surrogate-utf8": b"\xed\xa0\x80",
        "beyond-10ffff-utf8": b"\xf4\x90\x80\x80",
        "truncated-utf8": b"abc\xe2\x82",
        "bare-continuation-utf8": b"\x80",
    }
    for name, raw in bad_utf8.items():
        v[name] = (b"\x83" + fixstr("t") + fixstr("item.add") + fixstr("id") + b"\x01" +
                   fixstr("item") + b"\x81" + fixstr("title") + bytes([0xa0 | len(raw)]) + raw)
    v["max-utf8"] = pack({"t": "item.add", "id": 1, "item": {"title": "\U0010ffff \u00bd \u20ac"}})
    v["invalid-utf8-key"] = b"\x82" + fixstr("t") + fixstr("focus") + b"\xa2\xff\xfe" + b"\xc0"
    v["long-multibyte-op"] = pack({"t": "x" + "\u00e9" * 200, "id": 7})
    v["long-multibyte-key"] = pack({"t": "item.add", "id": 7,
                                    "item": {"title": "t", "x" + "\u00e9" * 150: True}})
    # A NUL byte in a string (strings never contain NUL: bad_request, nothing
    # stored); the server once cut them there.
    nul = {
        "title": {"t": "item.add", "item": {"title": "\0"}},
        "title-inside": {"t": "item.add", "item": {"title": "Sto\0ry", "notes": "n\0"}},
        "name": {"t": "join", "room": ROOM, "token": TOKEN, "name": "\0"},
        "room": {"t": "join", "room": ROOM + "\0", "token": TOKEN, "name": "Ana"},
        "secret": {"t": "join", "room": ROOM, "pid": PID, "secret": SECRET + "\0", "name": "A",
                   "epoch": "0\0"},
        "deck": {"t": "room.create", "name": "r", "deck": ["5\0a", "5\0b", "\0"]},
        "deck-update": {"t": "room.update", "deck": ["5\0a", "5\0b", "\0"], "name": "\0"},
        "deck-round": {"t": "round.start", "item": "i1", "deck": ["5\0a", "5\0b", "\0"]},
        "acceptance": {"t": "item.update", "item": "i1",
                       "set": {"acceptance": ["ok", "a\0b"], "labels": ["l\0"]}},
        "children": {"t": "item.split", "item": "i1", "pattern": "work\0flow",
                     "children": [{"title": "one"}, {"title": "t", "labels": ["\0"]}]},
        "card": {"t": "vote", "round": "r1", "card": "5\0"},
        "item-id": {"t": "item.move", "item": "i1\0", "after": None},
        "op": {"t": "item.add\0", "item": {"title": "x"}},
        "key": {"t": "item.add", "item": {"title": "x", "notes\0": "n"}},
        "top-key": {"t": "timer.stop", "\0": "x"},
    }
    for name, msg in nul.items():
        v["nul-" + name] = pack(dict(msg, id=1))
    # Types where others belong.
    v["map-for-children"] = pack({"t": "item.split", "id": 1, "item": "i1",
                                  "children": {"title": "x"}})
    v["map-for-acceptance"] = pack({"t": "item.add", "id": 1,
                                    "item": {"title": "x", "acceptance": {"a": "b"}}})
    v["array-for-item"] = pack({"t": "item.add", "id": 1, "item": ["title", "x"]})
    v["int-keys"] = pack({"t": "item.add", "id": 1, 5: "five"})
    v["bin-for-str"] = pack({"t": "join", "id": 1, "room": b"Q4s6u", "token": b"x", "name": "a"})
    v["ext-value"] = b"\x83" + fixstr("t") + fixstr("focus") + fixstr("id") + b"\x01" + \
        fixstr("item") + b"\xd4\x01\x02"
    # Numbers.
    v["nan-seconds"] = pack({"t": "timer.start", "id": 1, "seconds": float("nan")})
    v["inf-value"] = pack({"t": "item.add", "id": 1, "item": {"title": "x", "value": float("inf")}})
    v["float32-nan"] = b"\x83" + fixstr("t") + fixstr("timer.start") + fixstr("id") + b"\x01" + \
        fixstr("seconds") + b"\xca" + struct.pack(">I", 0x7fc00001)
    v["negative-id"] = pack({"t": "timer.stop", "id": -1})
    v["negative-seconds"] = pack({"t": "timer.start", "id": 1, "seconds": -5})
    v["negative-value"] = pack({"t": "item.add", "id": 1, "item": {"title": "x", "value": -1}})
    v["int64-min"] = pack({"t": "join", "id": 1, "room": ROOM, "name": "a", "since": -2**63})
    v["uint64-max-id"] = pack({"t": "timer.stop", "id": 2**64 - 1})
    v["id-2p53"] = pack({"t": "timer.stop", "id": 2**53})
    v["float-id"] = pack({"t": "timer.stop", "id": 1.0})
    # Field rules.
    # Regressions. A repeated key in an item map: only its first value used
    # to be validated, and the server applies every pair (type confusion).
    item_kv = fixstr("t") + fixstr("item.add") + fixstr("id") + b"\x01" + fixstr("item")
    v["dup-key-item-list"] = b"\x83" + item_kv + b"\x83" + fixstr("title") + fixstr("x") + \
        fixstr("labels") + b"\x90" + fixstr("labels") + fixstr("A" * 24)
    v["dup-key-item-uint"] = b"\x83" + item_kv + b"\x83" + fixstr("title") + fixstr("x") + \
        fixstr("value") + b"\x05" + fixstr("value") + fixstr("abc")
    # An empty key: msgpack-c gives it a NULL pointer (memcpy(_, NULL, 0)).
    v["empty-key"] = b"\x84\x72\x6f\xa0\xee\x64\xa2\x72\x31\xa4card\xc0"
    v["dup-key-top"] = b"\x83" + fixstr("t") + fixstr("focus") + fixstr("id") + b"\x01" + \
        fixstr("t") + fixstr("vote")
    v["deck-dup-cards"] = pack({"t": "room.create", "id": 1, "name": "r", "deck": ["1", "1"]})
    v["deck-21-cards"] = pack({"t": "room.create", "id": 1, "name": "r",
                               "deck": [str(i) for i in range(21)]})
    v["children-21"] = pack({"t": "item.split", "id": 1, "item": "i1",
                             "children": [{"title": "c"}] * 21})
    v["server-keys-in-item"] = pack({"t": "item.add", "id": 1,
                                     "item": {"title": "x", "id": "i9", "rank": "a0",
                                              "status": "split"}})
    v["notes-10001"] = pack({"t": "item.add", "id": 1, "item": {"title": "x", "notes": "n" * 10001}})
    return v


def room_seeds(ops, count, pseudo):
    """Meetings in fuzz_room's input format: deck byte, then steps
    (who, op, len, params). who: 0 facilitator, 1 owner, 2 member, 3 observer,
    4 stranger. Missing parameter bytes read as 0: valid defaults."""
    P = {name: count + n for name, n in pseudo.items()}
    O = {name: n for name, n in ops.items()}

    def step(who, op, *params):
        return bytes([who, op if isinstance(op, int) else O.get(op, P.get(op)), len(params)]) + \
            bytes(params)

    FAC, OWN, MEM, OBS, STR = range(5)
    # Fields are (mode, sub) byte pairs in the op's field order, after one
    # envelope byte; mode 1 = a valid value chosen by sub, 8 = absent.
    add = step(FAC, "OP_ITEM_ADD")
    seeds = {}
    seeds["poker"] = bytes([0]) + add + add + step(MEM, "OP_ITEM_ADD") + b"".join([
        step(FAC, "OP_ROUND_START"),
        step(FAC, "OP_VOTE", 0, 1, 0, 1, 3, 1, 2),       # round, card #3, confidence high
        step(OWN, "OP_VOTE", 0, 1, 0, 1, 5),
        step(MEM, "OP_VOTE", 0, 1, 0, 1, 5),
        step(MEM, "OP_VOTE", 0, 1, 0, 9, 0),             # withdrawn
        step(MEM, "OP_VOTE", 0, 1, 0, 1, 6),
        step(OBS, "OP_VOTE"),                            # forbidden
        step(FAC, "OP_ROUND_REVEAL"),
        step(OWN, "OP_ROUND_ACCEPT", 0, 1, 0, 1, 5),
        step(FAC, "OP_ROUND_START"),                     # a re-vote
        step(FAC, "OP_VOTE"),
        step(FAC, "OP_ROUND_CANCEL"),
        step(FAC, "OP_ROUND_START", 0, 1, 1, 1, 2, 1, 0),  # item 2, tshirt, anonymous
        step(OWN, "OP_VOTE", 0, 1, 0, 1, 2),
        step(FAC, "OP_ROUND_REVEAL"),
    ])
    seeds["backlog"] = bytes([1]) + add * 3 + b"".join([
        step(OWN, "OP_ITEM_ADD", 0, 1, 0, 2, 1, 8, 9, 0, 1, 2),  # title, kind epic, must; after i1
        step(OWN, "OP_ITEM_MOVE", 0, 1, 0, 1, 1),        # first after the one before last
        step(FAC, "OP_ITEM_MOVE", 0, 1, 2, 9, 0),        # to the top
        step(MEM, "OP_ITEM_SPLIT", 0, 1, 1, 1, 2),       # three children
        step(MEM, "OP_ITEM_UPDATE", 0, 1, 0, 1, 0, 0x84, 4, 2, 9, 0x21),  # title, benefit, moscow
        step(OWN, "OP_ITEM_REMOVE", 0, 1, 3),
        step(FAC, "OP_FOCUS", 0, 1, 2),
        step(OWN, "OP_ITEM_REMOVE", 0, 1, 2),            # the focused one
        step(MEM, "OP_ITEM_MOVE"),                       # forbidden
        step(OBS, "OP_ITEM_ADD"),                        # forbidden
    ])
    # Many inserts at one spot: the server rebalances (items.reranked). Each
    # split puts 20 children right above the second item; the next one splits
    # the last of them.
    seeds["rebalance"] = bytes([0]) + add + add + \
        step(FAC, "OP_ITEM_ADD", 0, 1, 0, 0, 1, 200) * 8 + \
        step(MEM, "OP_ITEM_SPLIT", 0, 1, 201, 1, 19) * 16
    seeds["auto-reveal"] = bytes([2]) + add + b"".join([
        step(FAC, "OP_ROOM_UPDATE", 0, 8, 0, 8, 0, 1, 0),  # auto_reveal on
        step(FAC, "OP_ROUND_START"),
        step(FAC, "OP_VOTE"),
        step(OWN, "OP_VOTE"),
        step(MEM, "OP_VOTE"),                             # everyone online voted: revealed
        step(FAC, "OP_ROUND_START"),
        step(FAC, "OP_VOTE"),
        step(OWN, "OP_VOTE"),
        step(MEM, "P_LEAVE"),                   # the last voter leaves: revealed
        step(MEM, "P_REJOIN"),
        step(MEM, "OP_ITEM_ADD"),
    ])
    seeds["timer"] = bytes([3]) + add + b"".join([
        step(FAC, "OP_ROOM_UPDATE", 0, 8, 0, 8, 0, 8, 0, 1, 0),  # reveal_on_timer
        step(FAC, "OP_TIMER_START"),
        step(FAC, "OP_ROUND_START"),
        step(OWN, "OP_VOTE"),
        step(FAC, "P_TICK"),
        step(FAC, "OP_TIMER_STOP"),                      # conflict: none runs
        step(FAC, "OP_TIMER_START", 0, 1, 1),
        step(FAC, "OP_TIMER_STOP"),
    ])
    seeds["claim"] = bytes([0]) + b"".join([
        step(FAC, "OP_ROOM_UPDATE", 0, 8, 0, 8, 0, 8, 0, 8, 0, 1, 0),  # grace 0
        step(MEM, "OP_ROLE_CLAIM"),                      # conflict: facilitator online
        step(FAC, "P_LEAVE"),
        step(OBS, "OP_ROLE_CLAIM"),                      # forbidden
        step(MEM, "OP_ROLE_CLAIM"),
        step(MEM, "OP_ROLE_SET", 0, 1, 2, 1, 3),         # the owner becomes observer
        step(OWN, "OP_ITEM_MOVE"),
        step(FAC, "P_REJOIN"),
        step(FAC, "OP_ROLE_SET", 0, 1, 1, 1, 2),         # demote self: another facilitator exists
    ])
    seeds["restart"] = bytes([4, 0x21, 1, 2, 3, 4, 5, 6]) + add * 2 + b"".join([
        step(FAC, "OP_ROUND_START"),
        step(OWN, "OP_VOTE"),
        step(FAC, "OP_FOCUS"),
        step(FAC, "OP_TIMER_START"),
        step(FAC, "P_RELOAD", 1),               # the idle sweep (a timer runs: kept)
        step(FAC, "OP_TIMER_STOP"),
        step(FAC, "P_RELOAD", 1),               # unloaded and loaded back
        step(MEM, "OP_VOTE"),
        step(FAC, "P_RELOAD", 0),               # evicted (as after a storage fault)
        step(FAC, "OP_ROUND_REVEAL"),
        step(OWN, "P_REJOIN", 0, 0, 0, 0, 0, 0, 0, 1, 3),  # since 0: a long replay
    ])
    seeds["tokens"] = bytes([0]) + b"".join([
        step(STR, "OP_ITEM_ADD"),                        # not joined
        step(FAC, "OP_TOKEN_ROTATE", 0, 1, 2),           # the member token
        step(STR, "OP_JOIN", 0, 1, 0, 1, 5),             # the rotated-away token
        step(STR, "OP_JOIN"),                            # the new one
        step(STR, "OP_JOIN"),                            # conflict: joined already
        step(OWN, "OP_TOKEN_ROTATE"),                    # forbidden
        step(STR, "OP_ROOM_CREATE"),
        step(STR, "P_LEAVE"),
        step(STR, "OP_JOIN", 0, 1, 6, 1, 1),             # the other room
        step(STR, "OP_ITEM_ADD"),
    ])
    # Undo after each undoable change (the same participant), one refused after another's
    # change, a stale seq, an unsplit, and undo records lost with the room (evicted).
    seeds["undo"] = bytes([0]) + add * 3 + b"".join([
        step(OWN, "OP_ITEM_ADD"),
        step(OWN, "OP_UNDO"),
        step(MEM, "OP_ITEM_UPDATE", 0, 1, 0, 1, 0, 0x84, 4, 2, 9, 0x21),
        step(MEM, "OP_UNDO", 0, 1, 0),                  # with the update's seq
        step(OWN, "OP_ITEM_MOVE", 0, 1, 2, 9, 0),       # to the top
        step(FAC, "OP_ITEM_UPDATE", 0, 1, 0, 1, 0, 0x84, 4, 2, 9, 0x21),
        step(OWN, "OP_UNDO"),                           # conflict: changed since (or not the same)
        step(OWN, "OP_ITEM_REMOVE", 0, 1, 1),
        step(OWN, "OP_UNDO", 0, 1, 1),                  # a stale seq: conflict
        step(OWN, "OP_UNDO"),
        step(MEM, "OP_ITEM_SPLIT", 0, 1, 1, 1, 2),
        step(MEM, "OP_UNDO"),
        step(MEM, "OP_ITEM_SPLIT", 0, 1, 1, 1, 2),
        step(FAC, "OP_ITEM_UNSPLIT", 0, 1, 1),
        step(MEM, "OP_ITEM_SPLIT", 0, 1, 0, 1, 1),
        step(FAC, "P_RELOAD", 0),
        step(MEM, "OP_UNDO"),                           # nothing to undo any more
        step(FAC, "OP_ITEM_UNSPLIT", 0, 1, 0),
        step(OBS, "OP_UNDO"),                           # forbidden
    ])
    # Story map: an activity, two steps, two slices, items placed and moved,
    # a rename, a capacity, a move, a refused and a forced removal, a reload.
    seeds["storymap"] = bytes([0]) + add * 3 + b"".join([
        step(FAC, "OP_MAP_ADD"),                                   # activity a1
        step(OWN, "OP_MAP_ADD", 0, 1, 1, 0, 0, 1, 0),             # step under a1
        step(OWN, "OP_MAP_ADD", 0, 1, 1, 1, 2, 1, 0, 1, 0x40),    # another, after a node
        step(OWN, "OP_MAP_ADD", 0, 1, 2, 0, 0, 8, 0, 8, 0, 1, 8),  # slice, capacity 8
        step(FAC, "OP_MAP_ADD", 0, 1, 2, 1, 3, 8, 0, 1, 0x40),    # slice, after nil
        step(MEM, "OP_MAP_PLACE"),                                 # first item, first cell
        step(MEM, "OP_MAP_PLACE", 0, 1, 1, 1, 1, 1, 1),           # second item, second cell
        step(OBS, "OP_MAP_PLACE"),                                 # forbidden
        step(OWN, "OP_MAP_UPDATE", 0, 1, 0x10, 1, 2),             # rename a slice
        step(OWN, "OP_MAP_UPDATE", 0, 1, 0x10, 8, 0, 1, 13),      # its capacity
        step(OWN, "OP_MAP_MOVE", 0, 1, 8, 1, 1),                  # a step
        step(FAC, "OP_MAP_REMOVE"),                                # conflict: holds items
        step(FAC, "P_RELOAD", 1),
        step(FAC, "P_REJOIN"),
        step(FAC, "OP_MAP_REMOVE", 0, 1, 0, 1, 0),                # forced
        step(MEM, "OP_MAP_PLACE", 0, 1, 2, 1, 0, 1, 0),           # on a removed step
    ])
    raw = pack({"t": "focus", "id": 99, "item": None})
    seeds["frames"] = bytes([0]) + b"".join([
        step(FAC, "P_RAW", *raw),
        step(FAC, "P_TEXT", *b"hello"),
        step(OWN, "P_RAW", *pack({"t": "\u00e9" * 120, "id": 3})),  # quoted in the err, cut
        step(MEM, "P_RAW", *pack({"t": "vote", "id": 5, "round": "r1", "card": "5"})),
        step(MEM, "OP_ITEM_ADD", 0x01),                  # no id
        step(MEM, "OP_ITEM_ADD", 0x02),                  # id beyond 2^53-1
        step(MEM, "OP_ITEM_ADD", 0x08),                  # a key that is not a string
        step(FAC, "OP_ITEM_ADD", 0x04, 1, 0, 1, 14, 0),  # a long multibyte key in the item
    ])
    # NUL bytes in strings: mode 7 puts one into a valid value (every string
    # of it); item values with a selector of 28..31 hold one. Each is refused
    # with bad_request and changes nothing.
    seeds["nul"] = bytes([4, 0x21, 1, 2, 3, 4, 5, 6]) + add * 2 + b"".join([
        step(FAC, "OP_ITEM_ADD", 0, 7, 0),                # item map: every string
        step(FAC, "OP_ITEM_ADD", 0, 1, 0, 1, 0x81, 0xe3),  # one field, sub 28
        step(MEM, "OP_ITEM_UPDATE", 0, 7, 0, 1, 0),       # the item id
        step(MEM, "OP_ITEM_UPDATE", 0, 1, 0, 1, 0, 0x81, 11, 0xf0),  # labels with a NUL
        step(OWN, "OP_ITEM_SPLIT", 0, 1, 0, 7, 1),        # children
        step(OWN, "OP_ITEM_SPLIT", 0, 1, 0, 1, 1, 7, 3),  # pattern
        step(FAC, "OP_ROOM_UPDATE", 0, 7, 2),             # name
        step(FAC, "OP_ROOM_UPDATE", 0, 8, 0, 7, 4),       # deck
        step(FAC, "OP_ROUND_START", 0, 1, 0, 7, 4),       # this round's deck
        step(FAC, "OP_ROUND_START"),
        step(MEM, "OP_VOTE", 0, 1, 0, 7, 1),              # the card
        step(MEM, "OP_VOTE", 0, 7, 0),                    # the round id
        step(OWN, "OP_VOTE", 0, 1, 0, 1, 3, 7, 2),        # confidence
        step(FAC, "OP_ROLE_SET", 0, 7, 2, 1, 1),          # pid
        step(FAC, "OP_FOCUS", 0, 7, 1),
        step(MEM, "OP_HINT", 0, 1, 0, 7, 0),
        step(STR, "OP_JOIN", 0, 1, 0, 1, 0, 7, 2),        # name
        step(STR, "OP_JOIN", 0, 7, 0),                    # room
        step(STR, "OP_JOIN", 0, 1, 0, 7, 1),              # token
        step(STR, "OP_ROOM_CREATE", 0, 7, 0),
        step(STR, "OP_ROOM_CREATE", 0, 1, 0, 7, 0),       # deck
        step(OWN, "P_LEAVE"),
        step(OWN, "P_REJOIN"),
        step(FAC, "P_RAW", *pack({"t": "item.add", "id": 77, "item": {"title": "\0"}})),
        step(FAC, "P_RAW", *pack({"t": "room.update", "id": 78,
                                  "deck": ["5\0a", "5\0b", "\0"]})),
        step(FAC, "P_RELOAD", 1),
        step(FAC, "P_REJOIN"),
        step(FAC, "OP_ROUND_REVEAL"),
    ])
    # Hints: set, repeated, cleared by nil, on a removed and a split item, an
    # unknown item, a bad what, from an observer, over the rate limit, and
    # cleared by a close and by becoming an observer.
    seeds["hints"] = bytes([0]) + add * 3 + b"".join([
        step(MEM, "OP_HINT", 0, 1, 0, 1, 0),              # item 1, editing
        step(MEM, "OP_HINT", 0, 1, 0, 1, 0),              # the same: no notice
        step(OWN, "OP_HINT", 0, 1, 1, 1, 1),              # item 2, dragging
        step(OWN, "OP_HINT", 0, 9, 0, 1, 1),              # item nil: a clear
        step(OWN, "OP_HINT", 0, 1, 1, 9, 0),              # what nil: a clear
        step(FAC, "OP_HINT", 0, 1, 2, 1, 0),
        step(OBS, "OP_HINT"),                             # forbidden
        step(MEM, "OP_HINT", 0, 13, 0, 1, 0),             # an item id over the limit
        step(MEM, "OP_HINT", 0, 1, 0, 12, 0),             # what ""
        step(OWN, "OP_ITEM_REMOVE", 0, 1, 0),             # drops the member's hint
        step(OWN, "OP_HINT", 0, 1, 0, 1, 1),
        step(MEM, "OP_ITEM_SPLIT", 0, 1, 0, 1, 1),        # drops the owner's hint
        step(MEM, "OP_HINT", 0, 1, 1, 1, 0),
        step(FAC, "OP_ROLE_SET", 0, 1, 3, 1, 3),          # the member becomes observer
        step(FAC, "P_LEAVE"),                              # the facilitator's hint cleared
        step(FAC, "P_REJOIN"),
        step(OWN, "OP_HINT", 0, 1, 1, 1, 0),
        step(FAC, "P_RELOAD", 0),                         # evicted: every connection closes
        step(OWN, "P_REJOIN"),
    ]) + step(OWN, "OP_HINT", 0, 1, 0, 1, 0) * 14       # over 10 a second
    # Regression: a repeated item key with another type (labels: [..], labels: "AAAA...").
    seeds["regress-dup-item-key"] = bytes([0]) + add + \
        step(MEM, "OP_ITEM_ADD", 0, 1, 0, 2, 11, 8, 11, 6, 8, 0) + \
        step(MEM, "OP_ITEM_ADD", 0, 1, 0, 2, 8, 8, 8, 6, 8, 0) + \
        step(MEM, "OP_ITEM_UPDATE", 0, 1, 0, 1, 0, 0x84, 11, 8, 11, 6) + \
        step(OWN, "OP_ITEM_SPLIT", 0, 1, 0, 1, 0, 2, 6, 8, 6, 6)
    # Allocation failure: the first byte's high bit set, then N in two bytes:
    # the server's allocation 1 + N after the prelude fails (tests/alloc_fail.h).
    for name, n in (("poker", 40), ("backlog", 20), ("hints", 60)):
        s = seeds[name]
        seeds["oom-" + name] = bytes([s[0] | 0x80, n >> 8, n & 255]) + s[1:]
    return seeds


def write_dir(path, files):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    for name, data in sorted(files.items()):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


def main():
    ops = protocol_ops()
    missing = [op for op in ops if op not in REQUESTS]
    if missing:
        sys.exit("make_corpus.py: no example request for " + ", ".join(missing) +
                 " (add them to REQUESTS)")
    frame = {}
    for op in ops:
        for i, fields in enumerate(REQUESTS[op]):
            frame["op-%s-%d.mp" % (op, i + 1)] = pack(dict({"t": op, "id": 10 + i}, **fields))
    for name, msg in SERVER.items():
        frame["srv-%s.mp" % name] = pack(msg)
    for name, data in hostile().items():
        frame["bad-%s.mp" % name] = data
    write_dir(os.path.join(HERE, "corpus", "frame"), frame)

    words = set(ops)
    for reqs in REQUESTS.values():
        for fields in reqs:
            words.update(fields)
    words.update(ITEM_FULL)
    words.update(["t", "id", "ok", "err", "fibonacci", "modified", "tshirt", "powers", "story",
                  "epic", "spike", "bug", "task", "must", "should", "could", "wont", "draft",
                  "ready", "done", "split", "low", "medium", "high", "facilitator", "owner",
                  "member", "observer", "coffee", "?", "\u00bd"])
    with open(os.path.join(HERE, "frame.dict"), "w", encoding="utf-8") as f:
        f.write("# libFuzzer dictionary for fuzz_frame (written by make_corpus.py)\n")
        for w in sorted(words):
            esc = "".join("\\x%02x" % b for b in fixstr(w))
            f.write('kw_%s="%s"\n' % (re.sub(r"[^A-Za-z0-9]", "_", w) or "q", esc))
        f.write('kw_nul="\\xa1\\x00"\n')
        f.write('kw_nul_inside="\\xa3\\x35\\x00\\x61"\n')
        for marker in ["\\x00", "\\xdc", "\\xdd", "\\xde", "\\xdf", "\\xd9", "\\xda", "\\xdb", "\\xc4",
                       "\\xc6", "\\xc9", "\\xcb", "\\xcf", "\\xd3", "\\xc0", "\\xc2", "\\xc3"]:
            f.write('"%s"\n' % marker)

    nums, count = op_numbers()
    room = room_seeds(nums, count, pseudo_numbers())
    write_dir(os.path.join(HERE, "corpus", "room"), {k + ".bin": v for k, v in room.items()})
    print("make_corpus.py: %d frame seeds (%d ops), %d room seeds, frame.dict" %
          (len(frame), len(ops), len(room)))


if __name__ == "__main__":
    main()
