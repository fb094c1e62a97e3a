//! Operations as transactions that commit once and run again on a conflict.

/// How often an operation is run again after its commit conflicted with another writer.
pub const MAX_ATTEMPTS: usize = 8;

/// Runs `$body` (an expression that may `.await`, using `$txn`, giving a `Result`) in a
/// transaction over `$machine.backend` sealed by `$machine.sealer`, and commits; on a conflict,
/// runs it again on a fresh transaction, up to [`MAX_ATTEMPTS`] times. The machines' one way of
/// changing the store.
macro_rules! transact {
    ($machine:expr, $rng:expr, |$txn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            #[allow(unused_mut)]
            let mut $txn = $crate::store::Txn::new(&$machine.backend, &$machine.sealer);
            match $body {
                Err(error) => break Err(error),
                Ok(value) => match $txn.commit($rng).await {
                    Ok(()) => break Ok(value),
                    Err($crate::store::StoreError::Conflict(_))
                        if attempt + 1 < $crate::store::MAX_ATTEMPTS =>
                    {
                        attempt += 1;
                    }
                    Err(error) => break Err(error.into()),
                },
            }
        }
    }};
}
pub(crate) use transact;
