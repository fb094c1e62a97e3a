// Renames the module's functions (in its name section, which wasm-opt drops after sorting the
// functions by these names: run by build.sh between wasm-bindgen and wasm-opt) so that similar
// code sorts together, inside gzip's 32 KB window: a trait method's implementations by the
// trait and method (`<T as core::fmt::Display>::fmt` as `core::fmt::Display::fmt T`), every
// other function by its path without the crate hashes and a leading `<`. This order took 1.6 KB
// gzipped more off than the plain names' order. Each name keeps its index as a suffix, so no
// two are the same. The names never reach the published file.
import { readFileSync, writeFileSync } from 'node:fs';
import { encodeUleb, uleb } from './wasm-bytes.mjs';

const path = new URL('pkg/olmo_wasm_bg.wasm', new URL('.', import.meta.url));

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** The name a function sorts under. */
function sortName(name) {
  const plain = name.replace(/\[[0-9a-f]{16}\]/g, '');
  const impl = /^<(.+?) as (.+?)>::(.*)$/s.exec(plain);
  if (impl) return `${impl[2]}::${impl[3]} ${impl[1]}`;
  return plain.replace(/^<+/, '');
}

/** The function-names subsection (1) with every name replaced. */
function renamed(subsection) {
  let [count, at] = uleb(subsection, 0);
  const parts = [encodeUleb(count)];
  for (; count > 0; count--) {
    let index;
    let length;
    [index, at] = uleb(subsection, at);
    [length, at] = uleb(subsection, at);
    const name = utf8.decode(subsection.subarray(at, at + length));
    at += length;
    const bytes = encoder.encode(`${sortName(name)}#${index}`);
    parts.push(encodeUleb(index), encodeUleb(bytes.length), bytes);
  }
  if (at !== subsection.length) throw new Error('order-names: the function names do not end where their subsection does');
  return Buffer.concat(parts);
}

const wasm = readFileSync(path);
const out = [wasm.subarray(0, 8)];
let found = false;
let at = 8;
while (at < wasm.length) {
  const id = wasm[at];
  const [size, start] = uleb(wasm, at + 1);
  const end = start + size;
  let body = wasm.subarray(start, end);
  if (id === 0) {
    const [nameLength, nameStart] = uleb(wasm, start);
    if (utf8.decode(wasm.subarray(nameStart, nameStart + nameLength)) === 'name') {
      found = true;
      const parts = [wasm.subarray(start, nameStart + nameLength)];
      let p = nameStart + nameLength;
      while (p < end) {
        const kind = wasm[p];
        const [length, from] = uleb(wasm, p + 1);
        let subsection = wasm.subarray(from, from + length);
        if (kind === 1) subsection = renamed(subsection);
        parts.push(Uint8Array.of(kind), encodeUleb(subsection.length), subsection);
        p = from + length;
      }
      body = Buffer.concat(parts);
    }
  }
  out.push(Uint8Array.of(id), encodeUleb(body.length), body);
  at = end;
}
if (!found) throw new Error('order-names: the module has no name section (wasm-bindgen must keep it)');
writeFileSync(path, Buffer.concat(out));
