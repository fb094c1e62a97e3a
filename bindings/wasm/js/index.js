// The package's entry: the wasm-bindgen glue, the error classes, and `init()`, which loads
// the module once (from the file beside this one on Node, by URL in browsers and bundlers).
import initWasm, { initSync, __registerErrorClasses } from '../pkg/olmo_wasm.js';
import * as errors from './errors.js';

export * from '../pkg/olmo_wasm.js';
export * from './errors.js';
export { MapStore } from './map-store.js';
export { IndexedDbStore } from './indexeddb-store.js';

let loading;

/**
 * Loads the WebAssembly module; call (and await) once before anything else. `input` is
 * optional: a URL, a Response, bytes or a compiled WebAssembly.Module.
 */
export function init(input) {
  loading ??= load(input);
  return loading;
}

async function load(input) {
  if (input === undefined && globalThis.process?.versions?.node) {
    // Node: compile the file's bytes and instantiate synchronously. The glue's async path
    // tests `instanceof Response`, and on Node that first touch of `Response` loads the whole
    // fetch implementation (undici): two thirds of the time init took.
    // `getBuiltinModule` (Node 20.16+) skips the ESM loader that a first dynamic import starts.
    const fs = process.getBuiltinModule?.('node:fs') ?? (await import('node:fs'));
    const bytes = fs.readFileSync(new URL('../pkg/olmo_wasm_bg.wasm', import.meta.url));
    initSync({ module: new WebAssembly.Module(bytes) });
  } else {
    await initWasm(input === undefined ? undefined : { module_or_path: input });
  }
  __registerErrorClasses({ ...errors });
}
