//! Operations as transactions that commit once and run again on a conflict.

/// How often an operation is run again after its commit conflicted with another writer.
pub const MAX_ATTEMPTS: usize = 8;

/// Runs `$body` (an expression that may `.await`, using `$txn`, giving a `Result`) in a
/// transaction over `$machine.backend` sealed by `$machine.sealer`, and commits; on a conflict,
/// runs it again on a fresh transaction, up to [`MAX_ATTEMPTS`] times; also when `$body` itself
/// found a conflict (reads torn by another writer's commit, see [`Retryable`]). The machines'
/// one way of changing the store.
macro_rules! transact {
    ($machine:expr, $rng:expr, |$txn:ident| $body:expr) => {
        $crate::store::transact!(@attempts |$txn| $body,
            begin: $crate::store::Txn::new(&$machine.backend, &$machine.sealer),
            commit: $txn.commit($rng).await)
    };
    // Each attempt's transaction is `$begin`, committed by `$commit` (a `Result<(),
    // StoreError>`): what differs between plain transactions and those knowing records.
    (@attempts |$txn:ident| $body:expr, begin: $begin:expr, commit: $commit:expr) => {{
        let mut attempt = 0;
        loop {
            #[allow(unused_mut)]
            let mut $txn = $begin;
            match $body {
                Err(error)
                    if attempt + 1 < $crate::store::MAX_ATTEMPTS
                        && $crate::store::Retryable::is_conflict(&error) =>
                {
                    attempt += 1;
                }
                Err(error) => break Err(error),
                Ok(value) => match $commit {
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

/// As [`transact!`], for a machine that keeps the records it read and committed between
/// operations (`$machine.known`, a [`KnownSlot`](super::KnownSlot)): each attempt reads from
/// them while the backend is still at their generation ([`Txn::knowing`](super::Txn::knowing)),
/// and a commit gives them back, at the generation it made. Any error, conflict or failed
/// commit drops them: the next attempt, or operation, reads everything from the backend.
macro_rules! transact_known {
    ($machine:expr, $rng:expr, |$txn:ident| $body:expr) => {
        $crate::store::transact!(@attempts |$txn| $body,
            begin: $crate::store::Txn::new(&$machine.backend, &$machine.sealer)
                .knowing($machine.known.take_valid(&$machine.backend).await),
            commit: $txn.commit_known($rng).await.map(|known| {
                if let Some(known) = known {
                    $machine.known.put(known);
                }
            }))
    };
}
pub(crate) use transact_known;

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
