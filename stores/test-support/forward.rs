// `forward_reads!`: the read half of a test backend that wraps another one and only watches
// reads or changes commits, so each wrapper writes its `commit` and nothing else. Brought into
// a test module with `include!` (the store crates' tests and the core's).

/// Implements `get`, `get_many` and `scan` of [`olmo::store::Backend`]: each runs `$before`
/// (with `$this` bound to `&self` and `$table` to the table read), then the same read on the
/// backend `$inner` names (evaluated per call, so it may be a fresh handle).
macro_rules! forward_reads {
    (|$this:ident| $inner:expr) => {
        forward_reads!(|$this, _table| {}, $inner);
    };
    (|$this:ident, $table:ident| $before:expr, $inner:expr) => {
        fn get(
            &self,
            table: &str,
            key: &[u8],
        ) -> impl std::future::Future<
            Output = Result<Option<olmo::store::Record>, olmo::store::StoreError>,
        > + olmo::store::MaybeSend {
            let $this = self;
            let $table = table;
            $before;
            let inner = $inner;
            async move { inner.get(table, key).await }
        }

        fn get_many(
            &self,
            table: &str,
            keys: &[Vec<u8>],
        ) -> impl std::future::Future<
            Output = Result<Vec<Option<olmo::store::Record>>, olmo::store::StoreError>,
        > + olmo::store::MaybeSend {
            let $this = self;
            let $table = table;
            $before;
            let inner = $inner;
            async move { inner.get_many(table, keys).await }
        }

        fn scan(
            &self,
            table: &str,
            range: &olmo::store::KeyRange,
            limit: usize,
        ) -> impl std::future::Future<
            Output = Result<Vec<(Vec<u8>, olmo::store::Record)>, olmo::store::StoreError>,
        > + olmo::store::MaybeSend {
            let $this = self;
            let $table = table;
            $before;
            let inner = $inner;
            async move { inner.scan(table, range, limit).await }
        }
    };
}
