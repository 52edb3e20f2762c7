//! The standing adversarial suite: arbitrary well-framed requests of every api
//! key against a real broker, through the real request handlers.
//!
//! One broker runs in-process on `127.0.0.1:0` with its data in a tempdir, with
//! users (a superuser and a user limited by ACLs), topics of every routing mode
//! and durability (`hash`/`direct`/`topic`, `none`/`fsync`), an alternate topic,
//! a share topic with a dead-letter topic, a consumer group and a share group.
//! Then, case after case, one request goes out, generated in one of two ways:
//!
//! - **structure-aware**: a request struct of the protocol crate with arbitrary
//!   field values (extreme and negative numbers, empty and huge lists, empty,
//!   long and odd names), encoded by the real encoders; Produce bodies carry
//!   RecordBatches whose header fields and record bytes are mutated and whose
//!   CRC is then fixed up, so they pass the CRC check and reach the deeper
//!   validation;
//! - **byte-level**: such a body with bit flips, truncation, length fields set
//!   to `i32::MAX`/`u32::MAX`, inserted or appended garbage; the frame and its
//!   header (api key, version) stay valid, so the body decoder and the handler
//!   see it.
//!
//! A few cases use an unknown api key or an unsupported version.
//!
//! What must hold, checked after every case and in a health check every
//! [`HEALTH_EVERY`] cases and at the end:
//! - no panic anywhere in the process (a panic hook counts them, spawned tasks
//!   included);
//! - every request is answered within [`REPLY_TIMEOUT`] (long polls are capped
//!   at [`MAX_WAIT_MS`] by the generator), and every answer decodes as the
//!   api's response or an error body;
//! - a new connection logs in and gets ApiVersions; `/healthz` answers; a
//!   normal produce and fetch round-trips on a topic the generator never
//!   names, and on an `fsync` topic with acks=-1;
//! - the resident peak (`VmHWM` in `/proc/self/status`) rises by less than
//!   [`CASE_PEAK_LIMIT_KIB`] on any one case, and ends less than
//!   [`RSS_GROWTH_LIMIT_KIB`] above the resident set after setup.
//!
//! A connection the broker closes is allowed (it is reopened and counted), as
//! the protocol allows closing on a request it cannot trust. Now and then a
//! few cases go out back to back on one connection (pipelined), answers read
//! after.
//!
//! The assertions hold whether or not the broker validates a forged batch's
//! records (refused with `CORRUPT_MESSAGE` or accepted): the health check
//! fetches from the offset its own produce was given, and answers are checked
//! for shape, not for a particular error code.
//!
//! Knobs (environment): `WARREN_FUZZ_CASES` (default [`DEFAULT_CASES`]),
//! `WARREN_FUZZ_SEED` (default [`DEFAULT_SEED`]; decimal or `0x` hex),
//! `WARREN_FUZZ_SECS` (a hard wall-clock cap, default [`DEFAULT_MAX_SECS`]: the
//! run stops early, without failing, when it is reached), `WARREN_FUZZ_RSS_MIB`
//! (the RSS growth bound, default [`RSS_GROWTH_LIMIT_KIB`] / 1024),
//! `WARREN_FUZZ_VERBOSE` (print every answer code's count and each closed
//! connection). Each case's inputs
//! depend only on the seed and the case number, so a run is deterministic for
//! a seed (the broker's state it meets depends on the cases before it).
//! docs/OPERATIONS.md, "Adversarial test suite", has the commands.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};
use warren_broker::{Broker, BrokerConfig};
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::auth::{
    AclEntry, AuthenticateRequest, CreateAclRequest, CreateUserRequest, DeleteAclRequest,
    DeleteUserRequest, ListAclsRequest, ListUsersRequest, Permission, Resource, ResourceType,
};
use warren_protocol::api::bindings::{BindRequest, UnbindRequest};
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, DescribeGroupRequest, FetchOffsetsRequest,
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest,
    TopicPartitions,
};
use warren_protocol::api::list_offsets::{ListOffsetsRequest, ListOffsetsTopic};
use warren_protocol::api::metadata::MetadataRequest;
use warren_protocol::api::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use warren_protocol::api::share::{
    AckBatch, AckKind, ShareAckPartition, ShareAckRequest, ShareFetchRequest,
};
use warren_protocol::api::topics::{
    CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest, ListTopicsRequest,
};
use warren_protocol::api::{self, ApiKey, Body, ErrorBody, Request};
use warren_protocol::frame::{RequestFrame, RequestHeader, ResponseCodec, ResponseFrame};
use warren_protocol::record_batch::{CRC_OFFSET, CRC_START, compute_crc};
use warren_protocol::scram::{KEY_BYTES, ScramClient, ScramCredential};
use warren_protocol::{Compression, ErrorCode, Header, RecordBatchBuilder};

use common::{batch, fetch, http_get, produce, values_of};

/// Cases in a default run (the CI-bounded one): about a minute in a debug
/// build on a loaded 2-core machine (20,000 took 77 s there).
const DEFAULT_CASES: u64 = 16_000;
/// The default seed, fixed so a CI failure reproduces.
const DEFAULT_SEED: u64 = 0x5741_5252_454e;
/// Hard wall-clock cap of a run, in seconds (`WARREN_FUZZ_SECS`).
const DEFAULT_MAX_SECS: u64 = 180;
/// Longest wait for one reply; more is a hang.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `max_wait_ms` a generated Fetch or ShareFetch carries (and longest
/// Produce `timeout_ms`, clamped to [`MAX_PRODUCE_TIMEOUT_MS`]), so a long
/// poll is never mistaken for a hang.
const MAX_WAIT_MS: u32 = 200;
/// Largest Fetch `max_bytes` a generated request carries: the broker may
/// answer with that much, and reading gigabytes back tests only throughput
/// (the bound on a response's size is its own test, in raw_protocol.rs).
const MAX_FETCH_BYTES: u32 = 32 << 20;
/// Largest response frame the harness reads.
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Longest Produce `timeout_ms` a generated request carries.
const MAX_PRODUCE_TIMEOUT_MS: u32 = 5_000;
/// A burst (2 to `BURST_MAX + 1` cases pipelined) starts at a case with
/// probability `BURST_MAX / BURST_ONE_IN`.
const BURST_MAX: usize = 7;
const BURST_ONE_IN: usize = 70;
/// Mixed into the seed for the burst decision, so it does not correlate
/// with the case's own draws.
const BURST_SALT: u64 = 0xb0b5_7000;
/// A health check every this many cases.
const HEALTH_EVERY: u64 = 500;
/// Largest growth of the process's resident set over a default run, in KiB
/// (`WARREN_FUZZ_RSS_MIB` sets another, in MiB, for longer runs): the broker
/// keeps what the cases create (segments and their mapped indexes, groups,
/// users, share state), but must not grow without bound.
const RSS_GROWTH_LIMIT_KIB: u64 = 384 * 1024;
/// Largest rise of the resident peak (`VmHWM`) one case (or burst) may
/// cause, in KiB: a request that makes the broker allocate far more than
/// its own size (the largest generated body is a few MiB) is a bug even if
/// the memory is freed after.
const CASE_PEAK_LIMIT_KIB: u64 = 64 * 1024;
/// Largest list a generated request carries (huge counts stay under the
/// 16 MiB frame limit and under the quadratic paths other fixes bound).
const HUGE_LIST: usize = 3_000;

const ROOT_PW: &str = "fuzz-root-secret";
const ALICE_PW: &str = "fuzz-alice-secret";

/// A topic's `(key, value)` configs.
type Configs = &'static [(&'static str, &'static str)];

/// Topics created before the run and re-created by each health check:
/// `(name, partitions, configs)`. `fz.health` is never named by the generator.
const FIXTURE_TOPICS: &[(&str, u32, Configs)] = &[
    ("fz.hash", 3, &[("durability", "none")]),
    ("fz.fsync", 2, &[("durability", "fsync")]),
    ("fz.spill", 1, &[]),
    (
        "fz.direct",
        2,
        &[("routing", "direct"), ("alternate.topic", "fz.spill")],
    ),
    (
        "fz.pattern",
        2,
        &[("routing", "topic"), ("durability", "fsync")],
    ),
    ("fz.dlq", 1, &[]),
    (
        "fz.queue",
        2,
        &[
            ("dead.letter.topic", "fz.dlq"),
            ("max.delivery.attempts", "2"),
        ],
    ),
    ("fz.health", 1, &[]),
];
const HEALTH_TOPIC: &str = "fz.health";

/// Names the generator picks from (plus empty, long and random ones).
const TOPICS: &[&str] = &[
    "fz.hash",
    "fz.fsync",
    "fz.spill",
    "fz.direct",
    "fz.pattern",
    "fz.dlq",
    "fz.queue",
    "fz.new",
    "fz.scratch",
    "no.such.topic",
];
/// The fixtures Produce, Fetch and the share apis mostly name.
const DATA_TOPICS: [&str; 7] = [
    "fz.hash",
    "fz.fsync",
    "fz.direct",
    "fz.pattern",
    "fz.queue",
    "fz.queue",
    "fz.new",
];
/// Topics CreateTopic and DeleteTopic mostly name (fixtures come back at
/// each health check).
const SCRATCH_TOPICS: &[&str] = &["fz.new", "fz.scratch", "fz.s2", "fz.s3"];
const GROUPS: &[&str] = &["g1", "g2", "sg1", "sg2", "fz.queue"];
const USERS: &[&str] = &["alice", "mallory", "bob"];
const MEMBERS: &[&str] = &["m1", "m2", "member-0"];
const ROUTING_KEYS: &[&str] = &[
    "a",
    "b",
    "x.y",
    "x.y.z",
    "#",
    "*",
    "*.*",
    "a.#.b",
    "#.#",
    "#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#",
    "*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#.*.#",
    "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.b",
    "................................................................................",
];
const CONFIG_KEYS: &[&str] = &[
    "durability",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "routing",
    "alternate.topic",
    "dead.letter.topic",
    "max.delivery.attempts",
    "share.lock.timeout.ms",
    "no.such.key",
];
const CONFIG_VALUES: &[&str] = &[
    "fsync",
    "none",
    "interval:100",
    "interval:0",
    "interval:",
    "hash",
    "direct",
    "topic",
    "-1",
    "0",
    "1",
    "1048576",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "fz.spill",
    "fz.dlq",
    "fz.new",
    "fz.s2",
    "128",
    "1024",
    "1000",
    "",
];

/// Values `key` accepts, at the edges of its range, so created topics take
/// odd but valid settings (tiny segments, instant retention, self-references).
fn valid_values(key: &str) -> &'static [&'static str] {
    match key {
        "durability" => &["fsync", "none", "interval:5"],
        "retention.bytes" => &["0", "1024", "-1"],
        "retention.ms" => &["1", "1000", "-1"],
        "segment.bytes" => &["1024", "4096"],
        "segment.ms" => &["1", "100"],
        "max.message.bytes" => &["128", "1024", "1048576"],
        "routing" => &["hash", "direct", "topic"],
        "alternate.topic" | "dead.letter.topic" => &["fz.spill", "fz.dlq", "fz.new", "fz.s2"],
        "max.delivery.attempts" => &["1", "2", "100"],
        "share.lock.timeout.ms" => &["1000", "3600000"],
        _ => &[""],
    }
}

/// Panics anywhere in the process since the hook was installed.
static PANICS: AtomicUsize = AtomicUsize::new(0);
/// The case being run, for the watchdog's message.
static CURRENT_CASE: AtomicU64 = AtomicU64::new(0);

/// Seconds the watchdog allows beyond `WARREN_FUZZ_SECS` (setup, the last
/// case's timeouts, the final health check and shutdown).
const WATCHDOG_SLACK_SECS: u64 = 240;

/// Ends the process if the run is not done by `secs`: the broker shares the
/// test's runtime, so a handler spinning on both worker threads would also
/// stop the per-request timeouts from firing. An OS thread is the only
/// clock that cannot be starved.
fn start_watchdog(secs: u64, seed: u64) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "adversarial: watchdog: the run is wedged after {secs} s at case {} (seed {seed:#x}); \
             a handler blocks the runtime",
            CURRENT_CASE.load(Ordering::SeqCst)
        );
        std::process::exit(101);
    });
    done
}

/// Counts every panic (spawned tasks and blocking threads included), then
/// prints it as the default hook does.
fn install_panic_counter() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

/// SplitMix64: small, fast, and the same sequence on every platform and
/// every version of every crate.
struct Rng {
    state: u64,
    /// A huge list was drawn in this case (at most one per case).
    huge_used: bool,
    /// This case aims at amplification: one name is drawn at the longest
    /// length the wire allows (at most one per case), next to huge lists.
    amplify: bool,
}

impl Rng {
    fn for_case(seed: u64, case: u64) -> Rng {
        let mut r = Rng {
            state: seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            huge_used: false,
            amplify: false,
        };
        r.next();
        r.amplify = r.chance(1, 25);
        r
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Random bytes, `min..max` of them.
    fn bytes_below(&mut self, min: usize, max: usize) -> Vec<u8> {
        let n = min + self.below(max - min);
        self.bytes(n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn u32(&mut self) -> u32 {
        match self.below(8) {
            0 => 0,
            1 => 1,
            2 => u32::MAX,
            3 => i32::MAX as u32,
            4 => 1 << 31,
            5 => self.below(4) as u32,
            _ => self.next() as u32,
        }
    }

    /// A partition number: mostly one that exists.
    fn small_or_u32(&mut self) -> u32 {
        if self.chance(3, 4) {
            self.below(3) as u32
        } else {
            self.u32()
        }
    }

    fn u64(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => i64::MAX as u64,
            4 => 1 << 63,
            5 => self.below(100) as u64,
            _ => self.next(),
        }
    }

    fn i64(&mut self) -> i64 {
        match self.below(8) {
            0 => 0,
            1 => -1,
            2 => -2,
            3 => i64::MAX,
            4 => i64::MIN,
            5 => 1_700_000_000_000,
            _ => self.next() as i64,
        }
    }

    /// A list length: mostly small, sometimes empty, rarely huge (at most
    /// one huge list per case, so nested lists stay under the frame limit).
    fn len(&mut self) -> usize {
        if self.amplify && !self.huge_used && self.chance(1, 2) {
            self.huge_used = true;
            return HUGE_LIST;
        }
        match self.below(20) {
            0..=3 => 0,
            4..=15 => 1 + self.below(3),
            16..=18 => 4 + self.below(30),
            _ if self.huge_used => 4 + self.below(30),
            _ => {
                self.huge_used = true;
                HUGE_LIST
            }
        }
    }

    /// A name from `pool`, or an empty, long or random one.
    fn name(&mut self, pool: &[&str]) -> String {
        if self.amplify && self.chance(1, 3) {
            self.amplify = false;
            return "n".repeat(65_534);
        }
        match self.below(20) {
            0 => String::new(),
            1 => "n".repeat(self.pick(&[249, 250, 256, 1_000, 65_534])),
            2 => self.odd_string(),
            _ => self.pick(pool).to_owned(),
        }
    }

    /// Control characters, separators, multi-byte and path-like text.
    fn odd_string(&mut self) -> String {
        const PARTS: &[&str] = &[
            "a", ".", "..", "/", "\\", "\0", "\n", " ", "*", "#", "é", "\u{202e}", "\u{fffd}",
            "%2e", "fz", "-", "_", "topic:",
        ];
        (0..1 + self.below(12)).map(|_| self.pick(PARTS)).collect()
    }

    fn list<T>(&mut self, mut f: impl FnMut(&mut Rng) -> T) -> Vec<T> {
        let n = self.len();
        (0..n).map(|_| f(self)).collect()
    }
}

/// How a case was built, for the failure message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Structured,
    Mutated,
    OddHeader,
}

/// Which connection a case goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    Alice,
    Anonymous,
}

struct Case {
    api_key: u16,
    api_version: u16,
    body: Bytes,
    mode: Mode,
    who: Who,
}

/// What the run learned from answers, fed back into generation (member ids
/// and generations from JoinGroup answers reach deeper into the group code).
#[derive(Default)]
struct Learned {
    members: Vec<(String, u32)>,
    /// Records acquired by ShareFetch answers: (group, member, topic, partition,
    /// first, last), for ShareAck cases that acknowledge real locks.
    acquired: Vec<(String, String, String, u32, u64, u64)>,
    /// Per-partition Produce error codes, for the verbose summary.
    produce_codes: std::collections::BTreeMap<u16, u64>,
}

fn encode<T: Body>(value: &T) -> Bytes {
    api::encode(value).unwrap_or_default()
}

fn timestamp(rng: &mut Rng) -> i64 {
    match rng.below(6) {
        0 => i64::MAX,
        1 => i64::MIN,
        2 => -1,
        3 => 4_102_444_800_000, // 2100-01-01
        _ => 1_700_000_000_000 + rng.below(1_000_000) as i64,
    }
}

/// A RecordBatch built by the real builder, then (often) forged: header fields
/// set to extremes, record bytes flipped, cut or extended, and the CRC fixed
/// up so the broker's CRC check passes and deeper validation sees it.
fn record_batch(rng: &mut Rng) -> Bytes {
    let compression = if rng.chance(1, 4) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let mut builder = RecordBatchBuilder::new(compression);
    let count = rng.pick(&[1, 1, 2, 3, 10, 100]);
    let base = timestamp(rng);
    for _ in 0..count {
        let key = rng.chance(1, 2).then(|| rng.bytes_below(0, 40));
        let value = rng.chance(9, 10).then(|| {
            let n = match rng.below(20) {
                0 => 100_000,
                1..=3 => 1_000,
                _ => rng_small(rng),
            };
            rng.bytes(n)
        });
        let headers: Vec<Header> = (0..rng.below(3))
            .map(|_| Header {
                key: rng.odd_string(),
                value: rng.chance(1, 2).then(|| Bytes::from(rng.bytes(8))),
            })
            .collect();
        let ts = if rng.chance(1, 5) {
            timestamp(rng)
        } else {
            base
        };
        builder.append(ts, key.as_deref(), value.as_deref(), &headers);
    }
    let Ok(built) = builder.build() else {
        return Bytes::new();
    };
    if rng.chance(2, 5) {
        return built;
    }
    let mut b = BytesMut::from(&built[..]);
    for _ in 0..1 + rng.below(3) {
        forge_batch(rng, &mut b);
    }
    if rng.chance(9, 10) && b.len() > CRC_START {
        let crc = compute_crc(&b);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
    if rng.chance(1, 10) {
        // Two batches back to back in one partition's records.
        let again = b.clone();
        b.extend_from_slice(&again);
    }
    b.freeze()
}

fn rng_small(rng: &mut Rng) -> usize {
    rng.below(40)
}

/// One forgery of a batch at least a header long.
fn forge_batch(rng: &mut Rng, b: &mut BytesMut) {
    let extreme_i32 =
        |rng: &mut Rng| rng.pick(&[0, -1, 1, i32::MAX, i32::MIN, i32::MAX - 1, rng.state as i32]);
    let set_i32 = |b: &mut BytesMut, at: usize, v: i32| {
        if let Some(dst) = b.get_mut(at..at + 4) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    };
    let len = b.len();
    match rng.below(12) {
        // records_count, last_offset_delta: extremes or off by one.
        0 => {
            let v = extreme_i32(rng);
            set_i32(b, 57, v);
        }
        1 => {
            let v = extreme_i32(rng);
            set_i32(b, 23, v);
        }
        // records_count and last_offset_delta forged together, so the
        // header agrees with itself but not with the records it holds.
        2 => {
            let cur = b
                .get(57..61)
                .map_or(0, |s| i32::from_be_bytes(s.try_into().unwrap_or_default()));
            let count = rng.pick(&[
                cur.wrapping_add(1),
                cur.wrapping_sub(1),
                i32::MAX,
                1_000_000,
                cur.wrapping_mul(2),
            ]);
            set_i32(b, 57, count);
            set_i32(b, 23, count.wrapping_sub(1));
        }
        // attributes: codecs 1-7, timestamp type, transactional, control.
        3 => {
            let v: i16 = rng.pick(&[1, 2, 3, 5, 6, 7, 0x08, 0x10, 0x20, 0x30, -1]);
            if let Some(dst) = b.get_mut(21..23) {
                dst.copy_from_slice(&v.to_be_bytes());
            }
        }
        // base_timestamp / max_timestamp / producer fields.
        4 => {
            let at = rng.pick(&[27, 35, 43]);
            let v = timestamp(rng);
            if let Some(dst) = b.get_mut(at..at + 8) {
                dst.copy_from_slice(&v.to_be_bytes());
            }
        }
        // batch_length: extremes or off by a little.
        5 => {
            let v = rng.pick(&[
                0,
                49,
                i32::MAX,
                -1,
                (len as i32 - 12) + 1,
                (len as i32 - 12) - 1,
            ]);
            set_i32(b, 8, v);
        }
        // magic, leader epoch, base offset.
        6 => {
            if let Some(m) = b.get_mut(16) {
                *m = rng.pick(&[0, 1, 3, 0xff]);
            }
        }
        7 => {
            let v = rng.next().to_be_bytes();
            if let Some(dst) = b.get_mut(0..8) {
                dst.copy_from_slice(&v);
            }
        }
        // Record bytes: flips, cuts (batch_length kept consistent), garbage.
        8 | 9 => {
            if len > 61 {
                for _ in 0..1 + rng.below(4) {
                    let at = 61 + rng.below(len - 61);
                    b[at] ^= 1 << rng.below(8);
                }
            }
        }
        10 => {
            if len > 61 {
                let cut = 61 + rng.below(len - 61);
                b.truncate(cut);
                set_i32(b, 8, cut as i32 - 12);
            }
        }
        _ => {
            let extra = rng.bytes_below(1, 64);
            b.extend_from_slice(&extra);
            let l = b.len() as i32 - 12;
            set_i32(b, 8, l);
        }
    }
}

fn topic_partitions(rng: &mut Rng) -> TopicPartitions {
    TopicPartitions {
        topic: rng.name(TOPICS),
        partitions: rng.list(|r| r.u32()),
    }
}

fn member(rng: &mut Rng, learned: &Learned) -> (String, u32) {
    if !learned.members.is_empty() && rng.chance(1, 2) {
        let (m, g) = &learned.members[rng.below(learned.members.len())];
        let g = if rng.chance(3, 4) { *g } else { rng.u32() };
        (m.clone(), g)
    } else {
        (rng.name(MEMBERS), rng.u32())
    }
}

fn acl(rng: &mut Rng) -> AclEntry {
    let resource_type = rng.pick(&[
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
    ]);
    let pattern = match rng.below(5) {
        0 => "*".to_owned(),
        1 => "fz.*".to_owned(),
        2 if resource_type == ResourceType::Cluster => String::new(),
        _ => rng.name(TOPICS),
    };
    AclEntry {
        user: rng.name(USERS),
        resource: Resource {
            resource_type,
            pattern,
        },
        permission: rng.pick(&[Permission::Read, Permission::Write, Permission::Admin]),
    }
}

fn key32(rng: &mut Rng) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    for b in &mut k {
        *b = rng.next() as u8;
    }
    k
}

/// A structure-aware body for `key`, encoded by the protocol crate.
fn structured(rng: &mut Rng, key: ApiKey, learned: &Learned) -> Bytes {
    match key {
        ApiKey::ApiVersions => encode(&ApiVersionsRequest),
        ApiKey::Metadata => encode(&MetadataRequest {
            topics: rng.list(|r| r.name(TOPICS)),
        }),
        ApiKey::CreateTopic => encode(&CreateTopicRequest {
            name: rng.name(SCRATCH_TOPICS),
            partitions: rng.pick(&[1, 1, 2, 3, 0, 10_001, u32::MAX]),
            configs: (0..rng.below(4))
                .map(|_| {
                    let key = rng.pick(CONFIG_KEYS);
                    let value = match rng.below(10) {
                        0 | 1 => rng.odd_string(),
                        2..=5 => rng.pick(CONFIG_VALUES).to_owned(),
                        _ => rng.pick(valid_values(key)).to_owned(),
                    };
                    (key.to_owned(), value)
                })
                .collect(),
        }),
        ApiKey::DeleteTopic => encode(&DeleteTopicRequest {
            name: if rng.chance(1, 20) {
                rng.name(TOPICS)
            } else {
                rng.name(SCRATCH_TOPICS)
            },
        }),
        ApiKey::DescribeTopic => encode(&DescribeTopicRequest {
            name: rng.name(TOPICS),
        }),
        ApiKey::ListTopics => encode(&ListTopicsRequest),
        ApiKey::Produce => encode(&ProduceRequest {
            acks: rng.pick(&[1, 1, 1, -1, -1, 0, 2, i16::MIN]),
            timeout_ms: rng.pick(&[0, 1, 1_000, MAX_PRODUCE_TIMEOUT_MS]),
            topics: (0..rng.pick(&[0, 1, 1, 1, 1, 1, 2]))
                .map(|_| ProduceTopic {
                    topic: if rng.chance(3, 4) {
                        rng.pick(&DATA_TOPICS).to_owned()
                    } else {
                        rng.name(TOPICS)
                    },
                    partitions: (0..rng.pick(&[0, 1, 1, 1, 1, 1, 2, 3]))
                        .map(|_| ProducePartition {
                            partition: if rng.chance(3, 4) {
                                rng.pick(&[0, 1, -1])
                            } else {
                                rng.pick(&[2, 3, -2, i32::MAX, i32::MIN])
                            },
                            routing_key: rng.chance(1, 2).then(|| rng.name(ROUTING_KEYS)),
                            records: if rng.chance(1, 20) {
                                Bytes::from(rng.bytes_below(0, 100))
                            } else {
                                record_batch(rng)
                            },
                        })
                        .collect(),
                })
                .collect(),
        }),
        ApiKey::Fetch => encode(&FetchRequest {
            max_wait_ms: rng.pick(&[0, 1, 50, MAX_WAIT_MS]),
            min_bytes: rng.u32(),
            max_bytes: rng.u32(),
            topics: rng.list(|r| FetchTopic {
                topic: r.name(TOPICS),
                partitions: r.list(|r| FetchPartition {
                    partition: r.small_or_u32(),
                    fetch_offset: r.u64(),
                    partition_max_bytes: r.u32(),
                }),
            }),
        }),
        ApiKey::ListOffsets => encode(&ListOffsetsRequest {
            topics: rng.list(|r| ListOffsetsTopic {
                topic: r.name(TOPICS),
                partitions: r.list(|r| (r.u32(), r.i64())),
            }),
        }),
        ApiKey::JoinGroup => {
            let (member_id, _) = member(rng, learned);
            encode(&JoinGroupRequest {
                group: rng.name(GROUPS),
                member_id: if rng.chance(1, 2) {
                    String::new()
                } else {
                    member_id
                },
                session_timeout_ms: rng.pick(&[0, 1, 6_000, 30_000, u32::MAX]),
                topics: rng.list(|r| r.name(TOPICS)),
            })
        }
        ApiKey::Heartbeat => {
            let (member_id, generation) = member(rng, learned);
            encode(&HeartbeatRequest {
                group: rng.name(GROUPS),
                member_id,
                generation,
                owned: rng.list(topic_partitions),
            })
        }
        ApiKey::LeaveGroup => encode(&LeaveGroupRequest {
            group: rng.name(GROUPS),
            member_id: member(rng, learned).0,
        }),
        ApiKey::CommitOffsets => {
            let (member_id, generation) = member(rng, learned);
            encode(&CommitOffsetsRequest {
                group: rng.name(GROUPS),
                member_id: if rng.chance(1, 2) {
                    String::new()
                } else {
                    member_id
                },
                generation,
                topics: rng.list(|r| CommitTopic {
                    topic: r.name(TOPICS),
                    partitions: r.list(|r| CommitPartition {
                        partition: r.u32(),
                        offset: r.u64(),
                        metadata: r.chance(1, 3).then(|| r.name(&["meta"])),
                    }),
                }),
            })
        }
        ApiKey::FetchOffsets => {
            let (member_id, generation) = member(rng, learned);
            encode(&FetchOffsetsRequest {
                group: rng.name(GROUPS),
                member_id: if rng.chance(1, 2) {
                    String::new()
                } else {
                    member_id
                },
                generation,
                topics: rng.list(topic_partitions),
            })
        }
        ApiKey::Bind => encode(&BindRequest {
            topic: rng.name(TOPICS),
            key: rng.name(ROUTING_KEYS),
            partitions: rng.list(|r| r.u32()),
        }),
        ApiKey::Unbind => encode(&UnbindRequest {
            topic: rng.name(TOPICS),
            key: rng.name(ROUTING_KEYS),
            partitions: rng.list(|r| r.u32()),
        }),
        ApiKey::ShareFetch => encode(&ShareFetchRequest {
            group: rng.name(GROUPS),
            member_id: rng.name(MEMBERS),
            topic: if rng.chance(3, 4) {
                rng.pick(&DATA_TOPICS).to_owned()
            } else {
                rng.name(TOPICS)
            },
            max_records: rng.pick(&[0, 1, 10, 500, u32::MAX]),
            max_wait_ms: rng.pick(&[0, 10, MAX_WAIT_MS]),
            partitions: rng.list(|r| r.small_or_u32()),
        }),
        ApiKey::ShareAck if !learned.acquired.is_empty() && rng.chance(1, 2) => {
            let (group, member_id, topic, partition, first, last) =
                learned.acquired[rng.below(learned.acquired.len())].clone();
            let (first_offset, last_offset) = match rng.below(4) {
                0 => (first, first),
                1 => (first.saturating_sub(1), last.saturating_add(1)),
                _ => (first, last),
            };
            encode(&ShareAckRequest {
                group,
                member_id,
                topic,
                partitions: vec![ShareAckPartition {
                    partition,
                    batches: vec![AckBatch {
                        first_offset,
                        last_offset,
                        kind: rng.pick(&[
                            AckKind::Accept,
                            AckKind::Release,
                            AckKind::Reject,
                            AckKind::Reject,
                        ]),
                    }],
                }],
            })
        }
        ApiKey::ShareAck => encode(&ShareAckRequest {
            group: rng.name(GROUPS),
            member_id: rng.name(MEMBERS),
            topic: if rng.chance(3, 4) {
                rng.pick(&DATA_TOPICS).to_owned()
            } else {
                rng.name(TOPICS)
            },
            partitions: rng.list(|r| ShareAckPartition {
                partition: r.small_or_u32(),
                batches: r.list(|r| {
                    let first_offset = if r.chance(3, 4) {
                        r.below(200) as u64
                    } else {
                        r.u64()
                    };
                    AckBatch {
                        first_offset,
                        last_offset: if r.chance(1, 2) {
                            first_offset.saturating_add(r.below(5) as u64)
                        } else {
                            r.u64()
                        },
                        kind: r.pick(&[AckKind::Accept, AckKind::Release, AckKind::Reject]),
                    }
                }),
            }),
        }),
        ApiKey::ListGroups => encode(&ListGroupsRequest),
        ApiKey::DescribeGroup => encode(&DescribeGroupRequest {
            group: rng.name(GROUPS),
        }),
        ApiKey::Authenticate => {
            let auth_bytes = match rng.below(4) {
                0 => Bytes::from(rng.bytes_below(0, 300)),
                1 => Bytes::from(format!("\0{}\0{}", rng.name(USERS), rng.odd_string())),
                _ => {
                    let first = ScramClient::new(&rng.name(&["root", "alice", "nobody"]), "x")
                        .map(|c| c.client_first())
                        .unwrap_or_default();
                    let mut b = first.into_bytes();
                    if rng.chance(1, 2) && !b.is_empty() {
                        let at = rng.below(b.len());
                        b[at] = rng.pick(&[b',', b'=', b'\0', 0xff, b'n', b'r']);
                    }
                    Bytes::from(b)
                }
            };
            encode(&AuthenticateRequest {
                mechanism: rng.name(&["SCRAM-SHA-256", "SCRAM-SHA-256", "PLAIN", "GSSAPI"]),
                auth_bytes,
            })
        }
        ApiKey::CreateUser => encode(&CreateUserRequest {
            name: rng.name(USERS),
            superuser: rng.chance(1, 2),
            salt: {
                let n = rng.pick(&[0, 1, 16, 10_000]);
                Bytes::from(rng.bytes(n))
            },
            iterations: rng.pick(&[0, 1, 4_096, u32::MAX]),
            stored_key: key32(rng),
            server_key: key32(rng),
        }),
        ApiKey::DeleteUser => encode(&DeleteUserRequest {
            name: rng.name(USERS),
        }),
        ApiKey::ListUsers => encode(&ListUsersRequest),
        ApiKey::CreateAcl => encode(&CreateAclRequest { acl: acl(rng) }),
        ApiKey::DeleteAcl => encode(&DeleteAclRequest { acl: acl(rng) }),
        ApiKey::ListAcls => encode(&ListAclsRequest {
            user: rng.chance(1, 2).then(|| rng.name(USERS)),
        }),
    }
}

/// One byte-level mutation of an encoded body.
fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    let len = body.len();
    match rng.below(8) {
        0 if len > 0 => {
            let at = rng.below(len);
            body[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            body[at] = rng.next() as u8;
        }
        2 if len > 0 => body.truncate(rng.below(len)),
        // A length or count field set to an extreme.
        3 | 4 if len >= 2 => {
            let at = rng.below(len - 1);
            let v: &[u8] = if rng.chance(1, 2) && at + 4 <= len {
                match rng.below(4) {
                    0 => &[0x7f, 0xff, 0xff, 0xff],
                    1 => &[0xff, 0xff, 0xff, 0xff],
                    2 => &[0x80, 0, 0, 0],
                    _ => &[0, 0, 0, 0],
                }
            } else {
                match rng.below(3) {
                    0 => &[0xff, 0xff],
                    1 => &[0xff, 0xfe],
                    _ => &[0x7f, 0xff],
                }
            };
            body[at..at + v.len()].copy_from_slice(v);
        }
        5 => {
            let at = rng.below(len + 1);
            let extra = rng.bytes_below(1, 16);
            body.splice(at..at, extra);
        }
        6 if len > 0 => {
            let from = rng.below(len);
            let to = from + rng.below(len - from) + 1;
            let copy = body[from..to].to_vec();
            body.splice(from..from, copy);
        }
        _ => {
            let extra = rng.bytes_below(1, 64);
            body.extend_from_slice(&extra);
        }
    }
}

/// Keeps a mutated body from waiting longer than the harness allows (a long
/// poll is not a hang) and from deleting the superuser the harness logs in
/// as; `None` skips the case.
fn tame(key: ApiKey, body: Bytes) -> Option<Bytes> {
    match key {
        ApiKey::Fetch => match api::decode::<FetchRequest>(body.clone()) {
            Ok(mut r) if r.max_wait_ms > MAX_WAIT_MS || r.max_bytes > MAX_FETCH_BYTES => {
                r.max_wait_ms = r.max_wait_ms.min(MAX_WAIT_MS);
                r.max_bytes = r.max_bytes.min(MAX_FETCH_BYTES);
                Some(encode(&r))
            }
            _ => Some(body),
        },
        ApiKey::ShareFetch => match api::decode::<ShareFetchRequest>(body.clone()) {
            Ok(mut r) if r.max_wait_ms > MAX_WAIT_MS => {
                r.max_wait_ms = MAX_WAIT_MS;
                Some(encode(&r))
            }
            _ => Some(body),
        },
        ApiKey::Produce => match api::decode::<ProduceRequest>(body.clone()) {
            Ok(mut r) if r.timeout_ms > MAX_PRODUCE_TIMEOUT_MS => {
                r.timeout_ms = MAX_PRODUCE_TIMEOUT_MS;
                Some(encode(&r))
            }
            _ => Some(body),
        },
        ApiKey::DeleteUser => match api::decode::<DeleteUserRequest>(body.clone()) {
            Ok(r) if r.name == "root" => None,
            _ => Some(body),
        },
        _ => Some(body),
    }
}

/// The case number `case` of a run with `seed`.
fn generate(seed: u64, case: u64, learned: &Learned) -> Option<Case> {
    let mut rng = Rng::for_case(seed, case);
    // Half the cases go to the apis that touch record data (and the share
    // state built from it); the rest spread over every api key.
    let key = match rng.below(20) {
        0..=4 => ApiKey::Produce,
        5 | 6 => ApiKey::ShareFetch,
        7 => ApiKey::ShareAck,
        8 => ApiKey::Fetch,
        9 => ApiKey::ListOffsets,
        _ => rng.pick(ApiKey::SUPPORTED).0,
    };
    let who = match key {
        ApiKey::Authenticate => Who::Anonymous,
        _ if rng.chance(1, 5) => Who::Alice,
        _ => Who::Root,
    };
    let roll = rng.below(100);
    if roll < 2 {
        // An unknown api key or an unsupported version.
        let (api_key, api_version) = if rng.chance(1, 2) {
            (rng.pick(&[27, 28, 100, 0x7fff, u16::MAX]), 0)
        } else {
            (key as u16, rng.pick(&[1, 2, u16::MAX]))
        };
        return Some(Case {
            api_key,
            api_version,
            body: Bytes::from(rng.bytes_below(0, 32)),
            mode: Mode::OddHeader,
            who,
        });
    }
    let body = structured(&mut rng, key, learned);
    let (body, mode) = if roll < 50 {
        (body, Mode::Structured)
    } else {
        let mut b = body.to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut b);
        }
        (Bytes::from(b), Mode::Mutated)
    };
    let body = tame(key, body)?;
    Some(Case {
        api_key: key as u16,
        api_version: 0,
        body,
        mode,
        who,
    })
}

/// A raw connection with its own reply timeout (the common `Raw` has a fixed
/// one and cannot tell a close from a timeout).
struct Conn {
    stream: TcpStream,
    codec: ResponseCodec,
    buf: BytesMut,
    next_id: u32,
}

/// What came back for a request.
enum Outcome {
    Reply(ResponseFrame),
    /// Produce with acks=0, or a request whose answer the broker skipped:
    /// the next request's answer came first.
    NoReply,
    Closed,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Result<Conn> {
        Ok(Conn {
            stream: TcpStream::connect(addr).await?,
            codec: ResponseCodec::new(MAX_RESPONSE_BYTES),
            buf: BytesMut::new(),
            next_id: 1,
        })
    }

    async fn send(&mut self, api_key: u16, api_version: u16, body: Bytes) -> Result<u32> {
        let correlation_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut out = BytesMut::new();
        self.codec.encode(
            RequestFrame {
                header: RequestHeader {
                    api_key,
                    api_version,
                    correlation_id,
                },
                body,
            },
            &mut out,
        )?;
        self.stream.write_all(&out).await?;
        Ok(correlation_id)
    }

    /// The next response frame; `None` when the broker closed the connection.
    async fn recv(&mut self) -> Result<Option<ResponseFrame>> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf)? {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => bail!("hang: no reply within {REPLY_TIMEOUT:?}"),
                Ok(Err(_)) | Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Sends one request and waits for its answer. A Produce is followed by
    /// an ApiVersions, so a request the broker does not answer (acks=0) is
    /// told apart from a hang without waiting out the timeout.
    async fn exchange(&mut self, api_key: u16, api_version: u16, body: Bytes) -> Result<Outcome> {
        let Ok(id) = self.send(api_key, api_version, body).await else {
            return Ok(Outcome::Closed);
        };
        let ping = if api_key == ApiKey::Produce as u16 {
            match self.send(ApiKey::ApiVersions as u16, 0, Bytes::new()).await {
                Ok(p) => Some(p),
                Err(_) => return Ok(Outcome::Closed),
            }
        } else {
            None
        };
        let Some(first) = self.recv().await? else {
            return Ok(Outcome::Closed);
        };
        let got = first.header.correlation_id;
        match ping {
            None => {
                ensure!(got == id, "answer to correlation id {got}, expected {id}");
                Ok(Outcome::Reply(first))
            }
            Some(p) if got == p => Ok(Outcome::NoReply),
            Some(p) => {
                ensure!(got == id, "answer to correlation id {got}, expected {id}");
                match self.recv().await? {
                    Some(f) if f.header.correlation_id == p => Ok(Outcome::Reply(first)),
                    Some(f) => bail!(
                        "answer to correlation id {}, expected ApiVersions {p}",
                        f.header.correlation_id
                    ),
                    None => Ok(Outcome::Closed),
                }
            }
        }
    }

    /// Sends `requests` back to back without waiting (pipelining), then an
    /// ApiVersions, and reads until its answer: the answers, in request
    /// order, with the index of the request each belongs to (a Produce with
    /// acks=0 has none). `None` when the broker closed the connection.
    async fn pipeline(
        &mut self,
        requests: &[(u16, u16, Bytes)],
    ) -> Result<Option<Vec<(usize, ResponseFrame)>>> {
        let mut ids = Vec::with_capacity(requests.len());
        for (key, version, body) in requests {
            match self.send(*key, *version, body.clone()).await {
                Ok(id) => ids.push(id),
                Err(_) => return Ok(None),
            }
        }
        let Ok(ping) = self.send(ApiKey::ApiVersions as u16, 0, Bytes::new()).await else {
            return Ok(None);
        };
        let mut answers = Vec::new();
        let mut next = 0;
        loop {
            let Some(f) = self.recv().await? else {
                return Ok(None);
            };
            let got = f.header.correlation_id;
            if got == ping {
                return Ok(Some(answers));
            }
            let Some(i) = ids.iter().skip(next).position(|id| *id == got) else {
                bail!("answer to correlation id {got} out of order (sent {ids:?})");
            };
            let i = next + i;
            for (skipped, (key, _, _)) in requests.iter().enumerate().take(i).skip(next) {
                ensure!(
                    *key == ApiKey::Produce as u16,
                    "request {skipped} (api key {key}) of a pipeline got no answer"
                );
            }
            answers.push((i, f));
            next = i + 1;
        }
    }

    async fn call<R: Request>(
        &mut self,
        req: &R,
    ) -> Result<Result<R::Response, (ErrorCode, String)>> {
        match self
            .exchange(R::API_KEY as u16, R::VERSION, api::encode(req)?)
            .await?
        {
            Outcome::Reply(f) if f.header.error_code == 0 => Ok(Ok(api::decode(f.body)?)),
            Outcome::Reply(f) => {
                let e: ErrorBody = api::decode(f.body)?;
                Ok(Err((ErrorCode(f.header.error_code), e.message)))
            }
            Outcome::NoReply => bail!("{} not answered", R::API_KEY.name()),
            Outcome::Closed => bail!("connection closed on {}", R::API_KEY.name()),
        }
    }

    /// `call`, with a refusal as an error.
    async fn ok<R: Request>(&mut self, req: &R) -> Result<R::Response> {
        self.call(req)
            .await?
            .map_err(|(code, message)| anyhow::anyhow!("{:?}: {message}", code))
    }

    async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Conn> {
        let mut c = Conn::connect(addr).await?;
        let client = ScramClient::new(user, password)?;
        let first = c
            .ok(&AuthenticateRequest {
                mechanism: "SCRAM-SHA-256".into(),
                auth_bytes: Bytes::from(client.client_first()),
            })
            .await?;
        let (_, client_final) = client.handle_server_first(&first.auth_bytes)?;
        c.ok(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(client_final),
        })
        .await
        .with_context(|| format!("login as {user}"))?;
        Ok(c)
    }
}

/// Decodes an answer as the api's response (or an error body): a broker that
/// answers with bytes its own protocol crate cannot read breaks clients.
fn check_answer(
    api_key: u16,
    request: Option<Bytes>,
    f: &ResponseFrame,
    learned: &mut Learned,
) -> Result<()> {
    if f.header.error_code != 0 {
        api::decode::<ErrorBody>(f.body.clone()).context("error body")?;
        return Ok(());
    }
    let Ok(key) = ApiKey::try_from(api_key) else {
        bail!("unknown api key {api_key} answered without an error");
    };
    fn check<R: Request>(f: &ResponseFrame) -> Result<()> {
        api::decode::<R::Response>(f.body.clone())
            .map(drop)
            .with_context(|| format!("{} response", R::API_KEY.name()))
    }
    use warren_protocol::api::auth::ListUsersRequest as LU;
    match key {
        ApiKey::ApiVersions => check::<ApiVersionsRequest>(f),
        ApiKey::Metadata => check::<MetadataRequest>(f),
        ApiKey::CreateTopic => check::<CreateTopicRequest>(f),
        ApiKey::DeleteTopic => check::<DeleteTopicRequest>(f),
        ApiKey::DescribeTopic => check::<DescribeTopicRequest>(f),
        ApiKey::ListTopics => check::<ListTopicsRequest>(f),
        ApiKey::Produce => {
            let r: warren_protocol::api::produce::ProduceResponse =
                api::decode(f.body.clone()).context("Produce response")?;
            for t in r.topics {
                for p in t.partitions {
                    *learned.produce_codes.entry(p.error_code.0).or_default() += 1;
                }
            }
            Ok(())
        }
        ApiKey::Fetch => check::<FetchRequest>(f),
        ApiKey::ListOffsets => check::<ListOffsetsRequest>(f),
        ApiKey::JoinGroup => {
            let r: JoinGroupResponse = api::decode(f.body.clone()).context("JoinGroup response")?;
            if learned.members.len() < 16 {
                learned.members.push((r.member_id, r.generation));
            }
            Ok(())
        }
        ApiKey::Heartbeat => check::<HeartbeatRequest>(f),
        ApiKey::LeaveGroup => check::<LeaveGroupRequest>(f),
        ApiKey::CommitOffsets => check::<CommitOffsetsRequest>(f),
        ApiKey::FetchOffsets => check::<FetchOffsetsRequest>(f),
        ApiKey::Bind => check::<BindRequest>(f),
        ApiKey::Unbind => check::<UnbindRequest>(f),
        ApiKey::ShareFetch => {
            let r: warren_protocol::api::share::ShareFetchResponse =
                api::decode(f.body.clone()).context("ShareFetch response")?;
            if let Some(req) = request.and_then(|b| api::decode::<ShareFetchRequest>(b).ok()) {
                for p in r.partitions {
                    for a in p.acquired {
                        if learned.acquired.len() >= 64 {
                            learned.acquired.remove(0);
                        }
                        learned.acquired.push((
                            req.group.clone(),
                            req.member_id.clone(),
                            req.topic.clone(),
                            p.partition,
                            a.first_offset,
                            a.last_offset,
                        ));
                    }
                }
            }
            Ok(())
        }
        ApiKey::ShareAck => check::<ShareAckRequest>(f),
        ApiKey::ListGroups => check::<ListGroupsRequest>(f),
        ApiKey::DescribeGroup => check::<DescribeGroupRequest>(f),
        ApiKey::Authenticate => check::<AuthenticateRequest>(f),
        ApiKey::CreateUser => check::<CreateUserRequest>(f),
        ApiKey::DeleteUser => check::<DeleteUserRequest>(f),
        ApiKey::ListUsers => check::<LU>(f),
        ApiKey::CreateAcl => check::<CreateAclRequest>(f),
        ApiKey::DeleteAcl => check::<DeleteAclRequest>(f),
        ApiKey::ListAcls => check::<ListAclsRequest>(f),
    }
}

fn create_user(name: &str, password: &str, superuser: bool) -> Result<CreateUserRequest> {
    let c = ScramCredential::generate(password)?;
    Ok(CreateUserRequest {
        name: name.into(),
        superuser,
        salt: Bytes::from(c.salt),
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    })
}

/// Tolerates "already exists" (the fixture survived the cases so far).
fn created<T>(r: Result<T, (ErrorCode, String)>, what: &str) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err((code, _))
            if code == ErrorCode::TOPIC_ALREADY_EXISTS
                || code == ErrorCode::USER_ALREADY_EXISTS =>
        {
            Ok(())
        }
        Err((code, message)) => bail!("{what}: {code:?}: {message}"),
    }
}

/// Creates (or re-creates, after a DeleteTopic or DeleteUser case) the
/// fixtures: topics, alice and her ACLs, bindings, a group and a share group.
async fn fixtures(root: &mut Conn, alice_credential: &CreateUserRequest) -> Result<()> {
    for (name, partitions, configs) in FIXTURE_TOPICS {
        let r = root
            .call(&CreateTopicRequest {
                name: (*name).into(),
                partitions: *partitions,
                configs: configs
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            })
            .await?;
        created(r, name)?;
    }
    created(root.call(alice_credential).await?, "alice")?;
    for (rt, pattern, permission) in [
        (ResourceType::Topic, "fz.hash", Permission::Read),
        (ResourceType::Topic, "fz.hash", Permission::Write),
        (ResourceType::Topic, "fz.direct", Permission::Write),
        (ResourceType::Topic, "fz.queue", Permission::Read),
        (ResourceType::Group, "g*", Permission::Read),
        (ResourceType::Group, "sg*", Permission::Read),
    ] {
        // An existing entry is not an error worth stopping for.
        let _ = root
            .call(&CreateAclRequest {
                acl: AclEntry {
                    user: "alice".into(),
                    resource: Resource {
                        resource_type: rt,
                        pattern: pattern.into(),
                    },
                    permission,
                },
            })
            .await?;
    }
    for (topic, key, partition) in [("fz.direct", "a", 0), ("fz.pattern", "x.*", 1)] {
        root.ok(&BindRequest {
            topic: topic.into(),
            key: key.into(),
            partitions: vec![partition],
        })
        .await
        .with_context(|| format!("bind {topic} {key}"))?;
    }
    for topic in ["fz.hash", "fz.queue", "fz.fsync"] {
        root.ok(&produce(
            topic,
            0,
            batch(&["seed-1", "seed-2", "seed-3"])?,
            1,
        ))
        .await
        .with_context(|| format!("seed {topic}"))?;
    }
    let joined = root
        .ok(&JoinGroupRequest {
            group: "g1".into(),
            member_id: String::new(),
            session_timeout_ms: 30_000,
            topics: vec!["fz.hash".into()],
        })
        .await?;
    root.ok(&CommitOffsetsRequest {
        group: "g1".into(),
        member_id: joined.member_id,
        generation: joined.generation,
        topics: vec![CommitTopic {
            topic: "fz.hash".into(),
            partitions: vec![CommitPartition {
                partition: 0,
                offset: 1,
                metadata: None,
            }],
        }],
    })
    .await?;
    root.ok(&ShareFetchRequest {
        group: "sg1".into(),
        member_id: "m1".into(),
        topic: "fz.queue".into(),
        max_records: 1,
        max_wait_ms: 0,
        partitions: vec![],
    })
    .await?;
    Ok(())
}

/// A `/proc/self/status` field in KiB: `VmRSS` (resident now) or `VmHWM`
/// (the resident peak since the process started).
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .with_context(|| format!("no {field} line"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("{field} value"))?
        .parse()?)
}

/// The broker still serves: no panic so far, a new connection logs in,
/// `/healthz` answers, fixtures come back, and a normal produce and fetch
/// round-trip (acks=1 on a topic the cases never name, acks=-1 on `fsync`).
async fn health(
    addr: SocketAddr,
    http: SocketAddr,
    alice: &CreateUserRequest,
    round: u64,
) -> Result<()> {
    ensure!(
        PANICS.load(Ordering::SeqCst) == 0,
        "a panic happened (see the output above)"
    );
    let mut root = Conn::login(addr, "root", ROOT_PW).await?;
    root.ok(&ApiVersionsRequest).await?;
    let (status, _) = tokio::time::timeout(REPLY_TIMEOUT, http_get(http, "/healthz"))
        .await
        .context("/healthz hangs")??;
    ensure!(status == 200, "/healthz answered {status}");
    fixtures(&mut root, alice).await?;
    for (topic, acks) in [(HEALTH_TOPIC, 1), ("fz.fsync", -1)] {
        let value = format!("health-{round}");
        let r = root.ok(&produce(topic, 0, batch(&[&value])?, acks)).await?;
        let p = &r.topics[0].partitions[0];
        ensure!(
            p.error_code == ErrorCode::NONE,
            "health produce to {topic}: {:?} {:?}",
            p.error_code,
            p.error_message
        );
        let offset = u64::try_from(p.base_offset)?;
        let f = root.ok(&fetch(topic, offset, 2_000)).await?;
        let part = &f.topics[0].partitions[0];
        ensure!(
            part.error_code == ErrorCode::NONE,
            "health fetch: {:?}",
            part.error_code
        );
        let values = values_of(part.records.clone())?;
        ensure!(
            values.first() == Some(&value),
            "health fetch of {topic} at {offset} got {values:?}"
        );
    }
    Ok(())
}

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.with_context(|| format!("{name}={v:?} is not a number"))
        }
        Err(_) => Ok(default),
    }
}

fn hex_prefix(b: &[u8]) -> String {
    let shown: String = b.iter().take(256).map(|x| format!("{x:02x}")).collect();
    if b.len() > 256 {
        format!("{shown}... ({} bytes)", b.len())
    } else {
        shown
    }
}

/// The three connections a run uses, reopened when the broker closes one.
struct Conns {
    addr: SocketAddr,
    root: Conn,
    alice: Conn,
    anonymous: Conn,
}

impl Conns {
    fn get(&mut self, who: Who) -> &mut Conn {
        match who {
            Who::Root => &mut self.root,
            Who::Alice => &mut self.alice,
            Who::Anonymous => &mut self.anonymous,
        }
    }

    /// A fresh connection for `who`. Alice's login may fail (a case deleted
    /// her): she is then re-created by the next health check, and her
    /// requests meanwhile go out unauthenticated.
    async fn reopen(&mut self, who: Who) -> Result<()> {
        let c = match who {
            Who::Root => Conn::login(self.addr, "root", ROOT_PW).await?,
            Who::Alice => match Conn::login(self.addr, "alice", ALICE_PW).await {
                Ok(c) => c,
                Err(_) => Conn::connect(self.addr).await?,
            },
            Who::Anonymous => Conn::connect(self.addr).await?,
        };
        *self.get(who) = c;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_requests_of_every_api_never_panic_hang_or_leak() -> Result<()> {
    install_panic_counter();
    let cases = env_u64("WARREN_FUZZ_CASES", DEFAULT_CASES)?;
    let seed = env_u64("WARREN_FUZZ_SEED", DEFAULT_SEED)?;
    let max_secs = env_u64("WARREN_FUZZ_SECS", DEFAULT_MAX_SECS)?;
    println!("adversarial: seed {seed:#x}, up to {cases} cases, at most {max_secs} s");
    let watchdog = start_watchdog(max_secs + WATCHDOG_SLACK_SECS, seed);

    let dir = tempfile::tempdir()?;
    let broker = Broker::start(BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        ..BrokerConfig::default()
    })
    .await?;
    let addr = broker.local_addr();
    let http = broker.http_addr();

    // The first user is created anonymously (loopback, no users yet).
    let mut first = Conn::connect(addr).await?;
    first.ok(&create_user("root", ROOT_PW, true)?).await?;
    drop(first);
    let alice = create_user("alice", ALICE_PW, false)?;
    let mut root = Conn::login(addr, "root", ROOT_PW).await?;
    fixtures(&mut root, &alice).await?;
    let mut conns = Conns {
        addr,
        root,
        alice: Conn::login(addr, "alice", ALICE_PW).await?,
        anonymous: Conn::connect(addr).await?,
    };
    health(addr, http, &alice, 0).await?;
    let rss_start = status_kib("VmRSS")?;
    let verbose = std::env::var_os("WARREN_FUZZ_VERBOSE").is_some();
    let mut last_hwm = status_kib("VmHWM")?;
    let mut rss_peak = rss_start;

    let started = Instant::now();
    let mut learned = Learned::default();
    let (mut tried, mut skipped, mut closed, mut unanswered) = (0u64, 0u64, 0u64, 0u64);
    let mut per_key = [0u64; 32];
    let mut codes: std::collections::BTreeMap<(u16, u16), u64> = Default::default();
    let mut stopped_by_clock = false;
    let mut case = 0;
    while case < cases {
        if started.elapsed() > Duration::from_secs(max_secs) {
            stopped_by_clock = true;
            break;
        }
        // Now and then a burst: the next few cases pipelined on one
        // connection, answers read after all were sent.
        CURRENT_CASE.store(case, Ordering::SeqCst);
        let burst = Rng::for_case(seed ^ BURST_SALT, case).below(BURST_ONE_IN);
        if burst < BURST_MAX && case + burst as u64 + 2 <= cases {
            let n = burst + 2;
            let group: Vec<(u64, Case)> = (case..case + n as u64)
                .filter_map(|i| generate(seed, i, &learned).map(|c| (i, c)))
                .collect();
            skipped += n as u64 - group.len() as u64;
            tried += group.len() as u64;
            for (_, c) in &group {
                if let Some(count) = per_key.get_mut(usize::from(c.api_key)) {
                    *count += 1;
                }
            }
            // One connection, or (every other burst) two at once, root and
            // alice, so handlers also run concurrently.
            let first = group.first().map_or(Who::Root, |(_, c)| c.who);
            let all: Vec<usize> = (0..group.len()).collect();
            let lanes: Vec<(Who, Vec<usize>)> = if burst.is_multiple_of(2) && group.len() >= 2 {
                vec![
                    (
                        Who::Root,
                        all.iter().copied().filter(|i| i % 2 == 0).collect(),
                    ),
                    (
                        Who::Alice,
                        all.iter().copied().filter(|i| i % 2 == 1).collect(),
                    ),
                ]
            } else {
                vec![(first, all)]
            };
            let requests = |idx: &[usize]| -> Vec<(u16, u16, Bytes)> {
                idx.iter()
                    .map(|&i| {
                        let c = &group[i].1;
                        (c.api_key, c.api_version, c.body.clone())
                    })
                    .collect()
            };
            let describe = || {
                let cases: Vec<String> = group
                    .iter()
                    .map(|(i, c)| {
                        format!(
                            "case {i}: key {} v{} body {}",
                            c.api_key,
                            c.api_version,
                            hex_prefix(&c.body)
                        )
                    })
                    .collect();
                let on: Vec<String> = lanes
                    .iter()
                    .map(|(w, idx)| format!("{w:?} {idx:?}"))
                    .collect();
                format!(
                    "burst (seed {seed:#x}) on {}: {}",
                    on.join(", "),
                    cases.join("; ")
                )
            };
            let results = match lanes.as_slice() {
                [(_, a), (_, b)] => {
                    let (ra, rb) = (requests(a), requests(b));
                    let Conns { root, alice, .. } = &mut conns;
                    let (a, b) = tokio::join!(root.pipeline(&ra), alice.pipeline(&rb));
                    vec![a.with_context(describe)?, b.with_context(describe)?]
                }
                _ => vec![
                    conns
                        .get(first)
                        .pipeline(&requests(&lanes[0].1))
                        .await
                        .with_context(describe)?,
                ],
            };
            for ((lane_who, idx), result) in lanes.iter().zip(results) {
                match result {
                    Some(answers) => {
                        unanswered += (idx.len() - answers.len()) as u64;
                        for (j, f) in answers {
                            let (_, c) = &group[idx[j]];
                            *codes.entry((c.api_key, f.header.error_code)).or_default() += 1;
                            check_answer(c.api_key, Some(c.body.clone()), &f, &mut learned)
                                .with_context(describe)?;
                        }
                    }
                    None => {
                        closed += 1;
                        if verbose {
                            println!("adversarial: connection closed on {}", describe());
                        }
                        conns.reopen(*lane_who).await.with_context(describe)?;
                    }
                }
            }
            ensure!(
                PANICS.load(Ordering::SeqCst) == 0,
                "the broker panicked on {}",
                describe()
            );
            let hwm = status_kib("VmHWM")?;
            ensure!(
                hwm.saturating_sub(last_hwm) < CASE_PEAK_LIMIT_KIB,
                "a burst raised the resident peak from {} to {} MiB: {}",
                last_hwm / 1024,
                hwm / 1024,
                describe()
            );
            last_hwm = hwm;
            let before = case;
            case += n as u64;
            if case / HEALTH_EVERY != before / HEALTH_EVERY {
                health(addr, http, &alice, case)
                    .await
                    .with_context(|| format!("health check after case {case} (seed {seed:#x})"))?;
                conns.reopen(Who::Alice).await?;
                rss_peak = rss_peak.max(status_kib("VmRSS")?);
            }
            continue;
        }
        let this = case;
        case += 1;
        let case = this;
        let Some(c) = generate(seed, case, &learned) else {
            skipped += 1;
            continue;
        };
        tried += 1;
        if let Some(n) = per_key.get_mut(usize::from(c.api_key)) {
            *n += 1;
        }
        let describe = || {
            let name = ApiKey::try_from(c.api_key).map_or("unknown", |k| k.name());
            format!(
                "case {case} (seed {seed:#x}): {name} (key {} v{}), {:?}, as {:?}, body {}",
                c.api_key,
                c.api_version,
                c.mode,
                c.who,
                hex_prefix(&c.body)
            )
        };
        let outcome = conns
            .get(c.who)
            .exchange(c.api_key, c.api_version, c.body.clone())
            .await
            .with_context(describe)?;
        match outcome {
            Outcome::Reply(f) => {
                *codes.entry((c.api_key, f.header.error_code)).or_default() += 1;
                check_answer(c.api_key, Some(c.body.clone()), &f, &mut learned)
                    .with_context(describe)?;
            }
            Outcome::NoReply => unanswered += 1,
            Outcome::Closed => {
                closed += 1;
                if verbose {
                    println!("adversarial: connection closed on {}", describe());
                }
                conns.reopen(c.who).await.with_context(describe)?;
            }
        }
        ensure!(
            PANICS.load(Ordering::SeqCst) == 0,
            "the broker panicked on {}",
            describe()
        );
        let hwm = status_kib("VmHWM")?;
        ensure!(
            hwm.saturating_sub(last_hwm) < CASE_PEAK_LIMIT_KIB,
            "one request raised the resident peak from {} to {} MiB: {}",
            last_hwm / 1024,
            hwm / 1024,
            describe()
        );
        last_hwm = hwm;
        if (case + 1) % HEALTH_EVERY == 0 {
            health(addr, http, &alice, case + 1)
                .await
                .with_context(|| format!("health check after case {case} (seed {seed:#x})"))?;
            // Alice may have been deleted and re-created: log in again.
            conns.reopen(Who::Alice).await?;
            rss_peak = rss_peak.max(status_kib("VmRSS")?);
        }
    }
    health(addr, http, &alice, cases)
        .await
        .context("final health check")?;
    let rss_end = status_kib("VmRSS")?;
    // The high-water mark catches a spike between two samples.
    rss_peak = rss_peak.max(rss_end).max(status_kib("VmHWM")?);
    let elapsed = started.elapsed();
    println!(
        "adversarial: seed {seed:#x}: {tried} inputs tried ({skipped} skipped) in {:.1} s{}; \
         {unanswered} produce(s) without answer (acks=0), {closed} connection(s) closed by the broker; \
         RSS {} MiB at start, {} MiB peak, {} MiB at end",
        elapsed.as_secs_f64(),
        if stopped_by_clock {
            " (stopped by the wall-clock cap)"
        } else {
            ""
        },
        rss_start / 1024,
        rss_peak / 1024,
        rss_end / 1024,
    );
    let by_key: Vec<String> = ApiKey::SUPPORTED
        .iter()
        .map(|(k, _, _)| format!("{}={}", k.name(), per_key[*k as usize]))
        .collect();
    println!("adversarial: per api: {}", by_key.join(" "));
    if std::env::var_os("WARREN_FUZZ_VERBOSE").is_some() {
        for ((key, code), n) in &codes {
            println!("adversarial: api {key} error {:?}: {n}", ErrorCode(*code));
        }
        for (code, n) in &learned.produce_codes {
            println!(
                "adversarial: produce partition error {:?}: {n}",
                ErrorCode(*code)
            );
        }
    }
    let limit_kib = env_u64("WARREN_FUZZ_RSS_MIB", RSS_GROWTH_LIMIT_KIB / 1024)? * 1024;
    ensure!(
        rss_peak.saturating_sub(rss_start) < limit_kib,
        "RSS grew from {} KiB to {} KiB (limit: {} KiB more than at the start)",
        rss_start,
        rss_peak,
        limit_kib
    );
    tokio::time::timeout(REPLY_TIMEOUT * 2, broker.shutdown())
        .await
        .context("the broker does not shut down")??;
    watchdog.store(true, Ordering::SeqCst);
    Ok(())
}
