//! olmo for JavaScript: the Olm and Megolm objects, key export files, and the Matrix and XMPP
//! machines over a store in memory, in IndexedDB, or written in JavaScript by the application.
//!
//! Names are camelCase, bytes are `Uint8Array`, JSON bodies are plain objects, operations that
//! touch a store return `Promise`s, and failures are `Error` subclasses (`OlmoError` and its
//! kinds) carrying the core's reasons. The package's `index.js` loads the module and registers
//! those classes; use it rather than the raw glue.
#![cfg(target_arch = "wasm32")]

mod convert;
mod errors;
mod js_store;
mod matrix;
mod megolm;
mod olm;
mod store;
mod types;
mod xmpp;

pub use errors::register_error_classes;

/// The heap: talc in place of the standard library's dlmalloc (smaller and faster in wasm32).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
