"""A store with `async def` methods (olmo.AsyncStoreBackend): through the conformance suite and
under an XMPP machine. The machine waits on its calling thread, so it runs in a worker thread
(`asyncio.to_thread`) while the event loop, registered with `uniffi_set_event_loop`, runs the
store's coroutines."""

import asyncio

import pytest

import olmo
from sqlite_store import AsyncSqliteStore
from test_xmpp_machine import Device, Server


def run_beside_the_loop(work):
    async def main():
        olmo.uniffi_set_event_loop(asyncio.get_running_loop())
        try:
            return await asyncio.to_thread(work)
        finally:
            olmo.uniffi_set_event_loop(None)

    return asyncio.run(main())


def test_async_python_store_passes_conformance(tmp_path):
    path = str(tmp_path / "async.db")
    passed = run_beside_the_loop(
        lambda: olmo.run_async_store_conformance(AsyncSqliteStore(path), AsyncSqliteStore(path)))
    assert passed == len(olmo.store_conformance_checks())


def test_a_failing_async_store_raises_a_typed_error():
    class Broken(AsyncSqliteStore):
        async def get(self, table, key):
            raise olmo.StoreFailure.Backend(reason="disk on fire")

    with pytest.raises(olmo.OlmoError) as failure:
        run_beside_the_loop(lambda: olmo.XmppMachine.open(
            olmo.OlmoStore.foreign_async(Broken(":memory:")), bytes(32), "romeo@montague.example"))
    assert "disk on fire" in str(failure.value)


def test_xmpp_machines_on_async_stores(tmp_path):
    def talk():
        server = Server()
        store = lambda name: olmo.OlmoStore.foreign_async(AsyncSqliteStore(str(tmp_path / f"{name}.db")))  # noqa: E731
        romeo = Device(server, store("romeo"), "romeo@montague.example")
        juliet = Device(server, store("juliet"), "juliet@capulet.example")
        romeo.send(juliet.jid, "Hi Juliet")
        heard = juliet.catch_up()
        juliet.send(romeo.jid, "Hi Romeo")
        return heard, romeo.catch_up()

    assert run_beside_the_loop(talk) == (["Hi Juliet"], ["Hi Romeo"])
