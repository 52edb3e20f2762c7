//! SCRAM messages from the wire are hostile input: any bytes, fed to every
//! step of both state machines, give an error or a value, never a panic; and
//! a well-formed message with one byte changed never authenticates.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use warren_protocol::scram::{ClientFirst, ScramClient, ScramCredential};

/// Bytes that look like SCRAM text often enough to get past the first checks.
fn scram_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"nyrscivpe=,aAbB09+/%".to_vec()),
        1 => any::<u8>(),
    ]
}

/// Derived once: PBKDF2 is the slow part of every case.
fn credential() -> ScramCredential {
    static CREDENTIAL: LazyLock<ScramCredential> =
        LazyLock::new(|| ScramCredential::derive("pencil", b"fixed salt", 4096).unwrap());
    CREDENTIAL.clone()
}

/// A valid exchange's server-first and client-final, computed once.
fn valid_exchange() -> &'static (String, String) {
    static EXCHANGE: LazyLock<(String, String)> = LazyLock::new(|| {
        let client = ScramClient::with_nonce("user", "pencil", "abc");
        let (_, server_first) = ClientFirst::parse(client.client_first().as_bytes())
            .unwrap()
            .server_first(Some(credential()), b"decoy", "srv")
            .unwrap();
        let (_, client_final) = client.handle_server_first(server_first.as_bytes()).unwrap();
        (server_first, client_final)
    });
    &EXCHANGE
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_step_survives_arbitrary_bytes(msg in vec(scram_byte(), 0..200)) {
        if let Ok(first) = ClientFirst::parse(&msg) {
            let _ = first.server_first(None, b"decoy", "srv");
        }
        // A bad iteration count or salt fails before PBKDF2 runs; only a
        // valid-looking server-first costs a derivation.
        let client = ScramClient::with_nonce("user", "pencil", "abc");
        let _ = client.handle_server_first(&msg);
        let (server, _) = ClientFirst::parse(b"n,,n=user,r=abc")
            .unwrap()
            .server_first(Some(credential()), b"decoy", "srv")
            .unwrap();
        let _ = server.handle_client_final(&msg);
    }

    #[test]
    fn a_changed_client_final_never_authenticates(at in any::<prop::sample::Index>(), to in any::<u8>()) {
        let (server, _) = ClientFirst::parse(b"n,,n=user,r=abc")
            .unwrap()
            .server_first(Some(credential()), b"decoy", "srv")
            .unwrap();
        let (_, client_final) = valid_exchange();
        prop_assert!(ClientFirst::parse(b"n,,n=user,r=abc")
            .unwrap()
            .server_first(Some(credential()), b"decoy", "srv")
            .unwrap()
            .0
            .handle_client_final(client_final.as_bytes())
            .is_ok());
        let mut bytes = client_final.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != to);
        bytes[i] = to;
        prop_assert!(server.handle_client_final(&bytes).is_err());
    }
}
