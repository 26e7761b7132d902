//! Message validation: good messages verify; each kind of tampering or malformation is
//! rejected with its own error.

use weft_test_utils::CommitteeFixture;
use weft_types::crypto::{CryptoError, Intent};
use weft_types::*;

fn a(i: u16) -> AuthorityIndex {
    AuthorityIndex(i)
}

#[test]
fn header_checks() {
    let f = CommitteeFixture::new(4, 2, 1);
    let c = &f.committee;
    let genesis = Certificate::genesis(c);
    let payload = vec![
        (BatchDigest(Digest::of(b"b1")), 0),
        (BatchDigest(Digest::of(b"b2")), 1),
    ];
    let good = f.header(a(1), 1, &genesis, payload.clone());
    assert_eq!(good.verify(c, true), Ok(()));

    let mut h = good.clone();
    h.signature.0[3] ^= 1;
    assert_eq!(
        h.verify(c, true),
        Err(MessageError::Signature(CryptoError::InvalidSignature))
    );
    // Signed by another authority's key.
    let mut h = good.clone();
    h.signature = f.keys(a(2)).protocol.sign(Intent::Header, &good.digest().0);
    assert!(matches!(h.verify(c, true), Err(MessageError::Signature(_))));

    let h = Header::new(
        a(7),
        1,
        0,
        0,
        vec![],
        genesis.iter().map(Certificate::digest).collect(),
        &f.keys(a(0)).protocol,
    );
    assert_eq!(h.verify(c, true), Err(MessageError::UnknownAuthority(a(7))));
    let h = Header::new(
        a(1),
        1,
        5,
        0,
        vec![],
        genesis.iter().map(Certificate::digest).collect(),
        &f.keys(a(1)).protocol,
    );
    assert_eq!(
        h.verify(c, true),
        Err(MessageError::WrongEpoch {
            expected: 0,
            got: 5
        })
    );
    assert_eq!(
        f.header(a(1), 0, &genesis, vec![]).verify(c, true),
        Err(MessageError::InvalidRound(0))
    );
    assert_eq!(
        f.header(a(1), 1, &[], vec![]).verify(c, true),
        Err(MessageError::NoParents)
    );
    let h = f.header(a(1), 1, &genesis, vec![(BatchDigest::default(), 2)]);
    assert_eq!(h.verify(c, true), Err(MessageError::UnknownWorker(2)));
    let h = f.header(a(1), 1, &genesis, vec![payload[0], payload[0]]);
    assert_eq!(h.verify(c, true), Err(MessageError::DuplicateBatch));

    // Parents out of order: re-encode with a swapped pair and re-sign, as a Byzantine node could.
    let mut h = good.clone();
    h.parents.swap(0, 1);
    let bytes = weft_types::codec::encode_message(&h);
    let h: Header = weft_types::codec::decode_message(bytes, 1 << 20).unwrap();
    assert_eq!(h.verify(c, false), Err(MessageError::ParentsNotCanonical));
}

#[test]
fn vote_checks() {
    let f = CommitteeFixture::new(4, 1, 2);
    let header = f.header(a(0), 1, &Certificate::genesis(&f.committee), vec![]);
    let vote = f.votes(&header, [a(3)]).remove(0);
    assert_eq!(vote.verify(&f.committee), Ok(()));
    let mut v = vote.clone();
    v.header_digest = HeaderDigest(Digest::of(b"another header"));
    assert!(matches!(
        v.verify(&f.committee),
        Err(MessageError::Signature(_))
    ));
    let mut v = vote.clone();
    v.author = a(2);
    assert!(matches!(
        v.verify(&f.committee),
        Err(MessageError::Signature(_))
    ));
    let mut v = vote.clone();
    v.author = a(9);
    assert_eq!(
        v.verify(&f.committee),
        Err(MessageError::UnknownAuthority(a(9)))
    );
    let mut v = vote;
    v.origin = a(4);
    assert_eq!(
        v.verify(&f.committee),
        Err(MessageError::UnknownAuthority(a(4)))
    );
}

#[test]
fn certificate_checks() {
    let f = CommitteeFixture::new(4, 1, 3);
    let c = &f.committee;
    let genesis = Certificate::genesis(c);
    for g in &genesis {
        assert_eq!(g.verify(c), Ok(()));
    }
    let header = f.header(a(2), 1, &genesis, vec![]);
    let votes = f.votes(&header, [a(0), a(1), a(2)]);
    let sigs = |vs: &[Vote]| {
        vs.iter()
            .map(|v| (v.author, v.signature))
            .collect::<Vec<_>>()
    };
    let cert = Certificate::new(c, header.clone(), sigs(&votes)).unwrap();
    assert_eq!(cert.verify(c), Ok(()));
    assert_eq!(
        cert.signer_indices().collect::<Vec<_>>(),
        vec![a(0), a(1), a(2)]
    );

    // Two votes (f+1) are not a quorum, even when the same vote is repeated.
    let two = [votes[0].clone(), votes[1].clone(), votes[1].clone()];
    assert_eq!(
        Certificate::new(c, header.clone(), sigs(&two)).unwrap_err(),
        MessageError::NoQuorum {
            stake: 2,
            needed: 3
        }
    );
    // A forged bitmap claiming a third signer without its signature.
    let mut forged = cert.clone();
    forged.signatures.pop();
    assert_eq!(
        forged.verify(c),
        Err(MessageError::SignatureCountMismatch {
            signers: 3,
            signatures: 2
        })
    );
    let mut forged = cert.clone();
    forged.signers = vec![0b0000_0011];
    forged.signatures.truncate(2);
    assert_eq!(
        forged.verify(c),
        Err(MessageError::NoQuorum {
            stake: 2,
            needed: 3
        })
    );
    let mut forged = cert.clone();
    forged.signers = vec![0b0001_0111];
    assert_eq!(forged.verify(c), Err(MessageError::BadSignerBitmap));
    let mut forged = cert.clone();
    forged.signers = vec![0b0111, 0];
    assert_eq!(forged.verify(c), Err(MessageError::BadSignerBitmap));
    // A vote signature swapped for the header signature (other intent) fails.
    let mut forged = cert.clone();
    forged.signatures[2] = header.signature;
    assert!(matches!(forged.verify(c), Err(MessageError::Signature(_))));
    // Changing the certified header invalidates every vote.
    let mut tampered = cert.clone();
    tampered.header = f.header(a(2), 1, &genesis, vec![(BatchDigest::default(), 0)]);
    assert!(matches!(
        tampered.verify(c),
        Err(MessageError::Signature(_))
    ));
    // A fake round-0 certificate is not genesis.
    let mut fake = genesis[1].clone();
    fake.signers = vec![0b1111];
    assert_eq!(fake.verify(c), Err(MessageError::InvalidGenesis));
}

#[test]
fn stake_weighted_quorum() {
    // 4 authorities with equal stake but 7 of them — quorum is by stake, not by count.
    let f = CommitteeFixture::new(7, 1, 4);
    let header = f.header(a(0), 1, &Certificate::genesis(&f.committee), vec![]);
    let votes = f.votes(&header, (0..4).map(a));
    let sigs: Vec<_> = votes.iter().map(|v| (v.author, v.signature)).collect();
    assert_eq!(
        Certificate::new(&f.committee, header.clone(), sigs.clone()).unwrap_err(),
        MessageError::NoQuorum {
            stake: 4,
            needed: 5
        }
    );
    let more = f.votes(&header, [a(6)]);
    let sigs = sigs
        .into_iter()
        .chain(more.iter().map(|v| (v.author, v.signature)));
    assert_eq!(
        Certificate::new(&f.committee, header, sigs)
            .unwrap()
            .verify(&f.committee),
        Ok(())
    );
}

#[test]
fn certificate_digest_depends_on_header_only() {
    let f = CommitteeFixture::new(4, 1, 5);
    let header = f.header(a(0), 1, &Certificate::genesis(&f.committee), vec![]);
    let all = f.certificate(header.clone());
    let votes = f.votes(&header, [a(1), a(2), a(3)]);
    let some = Certificate::new(
        &f.committee,
        header,
        votes.iter().map(|v| (v.author, v.signature)),
    )
    .unwrap();
    assert_ne!(all.signers, some.signers);
    assert_eq!(all.digest(), some.digest());
}
