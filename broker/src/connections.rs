//! The registry of open native-protocol connections: who is connected, since
//! when, as which user, and how much each connection has sent and received.
//! The admin API lists it and the metrics read its size and totals.
//!
//! Thread-safe. The map is locked only when a connection opens or closes and
//! when someone lists it; the per-connection counters are atomics owned by
//! that connection, so counting on the request path shares nothing across
//! connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// One open connection. Counters are updated by its own reader and writer.
#[derive(Debug)]
pub struct ConnectionInfo {
    /// Unique for the broker's lifetime, in accept order.
    pub id: u64,
    pub peer: SocketAddr,
    pub connected_at: SystemTime,
    /// Whether the connection runs over TLS.
    pub tls: bool,
    /// The authenticated user; `None` while anonymous.
    user: Mutex<Option<String>>,
    /// Requests read.
    pub requests: AtomicU64,
    /// Bytes read from the socket.
    pub bytes_in: AtomicU64,
    /// Response bytes written to the socket (sendfile ranges included).
    pub bytes_out: AtomicU64,
}

impl ConnectionInfo {
    /// The authenticated user, if any.
    pub fn user(&self) -> Option<String> {
        self.user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the user this connection authenticated as.
    pub fn set_user(&self, user: Option<String>) {
        *self.user.lock().unwrap_or_else(PoisonError::into_inner) = user;
    }

    /// Adds to a counter (relaxed: these are statistics).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Every open connection, by id, and the counters of those already closed.
#[derive(Debug, Default)]
pub struct Connections {
    next_id: AtomicU64,
    open: Mutex<Open>,
}

/// The map and the closed connections' totals, under one lock so a
/// connection moves from one to the other atomically.
#[derive(Debug, Default)]
struct Open {
    by_id: BTreeMap<u64, Arc<ConnectionInfo>>,
    closed: Totals,
}

/// Broker-wide native-protocol traffic since start: closed connections plus
/// the open ones at the moment of reading.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub connections: u64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Connections {
    /// Adds a connection; it stays listed until the returned guard drops.
    pub fn register(&self, peer: SocketAddr, tls: bool) -> Registration<'_> {
        let info = Arc::new(ConnectionInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            connected_at: SystemTime::now(),
            tls,
            user: Mutex::new(None),
            requests: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        self.lock().by_id.insert(info.id, Arc::clone(&info));
        Registration {
            connections: self,
            info,
        }
    }

    /// Traffic since the broker started, closed connections included.
    pub fn totals(&self) -> Totals {
        let open = self.lock();
        let mut t = open.closed;
        for info in open.by_id.values() {
            t.connections += 1;
            t.requests += info.requests.load(Ordering::Relaxed);
            t.bytes_in += info.bytes_in.load(Ordering::Relaxed);
            t.bytes_out += info.bytes_out.load(Ordering::Relaxed);
        }
        t
    }

    /// The open connections in accept order.
    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        self.lock().by_id.values().cloned().collect()
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a connection listed; dropping it removes the connection.
pub struct Registration<'a> {
    connections: &'a Connections,
    pub info: Arc<ConnectionInfo>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.by_id.remove(&self.info.id);
        let i = &self.info;
        open.closed.connections += 1;
        open.closed.requests += i.requests.load(Ordering::Relaxed);
        open.closed.bytes_in += i.bytes_in.load(Ordering::Relaxed);
        open.closed.bytes_out += i.bytes_out.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_listed_until_its_registration_drops() {
        let c = Connections::default();
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let a = c.register(peer, false);
        let b = c.register(peer, true);
        assert_eq!(
            c.list().iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![a.info.id, b.info.id]
        );
        a.info.set_user(Some("alice".into()));
        assert_eq!(
            c.list().first().and_then(|i| i.user()).as_deref(),
            Some("alice")
        );
        ConnectionInfo::add(&a.info.bytes_in, 10);
        ConnectionInfo::add(&b.info.bytes_out, 5);
        drop(a);
        assert_eq!(c.len(), 1);
        let t = c.totals();
        assert_eq!((t.connections, t.bytes_in, t.bytes_out), (2, 10, 5));
        drop(b);
        assert!(c.is_empty());
        assert_eq!(c.totals().bytes_out, 5);
    }
}
