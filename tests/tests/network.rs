//! The store's Postgres connections turn Nagle's algorithm off (sqlx 0.9.0 leaves it on,
//! and then a write over 16 KiB through TLS waits 40 ms for the server's delayed ACK).
//! Its own test binary, so every socket to the server in this process is the store's.

use std::net::SocketAddr;
use std::str::FromStr;

use backend_suite::{Backend, open, test_database_url, workflow};
use llm_orchestrator_state::StateStore;
use llm_orchestrator_state::sea_orm::sqlx::postgres::PgConnectOptions;
use serde_json::json;

/// For each TCP socket of this process connected to one of `peers`: whether it has
/// `TCP_NODELAY`.
#[allow(unsafe_code)]
fn nodelay_of_sockets_towards(peers: &[SocketAddr]) -> Vec<bool> {
    use std::os::fd::BorrowedFd;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // SAFETY: only socket queries on a descriptor listed open a moment ago; a closed
        // one makes them fail (EBADF), which skips it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let peer = socket.peer_addr().ok().and_then(|peer| peer.as_socket());
        if peer.is_some_and(|peer| peers.contains(&peer))
            && let Ok(nodelay) = socket.tcp_nodelay()
        {
            found.push(nodelay);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_have_nagle_off() {
    let url = test_database_url();
    let options = PgConnectOptions::from_str(&url).unwrap();
    if options.get_socket().is_some() {
        return; // a Unix socket has no Nagle to turn off
    }
    let peers: Vec<SocketAddr> = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .collect();

    let store = open(Backend::Postgres).await;
    // A write bigger than one TLS record, so it is sent in more than one piece.
    let mut state = workflow("wf-large");
    state.context = json!({ "notes": "a long transcript of the conversation ".repeat(1_000) });
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

    let sockets = nodelay_of_sockets_towards(&peers);
    assert!(!sockets.is_empty(), "no connection to {peers:?} found");
    assert!(
        sockets.iter().all(|&nodelay| nodelay),
        "connections without TCP_NODELAY: {sockets:?}"
    );
}
