//! Nagle's algorithm off, and TCP keepalive on, for the connections to Postgres.
//!
//! sqlx 0.9.0 no longer sets `TCP_NODELAY` on its sockets (sqlx issue #4335, fixed upstream
//! after 0.9.0). Over TLS, which a server with SSL gets by default (`sslmode=prefer`), sqlx
//! writes a message longer than one TLS record (16 KiB) with two `send` calls; Nagle's
//! algorithm holds the second back until the server acknowledges the first, and the server
//! delays that acknowledgement by 40 ms because no answer is ready yet. Measured here: a
//! `record_step` of a state with a 12 KiB context took 44 ms instead of 1 ms.
//!
//! sqlx does not hand out its sockets, so after each new connection the store looks
//! through this process's open sockets and turns Nagle off on the TCP ones connected to
//! the database server. libpq (psql, pgbench) does the same on its own sockets.
//!
//! The store's own pools also get TCP keepalive on those sockets (sqlx 0.9 has no option
//! for it): a connection to a host that went away, or behind a network that now drops
//! its packets, is then found dead within about a minute instead of never, like libpq's
//! `keepalives` settings do.

use std::io;
use std::net::SocketAddr;

/// Turns Nagle's algorithm off (sets `TCP_NODELAY`) on every TCP socket of this process
/// connected to `host:port`, and returns how many it changed.
///
/// The store calls this for its own Postgres pools after each connection is made. Call
/// it from your pool's `after_connect` when you build the pool yourself and hand it to
/// [`SeaOrmStateStore::from_connection`](crate::SeaOrmStateStore::from_connection), since
/// sqlx 0.9.0 leaves Nagle on (writes over 16 KiB through TLS then wait 40 ms). It only
/// touches sockets connected to that server, which is what every client of it wants; on
/// platforms other than Linux, macOS and the BSDs it does nothing and returns 0. It
/// resolves `host` and looks at each open file descriptor of the process (a few system
/// calls each), so call it once per new connection, not per query.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let changed = llm_orchestrator_state::disable_nagle("db.internal", 5432).await?;
/// # let _ = changed;
/// # Ok(())
/// # }
/// ```
pub async fn disable_nagle(host: &str, port: u16) -> io::Result<usize> {
    let peers: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    Ok(sockets::set_nodelay_towards(&peers, false))
}

/// [`disable_nagle`], and TCP keepalive on (idle [`KEEPALIVE_IDLE`], then a probe every
/// [`KEEPALIVE_INTERVAL`], dead after [`KEEPALIVE_PROBES`] unanswered ones) for every TCP
/// socket of this process connected to `host:port`; returns how many had Nagle on.
pub(crate) async fn tune_sockets(host: &str, port: u16) -> io::Result<usize> {
    let peers: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    Ok(sockets::set_nodelay_towards(&peers, true))
}

/// How long a connection to Postgres is idle before TCP keepalive probes it.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(30);
/// How often an unanswered keepalive probe is sent again.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Unanswered probes after which the connection is dead.
const KEEPALIVE_PROBES: u32 = 3;

#[cfg(unix)]
mod sockets {
    use std::net::SocketAddr;
    use std::os::fd::{BorrowedFd, RawFd};

    use socket2::{SockRef, TcpKeepalive, Type};

    /// Where the open file descriptors of this process are listed.
    const FD_FOLDERS: [&str; 2] = ["/proc/self/fd", "/dev/fd"];

    /// Sets `TCP_NODELAY` (and, with `keepalive`, TCP keepalive) on the open TCP sockets
    /// whose peer is one of `peers`; returns how many had Nagle on.
    pub(super) fn set_nodelay_towards(peers: &[SocketAddr], keepalive: bool) -> usize {
        let Some(listing) = FD_FOLDERS
            .iter()
            .find_map(|folder| std::fs::read_dir(folder).ok())
        else {
            return 0;
        };
        let fds = listing.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
        fds.filter(|&fd| set_nodelay_if_towards(fd, peers, keepalive))
            .count()
    }

    /// The keepalive the store's Postgres sockets get.
    fn keepalive() -> TcpKeepalive {
        let params = TcpKeepalive::new().with_time(super::KEEPALIVE_IDLE);
        #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
        let params = params
            .with_interval(super::KEEPALIVE_INTERVAL)
            .with_retries(super::KEEPALIVE_PROBES);
        params
    }

    /// Sets `TCP_NODELAY` on `fd` if it is a TCP socket connected to one of `peers` and
    /// does not have it yet (and, with `keepalive`, turns TCP keepalive on); true if it
    /// turned Nagle off.
    #[allow(unsafe_code)]
    fn set_nodelay_if_towards(fd: RawFd, peers: &[SocketAddr], keepalive: bool) -> bool {
        if fd < 0 {
            return false;
        }
        // SAFETY: `fd` was listed open a moment ago and is borrowed only for the socket
        // calls below (getsockopt, getpeername, setsockopt), which read and write no
        // memory of ours. If another thread closes it meanwhile, they fail with EBADF; if
        // the number is reused at once, the peer check applies to the new socket.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = SockRef::from(&fd);
        let towards_peer = socket.r#type().is_ok_and(|kind| kind == Type::STREAM)
            && socket
                .peer_addr()
                .ok()
                .and_then(|peer| peer.as_socket())
                .is_some_and(|peer| peers.contains(&peer));
        if towards_peer && keepalive {
            // Best effort: a socket that refuses keeps the system's default.
            let _ = socket.set_tcp_keepalive(&self::keepalive());
        }
        towards_peer
            && socket.tcp_nodelay().is_ok_and(|on| !on)
            && socket.set_tcp_nodelay(true).is_ok()
    }
}

#[cfg(not(unix))]
mod sockets {
    use std::net::SocketAddr;

    /// No way to list open sockets here: nothing changes.
    pub(super) fn set_nodelay_towards(_peers: &[SocketAddr], _keepalive: bool) -> usize {
        0
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_nagle_off_on_connections_to_that_server_only() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = server.local_addr().unwrap();
        let ours = tokio::net::TcpStream::connect(address).await.unwrap();
        let theirs = tokio::net::TcpStream::connect(other.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!ours.nodelay().unwrap(), "Nagle is on by default");

        let changed = disable_nagle("127.0.0.1", address.port()).await.unwrap();
        assert_eq!(changed, 1);
        assert!(ours.nodelay().unwrap());
        assert!(
            !theirs.nodelay().unwrap(),
            "a socket to another server is left alone"
        );
        // Already off: nothing more to change.
        assert_eq!(disable_nagle("127.0.0.1", address.port()).await.unwrap(), 0);
        assert!(!socket2::SockRef::from(&ours).keepalive().unwrap());

        // The store's own pools also get keepalive, on that server's sockets only.
        tune_sockets("127.0.0.1", address.port()).await.unwrap();
        assert!(socket2::SockRef::from(&ours).keepalive().unwrap());
        assert!(!socket2::SockRef::from(&theirs).keepalive().unwrap());
    }
}
