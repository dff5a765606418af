"""The room state model: the expected state of a room, built from a join snapshot and kept
current by applying events as a client would (with the order checks of item.moved,
item.split and items.reranked)."""

from .wire import summarize

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
            if "focus" in ev:   # the focus on the parent moves to the first child
                self.focus = ev["focus"]
            prev = ev["item"]
            for ch in ev["children"]:
                self.items[ch["id"]] = dict(ch)
            if strict:
                for ch in ev["children"]:
                    self._check_position(ch["id"], prev, "item.split seq %s" % ev["seq"])
                    prev = ch["id"]
        elif t == "item.unsplit":
            for k in ev["children"]:
                del self.items[k]
            self.items[ev["item"]]["status"] = ev["status"]
            self.focus = ev["focus"]
        elif t == "backlog.imported":
            for it in ev["items"]:
                if it["id"] in self.items:
                    raise AssertionError("backlog.imported for existing id %s" % it["id"])
                self.items[it["id"]] = dict(it)
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
        elif t == "order.applied":   # prioritization: new ranks for the items that moved
            for k, r in ev["ranks"].items():
                self.items[k]["rank"] = r
        elif t == "focus":
            self.focus = ev["item"]
        elif t in ("round.started", "voted", "round.revealed", "round.cancelled",
                   "round.accepted", "timer"):
            pass    # rounds are not part of this backlog model
        elif t == "room.updated":
            self.room.update(ev["set"])
        elif t == "participant.updated":
            p = self.participants.setdefault(ev["pid"], {"pid": ev["pid"]})
            for k, v in ev.items():
                if k not in ("t", "seq", "at", "by"):
                    p[k] = v
        elif t in ("persona.removed", "outcome.removed", "persona.added"):
            key = "persona_id" if t.startswith("persona") else "outcomes"
            rid = ev["persona"]["id"] if t == "persona.added" else ev[t.split(".")[0]]
            for i in ev.get("items", []):
                it = self.items[i]
                if t == "persona.added":
                    it["persona_id"] = rid
                elif key == "persona_id":
                    it["persona_id"] = None
                else:
                    it["outcomes"] = [o for o in it["outcomes"] if o != rid]
        elif t in ("vision.updated", "persona.updated", "outcome.added", "outcome.updated"):
            pass    # the product is not part of this backlog model
        elif t == "map.placed":
            self.items[ev["item"]]["step"] = ev["step"]
            self.items[ev["item"]]["slice"] = ev["slice"]
        elif t == "map.removed":
            for i in ev["unplaced"]:
                self.items[i]["step"] = self.items[i]["slice"] = None
        elif t in ("map.added", "map.updated", "map.moved"):
            pass    # the story map's nodes are not part of this backlog model
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
