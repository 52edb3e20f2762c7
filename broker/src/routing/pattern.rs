//! The `topic` routing mode's matcher: a trie of pattern words ([`TopicBindings`]),
//! and the key length check ([`validate_key`]). The matching rules are in the
//! [module docs](super).
//!
//! # Structure
//! One [`Node`] per distinct pattern prefix, keyed by word. A node has a map of
//! literal children and two dedicated children for `*` and `#`, so a routing-key word
//! costs one hash lookup per live state, however many bindings there are. The
//! partitions bound by a pattern sit on the node its last word leads to (the root for
//! the empty pattern), sorted and without duplicates.
//!
//! # Invariants
//! - Every node other than the root holds a partition or has a child: `remove` prunes
//!   the branch it empties, so bind/unbind churn leaves nothing behind.
//! - `len` is the number of (pattern, partition) pairs.
//! - The trie is at most [`MAX_KEY_BYTES`] + 1 = 256 levels deep (255 dots are 256
//!   empty words), because `insert` refuses longer patterns. The only recursion left
//!   is the compiler's `Drop`/`Clone` of nested nodes, bounded by that depth;
//!   `insert`, `remove`, `route` and `bindings` are loops.

use std::collections::HashMap;

/// The longest routing or binding key in bytes: RabbitMQ's limit (an AMQP 0-9-1
/// `shortstr`). Not configurable: it also bounds the trie's depth (see the module docs).
pub const MAX_KEY_BYTES: usize = 255;

/// A routing or binding key that Warren refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("key is {len_bytes} bytes long, the limit is {max_bytes}")]
    TooLong {
        /// The key's length in bytes.
        len_bytes: usize,
        /// The limit, [`MAX_KEY_BYTES`].
        max_bytes: usize,
    },
}

/// Checks a binding key (pattern) or a routing key. Valid UTF-8 is guaranteed by
/// `&str`; any word, empty ones included, is allowed, as in RabbitMQ.
///
/// # Errors
/// [`KeyError::TooLong`] if `key` is longer than [`MAX_KEY_BYTES`].
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong {
            len_bytes: key.len(),
            max_bytes: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// Splits a key into words as RabbitMQ's `split_topic_key_binary/1` does: the empty
/// key is zero words, otherwise every `.` separates two words, which may be empty.
pub(crate) fn words(key: &str) -> impl Iterator<Item = &str> {
    (!key.is_empty())
        .then_some(key)
        .into_iter()
        .flat_map(|key| key.split('.'))
}

/// What a pattern word matches.
#[derive(Debug, Clone, Copy)]
enum PatternWord<'a> {
    /// `*`: exactly one word.
    Star,
    /// `#`: zero or more words.
    Hash,
    /// Anything else, `a*` and `#b` included: itself.
    Literal(&'a str),
}

impl<'a> PatternWord<'a> {
    fn parse(word: &'a str) -> Self {
        match word {
            "*" => Self::Star,
            "#" => Self::Hash,
            _ => Self::Literal(word),
        }
    }
}

/// One pattern prefix. See the module docs for the invariants.
#[derive(Debug, Default, Clone)]
struct Node {
    /// Children by literal word; never `*` or `#`.
    literal: HashMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// Partitions bound by the pattern that ends here: sorted, no duplicates.
    partitions: Vec<u32>,
}

impl Node {
    fn child(&self, word: PatternWord<'_>) -> Option<&Node> {
        match word {
            PatternWord::Star => self.star.as_deref(),
            PatternWord::Hash => self.hash.as_deref(),
            PatternWord::Literal(w) => self.literal.get(w),
        }
    }

    fn child_mut(&mut self, word: PatternWord<'_>) -> Option<&mut Node> {
        match word {
            PatternWord::Star => self.star.as_deref_mut(),
            PatternWord::Hash => self.hash.as_deref_mut(),
            PatternWord::Literal(w) => self.literal.get_mut(w),
        }
    }

    fn child_or_insert(&mut self, word: PatternWord<'_>) -> &mut Node {
        match word {
            PatternWord::Star => self.star.get_or_insert_default(),
            PatternWord::Hash => self.hash.get_or_insert_default(),
            PatternWord::Literal(w) => self.literal.entry(w.into()).or_default(),
        }
    }

    fn remove_child(&mut self, word: PatternWord<'_>) {
        match word {
            PatternWord::Star => self.star = None,
            PatternWord::Hash => self.hash = None,
            PatternWord::Literal(w) => {
                self.literal.remove(w);
            }
        }
    }

    fn child_count(&self) -> usize {
        self.literal.len() + usize::from(self.star.is_some()) + usize::from(self.hash.is_some())
    }

    /// The node's children with the pattern word that leads to each.
    fn children(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.literal
            .iter()
            .map(|(w, n)| (&**w, n))
            .chain(self.star.as_deref().map(|n| ("*", n)))
            .chain(self.hash.as_deref().map(|n| ("#", n)))
    }
}

/// A matcher state: a node whose pattern prefix matches the words consumed so far.
/// `in_hash` is true when the node was reached through a `#` edge, so it may absorb
/// any further word.
#[derive(Clone, Copy)]
struct State<'a> {
    node: &'a Node,
    in_hash: bool,
}

/// Pushes `node` and the nodes behind its chain of `#` children (a `#` may match zero
/// words, so `a.#.#` is live as soon as `a` is).
fn push_with_hash_chain<'a>(states: &mut Vec<State<'a>>, node: &'a Node, in_hash: bool) {
    states.push(State { node, in_hash });
    let mut node = node;
    while let Some(hash) = node.hash.as_deref() {
        states.push(State {
            node: hash,
            in_hash: true,
        });
        node = hash;
    }
}

/// Removes repeated nodes (several paths through `#` can reach the same node).
fn dedup_states(states: &mut Vec<State<'_>>) {
    states.sort_unstable_by_key(|s| std::ptr::from_ref(s.node));
    states.dedup_by(|a, b| std::ptr::eq(a.node, b.node));
}

/// The `topic`-mode bindings of one topic: binding pattern -> partitions.
///
/// Not synchronized: mutate it under the topic's lock; [`route`](Self::route) takes
/// `&self`, so readers can share it (for instance behind an `RwLock` or an `Arc` swap).
#[derive(Debug, Default, Clone)]
pub struct TopicBindings {
    root: Node,
    /// Number of (pattern, partition) pairs.
    len: usize,
}

impl TopicBindings {
    /// No bindings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `pattern` to `partition`. Returns `Ok(false)` if that binding was already
    /// there (nothing changes).
    ///
    /// # Errors
    /// [`KeyError`] if `validate_key(pattern)` fails; the bindings are unchanged. The
    /// check is here, not only in the request parser, because it bounds the trie depth.
    pub fn insert(&mut self, pattern: &str, partition: u32) -> Result<bool, KeyError> {
        validate_key(pattern)?;
        let mut node = &mut self.root;
        for word in words(pattern) {
            node = node.child_or_insert(PatternWord::parse(word));
        }
        match node.partitions.binary_search(&partition) {
            Ok(_) => Ok(false),
            Err(at) => {
                node.partitions.insert(at, partition);
                self.len += 1;
                Ok(true)
            }
        }
    }

    /// Unbinds `pattern` from `partition`, pruning the nodes only that binding needed.
    /// Returns false if the binding was not there.
    pub fn remove(&mut self, pattern: &str, partition: u32) -> bool {
        // First pass, read-only: find the binding, and the deepest node on its path that
        // must stay once the binding is gone (the root, or a node with partitions or
        // with another child). Everything below that node then exists only for this
        // binding if the pattern's own node ends up empty.
        let mut node = &self.root;
        let mut depth = 0;
        let mut keep_depth = 0;
        for word in words(pattern) {
            if depth > 0 && (!node.partitions.is_empty() || node.child_count() > 1) {
                keep_depth = depth;
            }
            match node.child(PatternWord::parse(word)) {
                Some(child) => node = child,
                None => return false,
            }
            depth += 1;
        }
        if node.partitions.binary_search(&partition).is_err() {
            return false;
        }
        let prune = depth > 0 && node.partitions.len() == 1 && node.child_count() == 0;

        // Second pass: walk down again, mutably, to the node to change.
        let stop = if prune { keep_depth } else { depth };
        let mut path = words(pattern).map(PatternWord::parse);
        let mut node = &mut self.root;
        for word in path.by_ref().take(stop) {
            match node.child_mut(word) {
                Some(child) => node = child,
                None => {
                    debug_assert!(false, "the first pass found this path");
                    return false;
                }
            }
        }
        if prune {
            match path.next() {
                Some(word) => node.remove_child(word),
                None => debug_assert!(false, "keep_depth < depth"),
            }
        } else if let Ok(at) = node.partitions.binary_search(&partition) {
            node.partitions.remove(at);
        }
        self.len -= 1;
        true
    }

    /// Replaces the contents of `out` with the partitions bound by every pattern that
    /// matches `routing_key`, sorted and without duplicates. Empty if nothing matches.
    ///
    /// Does not check the key's length ([`validate_key`] is the request parser's job);
    /// any key is matched correctly.
    ///
    /// Cost: the trie is run as a set of live states, one word at a time, so each
    /// (node, word) pair is visited at most once: O(words x live states), whatever the
    /// number of bindings and however many `#` the patterns have, then the sort of the
    /// result. Allocates two small `Vec`s of states per call (sized by the live states,
    /// not by the bindings); a call routes a whole batch, so this is not per record.
    pub fn route(&self, routing_key: &str, out: &mut Vec<u32>) {
        out.clear();
        let mut live = Vec::new();
        let mut next = Vec::new();
        push_with_hash_chain(&mut live, &self.root, false);
        for word in words(routing_key) {
            next.clear();
            for state in &live {
                if let Some(child) = state.node.literal.get(word) {
                    push_with_hash_chain(&mut next, child, false);
                }
                if let Some(child) = state.node.star.as_deref() {
                    push_with_hash_chain(&mut next, child, false);
                }
                if state.in_hash {
                    // `#` absorbs this word too; its own `#` chain is already live.
                    next.push(*state);
                }
            }
            if next.is_empty() {
                return;
            }
            dedup_states(&mut next);
            std::mem::swap(&mut live, &mut next);
        }
        for state in &live {
            out.extend_from_slice(&state.node.partitions);
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Every (pattern, partition) pair, sorted, for describe and persistence.
    pub fn bindings(&self) -> Vec<(String, u32)> {
        let mut out = Vec::with_capacity(self.len);
        // (node, its pattern, its depth): the depth tells the root's "" (no word) apart
        // from a first word that is empty.
        let mut stack = vec![(&self.root, String::new(), 0_usize)];
        while let Some((node, pattern, depth)) = stack.pop() {
            out.extend(node.partitions.iter().map(|&p| (pattern.clone(), p)));
            for (word, child) in node.children() {
                let child_pattern = if depth == 0 {
                    word.to_owned()
                } else {
                    format!("{pattern}.{word}")
                };
                stack.push((child, child_pattern, depth + 1));
            }
        }
        out.sort_unstable();
        out
    }

    /// Number of (pattern, partition) bindings.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no bindings.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes, the root included (1 when empty).
    #[cfg(test)]
    pub(crate) fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children().map(|(_, child)| child));
        }
        count
    }
}
