"""olmo's wheel (UniFFI) and olmo_fast (its pyo3 hot paths, bindings/python-fast) beside
vodozemac-python (pyo3) and python-olm (libolm, cffi) in one process.

Each row times the same operation through each library's Python API (µs of this thread's CPU
time per operation, best of REPEATS runs: CPU time, because CI machines are shared and wall
time there measures the neighbours) and prints olmo's and olmo_fast's times as ratios of
vodozemac-python's; goal ≤ 1.0×. olmo_fast's objects are the UniFFI ones handed over
(`from_olmo`); "-" where olmo_fast has no such call.
`OLMO_BENCH_QUICK=1` shrinks the counts so CI only checks that it runs."""

import base64
import os
import time

import olm
import vodozemac

import olmo
import olmo_fast

QUICK = os.environ.get("OLMO_BENCH_QUICK") == "1"
N = 200 if QUICK else 5_000
BACKLOG = 1_000 if QUICK else 10_000
REPEATS = 1 if QUICK else 5
PLAINTEXT = b'{"type":"m.room.message","content":{"msgtype":"m.text","body":"Hello, this is a typical message"}}'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def best(setup, run, count):
    """µs per operation: `setup()` makes fresh state, `run(state)` does `count` operations."""
    times = []
    for _ in range(REPEATS):
        state = setup()
        start = time.thread_time_ns()
        run(state)
        times.append((time.thread_time_ns() - start) / count / 1000)
    return min(times)


# --- Olm: a session each library made with itself, after one exchange both ways. ---

def olmo_pair():
    alice, bob = olmo.OlmAccount(), olmo.OlmAccount()
    bob.generate_one_time_keys(1)
    out = alice.create_outbound_session(bob.curve25519_key(), next(iter(bob.one_time_keys().values())))
    inbound = bob.create_inbound_session(alice.curve25519_key(), out.encrypt(b"hi")).session()
    out.decrypt(inbound.message_type(), inbound.encrypt(b"back"))
    return out, inbound


def fast_pair():
    out, inbound = olmo_pair()
    return olmo_fast.OlmSession.from_olmo(out), olmo_fast.OlmSession.from_olmo(inbound)


def vodozemac_pair():
    alice, bob = vodozemac.Account(), vodozemac.Account()
    bob.generate_one_time_keys(1)
    out = alice.create_outbound_session(bob.curve25519_key, next(iter(bob.one_time_keys.values())))
    inbound, _ = bob.create_inbound_session(alice.curve25519_key, out.encrypt(b"hi").to_pre_key())
    out.decrypt(inbound.encrypt(b"back"))
    return out, inbound


def libolm_pair():
    alice, bob = olm.Account(), olm.Account()
    bob.generate_one_time_keys(1)
    out = olm.OutboundSession(alice, bob.identity_keys["curve25519"], next(iter(bob.one_time_keys["curve25519"].values())))
    first = out.encrypt("hi")
    inbound = olm.InboundSession(bob, first, alice.identity_keys["curve25519"])
    inbound.decrypt(first)
    out.decrypt(inbound.encrypt("back"))
    return out, inbound


def olm_rows():
    text = PLAINTEXT.decode()
    rows = {}
    rows["Olm encrypt"] = (
        best(olmo_pair, lambda p: [p[0].encrypt(PLAINTEXT) for _ in range(N)], N),
        best(fast_pair, lambda p: [p[0].encrypt(PLAINTEXT) for _ in range(N)], N),
        best(vodozemac_pair, lambda p: [p[0].encrypt(PLAINTEXT) for _ in range(N)], N),
        best(libolm_pair, lambda p: [p[0].encrypt(text) for _ in range(N)], N),
    )

    def with_messages(pair, encrypt):
        def setup():
            out, inbound = pair()
            return inbound, [encrypt(out) for _ in range(N)]
        return setup

    rows["Olm decrypt"] = (
        best(with_messages(olmo_pair, lambda o: o.encrypt(PLAINTEXT)), lambda s: [s[0].decrypt(1, m) for m in s[1]], N),
        best(with_messages(fast_pair, lambda o: o.encrypt(PLAINTEXT)), lambda s: [s[0].decrypt(1, m) for m in s[1]], N),
        best(with_messages(vodozemac_pair, lambda o: o.encrypt(PLAINTEXT)), lambda s: [s[0].decrypt(m) for m in s[1]], N),
        best(with_messages(libolm_pair, lambda o: o.encrypt(text)), lambda s: [s[0].decrypt(m) for m in s[1]], N),
    )

    count = max(N // 10, 50)

    def olmo_setup():
        bob = olmo.OlmAccount()
        bob.generate_one_time_keys(1)
        return olmo.OlmAccount(), bob.curve25519_key(), next(iter(bob.one_time_keys().values()))

    def fast_setup():
        alice, identity_key, one_time_key = olmo_setup()
        return olmo_fast.OlmAccount.from_olmo(alice), identity_key, one_time_key

    def vodozemac_setup():
        bob = vodozemac.Account()
        bob.generate_one_time_keys(1)
        return vodozemac.Account(), bob.curve25519_key, next(iter(bob.one_time_keys.values()))

    def libolm_setup():
        bob = olm.Account()
        bob.generate_one_time_keys(1)
        return olm.Account(), bob.identity_keys["curve25519"], next(iter(bob.one_time_keys["curve25519"].values()))

    rows["Olm session creation (outbound)"] = (
        best(olmo_setup, lambda s: [s[0].create_outbound_session(s[1], s[2]) for _ in range(count)], count),
        best(fast_setup, lambda s: [s[0].create_outbound_session(s[1], s[2]) for _ in range(count)], count),
        best(vodozemac_setup, lambda s: [s[0].create_outbound_session(s[1], s[2]) for _ in range(count)], count),
        best(libolm_setup, lambda s: [olm.OutboundSession(s[0], s[1], s[2]) for _ in range(count)], count),
    )
    rows["Olm session creation (inbound)"] = inbound_creation()
    return rows


def inbound_creation():
    """Bob makes a session from each of KEYS pre-key messages (one per one-time key) and
    decrypts it."""
    keys = 40

    def olmo_setup():
        alice, bob = olmo.OlmAccount(), olmo.OlmAccount()
        bob.generate_one_time_keys(keys)
        messages = [alice.create_outbound_session(bob.curve25519_key(), k).encrypt(PLAINTEXT) for k in bob.one_time_keys().values()]
        return bob, alice.curve25519_key(), messages

    def fast_setup():
        bob, identity_key, messages = olmo_setup()
        return olmo_fast.OlmAccount.from_olmo(bob), identity_key, messages

    def vodozemac_setup():
        alice, bob = vodozemac.Account(), vodozemac.Account()
        bob.generate_one_time_keys(keys)
        messages = [alice.create_outbound_session(bob.curve25519_key, k).encrypt(PLAINTEXT).to_pre_key() for k in bob.one_time_keys.values()]
        return bob, alice.curve25519_key, messages

    def libolm_setup():
        alice, bob = olm.Account(), olm.Account()
        bob.generate_one_time_keys(keys)
        identity_key = bob.identity_keys["curve25519"]
        messages = [olm.OutboundSession(alice, identity_key, k).encrypt(PLAINTEXT.decode()) for k in bob.one_time_keys["curve25519"].values()]
        return bob, alice.identity_keys["curve25519"], messages

    def libolm_create(bob, identity_key, message):
        session = olm.InboundSession(bob, message, identity_key)
        bob.remove_one_time_keys(session)
        return session.decrypt(message)

    create = lambda s: [s[0].create_inbound_session(s[1], m) for m in s[2]]  # noqa: E731
    return (
        best(olmo_setup, create, keys),
        best(fast_setup, create, keys),
        best(vodozemac_setup, create, keys),
        best(libolm_setup, lambda s: [libolm_create(s[0], s[1], m) for m in s[2]], keys),
    )


# --- Megolm. ---

def megolm_rows():
    text = PLAINTEXT.decode()
    rows = {}
    rows["Megolm encrypt"] = (
        best(olmo.OutboundGroupSession, lambda s: [s.encrypt(PLAINTEXT) for _ in range(N)], N),
        best(lambda: olmo_fast.OutboundGroupSession.from_olmo(olmo.OutboundGroupSession()), lambda s: [s.encrypt(PLAINTEXT) for _ in range(N)], N),
        best(vodozemac.GroupSession, lambda s: [s.encrypt(PLAINTEXT) for _ in range(N)], N),
        best(olm.OutboundGroupSession, lambda s: [s.encrypt(text) for _ in range(N)], N),
    )

    def olmo_backlog(count):
        out = olmo.OutboundGroupSession()
        key = out.session_key()
        messages = [out.encrypt(PLAINTEXT) for _ in range(count)]
        return lambda: (olmo.InboundGroupSession(key), messages)

    def fast_backlog(count):
        inbound_and_messages = olmo_backlog(count)

        def setup():
            inbound, messages = inbound_and_messages()
            return olmo_fast.InboundGroupSession.from_olmo(inbound), messages
        return setup

    def vodozemac_backlog(count):
        out = vodozemac.GroupSession()
        key = out.session_key
        messages = [out.encrypt(PLAINTEXT) for _ in range(count)]
        return lambda: (vodozemac.InboundGroupSession(key), messages)

    def libolm_backlog(count):
        out = olm.OutboundGroupSession()
        key = out.session_key
        messages = [out.encrypt(text) for _ in range(count)]
        return lambda: (olm.InboundGroupSession(key), messages)

    each = lambda s: [s[0].decrypt(m) for m in s[1]]  # noqa: E731
    rows["Megolm decrypt"] = (
        best(olmo_backlog(N), each, N),
        best(fast_backlog(N), each, N),
        best(vodozemac_backlog(N), each, N),
        best(libolm_backlog(N), each, N),
    )
    rows[f"Megolm backlog of {BACKLOG:,} (per message)"] = (
        best(olmo_backlog(BACKLOG), lambda s: s[0].decrypt_backlog(s[1]), BACKLOG),
        None,  # olmo_fast has no batch call: decrypt_backlog is olmo's
        best(vodozemac_backlog(BACKLOG), each, BACKLOG),
        best(libolm_backlog(BACKLOG), each, BACKLOG),
    )
    return rows


def overhead():
    """The FFI's own cost: a call that does almost nothing on the Rust side."""
    count = 20_000 if QUICK else 200_000
    olmo_session = olmo.OutboundGroupSession()
    vodozemac_session = vodozemac.GroupSession()
    fast_session = olmo_fast.OutboundGroupSession.from_olmo(olmo_session)
    libolm_session = olm.OutboundGroupSession()
    return (
        best(lambda: olmo_session, lambda s: [s.message_index() for _ in range(count)], count),
        best(lambda: fast_session, lambda s: [s.message_index() for _ in range(count)], count),
        best(lambda: vodozemac_session, lambda s: [s.message_index for _ in range(count)], count),
        best(lambda: libolm_session, lambda s: [s.message_index for _ in range(count)], count),
    )


def main():
    rows = {**olm_rows(), **megolm_rows()}
    rows["FFI call overhead (message_index)"] = overhead()
    print(f"{'operation':<40} {'olmo µs':>8} {'olmo_fast µs':>13} {'vodozemac µs':>13} {'libolm µs':>10} {'olmo/vodozemac':>15} {'fast/vodozemac':>15}")
    for name, (ours, fast, theirs, libolm) in rows.items():
        fast_time, fast_ratio = ("-", "-") if fast is None else (f"{fast:.2f}", f"{fast / theirs:.2f}x")
        print(f"{name:<40} {ours:>8.2f} {fast_time:>13} {theirs:>13.2f} {libolm:>10.2f} {ours / theirs:>14.2f}x {fast_ratio:>15}")


if __name__ == "__main__":
    main()
