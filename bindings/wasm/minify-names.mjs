// Shortens the names the .wasm imports and exports by (run by build.sh after wasm-opt):
// wasm-bindgen names its imports `__wbg_<name>_<16 hex digits>` and its closure shims after
// their full Rust types (300 characters each), and the hex digits and types barely compress:
// the names were 1.8 KB of the gzipped file. Each becomes a short name (`a`, `b`, ..., `ba`, ...),
// and the glue (pkg/olmo_wasm.js, pkg/index.js) and the module's declarations
// (pkg/olmo_wasm_bg.wasm.d.ts) are rewritten to match; `memory` keeps its name. The glue is
// checked afterwards: every old name gone from where the module is called, every new one there.
import { readFileSync, writeFileSync } from 'node:fs';
import { encodeUleb, uleb } from './wasm-bytes.mjs';

const here = new URL('.', import.meta.url);
const file = (name) => new URL(`pkg/${name}`, here);

const utf8 = new TextDecoder();
const encoder = new TextEncoder();
const nameBytes = (text) => [...encodeUleb(encoder.encode(text).length), ...encoder.encode(text)];

function readName(bytes, at) {
  const [length, start] = uleb(bytes, at);
  return [utf8.decode(bytes.subarray(start, start + length)), start + length];
}

/** The end of an import's description starting at `at` (its kind byte). */
function skipImportDescription(bytes, at) {
  const kind = bytes[at++];
  const limits = (p) => {
    const flags = bytes[p++];
    [, p] = uleb(bytes, p);
    if (flags & 1) [, p] = uleb(bytes, p);
    return p;
  };
  switch (kind) {
    case 0: return uleb(bytes, at)[1]; // function: type index
    case 1: return limits(at + 1); // table: reference type, limits
    case 2: return limits(at); // memory: limits
    case 3: return at + 2; // global: value type, mutability
    default: throw new Error(`minify-names: import kind ${kind}`);
  }
}

/** `a`, `b`, ..., `Z`, `ba`, ...: never a JavaScript keyword (none is one or two letters
 * long but `do`, `if`, `in`), never `memory`. */
function* shortNames() {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  for (let n = 0; ; n++) {
    let name = '';
    let k = n;
    do {
      name = letters[k % letters.length] + name;
      k = Math.floor(k / letters.length);
    } while (k > 0);
    if (!['do', 'if', 'in'].includes(name)) yield name;
  }
}

const wasm = readFileSync(file('olmo_wasm_bg.wasm'));
const imports = new Map();
const exports = new Map();
const out = [wasm.subarray(0, 8)];
let at = 8;
while (at < wasm.length) {
  const id = wasm[at];
  const [size, start] = uleb(wasm, at + 1);
  const end = start + size;
  let body = wasm.subarray(start, end);
  if (id === 2 || id === 7) {
    const names = id === 2 ? imports : exports;
    const fresh = shortNames();
    let [count, p] = uleb(wasm, start);
    body = [...encodeUleb(count)];
    for (; count > 0; count--) {
      let module;
      if (id === 2) {
        [module, p] = readName(wasm, p);
        body.push(...nameBytes(module));
      }
      let name;
      [name, p] = readName(wasm, p);
      const short = name === 'memory' ? name : fresh.next().value;
      if (names.has(name)) throw new Error(`minify-names: ${name} twice`);
      names.set(name, short);
      body.push(...nameBytes(short));
      const next = id === 2 ? skipImportDescription(wasm, p) : uleb(wasm, p + 1)[1];
      body.push(...wasm.subarray(p, next));
      p = next;
    }
    if (p !== end) throw new Error(`minify-names: section ${id} has ${end - p} bytes past its entries`);
  }
  out.push(Uint8Array.from([id, ...encodeUleb(body.length)]), Uint8Array.from(body));
  at = end;
}

const escape = (text) => text.replace(/[$]/g, '\\$&');
function rewrite(text, where) {
  for (const [name, short] of exports) {
    if (name === short) continue;
    const old = new RegExp(`\\bwasm\\.${escape(name)}\\b`, 'g');
    text = text.replace(old, `wasm.${short}`);
  }
  for (const [name, short] of imports) {
    // The glue's import object: `        <name>: function(...` (or `<name>: <value>,`).
    const old = new RegExp(`^(\\s+)${escape(name)}:`, 'gm');
    const count = (text.match(old) ?? []).length;
    if (count > 1) throw new Error(`minify-names: import ${name} defined ${count} times in ${where}`);
    text = text.replace(old, `$1${short}:`);
  }
  // Nothing of the old names may be left where the glue calls the module.
  for (const name of exports.keys()) {
    if (exports.get(name) !== name && new RegExp(`\\bwasm\\.${escape(name)}\\b`).test(text)) {
      throw new Error(`minify-names: export ${name} still used in ${where}`);
    }
  }
  for (const name of imports.keys()) {
    if (new RegExp(`^\\s+${escape(name)}:`, 'm').test(text)) {
      throw new Error(`minify-names: import ${name} still defined in ${where}`);
    }
  }
  return text;
}

for (const glue of ['olmo_wasm.js', 'index.js']) {
  const text = rewrite(readFileSync(file(glue), 'utf8'), glue);
  for (const short of imports.values()) {
    if (!new RegExp(`^\\s+${short}:`, 'm').test(text)) {
      throw new Error(`minify-names: ${glue} defines no import the module names ${short}`);
    }
  }
  writeFileSync(file(glue), text);
}
let declarations = readFileSync(file('olmo_wasm_bg.wasm.d.ts'), 'utf8');
for (const [name, short] of exports) {
  declarations = declarations.replace(new RegExp(`^export const ${escape(name)}:`, 'm'), `export const ${short}:`);
}
writeFileSync(file('olmo_wasm_bg.wasm.d.ts'), declarations);
writeFileSync(file('olmo_wasm_bg.wasm'), Buffer.concat(out));
