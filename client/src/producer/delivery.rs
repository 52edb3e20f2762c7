//! Delivery results: one completion cell per batch, shared by every record in
//! it.
//!
//! `send` must stay cheap, so a record gets no channel of its own: its
//! [`DeliveryFuture`] holds an `Arc` to its batch's [`BatchCompletion`] and
//! its index in the batch. The sender fills the cell once, when the broker
//! answers for the batch (or the batch finally fails), and wakes every future
//! that was polled meanwhile. A future that is never polled costs one `Arc`.
//!
//! Thread-safe: the result is a `OnceLock`; the waker list a `std::sync::Mutex`
//! held only to push or take wakers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};

/// Where a delivered batch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchDelivered {
    pub partition: u32,
    /// Offset of the batch's first record; `None` with `acks = 0`.
    pub base_offset: Option<u64>,
    /// The other partitions a routed batch was appended to, with the offset
    /// of its first record in each.
    pub copies: Vec<(u32, u64)>,
    /// Set when the broker sent the batch to the topic's alternate topic.
    pub alternate_topic: Option<Arc<str>>,
}

impl BatchDelivered {
    /// A batch written to one partition of its own topic.
    pub(crate) fn single(partition: u32, base_offset: Option<u64>) -> Self {
        BatchDelivered {
            partition,
            base_offset,
            copies: Vec::new(),
            alternate_topic: None,
        }
    }
}

/// The shared completion cell of one batch.
#[derive(Debug, Default)]
pub(crate) struct BatchCompletion {
    result: OnceLock<Result<BatchDelivered>>,
    wakers: Mutex<Vec<Waker>>,
}

impl BatchCompletion {
    fn wakers(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the batch's result (the first call wins) and wakes every waiter.
    pub(crate) fn complete(&self, result: Result<BatchDelivered>) {
        if self.result.set(result).is_ok() {
            let wakers = std::mem::take(&mut *self.wakers());
            for w in wakers {
                w.wake();
            }
        }
    }

    /// The result, if the batch is complete.
    pub(crate) fn get(&self) -> Option<&Result<BatchDelivered>> {
        self.result.get()
    }

    /// Polls for the result, registering `cx`'s waker in `slot` (reused
    /// across polls of one future).
    pub(crate) fn poll_result(
        &self,
        cx: &mut Context<'_>,
        slot: &mut Option<usize>,
    ) -> Poll<&Result<BatchDelivered>> {
        if let Some(r) = self.result.get() {
            return Poll::Ready(r);
        }
        let mut wakers = self.wakers();
        // `complete` sets the result before it takes the wakers: checking again
        // under the lock means either we see the result or it sees our waker.
        if let Some(r) = self.result.get() {
            return Poll::Ready(r);
        }
        match slot.and_then(|i| wakers.get_mut(i)) {
            Some(w) => {
                if !w.will_wake(cx.waker()) {
                    w.clone_from(cx.waker());
                }
            }
            None => {
                wakers.push(cx.waker().clone());
                *slot = Some(wakers.len() - 1);
            }
        }
        Poll::Pending
    }

    /// Waits for the result.
    pub(crate) async fn wait(&self) -> &Result<BatchDelivered> {
        let mut slot = None;
        std::future::poll_fn(|cx| self.poll_result(cx, &mut slot)).await
    }
}

/// Where a record was written.
///
/// On a `direct` or `topic` topic the broker may append one record to several
/// partitions (its key matched several bindings): `partition` and `offset`
/// are then the first (lowest) partition's, and `copies` lists the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition the record went to (the first, if several).
    pub partition: u32,
    /// The record's offset in the partition; `None` when the producer uses
    /// [`Acks::None`](crate::Acks::None) (the broker does not answer, so the
    /// offset is never learned).
    pub offset: Option<u64>,
    /// The other partitions the broker's bindings appended the record to,
    /// ascending; empty unless the key matched several (never known with
    /// `Acks::None`).
    pub copies: Vec<RecordCopy>,
    /// Set when the record matched no binding of its topic and the broker
    /// wrote it to the topic's alternate topic instead: `partition`, `offset`
    /// and `copies` are then that topic's.
    pub alternate_topic: Option<Arc<str>>,
}

/// A further copy of a record (see [`RecordMetadata::copies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCopy {
    /// The partition.
    pub partition: u32,
    /// The record's offset there.
    pub offset: u64,
}

/// Resolves once the broker has acknowledged (or finally refused) the record,
/// to its partition and offset.
///
/// Dropping it does not cancel the send: the record is delivered either way
/// ([`Producer::flush`](crate::Producer::flush) waits for it). The error, if
/// any, is the one that failed the record's whole batch.
#[derive(Debug)]
#[must_use = "a DeliveryFuture reports whether the record was delivered"]
pub struct DeliveryFuture {
    completion: Arc<BatchCompletion>,
    index: u32,
    slot: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(completion: Arc<BatchCompletion>, index: u32) -> Self {
        DeliveryFuture {
            completion,
            index,
            slot: None,
        }
    }

    /// The result, if it is already known (does not wait).
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.completion.get().map(|r| self.metadata(r))
    }

    fn metadata(&self, r: &Result<BatchDelivered>) -> Result<RecordMetadata, Error> {
        match r {
            Ok(d) => Ok(RecordMetadata {
                partition: d.partition,
                offset: d.base_offset.map(|b| b + u64::from(self.index)),
                copies: d
                    .copies
                    .iter()
                    .map(|&(partition, base)| RecordCopy {
                        partition,
                        offset: base + u64::from(self.index),
                    })
                    .collect(),
                alternate_topic: d.alternate_topic.clone(),
            }),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.completion.poll_result(cx, &mut this.slot) {
            Poll::Ready(r) => Poll::Ready(this.metadata(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[tokio::test]
    async fn every_record_of_a_batch_sees_its_own_offset() {
        let cell = Arc::new(BatchCompletion::default());
        let futures: Vec<_> = (0..3)
            .map(|i| DeliveryFuture::new(cell.clone(), i))
            .collect();
        let waiter = tokio::spawn(async move {
            let mut out = Vec::new();
            for f in futures {
                out.push(f.await.unwrap());
            }
            out
        });
        tokio::task::yield_now().await;
        cell.complete(Ok(BatchDelivered {
            copies: vec![(5, 100)],
            ..BatchDelivered::single(2, Some(10))
        }));
        let got = waiter.await.unwrap();
        let offsets: Vec<_> = got.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [Some(10), Some(11), Some(12)]);
        assert!(got.iter().all(|m| m.partition == 2));
        let copies: Vec<_> = got.iter().map(|m| m.copies.clone()).collect();
        assert_eq!(
            copies,
            (0..3)
                .map(|i| vec![RecordCopy {
                    partition: 5,
                    offset: 100 + i
                }])
                .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_record_and_only_the_first_result_counts() {
        let cell = Arc::new(BatchCompletion::default());
        let f = DeliveryFuture::new(cell.clone(), 5);
        assert!(f.try_result().is_none());
        cell.complete(Err(Error::Closed));
        cell.complete(Ok(BatchDelivered::single(0, Some(0))));
        assert!(matches!(f.await, Err(Error::Closed)));
        assert!(matches!(cell.wait().await, Err(Error::Closed)));
    }
}
