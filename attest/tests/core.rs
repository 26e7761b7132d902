//! The attester and the offline checks, over a seeded committee: certificates form at quorum
//! stake and only then, an index is never signed twice (also across a restart), and every
//! mutation of a certificate or a pre-confirmation fails with its reason.

use alloy_primitives::{keccak256, B256};
use std::sync::Arc;
use weft_attest::{
    committee_id, Accepted, AttestError, Attestation, Attester, BatchRefs, CertificateError,
    ChainRoot, FinalityCertificate, Leaf, Output, PreconfError, Preconfirmation, ProofError, Roots,
    SignedAttestation, Tree,
};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Committee};

fn leaves(index: u64, n: u64) -> Vec<Leaf> {
    (0..n)
        .map(|i| Leaf {
            hash: keccak256([index.to_le_bytes(), i.to_le_bytes()].concat()),
            chain_id: Some(1000 + i % 3),
        })
        .collect()
}

fn attesters(f: &CommitteeFixture) -> Vec<Attester> {
    let committee = Arc::new(f.committee.clone());
    f.authorities()
        .map(|a| {
            let key = f.keys(a).attestation.copy();
            Attester::recover(a, committee.clone(), key, None, vec![]).0
        })
        .collect()
}

/// Every authority signs sub-DAG `index`; each signature is delivered to all the others.
/// Returns the certificates each authority formed.
fn round_trip(attesters: &mut [Attester], index: u64, n: u64) -> Vec<Vec<FinalityCertificate>> {
    let signed: Vec<(Output, AuthorityIndex)> = attesters
        .iter_mut()
        .enumerate()
        .map(|(i, a)| {
            (
                a.sign(
                    index,
                    2 * index,
                    1000 * index,
                    &leaves(index, n),
                    BatchRefs::default(),
                )
                .unwrap(),
                AuthorityIndex(i as u16),
            )
        })
        .collect();
    let mut formed: Vec<Vec<FinalityCertificate>> =
        signed.iter().map(|(o, _)| o.certified.clone()).collect();
    for (output, from) in &signed {
        let s = output.broadcast.as_ref().unwrap();
        for (i, a) in attesters.iter_mut().enumerate() {
            if i as u16 == from.0 {
                continue;
            }
            match a.on_signed(*from, s).unwrap() {
                Accepted::Formed(c) => formed[i].push(*c),
                Accepted::Counted | Accepted::Certified => {}
            }
        }
    }
    formed
}

#[test]
fn every_authority_forms_one_certificate_per_sub_dag_that_verifies_offline() {
    let f = CommitteeFixture::new(4, 1, 7);
    let mut attesters = attesters(&f);
    let mut previous = B256::ZERO;
    for index in 0..5 {
        let formed = round_trip(&mut attesters, index, 10 + index);
        for certs in &formed {
            assert_eq!(
                certs.len(),
                1,
                "one certificate per authority for sub-DAG {index}"
            );
            let c = &certs[0];
            c.verify(&f.committee).unwrap();
            assert_eq!(c.attestation.index, index);
            assert_eq!(
                c.attestation.previous, previous,
                "the chain links to sub-DAG {index}-1"
            );
            assert_eq!(c.signatures.len(), 3, "formed at exactly quorum (3 of 4)");
        }
        assert!(formed
            .iter()
            .all(|c| c[0].attestation == formed[0][0].attestation));
        previous = formed[0][0].attestation.digest();
        let chains: Vec<u64> = formed[0][0]
            .attestation
            .chains
            .iter()
            .map(|c| c.chain_id)
            .collect();
        assert_eq!(chains, vec![1000, 1001, 1002]);
    }
    assert!(attesters.iter().all(|a| a.pending() == 0));
}

#[test]
fn a_certificate_below_quorum_or_of_another_committee_or_with_a_bad_signer_fails() {
    let f = CommitteeFixture::new(4, 1, 8);
    let mut attesters = attesters(&f);
    let cert = round_trip(&mut attesters, 0, 4).remove(0).remove(0);

    let mut short = cert.clone();
    short.signatures.pop();
    assert_eq!(
        short.verify(&f.committee),
        Err(CertificateError::BelowQuorum {
            stake: 2,
            quorum: 3
        })
    );

    let other = CommitteeFixture::new(4, 1, 9);
    assert!(matches!(
        cert.verify(&other.committee),
        Err(CertificateError::WrongCommittee { .. })
    ));

    let mut twice = cert.clone();
    twice.signatures[1] = twice.signatures[0];
    assert_eq!(
        twice.verify(&f.committee),
        Err(CertificateError::SignersOutOfOrder(
            twice.signatures[0].authority
        ))
    );

    // Authority 0 formed it with its own signature and the first two that arrived (1, 2).
    let signers: Vec<u16> = cert.signatures.iter().map(|s| s.authority).collect();
    assert_eq!(signers, vec![0, 1, 2]);
    let mut relabelled = cert.clone();
    relabelled.signatures[2].authority = 3;
    assert_eq!(
        relabelled.verify(&f.committee),
        Err(CertificateError::BadSignature(3))
    );

    let mut unknown = cert.clone();
    unknown.signatures.last_mut().unwrap().authority = 9;
    assert_eq!(
        unknown.verify(&f.committee),
        Err(CertificateError::UnknownAuthority(9))
    );

    let mut retimed = cert;
    retimed.attestation.timestamp += 1;
    assert!(matches!(
        retimed.verify(&f.committee),
        Err(CertificateError::BadSignature(_))
    ));
}

#[test]
fn an_index_is_signed_once_also_after_a_restart_from_the_persisted_record() {
    let f = CommitteeFixture::new(4, 1, 10);
    let committee = Arc::new(f.committee.clone());
    let me = AuthorityIndex(0);
    let key = || f.keys(me).attestation.copy();
    let (mut a, _) = Attester::recover(me, committee.clone(), key(), None, vec![]);
    let first = a
        .sign(0, 2, 100, &leaves(0, 3), BatchRefs::default())
        .unwrap();
    assert_eq!(
        first.persist_signed, first.broadcast,
        "what is sent is what is persisted"
    );
    assert_eq!(
        a.sign(0, 2, 100, &leaves(0, 4), BatchRefs::default()),
        Err(AttestError::AlreadySigned { index: 0, next: 1 })
    );
    assert_eq!(
        a.sign(2, 4, 100, &leaves(2, 4), BatchRefs::default()),
        Err(AttestError::OutOfOrder { index: 2, next: 1 })
    );

    // Restart from the persisted record: index 0 cannot be signed again, in any form.
    let persisted: SignedAttestation = first.persist_signed.unwrap();
    let (mut b, resend) = Attester::recover(
        me,
        committee,
        key(),
        Some(&persisted),
        vec![persisted.clone()],
    );
    assert_eq!(
        resend,
        vec![persisted.clone()],
        "the uncertified signature is sent again"
    );
    assert_eq!(b.next(), 1);
    assert!(matches!(
        b.sign(0, 2, 100, &leaves(0, 9), BatchRefs::default()),
        Err(AttestError::AlreadySigned { .. })
    ));
    let next = b
        .sign(1, 4, 200, &leaves(1, 2), BatchRefs::default())
        .unwrap()
        .broadcast
        .unwrap();
    assert_eq!(next.attestation.previous, persisted.attestation.digest());
    assert_eq!(b.pending(), 2, "both wait for their certificates");
}

#[test]
fn peers_messages_are_checked_before_they_count() {
    let f = CommitteeFixture::new(4, 1, 11);
    let mut attesters = attesters(&f);
    let honest = attesters[1]
        .sign(0, 2, 100, &leaves(0, 5), BatchRefs::default())
        .unwrap()
        .broadcast
        .unwrap();
    let other = attesters[2]
        .sign(0, 2, 100, &leaves(0, 6), BatchRefs::default())
        .unwrap()
        .broadcast
        .unwrap();
    let me = &mut attesters[0];
    me.sign(0, 2, 100, &leaves(0, 5), BatchRefs::default())
        .unwrap();

    assert!(matches!(
        me.on_signed(AuthorityIndex(3), &honest),
        Err(AttestError::WrongSender { peer: 3, author: 1 })
    ));
    let mut forged = honest.clone();
    forged.signature.0[5] ^= 1;
    assert!(matches!(
        me.on_signed(AuthorityIndex(1), &forged),
        Err(AttestError::Invalid(CertificateError::BadSignature(1)))
    ));
    assert!(matches!(
        me.on_signed(AuthorityIndex(2), &other),
        Err(AttestError::Conflict {
            author: 2,
            index: 0,
            ..
        })
    ));
    assert_eq!(
        me.on_signed(AuthorityIndex(1), &honest),
        Ok(Accepted::Counted)
    );
    assert_eq!(me.pending(), 1, "two of four is below quorum");

    let mut ahead = attesters[3]
        .sign(0, 2, 100, &leaves(0, 5), BatchRefs::default())
        .unwrap()
        .broadcast
        .unwrap();
    ahead.attestation.index = 5_000;
    ahead.signature = f
        .keys(AuthorityIndex(3))
        .attestation
        .sign(&ahead.attestation.digest());
    assert!(matches!(
        attesters[0].on_signed(AuthorityIndex(3), &ahead),
        Err(AttestError::TooFarAhead { .. })
    ));
}

/// A validly signed attestation that differs from the own one is refused as a conflict also
/// once the index is certified here; a matching late one is answered with "certified".
#[test]
fn a_conflicting_signature_is_caught_after_the_index_is_certified() {
    let f = CommitteeFixture::new(4, 1, 12);
    let mut attesters = attesters(&f);
    let formed = round_trip(&mut attesters[..3], 0, 5);
    assert_eq!(formed[0].len(), 1, "three of four certify");
    let late = attesters[3]
        .sign(0, 0, 0, &leaves(0, 5), BatchRefs::default())
        .unwrap();
    assert_eq!(
        attesters[0].on_signed(AuthorityIndex(3), late.broadcast.as_ref().unwrap()),
        Ok(Accepted::Certified)
    );
    let attestation = Attestation::build(
        committee_id(&f.committee),
        0,
        0,
        0,
        &leaves(0, 6),
        B256::ZERO,
        BatchRefs::default(),
    );
    let other = SignedAttestation {
        author: AuthorityIndex(3),
        signature: f
            .keys(AuthorityIndex(3))
            .attestation
            .sign(&attestation.digest()),
        attestation,
    };
    assert!(matches!(
        attesters[0].on_signed(AuthorityIndex(3), &other),
        Err(AttestError::Conflict {
            author: 3,
            index: 0,
            ..
        })
    ));
}

#[test]
fn signatures_that_arrive_before_the_own_one_count_once_it_is_signed() {
    let f = CommitteeFixture::new(4, 1, 12);
    let mut attesters = attesters(&f);
    let early: Vec<SignedAttestation> = (1..3)
        .map(|i| {
            attesters[i]
                .sign(0, 2, 100, &leaves(0, 5), BatchRefs::default())
                .unwrap()
                .broadcast
                .unwrap()
        })
        .collect();
    for s in &early {
        assert_eq!(attesters[0].on_signed(s.author, s), Ok(Accepted::Counted));
    }
    let out = attesters[0]
        .sign(0, 2, 100, &leaves(0, 5), BatchRefs::default())
        .unwrap();
    assert_eq!(
        out.certified.len(),
        1,
        "own signature completes the quorum at once"
    );
    out.certified[0].verify(&f.committee).unwrap();
}

fn preconf(f: &CommitteeFixture) -> (Preconfirmation, Committee) {
    let mut attesters = attesters(f);
    let cert = round_trip(&mut attesters, 0, 7).remove(0).remove(0);
    let hashes: Vec<B256> = leaves(0, 7).iter().map(|l| l.hash).collect();
    let tree = Tree::new(&hashes);
    (
        Preconfirmation::new(&tree, hashes[5], 5, cert).unwrap(),
        f.committee.clone(),
    )
}

#[test]
fn a_preconfirmation_verifies_and_every_mutation_of_it_fails_with_its_reason() {
    let f = CommitteeFixture::new(4, 1, 13);
    let (p, committee) = preconf(&f);
    p.verify(&committee).unwrap();

    let mut other_tx = p.clone();
    other_tx.tx_hash.0[0] ^= 1;
    assert_eq!(
        other_tx.verify(&committee),
        Err(PreconfError::Proof(ProofError::RootMismatch))
    );

    let mut moved = p.clone();
    moved.tx_index = 4;
    assert_eq!(
        moved.verify(&committee),
        Err(PreconfError::Proof(ProofError::RootMismatch))
    );

    let mut beyond = p.clone();
    beyond.tx_index = 7;
    assert_eq!(
        beyond.verify(&committee),
        Err(PreconfError::Proof(ProofError::IndexOutOfRange {
            index: 7,
            size: 7
        }))
    );

    let mut truncated = p.clone();
    truncated.proof.pop();
    assert!(matches!(
        truncated.verify(&committee),
        Err(PreconfError::Proof(ProofError::WrongLength { .. }))
    ));

    for i in 0..p.proof.len() {
        let mut flipped = p.clone();
        flipped.proof[i].0[31] ^= 0x80;
        assert_eq!(
            flipped.verify(&committee),
            Err(PreconfError::Proof(ProofError::RootMismatch))
        );
    }

    let mut retargeted = p.clone();
    retargeted.sub_dag_index = 1;
    assert_eq!(
        retargeted.verify(&committee),
        Err(PreconfError::WrongSubDag {
            position: 1,
            certificate: 0
        })
    );

    // A root the committee did not sign: the proof then fits but the certificate does not.
    let mut reattested = p.clone();
    let hashes = [p.tx_hash; 7];
    reattested.certificate.attestation.tx_root = Tree::new(&hashes).root();
    reattested.proof = Tree::new(&hashes).proof(5).unwrap();
    assert!(matches!(
        reattested.verify(&committee),
        Err(PreconfError::Certificate(CertificateError::BadSignature(_)))
    ));

    let other = CommitteeFixture::new(4, 1, 14);
    assert!(matches!(
        p.verify(&other.committee),
        Err(PreconfError::Certificate(
            CertificateError::WrongCommittee { .. }
        ))
    ));
    assert_ne!(committee_id(&committee), committee_id(&other.committee));
}

#[test]
fn a_preconfirmation_round_trips_through_json() {
    let f = CommitteeFixture::new(4, 1, 15);
    let (p, committee) = preconf(&f);
    let text = serde_json::to_string(&p).unwrap();
    let back: Preconfirmation = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
    back.verify(&committee).unwrap();
    assert!(text.contains("\"subDagIndex\":0") && text.contains("\"txIndex\":5"));
}

/// The L1 batches a sub-DAG closed are part of what is signed: a certificate's header verifies
/// as the inbox checks it, and another batch hash, another first sequence or a header of
/// another committee does not; the wire codec keeps them, and refuses a non-canonical empty list.
#[test]
fn the_closed_batches_are_signed_and_survive_the_codec() {
    use weft_types::codec::{decode_message, encode_message};
    let f = CommitteeFixture::new(4, 1, 16);
    let committee = f.committee.clone();
    let batches = BatchRefs {
        first: 7,
        hashes: vec![keccak256(b"batch 7"), keccak256(b"batch 8")],
    };
    let mut attesters = attesters(&f);
    let signed: Vec<_> = attesters
        .iter_mut()
        .map(|a| {
            a.sign(0, 2, 100, &leaves(0, 5), batches.clone())
                .unwrap()
                .broadcast
                .unwrap()
        })
        .collect();
    let mut certificate = None;
    for s in &signed[1..] {
        if let Ok(Accepted::Formed(c)) = attesters[0].on_signed(s.author, s) {
            certificate = Some(*c);
        }
    }
    let certificate = certificate.expect("three signatures form a certificate");
    assert_eq!(certificate.attestation.batches, batches);
    let header = certificate.attestation.header();
    header.verify(&committee, &certificate.signatures).unwrap();
    assert_eq!(header.batches.get(8), Some(keccak256(b"batch 8")));
    assert_eq!(header.batches.get(6), None);
    assert_eq!(header.batches.get(9), None);

    let mut other_hash = header.clone();
    other_hash.batches.hashes[1] = keccak256(b"another batch 8");
    let mut other_first = header.clone();
    other_first.batches.first = 8;
    for forged in [other_hash, other_first] {
        assert!(matches!(
            forged.verify(&committee, &certificate.signatures),
            Err(CertificateError::BadSignature(_))
        ));
    }
    let stranger = CommitteeFixture::new(4, 1, 17);
    assert!(matches!(
        header.verify(&stranger.committee, &certificate.signatures),
        Err(CertificateError::WrongCommittee { .. })
    ));

    let bytes = encode_message(&certificate.attestation);
    let back: Attestation = decode_message(bytes, usize::MAX).unwrap();
    assert_eq!(back, certificate.attestation);
    let mut empty = certificate.attestation.clone();
    empty.batches = BatchRefs {
        first: 3,
        hashes: vec![],
    };
    assert!(decode_message::<Attestation>(encode_message(&empty), usize::MAX).is_err());
}

/// The roots the attester signs (chain trees reusing the transactions' leaf nodes, a chain
/// holding every transaction reusing the whole tree) equal the roots built from scratch, one
/// tree per chain over that chain's transaction hashes.
#[test]
fn roots_from_precomputed_leaf_nodes_equal_the_roots_built_from_scratch() {
    let reference = |leaves: &[Leaf]| {
        let mut chains: std::collections::BTreeMap<u64, Vec<B256>> = Default::default();
        for l in leaves {
            if let Some(c) = l.chain_id {
                chains.entry(c).or_default().push(l.hash);
            }
        }
        let hashes: Vec<B256> = leaves.iter().map(|l| l.hash).collect();
        Roots {
            tx_count: leaves.len() as u64,
            tx_root: Tree::new(&hashes).root(),
            chains: chains
                .into_iter()
                .map(|(chain_id, h)| ChainRoot {
                    chain_id,
                    tx_count: h.len() as u64,
                    root: Tree::new(&h).root(),
                })
                .collect(),
        }
    };
    let mixed = {
        let mut l = leaves(7, 301);
        l[5].chain_id = None;
        l
    };
    let single: Vec<Leaf> = leaves(8, 77)
        .into_iter()
        .map(|l| Leaf {
            chain_id: Some(42),
            ..l
        })
        .collect();
    for case in [mixed, single, leaves(9, 1), vec![]] {
        let nodes = case
            .iter()
            .map(|l| weft_attest::leaf_hash(&l.hash))
            .collect();
        let fast = Roots::of_hashed(&case, &Tree::from_leaf_nodes(nodes));
        assert_eq!(fast, reference(&case));
        assert_eq!(Roots::of(&case), fast);
    }
    assert_ne!(reference(&leaves(7, 301)), reference(&leaves(7, 300)));
}
