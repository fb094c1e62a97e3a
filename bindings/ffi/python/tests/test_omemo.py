"""OMEMO devices of both versions: bundles published and verified, a session, messages both
ways, save/restore, a tampered bundle refused."""

import pytest

import olmo


@pytest.mark.parametrize("version", [olmo.OmemoVersion.OMEMO2, olmo.OmemoVersion.OMEMO03])
def test_omemo_devices_talk(version, storage_key):
    romeo = olmo.OmemoDevice("romeo@montague.example", 1001)
    juliet = olmo.OmemoDevice("juliet@capulet.example", 2001)
    romeo.build_session(juliet.jid(), juliet.device_id(), juliet.bundle(version))
    element = romeo.encrypt_message(version, [olmo.OmemoAddress(jid=juliet.jid(), device_id=2001)], b"Hi Juliet")
    received = juliet.decrypt_message(romeo.jid(), element)
    assert (received.plaintext(), received.sender_device(), received.new_session()) == (b"Hi Juliet", 1001, True)

    juliet = olmo.OmemoDevice.restore(juliet.save(storage_key), storage_key)
    answer = juliet.encrypt_message(version, [olmo.OmemoAddress(jid=romeo.jid(), device_id=1001)], b"Hi Romeo")
    assert romeo.decrypt_message(juliet.jid(), answer).plaintext() == b"Hi Romeo"
    assert len(romeo.fingerprint()) > 0


def test_a_tampered_bundle_is_refused():
    juliet = olmo.OmemoDevice("juliet@capulet.example", 2001)
    bundle = juliet.bundle(olmo.OmemoVersion.OMEMO2)
    other = olmo.OmemoDevice("juliet@capulet.example", 2002).bundle(olmo.OmemoVersion.OMEMO2)
    # Juliet's signed pre-key under another identity's signature: the signature check fails.
    spk_start = bundle.index("<spk ")
    forged = bundle[:spk_start] + other[other.index("<spk "):other.index("</spk>")] + bundle[bundle.index("</spk>"):]
    with pytest.raises(olmo.OlmoError.Omemo) as refused:
        olmo.OmemoDevice("romeo@montague.example", 1001).build_session("juliet@capulet.example", 2001, forged)
    assert "signature" in str(refused.value)
