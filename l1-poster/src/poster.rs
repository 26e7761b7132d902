//! The poster actor: posts the committee's certified batches to the inbox, follows the inbox
//! head through races, crashes and reorgs, and persists the confirmed cursor.
//!
//! The poster is only a courier: batch `s` is fixed by the committed log (the cutter) and
//! carries the finality certificate of the sub-DAG whose attestation names it, which the inbox
//! checks.
//!
//! L1 is the authority on what is posted. Each step reads the inbox head (next sequence and
//! last commitment), derives where the next batch starts from it (a cache of the batches it
//! saw, else the cursor, else the batch read back from L1), and posts the next batch only then.
//! So a restart after `kill -9`, another poster's batch, or a reorg that removed batches all
//! lead to the same thing: the next batch starts right after the last one L1 holds. A second
//! submission of the same sequence number reverts in the inbox and is skipped.

use crate::attested::{pack_signatures, to_inbox, AttestedSource};
use crate::batch::{decode_batch, BatchError, Position};
use crate::cursor::{self, Cursor, CursorError};
use crate::cutter::{blob_sidecar, data_hash, PostMode};
use crate::inbox::{BatchPosted, Inbox, InboxErrors};
use crate::l1::{FeePolicy, Fees, InboxHead, L1Error, Outgoing, Signer, L1};
use crate::metrics::PosterMetrics;
use crate::reader::{batch_data, batch_events, PostedBatch, ReadError};
use crate::rotation::Rotation;
use crate::source::SourceError;
use alloy::primitives::{Address, TxHash, B256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
pub struct PosterConfig {
    pub rpc: String,
    pub inbox: Address,
    /// How batches go to L1; the committee's cutter decides which (it signs the data hash of
    /// one mode), and a batch of the other mode is an error here.
    pub mode: PostMode,
    pub fees: FeePolicy,
    /// A batch is confirmed, and the cursor moves past it, this many blocks below the head.
    pub confirmations: u64,
    /// A sent transaction not mined after this many L1 blocks is replaced with higher fees.
    pub resubmit_after_blocks: u64,
    pub rotation: Rotation,
    pub cursor_path: PathBuf,
    /// How often to look at L1 when there is nothing else to wake up for.
    pub poll_interval: Duration,
}

impl PosterConfig {
    pub fn new(rpc: &str, inbox: Address, cursor_path: PathBuf) -> Self {
        Self {
            rpc: rpc.to_string(),
            inbox,
            mode: PostMode::Calldata,
            fees: FeePolicy::default(),
            confirmations: 2,
            resubmit_after_blocks: 3,
            rotation: Rotation::SOLO,
            cursor_path,
            poll_interval: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PosterError {
    #[error(transparent)]
    L1(#[from] L1Error),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("batch {0} with the inbox's commitment was not found on L1")]
    MissingBatch(u64),
    #[error("batch {0} on L1 does not decode: {1}")]
    BadBatch(u64, String),
    #[error("batch {sequence} of the committee starts at {log:?}, but L1's chain ends at {l1:?}")]
    Diverged {
        sequence: u64,
        log: Position,
        l1: Position,
    },
    #[error("batch {0} was cut for the other posting mode (calldata or blobs) than this poster's")]
    ModeMismatch(u64),
}

impl PosterError {
    fn kind(&self) -> &'static str {
        match self {
            PosterError::L1(L1Error::FeeAboveCap { .. }) => "fee_cap",
            PosterError::L1(_) | PosterError::Read(ReadError::L1(_)) => "rpc",
            PosterError::Read(_)
            | PosterError::MissingBatch(_)
            | PosterError::BadBatch(..)
            | PosterError::Diverged { .. } => "l1_data",
            PosterError::Batch(_) | PosterError::ModeMismatch(_) => "batch",
            PosterError::Cursor(_) => "cursor",
            PosterError::Source(_) => "source",
        }
    }
}

/// What the poster has seen, published after every step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosterStatus {
    /// The L1 block this status was read at.
    pub l1_block: u64,
    /// The inbox head at the latest block read.
    pub inbox_next_sequence: u64,
    /// Where the batch after that head starts.
    pub next_position: Position,
    /// The persisted cursor (confirmed at the configured depth).
    pub confirmed: Cursor,
}

pub struct PosterHandle {
    tx_shutdown: watch::Sender<bool>,
    join: JoinHandle<()>,
    pub rx_status: watch::Receiver<PosterStatus>,
}

impl PosterHandle {
    /// Stops after the current step is abandoned; nothing is lost (see the module doc).
    pub async fn shutdown(self) {
        let _ = self.tx_shutdown.send(true);
        let _ = self.join.await;
    }

    /// Stops at whatever await point the task is at, like `kill -9` (tests).
    pub async fn kill(self) {
        self.join.abort();
        let _ = self.join.await;
    }

    /// Waits until the published status satisfies `pred`.
    pub async fn wait_until(&mut self, pred: impl Fn(&PosterStatus) -> bool) -> PosterStatus {
        let seen = self.rx_status.wait_for(|s| pred(s)).await.map(|s| *s);
        match seen {
            Ok(s) => s,
            // The task ended (killed or panicked): report the last status.
            Err(_) => *self.rx_status.borrow(),
        }
    }
}

/// A batch transaction sent and not yet mined.
struct InFlight {
    sequence: u64,
    hash: TxHash,
    nonce: u64,
    gas: u64,
    fees: Fees,
    sent_at_block: u64,
    tx: Outgoing,
    end: Position,
    transactions: usize,
    bytes: usize,
}

/// What the batch after a given inbox head needs: its start, and the block of that head batch.
#[derive(Clone, Copy)]
struct Known {
    end: Position,
    block: u64,
}

/// What a step asks the loop to do next.
enum Next {
    /// Step again at once.
    Now,
    /// Step again after new L1 blocks, or when batch `.0` is certified.
    Wait(u64),
}

pub struct Poster {
    config: PosterConfig,
    source: Arc<dyn AttestedSource>,
    l1: L1,
    signer: Signer,
    metrics: PosterMetrics,
    cursor: Cursor,
    /// End position and block of recent batches, by commitment (unique per chain position).
    known: HashMap<B256, Known>,
    in_flight: Option<InFlight>,
    /// The sequence number last seen due, and the L1 block it was first seen due at.
    due_since: Option<(u64, u64)>,
    last_head: Option<InboxHead>,
    tx_status: watch::Sender<PosterStatus>,
}

impl Poster {
    /// Connects, loads the cursor, and starts posting.
    pub async fn spawn(
        config: PosterConfig,
        key: PrivateKeySigner,
        source: Arc<dyn AttestedSource>,
        metrics: PosterMetrics,
    ) -> Result<PosterHandle, PosterError> {
        let l1 = L1::new(&config.rpc, config.inbox)?;
        let signer = Signer::new(&l1, key).await?;
        let cursor = cursor::load(&config.cursor_path)?;
        let (tx_status, rx_status) = watch::channel(PosterStatus {
            confirmed: cursor,
            ..Default::default()
        });
        let (tx_shutdown, rx_shutdown) = watch::channel(false);
        let mut known = HashMap::new();
        known.insert(
            cursor.commitment,
            Known {
                end: cursor.next_position,
                block: cursor.l1_block,
            },
        );
        let poster = Poster {
            config,
            source,
            l1,
            signer,
            metrics,
            cursor,
            known,
            in_flight: None,
            due_since: None,
            last_head: None,
            tx_status,
        };
        let join = tokio::spawn(poster.run(rx_shutdown));
        Ok(PosterHandle {
            tx_shutdown,
            join,
            rx_status,
        })
    }

    async fn run(mut self, mut rx_shutdown: watch::Receiver<bool>) {
        let mut next = Next::Now;
        loop {
            tokio::select! {
                _ = rx_shutdown.changed() => break,
                result = async {
                    if let Next::Wait(sequence) = next {
                        tokio::select! {
                            _ = self.source.wait_for(sequence) => {}
                            _ = tokio::time::sleep(self.config.poll_interval) => {}
                        }
                    }
                    self.step().await
                } => {
                    next = match result {
                        Ok(n) => n,
                        Err(e) => {
                            self.metrics.errors.with_label_values(&[e.kind()]).inc();
                            tracing::warn!("l1 poster: {e}");
                            Next::Wait(u64::MAX)
                        }
                    };
                }
            }
        }
    }

    async fn step(&mut self) -> Result<Next, PosterError> {
        let block = self.l1.head_block().await?;
        if self.in_flight.is_some() {
            if let Some(next) = self.follow_in_flight(block).await? {
                // Published after the decision for `block`, so a watcher knows it was made.
                self.tx_status.send_modify(|s| s.l1_block = block);
                return Ok(next);
            }
        }
        let head = self.l1.inbox_head(Some(block)).await?;
        if let Some(last) = self.last_head {
            if head.next_sequence < last.next_sequence {
                self.metrics.reorgs.inc();
            }
        }
        self.last_head = Some(head);
        self.metrics
            .inbox_next_sequence
            .set(head.next_sequence as i64);
        let start = self.known_after(&head).await?.end;
        self.confirm(block).await?;
        self.tx_status.send_replace(PosterStatus {
            l1_block: block,
            inbox_next_sequence: head.next_sequence,
            next_position: start,
            confirmed: self.cursor,
        });

        let sequence = head.next_sequence;
        let Some(attested) = self.source.batch(sequence)? else {
            return Ok(Next::Wait(sequence));
        };
        if attested.batch.start != start {
            return Err(PosterError::Diverged {
                sequence,
                log: attested.batch.start,
                l1: start,
            });
        }
        let since = match self.due_since {
            Some((s, since)) if s == sequence => since,
            _ => {
                self.due_since = Some((sequence, block));
                block
            }
        };
        if !self
            .config
            .rotation
            .may_post(sequence, block.saturating_sub(since))
        {
            return Ok(Next::Wait(u64::MAX));
        }

        let batch = attested.batch;
        if data_hash(self.config.mode, &batch.data)? != batch.data_hash {
            return Err(PosterError::ModeMismatch(sequence));
        }
        let header = to_inbox(&attested.certificate.attestation.header());
        let signatures = pack_signatures(&attested.certificate.signatures).into();
        let blob = matches!(self.config.mode, PostMode::Blob { .. });
        let tx = if blob {
            let input = Inbox::submitBlobBatchCall {
                sequence,
                attested: header,
                signatures,
            };
            Outgoing {
                to: Some(self.l1.inbox),
                input: input.abi_encode().into(),
                sidecar: Some(blob_sidecar(&batch.data)?),
            }
        } else {
            let input = Inbox::submitBatchCall {
                sequence,
                data: batch.data.clone().into(),
                attested: header,
                signatures,
            };
            Outgoing {
                to: Some(self.l1.inbox),
                input: input.abi_encode().into(),
                sidecar: None,
            }
        };
        let fees = self.l1.fees(&self.config.fees, blob).await?;
        let gas = match self.signer.estimate(&self.l1, &tx, fees).await {
            Ok(gas) => gas,
            Err(L1Error::Rejected(e)) => {
                self.count_rejection(&e);
                return Ok(Next::Now);
            }
            Err(e) => return Err(e.into()),
        };
        let nonce = self.signer.nonce(&self.l1).await?;
        let hash = self.signer.send(&self.l1, &tx, nonce, gas, fees).await?;
        self.in_flight = Some(InFlight {
            sequence,
            hash,
            nonce,
            gas,
            fees,
            sent_at_block: block,
            tx,
            end: batch.end,
            transactions: batch.transactions,
            bytes: batch.data.len(),
        });
        Ok(Next::Now)
    }

    /// Looks for the receipt of the transaction in flight; replaces it with higher fees when
    /// it has waited too long. `None` once it is mined (the step goes on).
    async fn follow_in_flight(&mut self, block: u64) -> Result<Option<Next>, PosterError> {
        let Some(hash) = self.in_flight.as_ref().map(|f| f.hash) else {
            return Ok(None);
        };
        let receipt = match self.l1.receipt(hash).await? {
            Some(r) => r,
            None if !self.nonce_used().await? => return self.replace_if_stuck(block).await,
            // The nonce is used but this hash has no receipt: the node has not indexed it
            // yet, or an earlier version of a replaced transaction was mined instead. Wait a
            // little for the first; after that, the inbox head tells the rest.
            None => {
                let waited = self
                    .in_flight
                    .as_ref()
                    .map_or(0, |f| block - f.sent_at_block.min(block));
                if waited < self.config.resubmit_after_blocks {
                    return Ok(Some(Next::Wait(u64::MAX)));
                }
                self.in_flight = None;
                return Ok(None);
            }
        };
        let Some(f) = self.in_flight.take() else {
            return Ok(None);
        };
        if !receipt.status() {
            // Another poster's batch took this sequence number between estimate and mining.
            self.metrics
                .rejections
                .with_label_values(&["reverted"])
                .inc();
            return Ok(None);
        }
        let mined_at = receipt.block_number.unwrap_or(block);
        for log in receipt.inner.logs() {
            if let Ok(ev) = BatchPosted::decode_log(&log.inner) {
                let known = Known {
                    end: f.end,
                    block: mined_at,
                };
                self.known.insert(ev.commitment, known);
            }
        }
        self.metrics.batches_posted.inc();
        self.metrics
            .transactions_posted
            .inc_by(f.transactions as u64);
        self.metrics.bytes_posted.inc_by(f.bytes as u64);
        self.metrics.gas_used.inc_by(receipt.gas_used);
        tracing::debug!(
            "l1 poster: batch {} included in block {mined_at}",
            f.sequence
        );
        Ok(None)
    }

    /// Whether the nonce of the transaction in flight is used on chain.
    async fn nonce_used(&self) -> Result<bool, PosterError> {
        let Some(nonce) = self.in_flight.as_ref().map(|f| f.nonce) else {
            return Ok(true);
        };
        Ok(self.signer.nonce(&self.l1).await? > nonce)
    }

    /// Replaces the transaction in flight (same nonce, higher fees, never less than what the
    /// chain asks for now) once it has waited `resubmit_after_blocks` blocks.
    async fn replace_if_stuck(&mut self, block: u64) -> Result<Option<Next>, PosterError> {
        let Some(f) = self.in_flight.as_mut() else {
            return Ok(None);
        };
        if block < f.sent_at_block + self.config.resubmit_after_blocks {
            return Ok(Some(Next::Wait(u64::MAX)));
        }
        let now = self
            .l1
            .fees(&self.config.fees, f.tx.sidecar.is_some())
            .await?;
        let Some(bumped) = f.fees.bumped(&self.config.fees) else {
            return Ok(Some(Next::Wait(u64::MAX)));
        };
        let fees = Fees {
            max_fee_per_gas: bumped.max_fee_per_gas.max(now.max_fee_per_gas),
            priority_fee_per_gas: bumped.priority_fee_per_gas,
            max_fee_per_blob_gas: bumped.max_fee_per_blob_gas.max(now.max_fee_per_blob_gas),
        };
        f.hash = self
            .signer
            .send(&self.l1, &f.tx, f.nonce, f.gas, fees)
            .await?;
        f.fees = fees;
        f.sent_at_block = block;
        self.metrics.resubmissions.inc();
        Ok(Some(Next::Now))
    }

    fn count_rejection(&self, e: &InboxErrors) {
        let reason = match e {
            InboxErrors::WrongSequence(_) => "sequence",
            InboxErrors::DataMismatch(_) | InboxErrors::NotAttested(_) => "not_attested",
            InboxErrors::BelowQuorum(_)
            | InboxErrors::BadSignature(_)
            | InboxErrors::SignersOutOfOrder(_)
            | InboxErrors::UnknownAuthority(_)
            | InboxErrors::MalformedSignatures(_) => "certificate",
            _ => "other",
        };
        self.metrics.rejections.with_label_values(&[reason]).inc();
        if !matches!(e, InboxErrors::WrongSequence(_)) {
            tracing::warn!("l1 poster: inbox rejected the batch: {e:?}");
        }
    }

    /// Where the batch after `head` starts, from the cache or read back from L1.
    async fn known_after(&mut self, head: &InboxHead) -> Result<Known, PosterError> {
        if head.next_sequence == 0 {
            return Ok(Known {
                end: Position::default(),
                block: 0,
            });
        }
        if let Some(k) = self.known.get(&head.commitment) {
            return Ok(*k);
        }
        let sequence = head.next_sequence - 1;
        let to = self.l1.head_block().await?;
        let wanted = |e: &&PostedBatch| e.sequence == sequence && e.commitment == head.commitment;
        let mut events = batch_events(&self.l1, self.cursor.l1_block, to).await?;
        if !events.iter().any(|e| wanted(&e)) && self.cursor.l1_block > 0 {
            // A reorg deeper than the confirmation depth went below the cursor: look further.
            events = batch_events(&self.l1, 0, to).await?;
        }
        let ev = events
            .iter()
            .find(wanted)
            .ok_or(PosterError::MissingBatch(sequence))?;
        let data = batch_data(&self.l1, ev).await?.data;
        let frames =
            decode_batch(&data).map_err(|e| PosterError::BadBatch(sequence, e.to_string()))?;
        let end = frames
            .last()
            .map(|f| f.end())
            .ok_or(PosterError::BadBatch(sequence, "no frame".into()))?;
        let known = Known {
            end,
            block: ev.block,
        };
        self.known.insert(head.commitment, known);
        Ok(known)
    }

    /// Moves the persisted cursor to the inbox head as of `confirmations` blocks below `block`.
    async fn confirm(&mut self, block: u64) -> Result<(), PosterError> {
        let Some(at) = block.checked_sub(self.config.confirmations) else {
            return Ok(());
        };
        let head = self.l1.inbox_head(Some(at)).await?;
        if head.next_sequence == self.cursor.next_sequence
            && head.commitment == self.cursor.commitment
        {
            return Ok(());
        }
        let known = self.known_after(&head).await?;
        let cursor = Cursor {
            next_sequence: head.next_sequence,
            commitment: head.commitment,
            next_position: known.end,
            l1_block: known.block,
        };
        cursor::store(&self.config.cursor_path, &cursor)?;
        self.cursor = cursor;
        self.metrics
            .confirmed_next_sequence
            .set(cursor.next_sequence as i64);
        self.metrics
            .confirmed_next_sub_dag
            .set(cursor.next_position.sub_dag as i64);
        // Batches older than the confirmed one are never asked about again.
        let keep = cursor.l1_block;
        self.known.retain(|_, k| k.block >= keep);
        Ok(())
    }
}
