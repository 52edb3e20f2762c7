//! Offsets retention: the task that forgets consumer groups' committed
//! offsets and share groups' state once the group has been idle for
//! `offsets_retention_minutes` (Kafka's `offsets.retention.minutes`). It
//! spans both kinds of group, so it lives beside them rather than in either.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use warren_storage::KvStore;

use crate::groups::Coordinator;
use crate::share::ShareGroups;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs until the broker shuts down: every `offsets_retention_check_ms`,
/// deletes the committed offsets of consumer groups and the state of share
/// groups that have been idle for `offsets_retention_minutes`
/// ([`Coordinator::expire_offsets`], [`ShareGroups::expire_idle`]),
/// durably, on a blocking thread.
pub async fn run(
    groups: Arc<Coordinator>,
    share: Arc<ShareGroups>,
    kv: KvStore,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        let (groups, share, kv) = (Arc::clone(&groups), Arc::clone(&share), kv.clone());
        let swept = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let (_, groups_end) = groups.expire_offsets(&kv, now)?;
            if let Some(end) = groups_end {
                kv.sync_to(end)?;
            }
            share.expire_idle(&kv, now)
        })
        .await;
        match swept {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "expiring idle group state failed; retried at the next check")
            }
            Err(e) => tracing::warn!(error = %e, "the group retention task failed"),
        }
    }
}
