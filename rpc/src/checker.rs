//! Sender recovery off the async runtime, on a fixed number of threads with a bounded queue.
//!
//! Recovering a sender costs ~47 µs, 25 times the rest of the checks. Run on the runtime's
//! threads, a flood of well-signed transactions took every core from the primary and
//! consensus: at 50k tx/s on the 2-core benchmark box, commits stalled for 20 s and the
//! ingress answered after 20 s. Here the recoveries of an authority never use more than
//! `rpc.check_threads` threads, and a call that finds `rpc.max_pending_checks` transactions
//! already waiting is refused at once with -32003 "sequencer busy": overload becomes
//! back-pressure on clients, never a stall of ordering.

use crate::decode::{check_transaction, CheckedTransaction, TxPolicy};
use crate::error::TxError;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<CheckedTransaction, TxError>>;
/// A raw transaction and where its result goes.
type Job = (Arc<[u8]>, Reply);

/// Why a transaction was not checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// Every check thread is busy and the queue is full.
    #[error("the sender-recovery queue is full")]
    Busy,
    /// The check threads are gone (the server is stopping).
    #[error("the check threads stopped")]
    Stopped,
}

/// Checks transactions on its own threads; they end when the checker is dropped.
pub struct Checker {
    jobs: SyncSender<Job>,
}

impl Checker {
    /// `threads` threads checking against `policy`, at most `queue` transactions waiting.
    pub fn spawn(threads: usize, queue: usize, policy: TxPolicy) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let policy = Arc::new(policy);
        for i in 0..threads.max(1) {
            let (rx, policy) = (rx.clone(), policy.clone());
            std::thread::Builder::new()
                .name(format!("weft-rpc-check-{i}"))
                .spawn(move || work(&rx, &policy))?;
        }
        Ok(Self { jobs })
    }

    /// Checks `raw` on a check thread.
    pub async fn check(&self, raw: Arc<[u8]>) -> Result<CheckedTransaction, CheckError> {
        let (reply, answer) = oneshot::channel();
        match self.jobs.try_send((raw, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(CheckError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(CheckError::Stopped),
        }
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(CheckError::Stopped),
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>, policy: &TxPolicy) {
    loop {
        // Hold the lock only to take a job; a poisoned lock still hands out jobs.
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((raw, reply)) = job else {
            return;
        };
        // The caller may have gone (its connection closed): nothing to answer then.
        let _ = reply.send(check_transaction(&raw, policy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TxPolicy {
        TxPolicy {
            max_transaction_size: 1024,
            chain_ids: vec![1],
            recover_senders: true,
        }
    }

    /// A full queue refuses at once; what was queued is still answered.
    #[tokio::test]
    async fn a_full_queue_is_busy_and_bad_input_is_invalid() {
        let checker = Checker::spawn(1, 4, policy()).unwrap();
        let garbage: Arc<[u8]> = Arc::from(&[0xffu8; 8][..]);
        assert!(matches!(
            checker.check(garbage.clone()).await,
            Err(CheckError::Invalid(TxError::Decode(_)))
        ));
        // A queue of zero takes nothing beyond what a thread is handed.
        let (jobs, _rx) = sync_channel::<Job>(0);
        let full = Checker { jobs };
        assert_eq!(full.check(garbage).await, Err(CheckError::Busy));
    }
}
