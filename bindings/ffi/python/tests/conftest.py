"""Shared helpers: Matrix's unpadded base64, and the peers' imports."""

import base64

import pytest


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def storage_key() -> bytes:
    return bytes(range(32))
