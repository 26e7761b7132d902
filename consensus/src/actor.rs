//! The consensus actor: the thin async shell around [`Bullshark`] in a node. It feeds
//! Bullshark the certificates the primary delivers (in causal order) and hands each committed
//! sub-DAG to the executor, in order; every decision is Bullshark's.

use crate::{Bullshark, Commit};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_types::{BatchDigest, Certificate};

/// Runs Bullshark on the primary's certificates.
pub struct ConsensusActor {
    bullshark: Bullshark,
    rx_primary: mpsc::Receiver<Certificate>,
    tx_executor: mpsc::Sender<Commit>,
    /// Each certificate's batches, for the attester's leaf precomputer (when one runs).
    tx_payloads: Option<mpsc::Sender<Vec<BatchDigest>>>,
    shutdown: CancellationToken,
}

/// What [`ConsensusActor::spawn`] needs.
pub struct ConsensusArgs {
    pub bullshark: Bullshark,
    /// Sub-DAGs that recovery committed beyond the persisted state: to the executor first.
    pub recovered: Vec<Commit>,
    pub rx_primary: mpsc::Receiver<Certificate>,
    pub tx_executor: mpsc::Sender<Commit>,
    pub tx_payloads: Option<mpsc::Sender<Vec<BatchDigest>>>,
    /// Cancelled when the node stops.
    pub shutdown: CancellationToken,
}

impl ConsensusActor {
    pub fn spawn(args: ConsensusArgs) -> JoinHandle<()> {
        let actor = Self {
            bullshark: args.bullshark,
            rx_primary: args.rx_primary,
            tx_executor: args.tx_executor,
            tx_payloads: args.tx_payloads,
            shutdown: args.shutdown,
        };
        tokio::spawn(actor.run(args.recovered))
    }

    async fn run(mut self, recovered: Vec<Commit>) {
        if !self.output(recovered).await {
            return;
        }
        loop {
            let certificate = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                certificate = self.rx_primary.recv() => match certificate {
                    Some(certificate) => certificate,
                    None => return,
                },
            };
            if let Some(tx) = &self.tx_payloads {
                let payload = &certificate.header.payload;
                if !payload.is_empty() {
                    // A full channel only means the attester hashes these itself.
                    let _ = tx.try_send(payload.iter().map(|(digest, _)| *digest).collect());
                }
            }
            match self.bullshark.process_certificate(certificate) {
                Ok(committed) => {
                    if !self.output(committed).await {
                        return;
                    }
                }
                // The primary only delivers verified certificates in causal order; an error
                // here is a bug, not a peer's fault. Skip the certificate, keep ordering.
                Err(e) => tracing::error!("consensus refused a certificate: {e}"),
            }
        }
    }

    /// Hands sub-DAGs to the executor; false once it is gone or the node stops.
    async fn output(&mut self, committed: Vec<Commit>) -> bool {
        for commit in committed {
            let sent = tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                sent = self.tx_executor.send(commit) => sent,
            };
            if sent.is_err() {
                return false;
            }
        }
        true
    }
}
