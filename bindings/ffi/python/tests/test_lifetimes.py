"""Objects are freed when their Python handle goes (CPython's reference counting; the Rust side
wipes its secrets on drop): 100,000 of them come and go with flat memory."""

import gc

import olmo


def resident_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4


def exported_key() -> str:
    return olmo.InboundGroupSession(olmo.OutboundGroupSession().session_key()).export_at_first_known_index()


def churn(key: str, count: int) -> None:
    for _ in range(count):
        session = olmo.InboundGroupSession.import_session(key)
        session.first_known_index()
        del session


def test_hundred_thousand_objects_with_flat_memory():
    key = exported_key()
    churn(key, 10_000)  # warm the allocators
    gc.collect()
    before = resident_kib()
    churn(key, 100_000)
    gc.collect()
    grown = resident_kib() - before
    # Each session holds a few hundred bytes of Rust state: leaking them would be tens of MiB.
    assert grown < 2048, f"resident memory grew by {grown} KiB over 100,000 objects"


def test_del_frees_at_once():
    """After `del`, the memory of 50,000 sessions is reused by the next 50,000: it was freed
    then, not at some later collection (the allocator keeps it, so RSS itself need not drop).
    Unfreed, the second batch would grow as much as the first; half leaves room for the heap's
    fragmentation, which depends on what earlier tests imported."""
    key = exported_key()
    gc.disable()
    try:
        start = resident_kib()
        sessions = [olmo.InboundGroupSession.import_session(key) for _ in range(50_000)]
        held = resident_kib() - start
        del sessions
        middle = resident_kib()
        sessions = [olmo.InboundGroupSession.import_session(key) for _ in range(50_000)]
        again = resident_kib() - middle
        del sessions
    finally:
        gc.enable()
    assert held > 1024 and again < held // 2, (held, again)
