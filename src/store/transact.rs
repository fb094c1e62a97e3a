//! Operations as transactions that commit once and run again on a conflict.

/// How often an operation is run again after its commit conflicted with another writer.
pub const MAX_ATTEMPTS: usize = 8;

/// Runs `$body` (an expression that may `.await`, using `$txn`, giving a `Result`) in a
/// transaction over `$machine.backend` sealed by `$machine.sealer`, and commits; on a conflict,
/// runs it again on a fresh transaction, up to [`MAX_ATTEMPTS`] times; also when `$body` itself
/// found a conflict (reads torn by another writer's commit, see [`Retryable`]). The machines'
/// one way of changing the store.
macro_rules! transact {
    ($machine:expr, $rng:expr, |$txn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            #[allow(unused_mut)]
            let mut $txn = $crate::store::Txn::new(&$machine.backend, &$machine.sealer);
            match $body {
                Err(error)
                    if attempt + 1 < $crate::store::MAX_ATTEMPTS
                        && $crate::store::Retryable::is_conflict(&error) =>
                {
                    attempt += 1;
                }
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

/// An operation's error that is a conflict with another writer, so running the operation again
/// on fresh reads can succeed.
pub(crate) trait Retryable {
    /// Whether the error is [`StoreError::Conflict`](super::StoreError::Conflict).
    fn is_conflict(&self) -> bool;
}

impl Retryable for super::StoreError {
    fn is_conflict(&self) -> bool {
        matches!(self, super::StoreError::Conflict(_))
    }
}
