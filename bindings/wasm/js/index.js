// The package's entry: the wasm-bindgen glue, the error classes, and `init()`, which loads
// the module once (from the file beside this one on Node, by URL in browsers and bundlers).
import initWasm, { __registerErrorClasses } from '../pkg/olmo_wasm.js';
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
    const { readFile } = await import('node:fs/promises');
    input = await readFile(new URL('../pkg/olmo_wasm_bg.wasm', import.meta.url));
  }
  await initWasm(input === undefined ? undefined : { module_or_path: input });
  __registerErrorClasses({ ...errors });
}
