#!/usr/bin/env python3
"""matrix-nio decrypting a room dump with a key export, as a nio bot would: a nio `Olm` machine
imports the file (`Olm.import_keys`), then `decrypt_megolm_event` for each event of the dump
(JSON lines), read one line at a time. Prints one JSON line: seconds for the import and for the
decryption, events decrypted, and the process's peak resident memory.

    nio_decrypt.py KEYS EVENTS   (passphrase in $OLMO_PASSPHRASE)
"""

import json
import logging
import os
import resource
import sys
import time

from nio.crypto import Olm
from nio.events import MegolmEvent
from nio.store import SqliteMemoryStore

logging.disable(logging.CRITICAL)


def main():
    keys, events = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    machine = Olm("@nio:example.org", "NIOBENCH", SqliteMemoryStore("@nio:example.org", "NIOBENCH"))
    machine.import_keys(keys, os.environ["OLMO_PASSPHRASE"])
    imported = time.perf_counter()
    decrypted = failed = 0
    with open(events) as f:
        for line in f:
            event = MegolmEvent.from_dict(json.loads(line))
            try:
                result = machine.decrypt_megolm_event(event, event.source["room_id"])
                decrypted += result is not None
            except Exception:  # nio raises EncryptionError for what it cannot decrypt
                failed += 1
    end = time.perf_counter()
    print(json.dumps({
        "import_seconds": imported - start,
        "decrypt_seconds": end - imported,
        "seconds": end - start,
        "decrypted": decrypted,
        "failed": failed,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
