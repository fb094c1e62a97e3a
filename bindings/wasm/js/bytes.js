// Byte keys as lowercase hex: string order is bytewise order, so hex keys sort and compare
// as the store contract wants.

export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Whether hex key `k` lies in a scan range (`{ start, startInclusive, end, endInclusive }`). */
export function inRange(k, range) {
  if (range.start !== undefined) {
    const s = toHex(range.start);
    if (range.startInclusive ? k < s : k <= s) return false;
  }
  if (range.end !== undefined) {
    const e = toHex(range.end);
    if (range.endInclusive ? k > e : k >= e) return false;
  }
  return true;
}
