// The scaled setup for the browser: Debian's haproxy running the repository's deploy/haproxy.cfg
// (addresses through its environment variables) in front of refine-server instances named a, b
// (and c), each a RefineServer of harness.mjs with `--instance NAME` and its own database.
// ClusterHarness is a Harness whose pages talk to the balancer (h.base is the balancer's URL).

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Harness, REPO, RefineServer, freePort, sleep, waitFor } from "./harness.mjs";

export const HAPROXY_CFG = path.join(REPO, "deploy/haproxy.cfg");

/** The haproxy executable, or null (scripts/install-deps test installs Debian's package). */
export function haproxyBinary() {
  for (const p of ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"]) if (fs.existsSync(p)) return p;
  const r = spawnSync("sh", ["-c", "command -v haproxy"], { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** Instances `names` behind haproxy; `url` is the balancer's. The names not given (of a, b, c)
 * point at a port nothing listens on: HAProxy marks them DOWN. */
export class Cluster {
  constructor({ names = ["a", "b"], label = "cluster", args = [] } = {}) {
    this.names = names;
    this.label = label;
    this.servers = Object.fromEntries(names.map((n) => [n, new RefineServer({ args: ["--instance", n, "--max-conns-per-ip", "100000", ...args], label: `${label}-${n}` })]));
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "refine-e2e-lb-"));
    this.port = null;
    this.proc = null;
    this.lbLog = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Every instance's log and the balancer's (the stepper prints its tail on a failure). */
  get log() {
    return [...Object.values(this.servers).flatMap((s) => s.log), ...this.lbLog];
  }

  async start() {
    const bin = haproxyBinary();
    if (!bin) throw new Error("haproxy is not installed (scripts/install-deps test installs it)");
    for (const s of Object.values(this.servers)) await s.start();
    this.port = await freePort();
    const env = { ...process.env, REFINE_LB_BIND: `127.0.0.1:${this.port}`, REFINE_LB_SOCKET: path.join(this.dir, "haproxy.sock") };
    for (const n of ["a", "b", "c"]) {
      const port = this.servers[n]?.port ?? (await freePort());
      env[`REFINE_${n.toUpperCase()}_ADDR`] = `127.0.0.1:${port}`;
    }
    const proc = spawn(bin, ["-db", "-f", HAPROXY_CFG], { env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    const onData = (d) => {
      for (const line of d.toString().split("\n")) if (line) this.lbLog.push(`[${this.label}-haproxy] ${line}`);
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.exited = new Promise((resolve) => proc.on("exit", (code, sig) => resolve({ code, sig })));
    // Up when a request for each instance's rooms reaches it: /r/<name>.x/ws answers the
    // instance's own refusal (not HAProxy's 503) once the health checks see it up.
    await waitFor(
      async () => {
        for (const n of this.names) {
          const r = await fetch(`${this.url}/r/${n}.probe/ws`).catch(() => null);
          if (!r || r.status === 503) return false;
        }
        return true;
      },
      { timeout: 15000, interval: 100, describe: () => `haproxy on ${this.port} to route to ${this.names.join(", ")}:\n${this.lbLog.slice(-10).join("\n")}` },
    );
    // and the `any` backend (room.create) has them up too
    await sleep(500);
    return this;
  }

  async stop({ keep = false } = {}) {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      const done = await Promise.race([p.exited, sleep(5000).then(() => null)]);
      if (!done) p.kill("SIGKILL");
    }
    for (const s of Object.values(this.servers)) await s.stop({ keep });
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A Harness whose `server` is a Cluster: pages open the balancer's URL. */
export class ClusterHarness extends Harness {
  constructor(name, { names = ["a", "b"], args = [] } = {}) {
    super(name);
    this.names = names;
    this.args = args;
  }

  makeServer() {
    return new Cluster({ names: this.names, label: this.name, args: this.args });
  }
}
