//! Backlog decryption: many messages at once, in any order, each failing alone.

use olmo::megolm::{InboundGroupSession, MegolmDecryptError, MegolmMessage};

use super::{encrypt_many, pair};

/// A fixed permutation, so failures are reproducible.
fn shuffled<T: Clone>(items: &[T]) -> Vec<(usize, T)> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order.into_iter().map(|i| (i, items[i].clone())).collect()
}

fn flipped(message: &MegolmMessage, at: usize) -> MegolmMessage {
    let mut bytes = message.to_bytes();
    bytes[at] ^= 0x01;
    MegolmMessage::decode(&bytes).unwrap()
}

#[test]
fn shuffled_backlog_matches_one_by_one_decryption() {
    let (mut outbound, inbound) = pair();
    let messages = encrypt_many(&mut outbound, 700);
    let backlog = shuffled(&messages);
    let batch: Vec<MegolmMessage> = backlog.iter().map(|(_, m)| m.clone()).collect();

    let mut session = inbound.clone();
    let results = session.decrypt_backlog(&batch);
    assert_eq!(results.len(), batch.len());
    for ((original, _), result) in backlog.iter().zip(&results) {
        let decrypted = result.as_ref().unwrap();
        assert_eq!(decrypted.message_index, *original as u32);
        assert_eq!(
            &*decrypted.plaintext,
            format!("message {original}").as_bytes()
        );
    }
    // The session moved on to the newest message, and still opens older ones one by one.
    assert_eq!(session.decrypt(&messages[3]).unwrap().message_index, 3);
    assert_eq!(session.decrypt(&messages[699]).unwrap().message_index, 699);
}

#[test]
fn bad_messages_fail_alone() {
    let (mut outbound, inbound) = pair();
    let messages = encrypt_many(&mut outbound, 300);
    let foreign = pair().0.encrypt(b"from another session").unwrap();
    // A copy that starts at 20, as a late joiner's would.
    let mut session = InboundGroupSession::import(&inbound.export_at(20).unwrap());

    let mut batch: Vec<MegolmMessage> = messages.iter().rev().cloned().collect();
    let last = batch[5].as_bytes().len() - 1;
    batch[5] = flipped(&batch[5], last);
    let in_mac = batch[6].as_bytes().len() - 64 - 1;
    batch[6] = flipped(&batch[6], in_mac);
    batch.push(foreign);
    batch.push(messages[150].clone());

    let results = session.decrypt_backlog(&batch);
    for (position, result) in results.iter().enumerate() {
        let index = batch[position].message_index();
        match position {
            // Flipping the signature or the MAC it covers, and another session's message.
            5 | 6 | 300 => assert_eq!(
                result.as_ref().unwrap_err(),
                &MegolmDecryptError::Signature,
                "at {position}"
            ),
            _ if index < 20 => assert_eq!(
                result.as_ref().unwrap_err(),
                &MegolmDecryptError::UnknownIndex {
                    message: index,
                    first_known: 20
                }
            ),
            _ => assert_eq!(result.as_ref().unwrap().message_index, index),
        }
    }
}

#[test]
fn an_empty_backlog_changes_nothing() {
    let (_, mut inbound) = pair();
    assert!(inbound.decrypt_backlog(&[]).is_empty());
    assert_eq!(inbound.first_known_index(), 0);
}
