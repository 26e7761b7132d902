//! A primary facing a peer that misbehaves. The test plays authority 1 over real TLS: it sends
//! crafted headers to primary 0 and records the votes primary 0 sends back. Every bad header is
//! refused with a counted reason and never voted for, and a primary restarted from its store
//! still refuses a second header for a round it voted in.

mod common;

use bytes::Bytes;
use common::*;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use weft_network::{
    Handler, HandlerError, NetworkConfig, NetworkError, NetworkMetrics, Peer, ReliableSender,
    Server, ServerHandle,
};
use weft_primary::columns;
use weft_storage::Store;
use weft_test_utils::CommitteeFixture;
use weft_types::codec::{decode_message, encode_message};
use weft_types::crypto::Intent;
use weft_types::{
    AuthorityIndex, Certificate, Header, HeaderDigest, KeyPair, PrimaryMessage, Round, Vote,
};

/// Records the votes a primary sends to the authority this server plays.
struct Recorder(mpsc::UnboundedSender<Vote>);

impl Handler for Recorder {
    fn handle(
        &self,
        _: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        if let Ok(PrimaryMessage::Vote(v)) = decode_message(request, 1 << 20) {
            let _ = self.0.send(v);
        }
        Box::pin(async { Ok(Bytes::new()) })
    }
}

/// Authority `i` as the test plays it: a server recording votes, and a sender.
async fn play(
    f: &CommitteeFixture,
    i: u16,
) -> (ServerHandle, mpsc::UnboundedReceiver<Vote>, ReliableSender) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (server, sender) = play_with(f, i, Arc::new(Recorder(tx))).await;
    (server, rx, sender)
}

/// Authority `i` as the test plays it, answering with `handler`.
async fn play_with(
    f: &CommitteeFixture,
    i: u16,
    handler: Arc<dyn Handler>,
) -> (ServerHandle, ReliableSender) {
    let a = AuthorityIndex(i);
    let address = f.committee.authority(a).unwrap().primary_address;
    let metrics = Arc::new(NetworkMetrics::unregistered());
    let server = Server::spawn(
        address,
        Arc::new(f.committee.clone()),
        &f.keys(a).network,
        handler,
        NetworkConfig::default(),
        metrics.clone(),
    )
    .await
    .unwrap();
    let sender =
        ReliableSender::new(&f.keys(a).network, NetworkConfig::default(), metrics).unwrap();
    (server, sender)
}

fn primary(f: &CommitteeFixture, i: u16) -> Peer {
    let a = f.committee.authority(AuthorityIndex(i)).unwrap();
    Peer::new(a.primary_address, a.network_key.clone())
}

async fn send(sender: &ReliableSender, to: &Peer, header: &Header) -> Result<Bytes, NetworkError> {
    let bytes = encode_message(&PrimaryMessage::Header(header.clone()));
    tokio::time::timeout(Duration::from_secs(60), sender.send(to, bytes).await)
        .await
        .expect("answered")
}

async fn next_vote(rx: &mut mpsc::UnboundedReceiver<Vote>) -> Vote {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a vote arrives")
        .expect("recorder running")
}

fn voted(store: &Store, author: AuthorityIndex) -> Option<(Round, HeaderDigest)> {
    store
        .map::<AuthorityIndex, (Round, HeaderDigest)>(columns::VOTES)
        .get(&author)
        .unwrap()
}

fn a(i: u16) -> AuthorityIndex {
    AuthorityIndex(i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_headers_are_refused_and_never_voted_for_even_after_a_restart() {
    let f = CommitteeFixture::with_free_ports(4, 1, 21);
    let dir = tempfile::tempdir().unwrap();
    // A long header delay: primary 0 stays quiet and only reacts to what the test sends.
    let node = start(&f, 0, dir.path(), parameters(60_000, 50), None).await;
    let (_server, mut votes, sender) = play(&f, 1).await;
    let to = primary(&f, 0);
    let genesis = Certificate::genesis(&f.committee);

    let good = f.header(a(1), 1, &genesis, vec![]);
    assert!(send(&sender, &to, &good).await.is_ok());
    let vote = next_vote(&mut votes).await;
    assert_eq!(vote.header_digest, good.digest());
    assert_eq!(vote.verify(&f.committee), Ok(()));
    assert_eq!(voted(&node.store, a(1)), Some((1, good.digest())));

    // Refused by the network handler, with the reason in the answer and the metric.
    let mut bad_signature = f.header(a(1), 2, &genesis, vec![]);
    bad_signature.signature = f
        .keys(a(2))
        .protocol
        .sign(Intent::Header, &bad_signature.digest().0);
    let round_zero = Header::new(
        a(1),
        0,
        0,
        0,
        vec![],
        vec![genesis[0].digest()],
        &f.keys(a(1)).protocol,
    );
    let non_member = Header::new(
        a(9),
        1,
        0,
        0,
        vec![],
        genesis.iter().map(Certificate::digest).collect(),
        &KeyPair::from_seed(&[7; 32]).unwrap(),
    );
    let not_the_sender = f.header(a(2), 1, &genesis, vec![]);
    for (header, reason) in [
        (&bad_signature, "bad_signature"),
        (&round_zero, "invalid_round"),
        (&non_member, "unknown_authority"),
        (&not_the_sender, "wrong_sender"),
    ] {
        let answer = send(&sender, &to, header).await;
        assert!(
            matches!(answer, Err(NetworkError::Remote(_))),
            "{reason}: {answer:?}"
        );
        assert!(node.rejected("header", reason) >= 1, "{reason} counted");
    }
    // Refused by the core after the handler accepted the signature.
    let thin = f.header(a(1), 2, &genesis[..2], vec![]);
    let wrong_round = f.header(a(1), 3, &genesis, vec![]);
    let twin = f.header(a(1), 1, &genesis[..3], vec![]);
    for h in [&thin, &wrong_round] {
        assert!(send(&sender, &to, h).await.is_ok());
    }
    eventually("insufficient parents counted twice", || {
        node.rejected("header", "insufficient_parents") == 2
    })
    .await;
    assert!(send(&sender, &to, &twin).await.is_ok());
    eventually("equivocation counted", || {
        node.rejected("header", "equivocation") == 1
    })
    .await;

    // The retransmitted good header is voted for again; any vote for a refused header would
    // have arrived before it on the same connection.
    assert!(send(&sender, &to, &good).await.is_ok());
    assert_eq!(next_vote(&mut votes).await, vote);
    assert!(votes.try_recv().is_err(), "no other vote was sent");

    // After a restart from the same store, the twin is still refused.
    let (store, path) = node.stop().await;
    drop(store);
    let node = start(&f, 0, &path, parameters(60_000, 50), None).await;
    assert_eq!(voted(&node.store, a(1)), Some((1, good.digest())));
    assert!(send(&sender, &to, &twin).await.is_ok());
    eventually("equivocation counted after the restart", || {
        node.rejected("header", "equivocation") == 1
    })
    .await;
    assert!(send(&sender, &to, &good).await.is_ok());
    assert_eq!(next_vote(&mut votes).await, vote);
    assert!(
        votes.try_recv().is_err(),
        "no vote for the twin after the restart"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_the_committee_is_refused_at_the_handshake() {
    let f = CommitteeFixture::with_free_ports(4, 1, 22);
    let dir = tempfile::tempdir().unwrap();
    let node = start(&f, 0, dir.path(), parameters(60_000, 50), None).await;
    let outsider = KeyPair::from_seed(&[9; 32]).unwrap();
    let metrics = Arc::new(NetworkMetrics::unregistered());
    let sender = ReliableSender::new(&outsider, NetworkConfig::default(), metrics).unwrap();
    let genesis = Certificate::genesis(&f.committee);
    let header = f.header(a(1), 1, &genesis, vec![]);
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        sender
            .send(
                &primary(&f, 0),
                encode_message(&PrimaryMessage::Header(header)),
            )
            .await,
    )
    .await;
    assert!(!matches!(answer, Ok(Ok(_))), "an outsider gets no answer");
    let refused = || {
        node.registry
            .gather()
            .iter()
            .filter(|m| m.name() == "weft_network_handshakes_refused_total")
            .flat_map(|m| m.get_metric().iter().map(|m| m.get_counter().get_value()))
            .sum::<f64>()
    };
    eventually("the handshake refusal counted", || refused() >= 1.0).await;
    assert_eq!(voted(&node.store, a(1)), None);
    node.stop().await;
}

/// Proves: a certificates request naming one digest twice is refused, counted, and answers
/// nothing; the same request without the copy is answered (from the store, off the runtime),
/// and so is a range request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificates_request_naming_a_digest_twice_is_refused() {
    let f = CommitteeFixture::with_free_ports(4, 1, 23);
    let dir = tempfile::tempdir().unwrap();
    let node = start(&f, 0, dir.path(), parameters(60_000, 50), None).await;
    let (_server, _votes, sender) = play(&f, 1).await;
    let to = primary(&f, 0);
    let genesis = Certificate::genesis(&f.committee);
    let request = |digests: Vec<_>| encode_message(&PrimaryMessage::CertificatesRequest(digests));
    let (g0, g1) = (genesis[0].digest(), genesis[1].digest());
    let twice = sender.send(&to, request(vec![g0, g1, g0])).await.await;
    assert!(matches!(twice, Err(NetworkError::Remote(_))), "{twice:?}");
    assert_eq!(node.rejected("certificates_request", "duplicate_digest"), 1);
    let once = sender.send(&to, request(vec![g0, g1])).await.await.unwrap();
    let answer: weft_types::CertificatesResponse = decode_message(once, 1 << 20).unwrap();
    let range = PrimaryMessage::CertificateRange {
        from_round: 0,
        limit: 10,
    };
    let ranged = sender
        .send(&to, encode_message(&range))
        .await
        .await
        .unwrap();
    let ranged: weft_types::CertificatesResponse = decode_message(ranged, 1 << 20).unwrap();
    // What the store holds of the two is what is answered, in the order asked.
    let stored: weft_storage::Map<weft_types::CertificateDigest, Certificate> =
        node.store.map(columns::CERTIFICATES);
    let expected: Vec<_> = [g0, g1]
        .into_iter()
        .filter(|d| stored.contains(d).unwrap())
        .collect();
    let answered: Vec<_> = answer
        .certificates
        .iter()
        .map(Certificate::digest)
        .collect();
    assert_eq!(answered, expected);
    assert!(ranged.certificates.len() >= expected.len());
    node.stop().await;
}

/// Records the range requests an authority the test plays receives, and answers each with
/// `copies` (empty for an honest peer with nothing to add).
struct Ranges {
    played: u16,
    seen: mpsc::UnboundedSender<(u16, Round)>,
    copies: Vec<Certificate>,
}

impl Handler for Ranges {
    fn handle(
        &self,
        _: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        if let Ok(PrimaryMessage::CertificateRange { from_round, .. }) =
            decode_message(request, 1 << 20)
        {
            let _ = self.seen.send((self.played, from_round));
        }
        let answer = weft_types::CertificatesResponse {
            certificates: self.copies.clone(),
        };
        Box::pin(async move { Ok(encode_message(&answer)) })
    }
}

async fn next_range(ranges: &mut mpsc::UnboundedReceiver<(u16, Round)>) -> (u16, Round) {
    tokio::time::timeout(Duration::from_secs(60), ranges.recv())
        .await
        .expect("a range request")
        .expect("handlers running")
}

/// Proves: a peer that answers a range request with a full answer of copies of one
/// certificate of the round asked from does not keep a lagging primary asking it again: the
/// next range request goes to another authority. (Before, a full answer was always followed
/// by another request to the same peer, and a Byzantine one kept the node from catching up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_sync_moves_on_from_a_peer_answering_copies() {
    let f = CommitteeFixture::with_free_ports(4, 1, 25);
    let dir = tempfile::tempdir().unwrap();
    let mut p = parameters(60_000, 50);
    p.max_certificates_per_fetch = 4;
    let node = start(&f, 0, dir.path(), p, None).await;
    let dag = f.dag(8);
    let (seen, mut ranges) = mpsc::unbounded_channel();
    let mut played = Vec::new();
    for i in 1..4u16 {
        // Authority 2 is Byzantine: four copies (a full answer) of one round-1 certificate.
        let copies = if i == 2 {
            vec![dag[1][0].clone(); 4]
        } else {
            vec![]
        };
        let handler = Arc::new(Ranges {
            played: i,
            seen: seen.clone(),
            copies,
        });
        played.push(play_with(&f, i, handler).await);
    }
    let (_, sender) = &played[0];
    let to = primary(&f, 0);
    let certificate = |c: &Certificate| encode_message(&PrimaryMessage::Certificate(c.clone()));
    // Round 1 complete: the DAG's highest round with a quorum is 1.
    for c in &dag[1] {
        sender.send(&to, certificate(c)).await.await.unwrap();
    }
    // A certificate of authority 2 far ahead: primary 0 asks authority 2 for a range.
    sender
        .send(&to, certificate(&dag[8][2]))
        .await
        .await
        .unwrap();
    assert_eq!(next_range(&mut ranges).await, (2, 1));
    // Its full answer of copies does not move past round 1: the next goes to authority 3.
    assert_eq!(next_range(&mut ranges).await, (3, 1));
    assert!(node.rejected("sync_answer", "unproductive_range") >= 1);
    assert!(node.rejected("sync_answer", "duplicate") >= 3);
    node.stop().await;
}
