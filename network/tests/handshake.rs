//! Authentication and framing limits, probed with raw TLS clients that can misbehave.

mod common;

use common::*;
use rand::{rngs::StdRng, SeedableRng};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use weft_network::{tls, NetworkConfig, NetworkMetrics, ServerHandle};
use weft_test_utils::CommitteeFixture;
use weft_types::{KeyPair, PublicKey};

/// Dials `address` as `keypair`, requiring the server to present `expected`.
async fn raw_connect(
    keypair: &KeyPair,
    address: SocketAddr,
    expected: PublicKey,
    metrics: &NetworkMetrics,
) -> std::io::Result<TlsStream<TcpStream>> {
    let identity = tls::TlsIdentity::new(keypair).unwrap();
    let config = tls::client_config(&identity, expected, metrics).unwrap();
    let tcp = TcpStream::connect(address).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(tls::server_name(), tcp)
        .await
}

/// Writes one request frame of `len` bytes, then reads until the server hangs up. Returns
/// whether the server answered anything.
async fn send_frame_and_read(stream: &mut TlsStream<TcpStream>, len: usize) -> bool {
    let mut frame = (len as u32).to_be_bytes().to_vec();
    frame.resize(4 + len, b'x');
    // The server may already have closed the connection; a failed write is fine.
    let _ = stream.write_all(&frame).await;
    let _ = stream.flush().await;
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf).await, Ok(n) if n > 0)
}

/// Dials `server` as authority `client` of `fixture`, requiring it to present the key of
/// authority `expected`.
async fn connect_member(
    fixture: &CommitteeFixture,
    client: u16,
    server: &ServerHandle,
    expected: u16,
    metrics: &NetworkMetrics,
) -> std::io::Result<TlsStream<TcpStream>> {
    raw_connect(
        &fixture.keys[client as usize].network,
        server.local_address(),
        fixture.keys[expected as usize].network.public(),
        metrics,
    )
    .await
}

#[tokio::test]
async fn committee_member_handshake_succeeds_and_gets_an_answer() {
    let fixture = fixture();
    let (echo, _seen) = Echo::new();
    let server = serve_default(&fixture, 0, echo.clone()).await;
    let client_metrics = NetworkMetrics::unregistered();
    let mut stream = guarded(connect_member(&fixture, 1, &server, 0, &client_metrics))
        .await
        .unwrap();
    assert!(guarded(send_frame_and_read(&mut stream, 5)).await);
    assert_eq!(echo.calls(), 1);
}

#[tokio::test]
async fn server_answers_what_it_read_then_closes_when_the_client_finishes() {
    let fixture = fixture();
    let (echo, _seen) = Echo::new();
    let server = serve_default(&fixture, 0, echo).await;
    let client_metrics = NetworkMetrics::unregistered();
    let mut stream = guarded(connect_member(&fixture, 1, &server, 0, &client_metrics))
        .await
        .unwrap();
    stream.write_all(b"\0\0\0\x02hi").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    // Ends only if the server closes the connection after answering.
    let _ = guarded(stream.read_to_end(&mut answer)).await;
    assert_eq!(answer, b"\0\0\0\x06\0re:hi");
}

#[tokio::test]
async fn client_outside_the_committee_is_refused_at_the_handshake() {
    let fixture = fixture();
    let server_metrics = metrics();
    let (echo, _seen) = Echo::new();
    let server =
        serve_default_with_metrics(&fixture, 0, echo.clone(), server_metrics.clone()).await;
    let outsider = KeyPair::generate(&mut StdRng::seed_from_u64(99));
    assert!(fixture
        .committee
        .index_of_network_key(&outsider.public())
        .is_none());

    let client_metrics = NetworkMetrics::unregistered();
    let connected = guarded(raw_connect(
        &outsider,
        server.local_address(),
        fixture.keys[0].network.public(),
        &client_metrics,
    ))
    .await;
    // In TLS 1.3 the client finishes its side before the server judges its certificate, so
    // the refusal may surface on the first read rather than in `connect`.
    if let Ok(mut stream) = connected {
        assert!(!guarded(send_frame_and_read(&mut stream, 5)).await);
    }
    assert_eq!(echo.calls(), 0);
    let refused = server_metrics
        .handshakes_refused
        .with_label_values(&[NetworkMetrics::INBOUND]);
    assert_eq!(refused.get(), 1);
}

#[tokio::test]
async fn client_refuses_a_server_presenting_another_committee_key() {
    let fixture = fixture();
    let (echo, _seen) = Echo::new();
    // The server is authority 0; the client expects authority 2 at that address.
    let server = serve_default(&fixture, 0, echo.clone()).await;
    let client_metrics = NetworkMetrics::unregistered();
    let connected = guarded(connect_member(&fixture, 1, &server, 2, &client_metrics)).await;
    let Err(error) = connected else {
        panic!("the handshake must fail");
    };
    let tls_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            tls_error,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure
            ))
        ),
        "{error:?}"
    );
    let refused = client_metrics
        .handshakes_refused
        .with_label_values(&[NetworkMetrics::OUTBOUND]);
    assert_eq!(refused.get(), 1);
    assert_eq!(echo.calls(), 0);
}

#[tokio::test]
async fn frame_above_the_limit_closes_the_connection_before_the_handler() {
    let fixture = fixture();
    let server_metrics = metrics();
    let config = NetworkConfig {
        max_message_size: 1024,
        ..NetworkConfig::default()
    };
    let (echo, _seen) = Echo::new();
    let server = serve(
        &fixture,
        0,
        any_port(),
        echo.clone(),
        config,
        server_metrics.clone(),
    )
    .await;
    let client_metrics = NetworkMetrics::unregistered();
    let mut stream = guarded(connect_member(&fixture, 1, &server, 0, &client_metrics))
        .await
        .unwrap();
    assert!(!guarded(send_frame_and_read(&mut stream, 4096)).await);
    assert_eq!(echo.calls(), 0);
    let too_large = server_metrics
        .frames_too_large
        .with_label_values(&[NetworkMetrics::INBOUND]);
    assert_eq!(too_large.get(), 1);
}

#[tokio::test]
async fn identity_certificate_names_its_key() {
    let fixture = fixture();
    let keypair = &fixture.keys[3].network;
    let identity = Arc::new(tls::TlsIdentity::new(keypair).unwrap());
    assert_eq!(
        &tls::public_key_of_certificate(identity.certificate()).unwrap(),
        identity.public_key()
    );
    assert_eq!(identity.public_key(), &keypair.public());
}

/// A raw TCP socket from `source` (any 127/8 address works on loopback) to `server`, sending
/// nothing: a stranger holding a handshake slot.
async fn stranger(source: [u8; 4], server: &ServerHandle) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(server.local_address()).await.unwrap()
}

/// Whether the server closed `stream` (read returns end of file or an error).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.read(&mut buf).await, Ok(0) | Err(_))
}

#[tokio::test]
async fn strangers_holding_every_handshake_slot_keep_neither_a_member_out_nor_take_more_than_their_share(
) {
    let fixture = fixture();
    let server_metrics = metrics();
    // Slots held for as long as the test runs: nothing times out under it.
    let config = NetworkConfig {
        max_pending_handshakes: 6,
        max_pending_handshakes_per_source: 3,
        reserved_handshakes: 1,
        handshake_timeout: GUARD,
        ..NetworkConfig::default()
    };
    let (echo, _seen) = Echo::new();
    let server = serve(
        &fixture,
        0,
        any_port(),
        echo,
        config,
        server_metrics.clone(),
    )
    .await;
    let refused = |reason: &str| {
        server_metrics
            .connections_refused
            .with_label_values(&[reason])
            .get()
    };
    // Two sources take three slots each: all six. Connections are accepted in the order
    // they were made, so each refusal below is the one the comment names.
    let mut held = Vec::new();
    for source in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        for _ in 0..3 {
            held.push(stranger(source, &server).await);
        }
    }
    // A fourth from a source at its share, and one from a fresh source with no slot left.
    let mut over_share = stranger([127, 0, 0, 2], &server).await;
    assert!(guarded(closed(&mut over_share)).await);
    assert_eq!(refused("source_slots"), 1);
    let mut no_slot = stranger([127, 0, 0, 4], &server).await;
    assert!(guarded(closed(&mut no_slot)).await);
    assert_eq!(refused("handshake_slots"), 1);
    // A committee member (from the committee file's address) takes the reserved slot and is
    // served while the strangers still hold theirs.
    let client_metrics = NetworkMetrics::unregistered();
    let mut member = guarded(connect_member(&fixture, 1, &server, 0, &client_metrics))
        .await
        .unwrap();
    assert!(guarded(send_frame_and_read(&mut member, 5)).await);
    assert_eq!(held.len(), 6);
}
