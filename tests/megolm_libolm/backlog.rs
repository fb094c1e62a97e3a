//! `decrypt_backlog` over a shuffled run of libolm messages with a few bad ones mixed in:
//! exactly the bad ones fail, with the error libolm gives for them too.

use olmo::crypto::CipherError;
use olmo::megolm::{MegolmDecryptError, MegolmMessage, MegolmRatchet};

use crate::common::peer::Peer;
use crate::sender::Sender;
use crate::support::{
    Lcg, LibInbound, LibOutbound, flip, our_decrypt, our_import, our_inbound, text,
};

const COUNT: u32 = 300;

/// What a backlog entry should decrypt to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Plain(u32, String),
    Fails(MegolmDecryptError, &'static str),
}

#[test]
fn shuffled_backlog_with_bad_messages() {
    let mut peer = Peer::libolm();
    // A sender whose signing key the test knows, run by libolm from a crafted pickle.
    let sender = Sender::new(21);
    let theirs = LibOutbound::from_pickle(&mut peer, &sender.pickle_with(&sender.ratchet));
    let sent = theirs.encrypt_run(&mut peer, COUNT);

    let mut backlog: Vec<(String, Expect)> = sent
        .iter()
        .map(|(index, body)| (body.clone(), Expect::Plain(*index, text(*index))))
        .collect();
    let signature = Expect::Fails(MegolmDecryptError::Signature, "BAD_SIGNATURE");
    // A flipped signature bit.
    backlog[37] = (flip(&sent[37].1, 10, true), signature.clone());
    // A message of another session.
    let (_, stranger) = LibOutbound::new(&mut peer).encrypt(&mut peer, "not for you");
    backlog[100] = (stranger, signature.clone());
    // A flipped MAC byte: the signature covers the MAC, so that is what fails first.
    backlog[150] = (flip(&sent[150].1, 66, true), signature);
    // A message signed with the session's key but encrypted with a ratchet that is not the
    // session's: only the MAC can tell.
    let wrong = MegolmRatchet::from_bytes(&[0x33; MegolmRatchet::LENGTH], 200);
    let forged = MegolmMessage::encrypt(&wrong, &sender.signing, b"forged").unwrap();
    backlog[200] = (
        forged.to_base64(),
        Expect::Fails(
            MegolmDecryptError::Cipher(CipherError::Mac),
            "BAD_MESSAGE_MAC",
        ),
    );
    // Duplicates are allowed.
    backlog.push(backlog[5].clone());
    backlog.push(backlog[299].clone());
    Lcg(2024).shuffle(&mut backlog);

    // libolm agrees on every entry.
    let lib = LibInbound::new(&mut peer, &sender.session_key());
    for (body, expect) in &backlog {
        match (lib.decrypt(&mut peer, body), expect) {
            (Ok((plain, index)), Expect::Plain(i, t)) => assert_eq!((&plain, index), (t, *i)),
            (Err(error), Expect::Fails(_, lib_error)) => {
                assert!(error.ends_with(lib_error), "{error} for {expect:?}")
            }
            (got, _) => panic!("libolm: {got:?}, expected {expect:?}"),
        }
    }

    let messages: Vec<_> = backlog
        .iter()
        .map(|(body, _)| MegolmMessage::from_base64(body).unwrap())
        .collect();
    let mut ours = our_inbound(&sender.session_key());
    let results = ours.decrypt_backlog(&messages);
    assert_eq!(results.len(), backlog.len());
    let mut failures = 0;
    let mut single_session = our_inbound(&sender.session_key());
    for (n, (result, (body, expect))) in results.iter().zip(&backlog).enumerate() {
        let got = match result {
            Ok(d) => Expect::Plain(
                d.message_index,
                String::from_utf8(d.plaintext.to_vec()).unwrap(),
            ),
            Err(e) => {
                failures += 1;
                let Expect::Fails(_, lib_error) = expect else {
                    panic!("{e:?} for {expect:?}")
                };
                Expect::Fails(*e, lib_error)
            }
        };
        assert_eq!(&got, expect);
        // One at a time gives the same answer (checked for the bad ones and a sample).
        if n % 4 != 0 && matches!(expect, Expect::Plain(..)) {
            continue;
        }
        let single = our_decrypt(&mut single_session, body);
        match (single, expect) {
            (Ok((plain, index)), Expect::Plain(i, t)) => assert_eq!((&plain, index), (t, *i)),
            (Err(e), Expect::Fails(error, _)) => assert_eq!(e, *error),
            (single, _) => panic!("single decrypt: {single:?}, expected {expect:?}"),
        }
    }
    assert_eq!(failures, 4);
    // The session carries on after the backlog.
    let (index, body) = theirs.encrypt(&mut peer, "next");
    assert_eq!(index, COUNT);
    assert_eq!(
        our_decrypt(&mut ours, &body).unwrap(),
        ("next".to_string(), COUNT)
    );
}

#[test]
fn backlog_before_the_first_known_index() {
    let mut peer = Peer::libolm();
    let sender = LibOutbound::new(&mut peer);
    let source = sender.receiver(&mut peer);
    let mut sent = sender.encrypt_run(&mut peer, 120);
    let mut ours = our_import(&source.export(&mut peer, 50).unwrap());
    Lcg(5).shuffle(&mut sent);
    let messages: Vec<_> = sent
        .iter()
        .map(|(_, body)| MegolmMessage::from_base64(body).unwrap())
        .collect();
    for ((index, _), result) in sent.iter().zip(ours.decrypt_backlog(&messages)) {
        if *index < 50 {
            assert_eq!(
                result.unwrap_err(),
                MegolmDecryptError::UnknownIndex {
                    message: *index,
                    first_known: 50
                }
            );
        } else {
            let decrypted = result.unwrap();
            assert_eq!(decrypted.message_index, *index);
            assert_eq!(&decrypted.plaintext[..], text(*index).as_bytes());
        }
    }
}
