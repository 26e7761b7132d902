//! `eth_sendRawTransaction`'s parameter, as any wallet or stranger may send it: the hex text
//! (first byte 0) or the raw envelope inside it (any other first byte), through the checks the
//! JSON-RPC server makes before anything is sequenced. They never panic, and a transaction
//! that passes is named by the same hash and chain id as the stream's index computes.
#![no_main]
use weft_rpc::decode::{check_transaction, decode_hex, hash_and_chain_id, TxPolicy};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let policy = TxPolicy {
        max_transaction_size: 128 * 1024,
        chain_ids: vec![1, 10, 31_337, 42_161],
        recover_senders: true,
    };
    let raw = match data.split_first() {
        Some((0, text)) => {
            let Ok(text) = std::str::from_utf8(text) else {
                return;
            };
            match decode_hex(text, policy.max_transaction_size) {
                Ok(raw) => raw,
                Err(_) => return,
            }
        }
        Some((_, raw)) => raw.to_vec(),
        None => return,
    };
    if let Ok(checked) = check_transaction(&raw, &policy) {
        assert_eq!(
            hash_and_chain_id(&raw),
            Some((checked.hash, checked.chain_id))
        );
    }
});
