//! A 4-authority committee on loopback where each primary is a recording stand-in.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use weft_config::Parameters;
use weft_network::{
    Handler, HandlerError, NetworkConfig, NetworkError, NetworkMetrics, Peer, ReliableSender,
    Server, ServerHandle,
};
use weft_storage::{Map, Store};
use weft_test_utils::CommitteeFixture;
use weft_types::codec::{decode_message, encode_message};
use weft_types::{AuthorityIndex, BatchDigest, Committee, WorkerToPrimary};
use weft_worker::{Worker, WorkerArgs, WorkerHandle};

/// Guard against hangs; never used to wait for something to happen.
pub const GUARD: Duration = Duration::from_secs(30);

pub async fn guarded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .expect("test timed out")
}

/// Stands in for a primary: records every `WorkerToPrimary` its own workers send, then (if
/// gated) waits for a permit before it answers, and answers with an error while `refuse` is set.
struct RecordingPrimary {
    authority: AuthorityIndex,
    tx_test: mpsc::Sender<WorkerToPrimary>,
    control: PrimaryControl,
}

/// How a recording primary answers.
#[derive(Clone, Default)]
pub struct PrimaryControl {
    /// One permit per answer; `None` answers at once.
    gate: Option<Arc<Semaphore>>,
    refuse: Arc<AtomicBool>,
}

impl Handler for RecordingPrimary {
    fn handle(
        &self,
        peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        Box::pin(async move {
            if peer != self.authority {
                return Err(HandlerError::new("not my worker"));
            }
            let report: WorkerToPrimary =
                decode_message(request, 1 << 20).map_err(HandlerError::new)?;
            self.tx_test
                .try_send(report)
                .map_err(|_| HandlerError::new("test channel full"))?;
            if let Some(gate) = &self.control.gate {
                gate.acquire()
                    .await
                    .map_err(|_| HandlerError::new("gate closed"))?
                    .forget();
            }
            if self.control.refuse.load(Ordering::SeqCst) {
                return Err(HandlerError::new("refused by the test"));
            }
            Ok(Bytes::new())
        })
    }
}

pub struct Cluster {
    pub fixture: CommitteeFixture,
    pub committee: Arc<Committee>,
    pub parameters: Parameters,
    pub stores: Vec<Store>,
    pub workers: Vec<Option<WorkerHandle>>,
    reports: Vec<mpsc::Receiver<WorkerToPrimary>>,
    controls: Vec<PrimaryControl>,
    _primaries: Vec<ServerHandle>,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    /// Four authorities with one worker each; primaries recording, no worker started.
    pub async fn new(seed: u64, parameters: Parameters) -> Self {
        Self::with_primaries(seed, parameters, false).await
    }

    /// [`Cluster::new`] with primaries that answer a report only once the test grants it
    /// ([`Cluster::answer`]).
    pub async fn new_gated(seed: u64, parameters: Parameters) -> Self {
        Self::with_primaries(seed, parameters, true).await
    }

    async fn with_primaries(seed: u64, parameters: Parameters, gated: bool) -> Self {
        let fixture = CommitteeFixture::with_free_ports(4, 1, seed);
        let committee = Arc::new(fixture.committee.clone());
        let mut dirs = Vec::new();
        let mut stores = Vec::new();
        let mut primaries = Vec::new();
        let mut reports = Vec::new();
        let mut controls = Vec::new();
        for (index, authority) in committee.authorities() {
            let control = PrimaryControl {
                gate: gated.then(|| Arc::new(Semaphore::new(0))),
                ..PrimaryControl::default()
            };
            controls.push(control.clone());
            let dir = tempfile::tempdir().unwrap();
            stores.push(Store::open(dir.path(), &weft_worker::columns::ALL).unwrap());
            dirs.push(dir);
            let (tx_test, rx) = mpsc::channel(10_000);
            let server = Server::spawn(
                authority.primary_address,
                committee.clone(),
                &fixture.keys(index).network,
                Arc::new(RecordingPrimary {
                    authority: index,
                    tx_test,
                    control,
                }),
                NetworkConfig::default(),
                Arc::new(NetworkMetrics::unregistered()),
            )
            .await
            .unwrap();
            primaries.push(server);
            reports.push(rx);
        }
        Self {
            fixture,
            committee,
            parameters,
            stores,
            workers: (0..4).map(|_| None).collect(),
            reports,
            controls,
            _primaries: primaries,
            _dirs: dirs,
        }
    }

    pub async fn start_worker(&mut self, i: usize) {
        let handle = Worker::spawn(WorkerArgs {
            authority: a(i),
            id: 0,
            committee: self.committee.clone(),
            parameters: self.parameters.clone(),
            network_keypair: self.fixture.keys(a(i)).network.copy(),
            store: self.stores[i].clone(),
            registry: &prometheus::Registry::new(),
            network_metrics: None,
        })
        .await
        .expect("worker starts");
        self.workers[i] = Some(handle);
    }

    pub async fn start_all(&mut self) {
        for i in 0..4 {
            self.start_worker(i).await;
        }
    }

    pub async fn stop_worker(&mut self, i: usize) {
        if let Some(worker) = self.workers[i].take() {
            worker.shutdown().await;
        }
    }

    pub fn worker(&self, i: usize) -> &WorkerHandle {
        self.workers[i].as_ref().expect("worker is running")
    }

    /// The next report primary `i` received.
    pub async fn next_report(&mut self, i: usize) -> WorkerToPrimary {
        guarded(self.reports[i].recv()).await.expect("primary runs")
    }

    /// Lets gated primary `i` answer `count` more reports.
    pub fn answer(&self, i: usize, count: usize) {
        if let Some(gate) = &self.controls[i].gate {
            gate.add_permits(count);
        }
    }

    /// From now on primary `i` answers every report with an error.
    pub fn refuse(&self, i: usize) {
        self.controls[i].refuse.store(true, Ordering::SeqCst);
    }

    /// Whether primary `i` has received nothing so far.
    pub fn no_report(&mut self, i: usize) -> bool {
        self.reports[i].try_recv().is_err()
    }

    pub fn batches(&self, i: usize) -> Map<BatchDigest, Bytes> {
        self.stores[i].map(weft_worker::columns::BATCHES)
    }

    /// A sender presenting authority `from`'s network key (its primary's, or its workers').
    pub fn sender(&self, from: usize) -> ReliableSender {
        ReliableSender::new(
            &self.fixture.keys(a(from)).network,
            NetworkConfig::default(),
            Arc::new(NetworkMetrics::unregistered()),
        )
        .unwrap()
    }

    pub fn worker_peer(&self, i: usize) -> Peer {
        let authority = self.committee.authority(a(i)).unwrap();
        Peer::new(
            authority.worker_addresses[&0],
            authority.network_key.clone(),
        )
    }

    /// Sends `message` to worker `to` as authority `from` and returns the answer.
    pub async fn request<T: weft_types::codec::Encode>(
        &self,
        from: usize,
        to: usize,
        message: &T,
    ) -> Result<Bytes, NetworkError> {
        let sender = self.sender(from);
        guarded(
            sender
                .send(&self.worker_peer(to), encode_message(message))
                .await,
        )
        .await
    }

    pub fn transaction_address(&self, i: usize) -> SocketAddr {
        self.committee
            .authority(a(i))
            .unwrap()
            .transaction_addresses[&0]
    }
}

pub fn a(i: usize) -> AuthorityIndex {
    AuthorityIndex(i as u16)
}

/// Test parameters: small batches, long timers unless a test shortens them.
pub fn parameters(batch_size: usize, max_batch_delay_ms: u64) -> Parameters {
    Parameters {
        batch_size,
        max_batch_delay_ms,
        max_transaction_size: batch_size.min(1_000),
        ..Parameters::default()
    }
}

/// Frames transactions the way clients do: 4-byte big-endian length, then the bytes.
pub fn frame(txs: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for tx in txs {
        out.put_u32(tx.len() as u32);
        out.put_slice(tx);
    }
    out.freeze()
}

pub async fn send_transactions(address: SocketAddr, txs: &[Bytes]) -> TcpStream {
    let mut stream = guarded(TcpStream::connect(address)).await.unwrap();
    stream.write_all(&frame(txs)).await.unwrap();
    stream.flush().await.unwrap();
    stream
}
