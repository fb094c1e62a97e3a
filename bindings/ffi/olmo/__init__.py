"""olmo for Python: the UniFFI bindings generated into `olmo.olmo`, re-exported here, with
UniFFI's `uniffi_set_event_loop` (needed by async stores, see the README). The package is
marked typed (py.typed): the generated signatures are annotated."""

from .olmo import *  # noqa: F401,F403
from .olmo.olmo import uniffi_set_event_loop  # noqa: F401
