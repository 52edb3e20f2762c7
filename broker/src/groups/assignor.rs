//! The target assignment: which member should own which partition.
//!
//! Balanced per topic: the partitions of a topic are spread over the members
//! subscribed to it so that counts differ by at most one. Sticky: a partition
//! stays with its current owner unless that owner is over its share, so a
//! membership change moves only as many partitions as balance needs (a join
//! to a group of `m` members over `n` partitions moves about `n / (m + 1)`).
//!
//! The result depends only on the inputs (members and topics are walked in
//! sorted order), so the same state always gives the same target.

use std::collections::{BTreeMap, BTreeSet};

/// A topic partition.
pub type TopicPartition = (String, u32);

/// Computes the target assignment.
///
/// - `subscriptions`: member id → the topics it subscribes to.
/// - `partitions`: topic → partition count (topics that do not exist are
///   absent and get nothing).
/// - `current`: member id → partitions it holds now (kept where balance
///   allows; entries for unknown members or partitions are ignored).
pub fn assign(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partitions: &BTreeMap<String, u32>,
    current: &BTreeMap<String, BTreeSet<TopicPartition>>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartition>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count == 0 {
            continue;
        }
        assign_topic(topic, count, &members, current, &mut target);
    }
    target
}

/// Spreads one topic's partitions over `members` (sorted, non-empty).
fn assign_topic(
    topic: &str,
    count: u32,
    members: &[&String],
    current: &BTreeMap<String, BTreeSet<TopicPartition>>,
    target: &mut BTreeMap<String, BTreeSet<TopicPartition>>,
) {
    // What each member holds of this topic now, each partition once.
    let mut held: BTreeMap<&String, Vec<u32>> = members.iter().map(|m| (*m, Vec::new())).collect();
    let mut taken = BTreeSet::new();
    for m in members {
        let Some(owned) = current.get(*m) else {
            continue;
        };
        for (t, p) in owned {
            if t == topic && *p < count && taken.insert(*p) {
                held.entry(*m).or_default().push(*p);
            }
        }
    }
    // Quotas: everyone gets `base`, `extra` members get one more. The extra
    // slots go to those holding the most already, so fewer partitions move.
    let n = members.len() as u32;
    let base = count / n;
    let mut extra = count % n;
    let mut by_load: Vec<&String> = members.to_vec();
    by_load.sort_by_key(|m| std::cmp::Reverse(held.get(*m).map_or(0, Vec::len)));
    let mut quota: BTreeMap<&String, u32> = BTreeMap::new();
    for m in by_load {
        let mut q = base;
        if extra > 0 && held.get(m).map_or(0, Vec::len) as u32 > base {
            q += 1;
            extra -= 1;
        }
        quota.insert(m, q);
    }
    // Leftover extra slots (nobody held more than base) go in member order.
    for m in members {
        if extra == 0 {
            break;
        }
        if let Some(q) = quota.get_mut(*m)
            && *q == base
        {
            *q += 1;
            extra -= 1;
        }
    }
    // Keep what fits the quota; the rest goes back to the pool.
    let mut pool: BTreeSet<u32> = (0..count).filter(|p| !taken.contains(p)).collect();
    for (m, ps) in &mut held {
        ps.sort_unstable();
        let q = quota.get(m).copied().unwrap_or(base) as usize;
        if ps.len() > q {
            pool.extend(ps.drain(q..));
        }
    }
    // Fill members below quota from the pool, lowest partitions first.
    for m in members {
        let q = quota.get(*m).copied().unwrap_or(base) as usize;
        let Some(ps) = held.get_mut(*m) else {
            continue;
        };
        while ps.len() < q {
            let Some(p) = pool.pop_first() else {
                break;
            };
            ps.push(p);
        }
    }
    for (m, ps) in held {
        if let Some(t) = target.get_mut(m) {
            t.extend(ps.into_iter().map(|p| (topic.to_owned(), p)));
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use proptest::prelude::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn counts(topics: &[(&str, u32)]) -> BTreeMap<String, u32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn sizes(target: &BTreeMap<String, BTreeSet<TopicPartition>>) -> Vec<usize> {
        target.values().map(BTreeSet::len).collect()
    }

    #[test]
    fn six_partitions_over_three_members_are_two_each() {
        let t = assign(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &counts(&[("t", 6)]),
            &BTreeMap::new(),
        );
        assert_eq!(sizes(&t), [2, 2, 2]);
    }

    #[test]
    fn a_join_moves_only_what_balance_needs() {
        let s2 = subs(&[("a", &["t"]), ("b", &["t"])]);
        let c = counts(&[("t", 100)]);
        let before = assign(&s2, &c, &BTreeMap::new());
        let s3 = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let after = assign(&s3, &c, &before);
        let moved: usize = ["a", "b"]
            .iter()
            .map(|m| before[*m].difference(&after[*m]).count())
            .sum();
        assert_eq!(moved, 33, "{after:?}");
        assert_eq!(after["c"].len(), 33);
    }

    #[test]
    fn a_member_gets_only_topics_it_subscribes_to() {
        let t = assign(
            &subs(&[("a", &["x"]), ("b", &["x", "y"])]),
            &counts(&[("x", 2), ("y", 3), ("z", 4)]),
            &BTreeMap::new(),
        );
        assert!(t["a"].iter().all(|(topic, _)| topic == "x"));
        assert_eq!(t["b"].iter().filter(|(topic, _)| topic == "y").count(), 3);
        assert!(t.values().flatten().all(|(topic, _)| topic != "z"));
    }

    proptest! {
        /// Every partition of a subscribed topic has exactly one owner, owners
        /// subscribe to it, counts per topic differ by at most one, and
        /// reassigning a balanced result changes nothing.
        #[test]
        fn targets_are_complete_exclusive_balanced_and_stable(
            members in proptest::collection::btree_map("[a-f]", proptest::collection::btree_set("[xyz]", 0..3), 0..6),
            topics in proptest::collection::btree_map("[xyz]", 0u32..20, 0..3),
            seed in proptest::collection::vec(("[a-f]", "[xyz]", 0u32..25), 0..30),
        ) {
            let mut current: BTreeMap<String, BTreeSet<TopicPartition>> = BTreeMap::new();
            for (m, t, p) in seed {
                current.entry(m).or_default().insert((t, p));
            }
            let target = assign(&members, &topics, &current);
            for (topic, &count) in &topics {
                let subscribers: Vec<&String> = members.iter().filter(|(_, ts)| ts.contains(topic)).map(|(m, _)| m).collect();
                let mut owners = BTreeMap::new();
                for (m, ps) in &target {
                    for (t, p) in ps {
                        prop_assert!(*p < count || t != topic);
                        if t == topic {
                            prop_assert!(owners.insert(*p, m.clone()).is_none(), "{p} owned twice");
                            prop_assert!(members[m].contains(topic));
                        }
                    }
                }
                if subscribers.is_empty() {
                    prop_assert!(owners.is_empty());
                    continue;
                }
                prop_assert_eq!(owners.len() as u32, count);
                let loads: Vec<usize> = subscribers.iter().map(|m| target[*m].iter().filter(|(t, _)| t == topic).count()).collect();
                let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
                prop_assert!(max - min <= 1, "{loads:?}");
            }
            prop_assert_eq!(assign(&members, &topics, &target), target);
        }
    }
}
