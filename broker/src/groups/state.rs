//! One consumer group's membership and assignment, as a state machine with
//! no I/O: the coordinator feeds it joins, heartbeats, leaves and the clock,
//! and it answers with each member's assignment.
//!
//! Incremental hand-over. Each member has:
//! - `assigned`: the partitions it was last told it may consume;
//! - `revoking`: partitions it was told to give up, not yet confirmed given up.
//!
//! A partition is *held* by a member while it is in either set. The target
//! ([`assignor::assign`](super::assignor::assign)) is recomputed on every
//! membership change; at each heartbeat a member keeps the held partitions
//! still meant for it, is told to give up the others (they move to
//! `revoking`), and is given the target partitions nobody else holds. A
//! member confirms a give-up by reporting, at its current generation, an
//! `owned` set without the partition. So a partition never has two
//! consumers, and only the partitions that move pause.
//!
//! A member's `generation` grows each time its `assigned` set changes.
//! Commits must carry the current generation and name a held partition.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

// tokio's clock (the same as std's unless a test pauses it): session
// deadlines are slept on by `run_expiry`, and tests move them with
// `tokio::time::advance` instead of sleeping.
use tokio::time::Instant;
use warren_protocol::ErrorCode;

use super::assignor::{TopicPartition, assign};

/// One member.
#[derive(Debug, Clone)]
pub struct Member {
    pub topics: BTreeSet<String>,
    pub session_timeout: Duration,
    pub deadline: Instant,
    pub generation: u32,
    pub assigned: BTreeSet<TopicPartition>,
    pub revoking: BTreeSet<TopicPartition>,
}

impl Member {
    fn holds(&self, tp: &TopicPartition) -> bool {
        self.assigned.contains(tp) || self.revoking.contains(tp)
    }
}

/// A member's answer: its generation and the partitions it may consume now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub generation: u32,
    pub partitions: BTreeSet<TopicPartition>,
}

/// A group's members and target assignment.
#[derive(Debug, Default)]
pub struct GroupState {
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// Partition counts the target was computed with.
    partitions: BTreeMap<String, u32>,
    next_member: u64,
}

impl GroupState {
    /// Members, by id.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// True when the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every topic some member subscribes to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.topics.iter().cloned())
            .collect()
    }

    /// Adds a member (an empty or unknown `member_id` gets a fresh id; a
    /// known one keeps its partitions and updates its subscription), then
    /// answers as a heartbeat would. `partitions` gives the partition count of
    /// every subscribed topic that exists.
    pub fn join(
        &mut self,
        member_id: &str,
        topics: BTreeSet<String>,
        session_timeout: Duration,
        partitions: &BTreeMap<String, u32>,
        now: Instant,
    ) -> (String, Assignment) {
        let id = if !member_id.is_empty() && self.members.contains_key(member_id) {
            member_id.to_owned()
        } else {
            self.next_member += 1;
            format!("member-{:x}-{}", process_nonce(), self.next_member)
        };
        let member = self.members.entry(id.clone()).or_insert_with(|| Member {
            topics: BTreeSet::new(),
            session_timeout,
            deadline: now + session_timeout,
            generation: 0,
            assigned: BTreeSet::new(),
            revoking: BTreeSet::new(),
        });
        member.topics = topics;
        member.session_timeout = session_timeout;
        member.deadline = now + session_timeout;
        self.retarget(partitions);
        let assignment = self.reconcile(&id);
        (id, assignment)
    }

    /// A heartbeat: renews the session, takes `owned` as confirmation of
    /// give-ups when `generation` is current, and answers with the member's
    /// assignment now.
    ///
    /// # Errors
    /// `UNKNOWN_MEMBER` for a member not in the group.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation: u32,
        owned: &BTreeSet<TopicPartition>,
        partitions: &BTreeMap<String, u32>,
        now: Instant,
    ) -> Result<Assignment, ErrorCode> {
        let member = self
            .members
            .get_mut(member_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER)?;
        member.deadline = now + member.session_timeout;
        if generation == member.generation {
            member.revoking.retain(|tp| owned.contains(tp));
        }
        if *partitions != self.partitions {
            self.retarget(partitions);
        }
        Ok(self.reconcile(member_id))
    }

    /// Removes a member; its partitions become free at once.
    ///
    /// # Errors
    /// `UNKNOWN_MEMBER` for a member not in the group.
    pub fn leave(
        &mut self,
        member_id: &str,
        partitions: &BTreeMap<String, u32>,
    ) -> Result<(), ErrorCode> {
        self.members
            .remove(member_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER)?;
        self.retarget(partitions);
        Ok(())
    }

    /// Expels every member whose session ran out by `now`; returns their ids.
    pub fn expire(&mut self, partitions: &BTreeMap<String, u32>, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                self.members.remove(id);
            }
            self.retarget(partitions);
        }
        expired
    }

    /// The earliest session deadline, if any member.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members.values().map(|m| m.deadline).min()
    }

    /// Whether `member_id` at `generation` may commit an offset for `tp`.
    pub fn check_commit(
        &self,
        member_id: &str,
        generation: u32,
        tp: &TopicPartition,
    ) -> Result<(), ErrorCode> {
        let member = self
            .members
            .get(member_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER)?;
        if generation != member.generation {
            return Err(ErrorCode::STALE_GENERATION);
        }
        if !member.holds(tp) {
            return Err(ErrorCode::PARTITION_NOT_ASSIGNED);
        }
        Ok(())
    }

    fn retarget(&mut self, partitions: &BTreeMap<String, u32>) {
        let subscriptions = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.topics.clone()))
            .collect();
        let current = self
            .members
            .iter()
            .map(|(id, m)| {
                let held = m.assigned.union(&m.revoking).cloned().collect();
                (id.clone(), held)
            })
            .collect();
        self.target = assign(&subscriptions, partitions, &current);
        self.partitions = partitions.clone();
    }

    /// Moves one member towards its target: give up what is not meant for
    /// it, take what is meant for it and held by nobody else.
    fn reconcile(&mut self, member_id: &str) -> Assignment {
        let empty = BTreeSet::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let held_by_others: BTreeSet<&TopicPartition> = self
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != member_id)
            .flat_map(|(_, m)| m.assigned.iter().chain(m.revoking.iter()))
            .collect();
        let Some(member) = self.members.get(member_id) else {
            return Assignment {
                generation: 0,
                partitions: BTreeSet::new(),
            };
        };
        let mut next: BTreeSet<TopicPartition> =
            member.assigned.intersection(target).cloned().collect();
        let give_up: Vec<TopicPartition> = member.assigned.difference(target).cloned().collect();
        for tp in target {
            if !held_by_others.contains(tp) && !member.revoking.contains(tp) {
                next.insert(tp.clone());
            }
        }
        let changed = next != member.assigned;
        let Some(member) = self.members.get_mut(member_id) else {
            return Assignment {
                generation: 0,
                partitions: BTreeSet::new(),
            };
        };
        member.revoking.extend(give_up);
        if changed {
            member.assigned = next;
            member.generation += 1;
        }
        Assignment {
            generation: member.generation,
            partitions: member.assigned.clone(),
        }
    }
}

/// A number fixed for the life of the process, so that member ids handed out
/// by one broker run are never handed out again by the next (a member that
/// comes back after a restart must not be mistaken for a new one).
fn process_nonce() -> u64 {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NONCE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const SESSION: Duration = Duration::from_secs(10);

    fn topics(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|t| t.to_string()).collect()
    }

    fn counts(n: u32) -> BTreeMap<String, u32> {
        [("t".to_string(), n)].into_iter().collect()
    }

    #[test]
    fn a_partition_never_has_two_consumers_during_a_hand_over() {
        let now = Instant::now();
        let c = counts(6);
        let mut g = GroupState::default();
        let (a, first) = g.join("", topics(&["t"]), SESSION, &c, now);
        assert_eq!(first.partitions.len(), 6);
        // b joins: its target is 3 partitions, all still held by a.
        let (b, joined) = g.join("", topics(&["t"]), SESSION, &c, now);
        assert!(joined.partitions.is_empty(), "{joined:?}");
        // a's heartbeat tells it to keep 3 and give up 3.
        let a1 = g
            .heartbeat(&a, first.generation, &first.partitions, &c, now)
            .unwrap();
        assert_eq!(a1.partitions.len(), 3);
        assert!(a1.generation > first.generation);
        // Until a confirms, b still gets nothing.
        let b1 = g
            .heartbeat(&b, joined.generation, &joined.partitions, &c, now)
            .unwrap();
        assert!(b1.partitions.is_empty());
        // A heartbeat from a at the old generation confirms nothing.
        g.heartbeat(&a, first.generation, &a1.partitions, &c, now)
            .unwrap();
        assert!(
            g.heartbeat(&b, b1.generation, &b1.partitions, &c, now)
                .unwrap()
                .partitions
                .is_empty()
        );
        // a confirms at its current generation: b gets the 3.
        g.heartbeat(&a, a1.generation, &a1.partitions, &c, now)
            .unwrap();
        let b2 = g
            .heartbeat(&b, b1.generation, &b1.partitions, &c, now)
            .unwrap();
        assert_eq!(b2.partitions.len(), 3);
        assert!(b2.partitions.is_disjoint(&a1.partitions));
    }

    #[test]
    fn an_expired_member_frees_its_partitions_at_once() {
        let now = Instant::now();
        let c = counts(4);
        let mut g = GroupState::default();
        let (a, _) = g.join("", topics(&["t"]), Duration::from_secs(1), &c, now);
        let (b, bj) = g.join("", topics(&["t"]), Duration::from_secs(30), &c, now);
        assert!(bj.partitions.is_empty());
        assert_eq!(
            g.expire(&c, now + Duration::from_millis(500)),
            Vec::<String>::new()
        );
        assert_eq!(g.expire(&c, now + Duration::from_secs(2)), vec![a.clone()]);
        let b1 = g
            .heartbeat(&b, bj.generation, &bj.partitions, &c, now)
            .unwrap();
        assert_eq!(b1.partitions.len(), 4);
        assert_eq!(
            g.heartbeat(&a, 1, &BTreeSet::new(), &c, now),
            Err(ErrorCode::UNKNOWN_MEMBER)
        );
    }

    #[test]
    fn commits_are_fenced_by_generation_and_ownership() {
        let now = Instant::now();
        let c = counts(2);
        let mut g = GroupState::default();
        let (a, a0) = g.join("", topics(&["t"]), SESSION, &c, now);
        let tp0 = ("t".to_string(), 0);
        assert_eq!(g.check_commit(&a, a0.generation, &tp0), Ok(()));
        let (b, _) = g.join("", topics(&["t"]), SESSION, &c, now);
        let a1 = g
            .heartbeat(&a, a0.generation, &a0.partitions, &c, now)
            .unwrap();
        // The old generation is refused once a's assignment changed.
        assert_eq!(
            g.check_commit(&a, a0.generation, &tp0),
            Err(ErrorCode::STALE_GENERATION)
        );
        // A partition being given up may still be committed at the new generation.
        let given_up = a0
            .partitions
            .difference(&a1.partitions)
            .next()
            .unwrap()
            .clone();
        assert_eq!(g.check_commit(&a, a1.generation, &given_up), Ok(()));
        assert_eq!(
            g.check_commit(&b, 0, &given_up),
            Err(ErrorCode::PARTITION_NOT_ASSIGNED)
        );
        assert_eq!(
            g.check_commit("nobody", 0, &tp0),
            Err(ErrorCode::UNKNOWN_MEMBER)
        );
    }

    #[test]
    fn a_rejoin_with_a_known_id_keeps_the_partitions() {
        let now = Instant::now();
        let c = counts(3);
        let mut g = GroupState::default();
        let (a, a0) = g.join("", topics(&["t"]), SESSION, &c, now);
        let (again, a1) = g.join(&a, topics(&["t"]), SESSION, &c, now);
        assert_eq!(again, a);
        assert_eq!(a1, a0);
        let (other, _) = g.join("stale-id", topics(&["t"]), SESSION, &c, now);
        assert_ne!(other, "stale-id");
    }

    #[test]
    fn leave_frees_partitions_and_new_partitions_are_assigned() {
        let now = Instant::now();
        let mut g = GroupState::default();
        let (a, a0) = g.join("", topics(&["t"]), SESSION, &counts(2), now);
        let (b, b0) = g.join("", topics(&["t"]), SESSION, &counts(2), now);
        let a1 = g
            .heartbeat(&a, a0.generation, &a0.partitions, &counts(2), now)
            .unwrap();
        g.heartbeat(&a, a1.generation, &a1.partitions, &counts(2), now)
            .unwrap();
        g.leave(&a, &counts(2)).unwrap();
        let b1 = g
            .heartbeat(&b, b0.generation, &b0.partitions, &counts(2), now)
            .unwrap();
        assert_eq!(b1.partitions.len(), 2);
        // The topic grows to 5 partitions: the next heartbeat hands them out.
        let b2 = g
            .heartbeat(&b, b1.generation, &b1.partitions, &counts(5), now)
            .unwrap();
        assert_eq!(b2.partitions.len(), 5);
        assert_eq!(g.leave(&a, &counts(5)), Err(ErrorCode::UNKNOWN_MEMBER));
    }
}
