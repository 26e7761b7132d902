//! A process's long-running actors, by name, so that one stopping is seen: every actor runs
//! until shutdown, so one that ends before it (its loop hit a fatal error, which it logged, or
//! it panicked) means the process must go down as a whole. Here because the primary, the
//! worker and the node all depend on this crate.

use tokio::task::JoinHandle;

#[derive(Default)]
pub struct Actors {
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Actors {
    pub fn push(&mut self, name: &'static str, task: JoinHandle<()>) {
        self.tasks.push((name, task));
    }

    /// Resolves when one of the actors has stopped: its name and how (it is no longer held).
    /// Pending for ever when there is none. Cancel-safe.
    pub async fn first_stopped(&mut self) -> String {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let (result, i, _) =
            futures::future::select_all(self.tasks.iter_mut().map(|(_, t)| t)).await;
        let (name, _) = self.tasks.remove(i);
        match result {
            Ok(()) => format!("{name} stopped"),
            Err(e) if e.is_panic() => format!("{name} panicked"),
            Err(_) => format!("{name} was cancelled"),
        }
    }

    /// Aborts every actor and waits until each has ended.
    pub async fn abort_and_join(self) {
        for (_, t) in &self.tasks {
            t.abort();
        }
        for (_, t) in self.tasks {
            let _ = t.await;
        }
    }

    /// Waits until each actor has ended (after they were told to stop).
    pub async fn join(self) {
        for (_, t) in self.tasks {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_actor_to_stop_is_named_and_a_panic_is_told_apart() {
        let mut actors = Actors::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        actors.push(
            "runner",
            tokio::spawn(async move {
                let _ = rx.await;
            }),
        );
        actors.push("forever", tokio::spawn(std::future::pending()));
        actors.push("executor", tokio::spawn(async { panic!("store failed") }));
        assert_eq!(actors.first_stopped().await, "executor panicked");
        drop(tx);
        assert_eq!(actors.first_stopped().await, "runner stopped");
        actors.abort_and_join().await;
    }
}
