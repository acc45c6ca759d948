//! Following other nodes' commits: a background task holds a
//! `LISTEN handoff_changes` connection and counts the notifications it
//! receives; [`Store::wait_for_change`](crate::Store::wait_for_change)
//! waits for that count to move.
//!
//! The count lives in a watch channel, so a notification that arrives while
//! nobody waits is not lost: the next wait sees a count it has not seen yet
//! and returns at once. A lost connection is re-established by the task
//! itself, and counts as a notification (some may have been missed while it
//! was down). It never decides what changed: callers read
//! [`Store::changes_since`](crate::Store::changes_since).

use super::write::CHANNEL;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the task waits before connecting again after a failure.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The running listener: its task, its pool and the notification count.
#[derive(Debug)]
pub(super) struct Follower {
    count: watch::Sender<u64>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    pool: PgPool,
}

impl Follower {
    /// Listens on a connection of `pool` (which it owns from now on) and
    /// starts the task. Fails if the first `LISTEN` does.
    pub(super) async fn start(pool: PgPool) -> Result<Arc<Self>, sqlx::Error> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let (count, _) = watch::channel(0);
        let task = tokio::spawn(run(pool.clone(), listener, count.clone()));
        Ok(Arc::new(Self {
            count,
            task: std::sync::Mutex::new(Some(task)),
            pool,
        }))
    }

    /// A receiver of the count, to wait on.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }

    /// Stops the task and closes its connection.
    pub(super) async fn stop(&self) {
        let task = self
            .task
            .lock()
            .map_or_else(|poisoned| poisoned.into_inner().take(), |mut t| t.take());
        if let Some(task) = task {
            task.abort();
            // A cancelled task returns its error here; nothing to report.
            let _ = task.await;
        }
        self.pool.close().await;
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // The last handle went away without `close`: do not leave the task
        // listening forever.
        if let Ok(mut task) = self.task.lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
    }
}

/// The listener loop: never panics, never spins; on any error it drops
/// the connection, waits [`RETRY_AFTER`] and listens again.
async fn run(pool: PgPool, listener: PgListener, count: watch::Sender<u64>) {
    let mut listener = Some(listener);
    loop {
        let mut current = match listener.take() {
            Some(l) => l,
            None => match connect(&pool).await {
                Ok(l) => {
                    // Notifications sent while we were away are lost: wake
                    // the waiters so they read the change feed anyway.
                    count.send_modify(|n| *n += 1);
                    tracing::info!("listening for changes again");
                    l
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not listen for changes; retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            },
        };
        match current.try_recv().await {
            Ok(Some(_)) => {
                // Take everything already buffered in one go: one wake-up
                // per burst is enough, the feed says what changed.
                while current.next_buffered().is_some() {}
                count.send_modify(|n| *n += 1);
                listener = Some(current);
            }
            Ok(None) => {
                // The connection was lost and re-established (LISTEN again
                // included); some notifications may be lost.
                count.send_modify(|n| *n += 1);
                listener = Some(current);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "lost the change listener; reconnecting");
                drop(current);
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// The count a handle has seen, its own per clone: a clone starts from
/// what the original had seen, and each then consumes notifications for
/// itself.
#[derive(Debug, Default)]
pub(super) struct Seen(AtomicU64);

impl Clone for Seen {
    fn clone(&self) -> Self {
        Self(AtomicU64::new(self.0.load(Ordering::Acquire)))
    }
}

impl Seen {
    /// Waits until `follower`'s count differs from the last one this
    /// handle saw, or `timeout`; remembers the count it returns on.
    pub(super) async fn wait(&self, follower: &Follower, timeout: Duration) {
        let mut rx = follower.subscribe();
        let now = *rx.borrow_and_update();
        if now != self.0.load(Ordering::Acquire) {
            // Notified since the last wait returned: report it at once.
            self.0.store(now, Ordering::Release);
            return;
        }
        // A notification after `borrow_and_update` marks `rx` changed, so
        // none can slip between the check above and this wait.
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
        self.0.store(*rx.borrow(), Ordering::Release);
    }
}
