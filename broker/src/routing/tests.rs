#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// The obviously correct matcher the trie is checked against: RabbitMQ's rules written
/// as a recursion over word slices (exponential on many `#`, fine for small inputs).
fn reference_matches(pattern: &str, key: &str) -> bool {
    fn split(s: &str) -> Vec<&str> {
        // RabbitMQ's split_topic_key_binary/1: <<>> is [], otherwise split on every dot.
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('.').collect()
        }
    }
    fn go(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => {
                (0..=key.len()).any(|i| key.get(i..).is_some_and(|k| go(rest, k)))
            }
            Some((&"*", rest)) => key.split_first().is_some_and(|(_, k)| go(rest, k)),
            Some((word, rest)) => key
                .split_first()
                .is_some_and(|(first, k)| first == word && go(rest, k)),
        }
    }
    go(&split(pattern), &split(key))
}

fn route(bindings: &TopicBindings, key: &str) -> Vec<u32> {
    let mut out = Vec::new();
    bindings.route(key, &mut out);
    out
}

/// (pattern, routing key, matches?). Sources:
/// - [R] rabbitmq-server `deps/rabbit/test/routing_SUITE.erl`, `topic1/1`: its binding
///   table (t1..t27) and the expected queues per routing key, one row per pair picked;
/// - [T] the RabbitMQ "Topics" tutorial (tutorial five): Q1 `*.orange.*`, Q2
///   `*.*.rabbit` and `lazy.#`, and its example keys;
/// - [S] `rabbit_db_topic_exchange:split_topic_key_binary/1`: `<<>>` is zero words,
///   otherwise `binary:split(Key, <<".">>, [global])`, so empty words are ordinary words;
/// - [W] the word rules of the topic exchange doc: only a whole word `*` or `#` is a
///   wildcard (the trie, like RabbitMQ's, keys edges by the whole word).
const TABLE: &[(&str, &str, bool)] = &[
    // [R] literal and `*`
    ("a.b.c", "a.b.c", true),
    ("a.b.b.c", "a.b.c", false),
    ("vodka.martini", "vodka.gin", false),
    ("a.*.c", "a.b.c", true),
    ("*.b.c", "b.b.c", true),
    ("a.*", "a.b", true),
    ("a.*", "a.b.c", false),
    ("*.*", "a.b", true),
    ("*.*", "a.b.c", false),
    ("*.*.*", "b.c.c", true),
    ("*.*.*", "a.b", false),
    ("*", "oneword", true),
    ("*", "a.b", false),
    // [R] `*` needs a word: the empty key is zero words
    ("*", "", false),
    // [R] `#` alone, empty key, empty pattern
    ("#", "", true),
    ("#", "a.a.a.a.a", true),
    ("#.#", "", true),
    ("", "", true),
    ("", "oneword", false),
    // [R] `#` at the end, in the middle, at the start, several `#`
    ("a.#", "a.a.a.a.a", true),
    ("a.#", "b.c.c", false),
    ("a.#.b", "a.b", true),
    ("a.#.b", "a.b.b", true),
    ("a.#.b", "a.b.c", false),
    ("a.#.#", "a.b", true),
    ("#.b", "a.b", true),
    ("#.b", "b.b.c", false),
    ("#.b.#", "a.b.c", true),
    ("#.b.#", "a.a.a.a.a", false),
    // [R] `*.#`, `#.*` and friends: at least one word
    ("*.#", "oneword", true),
    ("*.#", "", false),
    ("*.#.#", "vodka.gin", true),
    ("#.*.#", "nothing.here.at.all", true),
    ("#.*.#", "", false),
    ("#.*", "a.b.c", true),
    ("#.*", "", false),
    // [T] the tutorial's examples
    ("*.orange.*", "quick.orange.rabbit", true),
    ("*.*.rabbit", "quick.orange.rabbit", true),
    ("*.orange.*", "quick.orange.fox", true),
    ("lazy.#", "lazy.brown.fox", true),
    ("*.*.rabbit", "quick.brown.fox", false),
    ("*.orange.*", "orange", false),
    ("*.orange.*", "quick.orange.new.rabbit", false),
    ("lazy.#", "lazy.orange.new.rabbit", true),
    // brief: `a.#` matches `a`; `#.a.#` matches any key containing the word `a`
    ("a.#", "a", true),
    ("#.a.#", "a", true),
    ("#.a.#", "x.a.y", true),
    ("#.a.#", "ab", false),
    ("#.a.#", "x.y", false),
    ("#.#.#.a", "b.c.a", true),
    ("#.#.#.a", "a", true),
    ("#.#.#.a", "a.b", false),
    // [S] empty words: `a..b`, leading and trailing dots, all dots
    ("a..b", "a..b", true),
    ("a.*.b", "a..b", true),
    ("a.b", "a..b", false),
    ("a.*", "a.", true),
    ("a", "a.", false),
    ("*.a", ".a", true),
    ("#.a", ".a", true),
    ("a", ".a", false),
    ("*.*.*", "..", true),
    ("*.*", "..", false),
    ("#", "..", true),
    ("", ".", false),
    // [W] words containing `*` or `#` are literal, in patterns and in keys
    ("a*", "a*", true),
    ("a*", "ab", false),
    ("#b", "#b", true),
    ("#b", "b", false),
    ("#b", "x.b", false),
    ("a.*b", "a.xb", false),
    ("**", "a", false),
    ("**", "**", true),
    ("a", "*", false),
    ("*", "#", true),
    ("a.b", "a.#", false),
    ("a.#", "a.#", true),
];

#[test]
fn table_of_rabbitmq_cases() {
    assert!(TABLE.len() >= 30);
    for &(pattern, key, expected) in TABLE {
        let mut bindings = TopicBindings::new();
        bindings.insert(pattern, 7).unwrap();
        let want: &[u32] = if expected { &[7] } else { &[] };
        assert_eq!(
            route(&bindings, key),
            want,
            "pattern {pattern:?}, key {key:?}"
        );
        // The proptest's reference must agree with the same table.
        assert_eq!(
            reference_matches(pattern, key),
            expected,
            "reference: pattern {pattern:?}, key {key:?}"
        );
    }
}

/// rabbitmq-server `deps/rabbit/test/routing_SUITE.erl`, `topic1/1`, whole: the same
/// bindings (queue `tN` is partition N), the same keys, the same removals.
#[test]
fn rabbitmq_routing_suite_topic() {
    let table: &[(&str, u32)] = &[
        ("a.b.c", 1),
        ("a.*.c", 2),
        ("a.#.b", 3),
        ("a.b.b.c", 4),
        ("#", 5),
        ("#.#", 6),
        ("#.b", 7),
        ("*.*", 8),
        ("a.*", 9),
        ("*.b.c", 10),
        ("a.#", 11),
        ("a.#.#", 12),
        ("b.b.c", 13),
        ("a.b.b", 14),
        ("a.b", 15),
        ("b.c", 16),
        ("", 17),
        ("*.*.*", 18),
        ("vodka.martini", 19),
        ("a.b.c", 20),
        ("*.#", 21),
        ("#.*.#", 22),
        ("*.#.#", 23),
        ("*", 25),
        ("#.b.#", 26),
        ("args-test", 27),
    ];
    let mut bindings = TopicBindings::new();
    for &(pattern, partition) in table {
        assert!(bindings.insert(pattern, partition).unwrap());
    }
    // The suite binds `args-test` to t27 twice with different arguments; Warren's
    // bindings have no arguments, so the second one is the same binding.
    assert!(!bindings.insert("args-test", 27).unwrap());

    let check = |bindings: &TopicBindings, cases: &[(&str, &[u32])]| {
        for &(key, want) in cases {
            assert_eq!(route(bindings, key), want, "routing key {key:?}");
        }
    };
    check(
        &bindings,
        &[
            ("a.b.c", &[1, 2, 5, 6, 10, 11, 12, 18, 20, 21, 22, 23, 26]),
            ("a.b", &[3, 5, 6, 7, 8, 9, 11, 12, 15, 21, 22, 23, 26]),
            ("a.b.b", &[3, 5, 6, 7, 11, 12, 14, 18, 21, 22, 23, 26]),
            ("", &[5, 6, 17]),
            ("b.c.c", &[5, 6, 18, 21, 22, 23, 26]),
            ("a.a.a.a.a", &[5, 6, 11, 12, 21, 22, 23]),
            ("vodka.gin", &[5, 6, 8, 21, 22, 23]),
            ("vodka.martini", &[5, 6, 8, 19, 21, 22, 23]),
            ("b.b.c", &[5, 6, 10, 13, 18, 21, 22, 23, 26]),
            ("nothing.here.at.all", &[5, 6, 21, 22, 23]),
            ("oneword", &[5, 6, 21, 22, 23, 25]),
            ("args-test", &[5, 6, 21, 22, 23, 25, 27]),
        ],
    );

    // The suite removes bindings 1, 5, 11, 19, 21 and 27 of its list; 27 is the
    // `args-test` alias, which Warren does not have, so t27 stays bound as in the suite.
    for (pattern, partition) in [
        ("a.b.c", 1),
        ("#", 5),
        ("a.#", 11),
        ("vodka.martini", 19),
        ("*.#", 21),
    ] {
        assert!(
            bindings.remove(pattern, partition),
            "{pattern} -> {partition}"
        );
    }
    check(
        &bindings,
        &[
            ("a.b.c", &[2, 6, 10, 12, 18, 20, 22, 23, 26]),
            ("a.b", &[3, 6, 7, 8, 9, 12, 15, 22, 23, 26]),
            ("a.b.b", &[3, 6, 7, 12, 14, 18, 22, 23, 26]),
            ("", &[6, 17]),
            ("b.c.c", &[6, 18, 22, 23, 26]),
            ("a.a.a.a.a", &[6, 12, 22, 23]),
            ("vodka.gin", &[6, 8, 22, 23]),
            ("vodka.martini", &[6, 8, 22, 23]),
            ("b.b.c", &[6, 10, 13, 18, 22, 23, 26]),
            ("nothing.here.at.all", &[6, 22, 23]),
            ("oneword", &[6, 22, 23, 25]),
            ("args-test", &[6, 22, 23, 25, 27]),
        ],
    );

    // The suite then deletes the exchange: nothing matches.
    for (pattern, partition) in bindings.bindings() {
        assert!(bindings.remove(&pattern, partition));
    }
    check(&bindings, &[("a.b.c", &[]), ("b.b.c", &[]), ("", &[])]);
    assert!(bindings.is_empty());
    assert_eq!(bindings.node_count(), 1);
}

#[test]
fn insert_returns_false_for_an_existing_binding() {
    let mut bindings = TopicBindings::new();
    assert!(bindings.insert("a.*", 1).unwrap());
    assert!(!bindings.insert("a.*", 1).unwrap());
    assert!(bindings.insert("a.*", 2).unwrap());
    assert!(bindings.insert("a.#", 1).unwrap());
    assert!(bindings.insert("", 1).unwrap());
    assert!(!bindings.insert("", 1).unwrap());
    assert_eq!(bindings.len(), 4);
}

#[test]
fn remove_returns_false_for_a_missing_binding() {
    let mut bindings = TopicBindings::new();
    assert!(!bindings.remove("a.b", 1));
    assert!(!bindings.remove("", 1));
    bindings.insert("a.b", 1).unwrap();
    let nodes = bindings.node_count();
    assert!(!bindings.remove("a.b", 2), "other partition");
    assert!(
        !bindings.remove("a", 1),
        "a prefix of a pattern: the node exists, unbound"
    );
    assert!(!bindings.remove("a.b.c", 1), "longer than any pattern");
    assert!(
        !bindings.remove("a.*", 1),
        "a wildcard is not the literal it matches"
    );
    assert!(!bindings.remove("", 1));
    assert_eq!((bindings.len(), bindings.node_count()), (1, nodes));
    assert!(bindings.remove("a.b", 1));
    assert!(!bindings.remove("a.b", 1), "already removed");
    assert!(bindings.is_empty());
}

#[test]
fn removing_every_binding_prunes_the_trie_to_its_root() {
    let patterns = [
        "a.b.c", "a.b", "a.*.c", "#", "#.#.x", "", "..", ".a", "a.#.b", "*",
    ];
    let mut bindings = TopicBindings::new();
    assert_eq!(bindings.node_count(), 1);
    for (i, pattern) in patterns.iter().enumerate() {
        for partition in 0..3 {
            bindings
                .insert(pattern, partition + u32::try_from(i).unwrap())
                .unwrap();
        }
    }
    assert!(bindings.node_count() > 10);
    // Remove in an order unrelated to the insertion order: shared prefixes go last
    // for some patterns and first for others.
    let mut all = bindings.bindings();
    all.reverse();
    all.rotate_left(7);
    for (pattern, partition) in all {
        assert!(bindings.remove(&pattern, partition));
    }
    assert!(bindings.is_empty());
    assert_eq!(bindings.node_count(), 1);
}

#[test]
fn remove_keeps_the_nodes_other_bindings_need() {
    let mut bindings = TopicBindings::new();
    bindings.insert("a.b", 1).unwrap();
    bindings.insert("a.b.c.d", 2).unwrap();
    bindings.insert("a.b.x.y", 3).unwrap();
    assert_eq!(bindings.node_count(), 1 + 2 + 2 + 2);

    // `c.d` only serves partition 2: both nodes go, `a.b` and `x.y` stay.
    assert!(bindings.remove("a.b.c.d", 2));
    assert_eq!(bindings.node_count(), 1 + 2 + 2);
    assert_eq!(route(&bindings, "a.b"), [1]);
    assert_eq!(route(&bindings, "a.b.x.y"), [3]);

    // `a.b` still leads to `x.y`: its partition goes, its node stays.
    assert!(bindings.remove("a.b", 1));
    assert_eq!(bindings.node_count(), 1 + 2 + 2);
    assert_eq!(route(&bindings, "a.b"), [] as [u32; 0]);
    assert_eq!(route(&bindings, "a.b.x.y"), [3]);

    assert!(bindings.remove("a.b.x.y", 3));
    assert_eq!(bindings.node_count(), 1);
}

#[test]
fn route_lists_a_partition_once_when_several_patterns_match() {
    let mut bindings = TopicBindings::new();
    // The tutorial's Q2: `lazy.pink.rabbit` matches both of its bindings.
    bindings.insert("*.*.rabbit", 2).unwrap();
    bindings.insert("lazy.#", 2).unwrap();
    bindings.insert("*.orange.*", 1).unwrap();
    bindings.insert("#", 9).unwrap();
    bindings.insert("#.#", 9).unwrap();
    bindings.insert("#.rabbit", 0).unwrap();
    assert_eq!(route(&bindings, "lazy.pink.rabbit"), [0, 2, 9]);
    assert_eq!(route(&bindings, "lazy.orange.rabbit"), [0, 1, 2, 9]);
    assert_eq!(route(&bindings, "quick.brown.fox"), [9]);
}

#[test]
fn route_replaces_the_contents_of_out() {
    let mut bindings = TopicBindings::new();
    bindings.insert("a", 3).unwrap();
    let mut out = vec![42, 1];
    bindings.route("a", &mut out);
    assert_eq!(out, [3]);
    bindings.route("b", &mut out);
    assert!(out.is_empty());
}

#[test]
fn bindings_lists_every_pair_sorted() {
    let mut bindings = TopicBindings::new();
    for (pattern, partition) in [
        ("a.#", 2),
        ("", 0),
        (".a", 1),
        ("a.#", 1),
        ("*", 4),
        ("#", 3),
        ("a..b", 5),
        ("a.", 6),
        ("..", 7),
        ("a*.#b", 8),
    ] {
        bindings.insert(pattern, partition).unwrap();
    }
    let want: Vec<(String, u32)> = [
        ("", 0),
        ("#", 3),
        ("*", 4),
        ("..", 7),
        (".a", 1),
        ("a*.#b", 8), // byte order: `*` (0x2a) sorts before `.` (0x2e)
        ("a.", 6),
        ("a.#", 1),
        ("a.#", 2),
        ("a..b", 5),
    ]
    .iter()
    .map(|&(p, n)| (p.to_owned(), n))
    .collect();
    assert_eq!(bindings.bindings(), want);
    assert_eq!(bindings.len(), want.len());
}

#[test]
fn validate_key_allows_255_bytes() {
    assert_eq!(validate_key(""), Ok(()));
    assert_eq!(validate_key(&"a".repeat(255)), Ok(()));
    // 85 three-byte characters: 255 bytes.
    assert_eq!(validate_key(&"€".repeat(85)), Ok(()));
    assert_eq!(
        validate_key(&"a".repeat(256)),
        Err(KeyError::TooLong {
            len_bytes: 256,
            max_bytes: 255
        })
    );
    assert_eq!(
        validate_key(&"€".repeat(86)),
        Err(KeyError::TooLong {
            len_bytes: 258,
            max_bytes: MAX_KEY_BYTES
        })
    );
    assert_eq!(
        validate_key(&"a".repeat(300)).unwrap_err().to_string(),
        "key is 300 bytes long, the limit is 255"
    );
}

#[test]
fn insert_refuses_a_pattern_over_255_bytes() {
    let mut bindings = TopicBindings::new();
    let long = "a.".repeat(128); // 256 bytes
    assert!(matches!(
        bindings.insert(&long, 1),
        Err(KeyError::TooLong { len_bytes: 256, .. })
    ));
    assert!(bindings.is_empty());
    assert_eq!(bindings.node_count(), 1);
}

#[test]
fn deepest_pattern_routes_and_prunes() {
    // 255 dots: 256 empty words, the deepest trie a valid pattern can build.
    let deepest = ".".repeat(255);
    let mut bindings = TopicBindings::new();
    assert!(bindings.insert(&deepest, 1).unwrap());
    assert_eq!(bindings.node_count(), 257);
    assert_eq!(route(&bindings, &deepest), [1]);
    assert_eq!(route(&bindings, &".".repeat(254)), [] as [u32; 0]);
    // A copy drops and clones recursively: the depth is bounded, it must not overflow.
    drop(bindings.clone());
    assert!(bindings.remove(&deepest, 1));
    assert_eq!(bindings.node_count(), 1);
}

#[test]
fn many_hashes_on_a_long_key_do_not_blow_up() {
    // 127 `#` then `a`: 255 bytes. A naive backtracking matcher tries the ways to
    // split 128 words over 127 `#`s; the state set visits each node once per word.
    let hashes = format!("{}a", "#.".repeat(127));
    let mut bindings = TopicBindings::new();
    bindings.insert(&hashes, 1).unwrap();
    bindings.insert("#.#.#.a", 2).unwrap();
    bindings.insert(&("#.*.".repeat(63) + "b"), 3).unwrap();
    let miss = "b.".repeat(127) + "b"; // 128 words, no `a`
    let hit = "b.".repeat(127) + "a";
    // 10 rounds take ~0.3 s in a debug build; backtracking would take years,
    // so the bound tells them apart even on a loaded machine (100 rounds took
    // 3.2 s and once passed 5 s under a parallel build).
    let start = std::time::Instant::now();
    for _ in 0..10 {
        assert_eq!(route(&bindings, &miss), [3]);
        assert_eq!(route(&bindings, &hit), [1, 2]);
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// Pattern words, wildcards and look-alikes included.
fn pattern_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "", "*", "#", "a*", "#b"]),
        0..5,
    )
    .prop_map(|words| words.join("."))
}

/// Routing-key words: `*` and `#` are plain words in a key.
fn key_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "", "*", "#", "a*"]),
        0..6,
    )
    .prop_map(|words| words.join("."))
}

proptest! {
    /// The trie against a `BTreeSet` of bindings and the reference matcher: the same
    /// insert/remove answers, the same `bindings()`, the same partitions for every key;
    /// and an empty trie once the model is empty.
    #[test]
    fn route_agrees_with_the_reference_matcher(
        ops in prop::collection::vec((any::<bool>(), pattern_strategy(), 0..4_u32), 0..40),
        keys in prop::collection::vec(key_strategy(), 1..20),
    ) {
        let mut bindings = TopicBindings::new();
        let mut model = BTreeSet::new();
        for (insert, pattern, partition) in ops {
            if insert {
                let added = model.insert((pattern.clone(), partition));
                prop_assert_eq!(bindings.insert(&pattern, partition).unwrap(), added);
            } else {
                let removed = model.remove(&(pattern.clone(), partition));
                prop_assert_eq!(bindings.remove(&pattern, partition), removed);
            }
        }
        prop_assert_eq!(bindings.len(), model.len());
        prop_assert_eq!(bindings.bindings(), model.iter().cloned().collect::<Vec<_>>());
        for key in &keys {
            let want: BTreeSet<u32> = model
                .iter()
                .filter(|(pattern, _)| reference_matches(pattern, key))
                .map(|&(_, partition)| partition)
                .collect();
            prop_assert_eq!(route(&bindings, key), want.into_iter().collect::<Vec<_>>(), "key {:?}", key);
        }
        for (pattern, partition) in &model {
            prop_assert!(bindings.remove(pattern, *partition));
        }
        prop_assert!(bindings.is_empty());
        prop_assert_eq!(bindings.node_count(), 1);
    }
}
