import { describe, expect, it } from "vitest";
import { lazy, retrying, RETRY_DELAYS_MS } from "../src/lib/lazy";

describe("retrying", () => {
  it("tries again after each failure, waiting longer each time, until the load succeeds", async () => {
    const waits: number[] = [];
    let calls = 0;
    const load = async () => {
      calls++;
      if (calls <= 6) throw new TypeError("Failed to fetch dynamically imported module");
      return "module";
    };
    const got = await retrying(load, async (ms) => {
      waits.push(ms);
    });
    expect(got).toBe("module");
    expect(calls).toBe(7);
    expect(waits).toEqual([...RETRY_DELAYS_MS, RETRY_DELAYS_MS[RETRY_DELAYS_MS.length - 1]]);
  });

  it("does not wait when the first load succeeds", async () => {
    const waits: number[] = [];
    expect(await retrying(async () => 1, async (ms) => void waits.push(ms))).toBe(1);
    expect(waits).toEqual([]);
  });
});

describe("lazy", () => {
  it("loads once and answers the same promise afterwards", async () => {
    let calls = 0;
    const get = lazy(async () => ++calls);
    expect(await get()).toBe(1);
    expect(await get()).toBe(1);
    expect(calls).toBe(1);
  });
});
