import { beforeEach, describe, expect, test } from "vitest";
import { Connection, DEFAULT_BACKOFF, Disconnected, backoffDelay, defaultUrl, roomUrl, type ConnState } from "../src/lib/connection";
import type { Message } from "../src/lib/protocol";
import { FakeClock, FakeOnline, FakeScheduler, FakeSocket, flush } from "./fakes";

function setup(random = () => 0.5) {
  const clock = new FakeClock();
  const online = new FakeOnline();
  const got: Message[] = [];
  const states: ConnState[] = [];
  let opens = 0;
  const conn = new Connection({
    url: "ws://test/ws",
    WebSocketImpl: FakeSocket,
    scheduler: new FakeScheduler(),
    timers: clock,
    online,
    random,
    onOpen: () => opens++,
    onMessage: (m) => got.push(m),
    onState: (s) => states.push(s),
  });
  return { clock, online, got, states, conn, opens: () => opens };
}

beforeEach(() => {
  FakeSocket.all = [];
});

describe("connection", () => {
  test("the URL follows the page's scheme", () => {
    expect(defaultUrl({ protocol: "https:", host: "r.example:8443" })).toBe("wss://r.example:8443/ws");
    expect(defaultUrl({ protocol: "http:", host: "localhost:8080" })).toBe("ws://localhost:8080/ws");
  });

  test("a known room's URL is /r/<room>/ws on the same server (a balancer routes it to the room's home)", () => {
    expect(roomUrl("a.kq3VxP0aaaaaaaaaaaaaaa", "wss://r.example:8443/ws")).toBe("wss://r.example:8443/r/a.kq3VxP0aaaaaaaaaaaaaaa/ws");
    expect(roomUrl("Q4s6-_x", "ws://localhost:8080/ws")).toBe("ws://localhost:8080/r/Q4s6-_x/ws");
    // an id is URL-safe; anything else is escaped, never a path of its own
    expect(roomUrl("x/../y", "ws://h/ws")).toBe("ws://h/r/x%2F..%2Fy/ws");
    expect(roomUrl("b.t", "ws://h")).toBe("ws://h/r/b.t/ws");
  });

  test("a URL given as a function is asked again before every attempt", () => {
    const clock = new FakeClock();
    let room = "a.one";
    const conn = new Connection({
      url: () => roomUrl(room, "ws://test/ws"),
      WebSocketImpl: FakeSocket,
      scheduler: new FakeScheduler(),
      timers: clock,
      online: new FakeOnline(),
      random: () => 0.5,
      onOpen: () => {},
      onMessage: () => {},
    });
    conn.start();
    expect(FakeSocket.last().url).toBe("ws://test/r/a.one/ws");
    room = "b.two";
    FakeSocket.last().serverClose(1006);
    clock.advance(DEFAULT_BACKOFF.capMs);
    expect(FakeSocket.all.map((ws) => ws.url)).toEqual(["ws://test/r/a.one/ws", "ws://test/r/b.two/ws"]);
    conn.stop();
  });

  test("opens with the refine.v1 subprotocol, binary frames; replies matched by id, the rest handed on", async () => {
    const { conn, got, opens } = setup();
    conn.start();
    const ws = FakeSocket.last();
    expect(ws.protocols).toBe("refine.v1");
    expect(ws.binaryType).toBe("arraybuffer");
    ws.open();
    expect(opens()).toBe(1);
    const a = conn.request({ t: "focus", item: "i1" });
    const b = conn.request({ t: "focus", item: null });
    expect(ws.sent.map((m) => m.id)).toEqual([1, 2]);
    expect(ws.sent[1].item).toBeNull();
    ws.receive({ t: "focus", seq: 1, at: 1, by: "p", item: "i1" });
    ws.ok(ws.sent[0], { seq: 1 });
    ws.receive({ t: "err", id: 2, code: "forbidden", msg: "No." });
    ws.receive({ t: "err", id: null, code: "bad_request", msg: "Bad frame." });
    await expect(a).resolves.toMatchObject({ t: "ok", id: 1, seq: 1 });
    await expect(b).resolves.toMatchObject({ t: "err", code: "forbidden" });
    expect(got.map((m) => m.t)).toEqual(["focus", "err"]);
  });

  test("a request cut by a close is rejected as sent; one made while closed as not sent", async () => {
    const { conn } = setup();
    conn.start();
    const ws = FakeSocket.last();
    ws.open();
    const p = conn.request({ t: "item.remove", item: "i1" });
    ws.serverClose(1006);
    await expect(p).rejects.toEqual(new Disconnected(true));
    await expect(conn.request({ t: "x" })).rejects.toMatchObject({ sent: false });
  });

  test("backoff 0.5, 1, 2, 4, 8, 10, 10 s; a countdown; reset after a stable minute", () => {
    const { conn, clock } = setup();
    conn.start();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      FakeSocket.last().serverClose(1006);
      expect(conn.state).toBe("waiting");
      delays.push(conn.retryInMs());
      clock.advance(200);
      expect(conn.retryInMs()).toBe(delays[i] - 200); // the countdown
      clock.advance(delays[i] - 200);
      expect(conn.state).toBe("connecting");
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    // open for a minute: the next drop starts again at 0.5 s
    FakeSocket.last().open();
    clock.advance(60_000);
    FakeSocket.last().serverClose(1001);
    expect(conn.retryInMs()).toBe(500);
    // a short-lived connection does not reset it
    clock.advance(500);
    FakeSocket.last().open();
    clock.advance(1000);
    FakeSocket.last().serverClose(1011);
    expect(conn.retryInMs()).toBe(1000);
  });

  test("jitter stays within +-20% and under the cap", () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(400);
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 1)).toBe(600);
    expect(backoffDelay(10, DEFAULT_BACKOFF, () => 1)).toBe(10_000);
    expect(backoffDelay(10, DEFAULT_BACKOFF, () => 0)).toBe(8000);
  });

  test("1008 (flood) waits longer; 4001/4002/1011/1001 reconnect", () => {
    const { conn, clock } = setup();
    conn.start();
    FakeSocket.last().open();
    FakeSocket.last().serverClose(1008);
    expect(conn.retryInMs()).toBe(30_000);
    clock.advance(30_000);
    for (const code of [4001, 4002, 1011, 1001]) {
      FakeSocket.last().open();
      FakeSocket.last().serverClose(code);
      expect(conn.state).toBe("waiting");
      clock.advance(conn.retryInMs());
    }
    expect(FakeSocket.all).toHaveLength(6);
  });

  test("offline: no retries until the browser is back, then at once", () => {
    const { conn, online, clock, states } = setup();
    conn.start();
    FakeSocket.last().open();
    online.set(false);
    expect(conn.state).toBe("open"); // an open socket is left alone
    FakeSocket.last().serverClose(1006);
    expect(conn.state).toBe("offline");
    clock.advance(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    online.set(true);
    expect(conn.state).toBe("connecting");
    expect(FakeSocket.all).toHaveLength(2);
    // offline while waiting cancels the timer
    FakeSocket.last().serverClose(1006);
    expect(conn.state).toBe("waiting");
    online.set(false);
    expect(conn.state).toBe("offline");
    clock.advance(60_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(states).toContain("offline");
  });

  test("starting offline waits for the online event", () => {
    const { conn, online } = setup();
    online.up = false;
    conn.start();
    expect(conn.state).toBe("offline");
    expect(FakeSocket.all).toHaveLength(0);
    online.set(true);
    expect(FakeSocket.all).toHaveLength(1);
  });

  test("a socket that never opens is given up after 10 s and retried", () => {
    const { conn, clock } = setup();
    conn.start();
    clock.advance(10_000);
    expect(FakeSocket.all[0].closedByClient).not.toBeNull();
    expect(conn.state).toBe("waiting");
    clock.advance(conn.retryInMs());
    expect(FakeSocket.all).toHaveLength(2);
  });

  test("stop() closes for good; reconnectNow() replaces the socket at once", async () => {
    const { conn, clock } = setup();
    conn.start();
    FakeSocket.last().open();
    conn.reconnectNow();
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.all[0].closedByClient?.code).toBe(1000);
    conn.stop();
    expect(conn.state).toBe("closed");
    clock.advance(60_000);
    await flush();
    expect(FakeSocket.all).toHaveLength(2);
  });
});
