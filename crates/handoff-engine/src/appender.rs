//! The audit appender: the one writer that owns the chain head.
//!
//! Use cases submit a [`Change`] (a write plus its audit record) and wait.
//! The appender takes everything queued at that moment (group commit), hands
//! it to the store as one transaction, and answers each submitter only once
//! that transaction is durable. A change whose record cannot be written is
//! not made (fail-closed). Every `checkpoint_every` records or
//! `checkpoint_interval`, it signs a checkpoint of the head.

use crate::{EngineError, Keys};
use handoff_audit::{Head, Record};
use handoff_core::Clock;
use handoff_store::{Change, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Tuning of the appender.
#[derive(Debug, Clone, Copy)]
pub struct AppenderSettings {
    /// Most changes committed in one transaction.
    pub max_batch: usize,
    /// Changes that may wait in the queue before submitters are held back.
    pub queue: usize,
    /// Sign a checkpoint after this many records.
    pub checkpoint_every: u64,
    /// Sign a checkpoint at least this often while records arrive.
    pub checkpoint_interval: Duration,
}

impl Default for AppenderSettings {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue: 16 * 1024,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// Why a submitted change was not made.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The store refused the write itself (duplicate, not found, …).
    #[error(transparent)]
    Write(StoreError),
    /// The audit record could not be made durable.
    #[error("the audit log cannot be written")]
    Unavailable,
}

struct Job {
    change: Change,
    reply: oneshot::Sender<Result<Record, AppendError>>,
}

/// Handle to the appender task.
#[derive(Debug)]
pub struct Appender {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    sender: mpsc::Sender<Job>,
    task: Mutex<Option<JoinHandle<()>>>,
    running: Arc<AtomicBool>,
    head_seq: Arc<AtomicU64>,
}

impl Appender {
    /// Loads the head from the store and starts the task.
    pub async fn start(
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        clock: Arc<dyn Clock>,
        settings: AppenderSettings,
    ) -> Result<Self, EngineError> {
        let head = store.audit_head().await?;
        let last_checkpoint = store
            .audit_checkpoints()
            .await?
            .last()
            .map_or(0, |cp| cp.seq);
        let (sender, rx) = mpsc::channel(settings.queue.max(1));
        let running = Arc::new(AtomicBool::new(true));
        let head_seq = Arc::new(AtomicU64::new(head.seq));
        let worker = Worker {
            store,
            keys,
            clock,
            settings,
            head,
            last_checkpoint,
            last_checkpoint_at: Instant::now(),
            head_seq: head_seq.clone(),
        };
        let task = tokio::spawn(worker.run(rx, running.clone()));
        Ok(Self {
            tx: Mutex::new(Some(sender.clone())),
            sender,
            task: Mutex::new(Some(task)),
            running,
            head_seq,
        })
    }

    /// Queues `change` and waits until it and its record are durable.
    pub async fn submit(&self, change: Change) -> Result<Record, AppendError> {
        let (reply, answer) = oneshot::channel();
        let tx = self
            .tx
            .lock()
            .await
            .clone()
            .ok_or(AppendError::Unavailable)?;
        tx.send(Job { change, reply })
            .await
            .map_err(|_| AppendError::Unavailable)?;
        answer.await.map_err(|_| AppendError::Unavailable)?
    }

    /// Queues every change at once (so they can share one commit) and waits
    /// for all of them; one result per change, in order.
    pub async fn submit_many(&self, changes: Vec<Change>) -> Vec<Result<Record, AppendError>> {
        let tx = self.tx.lock().await.clone();
        let mut answers = Vec::with_capacity(changes.len());
        for change in changes {
            let (reply, answer) = oneshot::channel();
            let sent = match &tx {
                Some(tx) => tx.send(Job { change, reply }).await.is_ok(),
                None => false,
            };
            answers.push(sent.then_some(answer));
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Some(answer) => answer.await.unwrap_or(Err(AppendError::Unavailable)),
                None => Err(AppendError::Unavailable),
            });
        }
        results
    }

    /// Changes waiting to be committed.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// The last committed sequence number.
    pub fn head_seq(&self) -> u64 {
        self.head_seq.load(Ordering::Relaxed)
    }

    /// Whether the task is alive.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Stops taking changes, commits what is queued, signs a final
    /// checkpoint and waits for the task to end.
    pub async fn shutdown(&self) {
        self.tx.lock().await.take();
        let task = self.task.lock().await.take();
        // The clone held for queue_depth keeps the channel open; the worker
        // stops when it sees the closed flag and an empty queue.
        self.running.store(false, Ordering::Relaxed);
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Worker {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    clock: Arc<dyn Clock>,
    settings: AppenderSettings,
    head: Head,
    last_checkpoint: u64,
    last_checkpoint_at: Instant,
    head_seq: Arc<AtomicU64>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, running: Arc<AtomicBool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                job = rx.recv() => job,
                _ = tick.tick() => {
                    if !running.load(Ordering::Relaxed) && rx.is_empty() {
                        break;
                    }
                    self.checkpoint_if_due().await;
                    continue;
                }
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            while batch.len() < self.settings.max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit(batch).await;
            self.checkpoint_if_due().await;
        }
        self.checkpoint(true).await;
        running.store(false, Ordering::Relaxed);
    }

    async fn commit(&mut self, batch: Vec<Job>) {
        let (changes, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|j| (j.change, j.reply)).unzip();
        let saved = self.head;
        let started = Instant::now();
        let n = changes.len();
        let result = self.store.commit(changes, &mut self.head).await;
        metrics::histogram!("handoff_audit_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("handoff_audit_batch_size").record(n as f64);
        match result {
            Ok(results) => {
                metrics::counter!("handoff_audit_records_total")
                    .increment(results.iter().filter(|r| r.is_ok()).count() as u64);
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(result.map_err(AppendError::Write));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, records = n, "audit batch could not be committed; the changes were refused");
                metrics::counter!("handoff_audit_commit_failures_total").increment(1);
                // The transaction may or may not have landed; trust only the store.
                self.head = self.store.audit_head().await.unwrap_or(saved);
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unavailable));
                }
            }
        }
        self.head_seq.store(self.head.seq, Ordering::Relaxed);
    }

    async fn checkpoint_if_due(&mut self) {
        let pending = self.head.seq.saturating_sub(self.last_checkpoint);
        let due = pending >= self.settings.checkpoint_every
            || (pending > 0
                && self.last_checkpoint_at.elapsed() >= self.settings.checkpoint_interval);
        if due {
            self.checkpoint(false).await;
        }
    }

    async fn checkpoint(&mut self, last: bool) {
        if self.head.seq <= self.last_checkpoint {
            return;
        }
        let cp = self
            .keys
            .signer()
            .sign(self.head.seq, self.head.hash, self.clock.now());
        match self.store.append_checkpoint(&cp).await {
            Ok(()) => {
                self.last_checkpoint = cp.seq;
                self.last_checkpoint_at = Instant::now();
            }
            Err(e) => {
                tracing::error!(error = %e, seq = cp.seq, final_checkpoint = last, "audit checkpoint could not be written")
            }
        }
    }
}
