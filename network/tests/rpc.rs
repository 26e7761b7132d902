//! Request/response behaviour of the server and the two senders over loopback.

mod common;

use bytes::Bytes;
use common::*;
use weft_network::{
    BestEffortSender, NetworkConfig, NetworkError, Peer, ReliableSender, SENDER_CHANNEL_CAPACITY,
};

#[tokio::test]
async fn committee_members_exchange_requests_and_responses() {
    let fixture = fixture();
    let metrics = metrics();
    let (echo, mut seen) = Echo::new();
    let server0 = serve_default_with_metrics(&fixture, 0, echo.clone(), metrics.clone()).await;
    let server2 = serve_default_with_metrics(&fixture, 2, echo.clone(), metrics.clone()).await;
    let sender = ReliableSender::new(
        &fixture.keys[1].network,
        NetworkConfig::default(),
        metrics.clone(),
    )
    .unwrap();

    let response = guarded(
        sender
            .send(&peer(&fixture, 0, &server0), Bytes::from_static(b"hello"))
            .await,
    )
    .await;
    assert_eq!(response.unwrap(), Bytes::from_static(b"re:hello"));
    // The server identified the client by its key.
    assert_eq!(
        seen.recv().await.unwrap(),
        (a(1), Bytes::from_static(b"hello"))
    );

    let peers = [peer(&fixture, 0, &server0), peer(&fixture, 2, &server2)];
    for handler in sender.broadcast(&peers, Bytes::from_static(b"all")).await {
        assert_eq!(
            guarded(handler).await.unwrap(),
            Bytes::from_static(b"re:all")
        );
    }

    let failed = guarded(sender.send(&peers[0], Bytes::from_static(b"fail")).await).await;
    assert!(matches!(failed, Err(NetworkError::Remote(m)) if m == "nope"));
    // A panicking handler is answered with an error; the connection keeps serving.
    let panicked = guarded(sender.send(&peers[0], Bytes::from_static(b"panic")).await).await;
    assert!(matches!(panicked, Err(NetworkError::Remote(m)) if m == "internal error"));
    let after = guarded(sender.send(&peers[0], Bytes::from_static(b"again")).await).await;
    assert_eq!(after.unwrap(), Bytes::from_static(b"re:again"));
    assert!(metrics.bytes_sent.get() > 0 && metrics.bytes_received.get() > 0);
    assert_eq!(metrics.channel_depth.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_come_back_in_order() {
    let fixture = fixture();
    let (echo, _seen) = Echo::new();
    let config = NetworkConfig {
        max_in_flight_requests: 32,
        max_concurrent_requests: 8,
        ..NetworkConfig::default()
    };
    let server = serve(
        &fixture,
        0,
        any_port(),
        echo.clone(),
        config.clone(),
        metrics(),
    )
    .await;
    let sender = ReliableSender::new(&fixture.keys[3].network, config, metrics()).unwrap();
    let target = peer(&fixture, 0, &server);

    let mut handlers = Vec::new();
    for i in 0..500u32 {
        handlers.push(
            sender
                .send(&target, Bytes::from(i.to_be_bytes().to_vec()))
                .await,
        );
    }
    for (i, handler) in handlers.into_iter().enumerate() {
        let mut expected = b"re:".to_vec();
        expected.extend_from_slice(&(i as u32).to_be_bytes());
        assert_eq!(
            guarded(handler).await.unwrap(),
            Bytes::from(expected),
            "response {i}"
        );
    }
    assert_eq!(echo.calls(), 500);
}

#[tokio::test]
async fn reliable_sender_delivers_once_the_server_comes_up() {
    let fixture = fixture();
    let address = free_address();
    let sender = reliable_sender(&fixture, 1);
    let target = Peer::new(address, fixture.keys[0].network.public());
    let response = sender.send(&target, Bytes::from_static(b"early")).await;

    let (echo, mut seen) = Echo::new();
    let _server = serve_default_at(&fixture, 0, address, echo).await;
    assert_eq!(
        guarded(response).await.unwrap(),
        Bytes::from_static(b"re:early")
    );
    assert_eq!(seen.recv().await.unwrap().1, Bytes::from_static(b"early"));
}

#[tokio::test]
async fn dropping_the_cancel_handler_cancels_the_request() {
    let fixture = fixture();
    let address = free_address();
    let sender = reliable_sender(&fixture, 1);
    let target = Peer::new(address, fixture.keys[0].network.public());
    // Nobody listens yet, so the first request cannot have been delivered when it is dropped.
    drop(sender.send(&target, Bytes::from_static(b"cancelled")).await);
    let kept = sender.send(&target, Bytes::from_static(b"kept")).await;

    let (echo, mut seen) = Echo::new();
    let _server = serve_default_at(&fixture, 0, address, echo.clone()).await;
    assert_eq!(guarded(kept).await.unwrap(), Bytes::from_static(b"re:kept"));
    // Requests are written in order, so a delivered "cancelled" would have been seen first.
    assert_eq!(seen.recv().await.unwrap().1, Bytes::from_static(b"kept"));
    assert_eq!(echo.calls(), 1);
}

#[tokio::test]
async fn dropping_the_sender_fails_pending_requests() {
    let fixture = fixture();
    let sender = reliable_sender(&fixture, 1);
    let target = Peer::new(free_address(), fixture.keys[0].network.public());
    let pending = sender.send(&target, Bytes::from_static(b"never")).await;
    drop(sender);
    assert!(matches!(guarded(pending).await, Err(NetworkError::Closed)));
}

#[tokio::test]
async fn oversized_request_fails_without_being_sent() {
    let fixture = fixture();
    let metrics = metrics();
    let config = NetworkConfig {
        max_message_size: 1024,
        ..NetworkConfig::default()
    };
    let sender = ReliableSender::new(&fixture.keys[1].network, config, metrics.clone()).unwrap();
    let target = Peer::new(free_address(), fixture.keys[0].network.public());
    let result = guarded(sender.send(&target, Bytes::from(vec![0u8; 1025])).await).await;
    assert!(matches!(
        result,
        Err(NetworkError::FrameTooLarge {
            size: 1025,
            limit: 1024
        })
    ));
    assert_eq!(metrics.bytes_sent.get(), 0);
}

#[tokio::test]
async fn handler_response_above_the_limit_becomes_an_error() {
    let fixture = fixture();
    let config = NetworkConfig {
        max_message_size: 16,
        ..NetworkConfig::default()
    };
    let (echo, _seen) = Echo::new();
    let server = serve(&fixture, 0, any_port(), echo, config.clone(), metrics()).await;
    let sender = ReliableSender::new(&fixture.keys[1].network, config, metrics()).unwrap();
    // 16 bytes of request make 19 of response ("re:" prefix); the error message is cut to fit.
    let result = guarded(
        sender
            .send(&peer(&fixture, 0, &server), Bytes::from(vec![b'x'; 16]))
            .await,
    )
    .await;
    assert!(
        matches!(&result, Err(NetworkError::Remote(m)) if m == "response too lar"),
        "{result:?}"
    );
}

#[tokio::test]
async fn best_effort_sender_delivers() {
    let fixture = fixture();
    let (echo, mut seen) = Echo::new();
    let server = serve_default(&fixture, 0, echo).await;
    let sender = BestEffortSender::new(
        &fixture.keys[2].network,
        NetworkConfig::default(),
        metrics(),
    )
    .unwrap();
    assert!(sender.send(&peer(&fixture, 0, &server), Bytes::from_static(b"gossip")));
    assert_eq!(
        guarded(seen.recv()).await.unwrap(),
        (a(2), Bytes::from_static(b"gossip"))
    );
}

// Single-threaded on purpose: the peer task cannot run between the `send` calls, so exactly the
// messages beyond the queue's capacity are dropped.
#[tokio::test(flavor = "current_thread")]
async fn best_effort_sender_drops_when_the_queue_is_full() {
    let fixture = fixture();
    let metrics = metrics();
    let sender = BestEffortSender::new(
        &fixture.keys[1].network,
        NetworkConfig::default(),
        metrics.clone(),
    )
    .unwrap();
    let target = Peer::new(free_address(), fixture.keys[0].network.public());
    let started = std::time::Instant::now();
    let queued = (0..SENDER_CHANNEL_CAPACITY + 10)
        .filter(|_| sender.send(&target, Bytes::from_static(b"m")))
        .count();
    assert_eq!(queued, SENDER_CHANNEL_CAPACITY);
    assert_eq!(metrics.best_effort_dropped.get(), 10);
    assert_eq!(metrics.channel_depth.get(), SENDER_CHANNEL_CAPACITY as i64);
    assert!(started.elapsed() < GUARD);
    drop(sender);
    // The aborted peer task gives the queued messages back to the gauge.
    tokio::task::yield_now().await;
    assert_eq!(metrics.channel_depth.get(), 0);
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let fixture = fixture();
    let (echo, _seen) = Echo::new();
    let server = serve_default(&fixture, 0, echo).await;
    let address = server.local_address();
    guarded(server.shutdown()).await;
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

/// A peer that stays down must not block its callers once they give up on their requests:
/// while reconnecting, the sender keeps draining its queue and drops cancelled requests, so
/// far more than a channel's worth of sends complete at once. One request kept alive is still
/// delivered when the peer comes up.
#[tokio::test]
async fn cancelled_requests_to_a_dead_peer_never_block_the_caller() {
    let fixture = fixture();
    let sender = reliable_sender(&fixture, 1);
    let address = free_address();
    let dead = Peer::new(address, fixture.keys[0].network.public());
    let kept = sender.send(&dead, Bytes::from_static(b"kept")).await;
    let sends = async {
        for _ in 0..3 * SENDER_CHANNEL_CAPACITY {
            drop(sender.send(&dead, Bytes::from_static(b"dropped")).await);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), sends)
        .await
        .expect("sends to a dead peer do not block once cancelled");
    let (echo, mut seen) = Echo::new();
    let _server = serve_default_at(&fixture, 0, address, echo).await;
    assert_eq!(guarded(kept).await.unwrap(), Bytes::from_static(b"re:kept"));
    assert_eq!(
        seen.recv().await.unwrap(),
        (a(1), Bytes::from_static(b"kept"))
    );
}
