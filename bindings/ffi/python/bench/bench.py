"""olmo's wheel (UniFFI) and olmo_fast (its pyo3 hot paths, bindings/python-fast) beside
vodozemac-python (pyo3) and python-olm (libolm, cffi) in one process.

Each row times the same operation through each library's Python API and prints olmo's and
olmo_fast's medians as ratios of vodozemac-python's median; goal <= 1.0x. How, so that a loaded
shared machine does not decide the ratios:
- per-thread CPU time (`time.thread_time_ns`): time the neighbours take is not counted;
- the libraries run interleaved, one batch each per round (ABCD, then DCBA, ...), so a slow
  spell of the machine falls on all of them alike; one untimed warm-up round first;
- every round starts from fresh state made the same way (same plaintext, same counts);
- the garbage collector is off inside a timed batch (it runs between batches);
- per row: the median over the rounds, its spread (half the interquartile range, as a share of
  the median), and the ratio of the medians.
olmo_fast's objects are the UniFFI ones handed over (`from_olmo`); "-" where olmo_fast has no
such call. `OLMO_BENCH_QUICK=1` shrinks the counts so CI only checks that it runs."""

import base64
import gc
import os
import statistics
import time

import olm
import vodozemac

import olmo
import olmo_fast

QUICK = os.environ.get("OLMO_BENCH_QUICK") == "1"
N = 100 if QUICK else 1_000
BACKLOG = 1_000 if QUICK else 10_000
ROUNDS = 1 if QUICK else 15
BACKLOG_ROUNDS = 1 if QUICK else 5
PLAINTEXT = b'{"type":"m.room.message","content":{"msgtype":"m.text","body":"Hello, this is a typical message"}}'
SIDES = ("olmo", "olmo_fast", "vodozemac", "libolm")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def side(setup, run, count):
    """One library's part of a row: `setup()` makes fresh state, `run(state)` does `count`
    operations on it."""
    return setup, run, count


def timed(setup, run, count):
    """µs of this thread's CPU time per operation for one batch, the collector off."""
    state = setup()
    gc.collect()
    gc.disable()
    try:
        start = time.thread_time_ns()
        run(state)
        elapsed = time.thread_time_ns() - start
    finally:
        gc.enable()
    return elapsed / count / 1000


def measure(*sides, rounds=ROUNDS):
    """Each side's batch in turn, the order reversed every round (ABCD, DCBA, ...), after one
    untimed warm-up round: per side (None where it has no such call), the list of µs per
    operation over the rounds."""
    present = [i for i, s in enumerate(sides) if s is not None]
    times = {i: [] for i in present}
    for round_number in range(rounds + 1):
        order = present if round_number % 2 == 0 else present[::-1]
        for i in order:
            result = timed(*sides[i])
            if round_number > 0:
                times[i].append(result)
    return tuple(times.get(i) for i in range(len(sides)))


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
    rows["Olm encrypt"] = measure(
        side(olmo_pair, lambda p: [p[0].encrypt(PLAINTEXT) for _ in range(N)], N),
        side(fast_pair, lambda p: [p[0].encrypt(PLAINTEXT) for _ in range(N)], N),
        side(vodozemac_pair, lambda p: [p[0].encrypt(PLAINTEXT) for _ in range(N)], N),
        side(libolm_pair, lambda p: [p[0].encrypt(text) for _ in range(N)], N),
    )

    def with_messages(pair, encrypt):
        def setup():
            out, inbound = pair()
            return inbound, [encrypt(out) for _ in range(N)]
        return setup

    rows["Olm decrypt"] = measure(
        side(with_messages(olmo_pair, lambda o: o.encrypt(PLAINTEXT)), lambda s: [s[0].decrypt(1, m) for m in s[1]], N),
        side(with_messages(fast_pair, lambda o: o.encrypt(PLAINTEXT)), lambda s: [s[0].decrypt(1, m) for m in s[1]], N),
        side(with_messages(vodozemac_pair, lambda o: o.encrypt(PLAINTEXT)), lambda s: [s[0].decrypt(m) for m in s[1]], N),
        side(with_messages(libolm_pair, lambda o: o.encrypt(text)), lambda s: [s[0].decrypt(m) for m in s[1]], N),
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

    rows["Olm session creation (outbound)"] = measure(
        side(olmo_setup, lambda s: [s[0].create_outbound_session(s[1], s[2]) for _ in range(count)], count),
        side(fast_setup, lambda s: [s[0].create_outbound_session(s[1], s[2]) for _ in range(count)], count),
        side(vodozemac_setup, lambda s: [s[0].create_outbound_session(s[1], s[2]) for _ in range(count)], count),
        side(libolm_setup, lambda s: [olm.OutboundSession(s[0], s[1], s[2]) for _ in range(count)], count),
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
    return measure(
        side(olmo_setup, create, keys),
        side(fast_setup, create, keys),
        side(vodozemac_setup, create, keys),
        side(libolm_setup, lambda s: [libolm_create(s[0], s[1], m) for m in s[2]], keys),
    )


# --- Megolm. ---

def megolm_rows():
    text = PLAINTEXT.decode()
    rows = {}
    rows["Megolm encrypt"] = measure(
        side(olmo.OutboundGroupSession, lambda s: [s.encrypt(PLAINTEXT) for _ in range(N)], N),
        side(lambda: olmo_fast.OutboundGroupSession.from_olmo(olmo.OutboundGroupSession()), lambda s: [s.encrypt(PLAINTEXT) for _ in range(N)], N),
        side(vodozemac.GroupSession, lambda s: [s.encrypt(PLAINTEXT) for _ in range(N)], N),
        side(olm.OutboundGroupSession, lambda s: [s.encrypt(text) for _ in range(N)], N),
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
    rows["Megolm decrypt"] = measure(
        side(olmo_backlog(N), each, N),
        side(fast_backlog(N), each, N),
        side(vodozemac_backlog(N), each, N),
        side(libolm_backlog(N), each, N),
    )
    rows[f"Megolm backlog of {BACKLOG:,} (per message)"] = measure(
        side(olmo_backlog(BACKLOG), lambda s: s[0].decrypt_backlog(s[1]), BACKLOG),
        None,  # olmo_fast has no batch call: decrypt_backlog is olmo's
        side(vodozemac_backlog(BACKLOG), each, BACKLOG),
        side(libolm_backlog(BACKLOG), each, BACKLOG),
        rounds=BACKLOG_ROUNDS,
    )
    return rows


def overhead():
    """The FFI's own cost: a call that does almost nothing on the Rust side."""
    count = 5_000 if QUICK else 20_000
    olmo_session = olmo.OutboundGroupSession()
    vodozemac_session = vodozemac.GroupSession()
    fast_session = olmo_fast.OutboundGroupSession.from_olmo(olmo_session)
    libolm_session = olm.OutboundGroupSession()
    return measure(
        side(lambda: olmo_session, lambda s: [s.message_index() for _ in range(count)], count),
        side(lambda: fast_session, lambda s: [s.message_index() for _ in range(count)], count),
        side(lambda: vodozemac_session, lambda s: [s.message_index for _ in range(count)], count),
        side(lambda: libolm_session, lambda s: [s.message_index for _ in range(count)], count),
    )


def summary(times):
    """The median and half the interquartile range as a share of it."""
    median = statistics.median(times)
    if len(times) < 4:
        return median, (max(times) - min(times)) / 2 / median
    quartiles = statistics.quantiles(times, n=4)
    return median, (quartiles[2] - quartiles[0]) / 2 / median


def main():
    print(f"µs of this thread's CPU time per operation: median of {ROUNDS} rounds ({BACKLOG_ROUNDS} for the backlog),")
    print("the libraries interleaved in each round (order reversed every round) after a warm-up round,")
    print("the collector off while timing; ± is half the interquartile range over the median;")
    print("ratios are of the medians (goal <= 1.0x vodozemac).")
    rows = {**olm_rows(), **megolm_rows()}
    rows["FFI call overhead (message_index)"] = overhead()
    header = f"{'operation':<40}" + "".join(f"{name + ' µs':>18}" for name in SIDES)
    print(header + f"{'olmo/vodozemac':>16}{'fast/vodozemac':>16}")
    for name, times in rows.items():
        medians = {}
        line = f"{name:<40}"
        for side_name, side_times in zip(SIDES, times):
            if side_times is None:
                line += f"{'-':>18}"
                continue
            median, spread = summary(side_times)
            medians[side_name] = median
            line += f"{median:>10.2f} ±{spread * 100:>4.1f}%"
        theirs = medians["vodozemac"]
        line += f"{medians['olmo'] / theirs:>15.2f}x"
        line += f"{medians['olmo_fast'] / theirs:>15.2f}x" if "olmo_fast" in medians else f"{'-':>16}"
        print(line)


if __name__ == "__main__":
    main()
