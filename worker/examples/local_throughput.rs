//! Rough dissemination throughput of 4 workers in one process over loopback TLS: one client
//! per worker pushes `--txs` transactions of 512 bytes as fast as the worker takes them; the
//! clock stops when every primary stand-in has been told `OurBatch` for every batch its worker
//! sealed. Every batch is stored by all four workers (RocksDB in a temporary directory).
//!
//! `cargo run -p weft-worker --example local_throughput -- 50000`

#[path = "../tests/common/mod.rs"]
mod common;

use bytes::Bytes;
use common::{frame, Cluster};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use weft_config::Parameters;
use weft_types::WorkerToPrimary;

const TX_SIZE: usize = 512;
/// Transactions per client write.
const CHUNK: usize = 256;

#[tokio::main]
async fn main() {
    let txs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    let mut cluster = Cluster::new(1, Parameters::default()).await;
    cluster.start_all().await;
    let chunk: Vec<Bytes> = (0..CHUNK)
        .map(|i| {
            let mut tx = vec![1u8; TX_SIZE];
            tx[1..9].copy_from_slice(&(i as u64).to_be_bytes());
            Bytes::from(tx)
        })
        .collect();
    let chunk = frame(&chunk);
    let start = Instant::now();
    let mut clients = Vec::new();
    for i in 0..4 {
        let address = cluster.transaction_address(i);
        let chunk = chunk.clone();
        clients.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            for _ in 0..txs.div_ceil(CHUNK) {
                stream.write_all(&chunk).await.unwrap();
            }
            stream.flush().await.unwrap();
            stream
        }));
    }
    let mut streams = Vec::new();
    for client in clients {
        streams.push(client.await.unwrap());
    }
    let sent = txs.div_ceil(CHUNK) * CHUNK;
    let mut done = [0u64; 4];
    for (i, done) in done.iter_mut().enumerate() {
        loop {
            let metrics = cluster.worker(i).metrics();
            let sealed = metrics.batches_sealed.with_label_values(&["size"]).get()
                + metrics.batches_sealed.with_label_values(&["timeout"]).get();
            // Every transaction is in a sealed batch (5 bytes of batch header each), and every
            // sealed batch reached its quorum.
            let sealed_txs = (metrics.bytes_sealed.get() - 5 * sealed) as usize / (4 + TX_SIZE);
            if sealed_txs == sent && *done == sealed {
                break;
            }
            let report = tokio::time::timeout(Duration::from_millis(20), cluster.next_report(i));
            if let Ok(WorkerToPrimary::OurBatch { .. }) = report.await {
                *done += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    let total = 4 * sent;
    println!(
        "{total} transactions of {TX_SIZE} B through 4 workers in {:.2} s: {:.0} tx/s, {:.1} MB/s \
         of client input (each byte stored 4 times); batches: {:?}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        (total * TX_SIZE) as f64 / elapsed.as_secs_f64() / 1e6,
        done
    );
}
