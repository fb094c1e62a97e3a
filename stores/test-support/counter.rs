//! The counter the store crates' fault tests race and kill (included with `#[path]`): each
//! increment is one transaction that writes the counter plus one and a new item record named by
//! the new value, so a split commit, a lost update or a value handed out twice shows in the
//! records left behind.

use olmo::persist::StorageKey;
use olmo::store::{Backend, KeyRange, Sealer, StoreError, Txn, block_on};
use zeroize::Zeroizing;

pub const COUNTER_TABLE: &str = "counter";
pub const COUNTER_KEY: &[u8] = b"counter";
/// One record per value handed out, keyed by the value (big-endian).
pub const ITEMS: &str = "items";

pub fn sealer() -> Sealer {
    Sealer::new(&StorageKey::from_bytes([7; 32]))
}

/// One increment in one transaction. The value, once the commit returned Ok.
pub fn increment<B: Backend>(store: &B, sealer: &Sealer) -> Result<u64, StoreError> {
    let mut txn = Txn::new(store, sealer);
    let current = match block_on(txn.get(COUNTER_TABLE, COUNTER_KEY))? {
        Some((_, bytes)) => u64::from_be_bytes(bytes[..].try_into().unwrap()),
        None => 0,
    };
    let next = current + 1;
    let bytes = Zeroizing::new(next.to_be_bytes().to_vec());
    txn.put(COUNTER_TABLE, COUNTER_KEY, 1, bytes.clone())?;
    txn.insert(ITEMS, &next.to_be_bytes(), 1, bytes);
    block_on(txn.commit(&mut rand::rng()))?;
    Ok(next)
}

/// The counter and the item values present, after checking every record opens.
pub fn read_state<B: Backend>(store: &B, sealer: &Sealer) -> (u64, Vec<u64>) {
    let mut txn = Txn::new(store, sealer);
    let counter = block_on(txn.get(COUNTER_TABLE, COUNTER_KEY))
        .unwrap()
        .map_or(0, |(_, b)| u64::from_be_bytes(b[..].try_into().unwrap()));
    let mut items = Vec::new();
    let mut range = KeyRange::all();
    loop {
        let page = block_on(store.scan(ITEMS, &range, 256)).unwrap();
        let Some((last, _)) = page.last() else { break };
        range = range.after(last);
        for (key, record) in page {
            let (_, plaintext) = sealer
                .open(ITEMS, &key, record.version, &record.value)
                .unwrap();
            assert_eq!(plaintext[..], key[..], "an item holds its own value");
            items.push(u64::from_be_bytes(key[..].try_into().unwrap()));
        }
    }
    (counter, items)
}

/// The values a child printed after `prefix` ("got ", "committed ").
pub fn values_said(lines: &[String], prefix: &str) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| super::child::said(l)?.strip_prefix(prefix))
        .map(|v| v.parse().unwrap())
        .collect()
}

/// What must hold after a writer was killed in `round`: the items are exactly 1..=counter (no
/// split commit), the counter did not go back from `previous`, the last acknowledged value
/// survived, and nothing acknowledged was handed out before.
pub fn check_after_kill(
    round: usize,
    previous: u64,
    acknowledged: &[u64],
    state: &(u64, Vec<u64>),
) {
    let (counter, items) = state;
    assert_eq!(
        *items,
        (1..=*counter).collect::<Vec<_>>(),
        "round {round}: a commit's two writes were split"
    );
    assert!(*counter >= previous, "round {round}: the counter went back");
    if let Some(&last) = acknowledged.last() {
        assert!(
            last <= *counter,
            "round {round}: value {last} was acknowledged but the counter is {counter}"
        );
    }
    assert!(
        acknowledged.iter().all(|&v| v > previous),
        "round {round}: a value was handed out twice"
    );
}

/// What must hold after two racers made `increments` each: every value handed out exactly
/// once, and the store's counter and items say the same.
pub fn check_after_race(increments: u64, mut handed_out: Vec<u64>, state: &(u64, Vec<u64>)) {
    let all: Vec<u64> = (1..=2 * increments).collect();
    handed_out.sort_unstable();
    assert_eq!(handed_out, all, "every value handed out exactly once");
    assert_eq!(state.0, 2 * increments, "no lost update");
    assert_eq!(state.1, all);
}
