//! Stores a machine can run on: in memory, or written in JavaScript by the application; and,
//! with the `conformance` feature (test builds only), the core's conformance suite, run on any
//! two handles to one store.

use olmo::store::{
    Backend, Batch, Committed, Generation, KeyRange, MemoryStore, Record, StoreError,
};
use wasm_bindgen::prelude::*;

use crate::errors::argument_error;
use crate::js_store::JsStore;

/// Every backend the bindings offer, behind one type so the machines are not generic in
/// JavaScript.
#[derive(Clone)]
pub(crate) enum AnyStore {
    Memory(MemoryStore),
    Js(JsStore),
}

impl Backend for AnyStore {
    async fn get(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.get(table, key).await,
            AnyStore::Js(store) => store.get(table, key).await,
        }
    }

    async fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.get_many(table, keys).await,
            AnyStore::Js(store) => store.get_many(table, keys).await,
        }
    }

    async fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.scan(table, range, limit).await,
            AnyStore::Js(store) => store.scan(table, range, limit).await,
        }
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.commit(batch).await,
            AnyStore::Js(store) => store.commit(batch).await,
        }
    }

    // The memory store tracks its generation, so a machine on it keeps the records it read
    // and committed between operations; an application's store tracks none.
    async fn generation(&self) -> Option<Generation> {
        match self {
            AnyStore::Memory(store) => store.generation().await,
            AnyStore::Js(_) => None,
        }
    }

    async fn commit_tracked(&self, batch: Batch) -> Result<Option<Committed>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.commit_tracked(batch).await,
            AnyStore::Js(store) => store.commit(batch).await.map(|()| None),
        }
    }
}

/// Where a machine keeps its records. Two `Store`s made from one another (`handle()`) or
/// from the same JavaScript object share their records, as two tabs share one database.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: AnyStore,
}

#[wasm_bindgen]
impl Store {
    /// A store in memory (gone when the page or process ends).
    pub fn memory() -> Store {
        Store {
            inner: AnyStore::Memory(MemoryStore::new()),
        }
    }

    /// A store written in JavaScript: an object with `get`, `getMany`, `scan` and `commit`
    /// (see `JsStoreBackend`).
    #[wasm_bindgen(js_name = fromJs)]
    pub fn from_js(
        #[wasm_bindgen(unchecked_param_type = "JsStoreBackend")] backend: JsValue,
    ) -> Result<Store, JsValue> {
        let store = JsStore::new(backend).map_err(|e| argument_error(&e))?;
        Ok(Store {
            inner: AnyStore::Js(store),
        })
    }

    /// Another handle to the same records.
    pub fn handle(&self) -> Store {
        self.clone()
    }

    /// The kind of store: `"memory"` or `"js"`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        match self.inner {
            AnyStore::Memory(_) => "memory",
            AnyStore::Js(_) => "js",
        }
        .to_owned()
    }
}

/// The suite is 25 KB of the `.wasm` that no application runs, so only test builds have it.
#[cfg(feature = "conformance")]
mod conformance {
    use olmo::store::conformance;
    use wasm_bindgen::prelude::*;

    use super::Store;
    use crate::convert::promise;
    use crate::errors::make;

    /// The core's store conformance suite on two handles to one fresh, empty store: resolves to
    /// the number of checks passed, or rejects with a `ConformanceError` naming the failed check.
    #[wasm_bindgen(js_name = runStoreConformance, unchecked_return_type = "Promise<number>")]
    pub fn run_store_conformance(first: &Store, second: &Store) -> js_sys::Promise {
        let first = first.inner.clone();
        let second = second.inner.clone();
        promise(async move {
            match conformance::run(&first, &second).await {
                Ok(passed) => Ok(JsValue::from_f64(passed as f64)),
                Err(failure) => Err(make(
                    "ConformanceError",
                    "conformance",
                    &failure.to_string(),
                    &[
                        ("check", failure.check.into()),
                        ("detail", failure.detail.as_str().into()),
                    ],
                )),
            }
        })
    }

    /// The names of the conformance checks, in the order they run.
    #[wasm_bindgen(js_name = storeConformanceChecks)]
    pub fn store_conformance_checks() -> Vec<String> {
        conformance::CHECKS
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }
}
