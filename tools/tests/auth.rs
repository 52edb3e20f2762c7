//! Users and permissions through the real `warren` binary against a real
//! `warren serve`: `warren user add|delete|list`, `warren acl
//! grant|revoke|list`, the global `--user`/`--password` (and their
//! environment variables) used by other commands, the start-up log lines,
//! and users/ACLs surviving `kill -9`.

mod common;
mod run;

use std::process::Output;

use anyhow::{Result, ensure};
use common::BrokerProcess;
use run::{COMMAND_DEADLINE, check_ok, single_error_line, stdout};

/// Runs `warren ARGS --broker B` with `env` set (and the auth variables of the
/// test's own environment removed, so only `env` counts).
fn warren(
    broker: &BrokerProcess,
    args: &[&str],
    stdin: &[u8],
    env: &[(&str, &str)],
) -> Result<Output> {
    let mut cmd = common::warren();
    cmd.args(args).args(["--broker", &broker.broker_arg()]);
    for var in ["WARREN_USER", "WARREN_PASSWORD", "WARREN_NEW_PASSWORD"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run::spawn(cmd, stdin)?.wait(COMMAND_DEADLINE)
}

fn ok(broker: &BrokerProcess, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Result<String> {
    let out = warren(broker, args, stdin, env)?;
    check_ok(&out, &args.join(" "))?;
    Ok(stdout(&out))
}

const ROOT: [(&str, &str); 2] = [("WARREN_USER", "root"), ("WARREN_PASSWORD", "root-pw")];

#[test]
fn users_and_acls_from_the_cli_survive_kill_9() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    ensure!(
        !broker
            .log_lines("no users defined: anonymous clients have full access")
            .is_empty(),
        "no anonymous-access warning at start"
    );
    ok(
        &broker,
        &["topic", "create", "orders", "--partitions", "1"],
        b"",
        &[],
    )?;
    // The first user must be a superuser; a password is required.
    let err = single_error_line(&warren(
        &broker,
        &["user", "add", "app"],
        b"",
        &[("WARREN_NEW_PASSWORD", "x")],
    )?)?;
    ensure!(err.contains("SUPERUSER_REQUIRED"), "{err}");
    let err = single_error_line(&warren(
        &broker,
        &["user", "add", "root", "--superuser"],
        b"",
        &[],
    )?)?;
    ensure!(
        err.contains("--password-stdin") && err.contains("WARREN_NEW_PASSWORD"),
        "{err}"
    );
    let out = ok(
        &broker,
        &["user", "add", "root", "--superuser", "--password-stdin"],
        b"root-pw\n",
        &[],
    )?;
    ensure!(out == "created user root (superuser)\n", "{out}");
    // Anonymous is over; the error says what to do.
    let err = single_error_line(&warren(&broker, &["topic", "list"], b"", &[])?)?;
    ensure!(err.contains("requires authentication"), "{err}");
    let err = single_error_line(&warren(
        &broker,
        &["topic", "list", "--user", "root", "--password", "nope"],
        b"",
        &[],
    )?)?;
    ensure!(
        err.contains("authentication as \"root\"") && err.contains("failed"),
        "{err}"
    );
    // Flags and environment both work.
    ok(
        &broker,
        &["topic", "list", "--user", "root", "--password", "root-pw"],
        b"",
        &[],
    )?;
    ok(
        &broker,
        &["user", "add", "app"],
        b"",
        &[ROOT[0], ROOT[1], ("WARREN_NEW_PASSWORD", "app-pw")],
    )?;
    let out = ok(
        &broker,
        &[
            "acl",
            "grant",
            "app",
            "--topic",
            "orders*",
            "--permission",
            "write",
        ],
        b"",
        &ROOT,
    )?;
    ensure!(out == "granted app topic:orders* write\n", "{out}");
    ok(
        &broker,
        &[
            "acl",
            "grant",
            "app",
            "--group",
            "billing",
            "--permission",
            "read",
        ],
        b"",
        &ROOT,
    )?;
    let err = single_error_line(&warren(
        &broker,
        &[
            "acl",
            "grant",
            "app",
            "--topic",
            "a b",
            "--permission",
            "read",
        ],
        b"",
        &ROOT,
    )?)?;
    ensure!(err.contains("invalid topic pattern"), "{err}");
    let app = [("WARREN_USER", "app"), ("WARREN_PASSWORD", "app-pw")];
    // app may write orders but not read it, nor manage users.
    ok(&broker, &["produce", "orders"], b"one\ntwo\n", &app)?;
    let err = single_error_line(&warren(
        &broker,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--max-messages",
            "1",
        ],
        b"",
        &app,
    )?)?;
    ensure!(err.contains("TOPIC_AUTHORIZATION_FAILED"), "{err}");
    let err = single_error_line(&warren(&broker, &["user", "list"], b"", &app)?)?;
    ensure!(err.contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");
    ok(
        &broker,
        &[
            "acl",
            "grant",
            "app",
            "--topic",
            "orders",
            "--permission",
            "read",
        ],
        b"",
        &ROOT,
    )?;
    let out = ok(
        &broker,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--max-messages",
            "2",
        ],
        b"",
        &app,
    )?;
    ensure!(out == "one\ntwo\n", "{out}");
    ok(
        &broker,
        &[
            "acl",
            "revoke",
            "app",
            "--topic",
            "orders",
            "--permission",
            "read",
        ],
        b"",
        &ROOT,
    )?;

    // kill -9: every change above was fsynced before it was answered.
    broker.kill9()?;
    let broker = BrokerProcess::start(dir.path())?;
    ensure!(
        !broker.log_lines("authentication required").is_empty(),
        "no auth-on line at start"
    );
    let users = ok(&broker, &["user", "list"], b"", &ROOT)?;
    ensure!(users == "USER  SUPERUSER\napp   no\nroot  yes\n", "{users}");
    let acls = ok(&broker, &["acl", "list", "app"], b"", &ROOT)?;
    ensure!(
        acls == "USER  RESOURCE       PERMISSION\napp   topic:orders*  write\napp   group:billing  read\n",
        "{acls}"
    );
    ok(&broker, &["user", "delete", "app"], b"", &ROOT)?;
    let acls = ok(&broker, &["acl", "list"], b"", &ROOT)?;
    ensure!(acls == "USER  RESOURCE  PERMISSION\n", "{acls}");
    let err = single_error_line(&warren(&broker, &["produce", "orders"], b"x\n", &app)?)?;
    ensure!(err.contains("authentication as \"app\""), "{err}");
    broker.terminate()?;
    Ok(())
}
