// MessagePack framing: one map per binary WebSocket frame (PROTOCOL.md "Transport").
// No hand-written MessagePack: @msgpack/msgpack does the bytes.

import { Decoder, Encoder } from "@msgpack/msgpack";
import type { Message } from "./protocol";

// `ignoreUndefined`: an absent field must stay absent (item.add's `after` absent means "the
// bottom", nil means "the top"), so undefined is dropped and only null becomes nil.
const encoder = new Encoder({ ignoreUndefined: true });
// Integers arrive as JS numbers (ids, seq and times are all below 2^53).
const decoder = new Decoder();

/** Encodes one message as the bytes of one binary frame. */
export function encodeMessage(msg: Message | Record<string, unknown>): Uint8Array {
  return encoder.encode(msg);
}

/**
 * Decodes one frame's bytes into a message: a map with a string `t`. Returns null for anything
 * else (not MessagePack, not a map, no `t`): the caller ignores it.
 */
export function decodeMessage(data: ArrayBuffer | ArrayBufferView): Message | null {
  let value: unknown;
  try {
    value = decoder.decode(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const msg = value as Message;
  return typeof msg.t === "string" ? msg : null;
}
