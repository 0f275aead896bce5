//! Listener sockets: one per listener per shard, all bound to the same address with SO_REUSEPORT.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::RuntimeError;
use crate::config::ListenerSection;

/// Sockets bound for every shard, and the resolved address of each listener (port 0 resolved).
pub struct Bound {
    pub addresses: Vec<SocketAddr>,
    /// `per_shard[shard][listener]`.
    pub per_shard: Vec<Vec<std::net::TcpListener>>,
}

/// Binds each listener `shards` times on the same address.
pub fn bind_listeners(listeners: &[ListenerSection], shards: usize) -> Result<Bound, RuntimeError> {
    let mut per_shard: Vec<Vec<std::net::TcpListener>> = (0..shards).map(|_| Vec::new()).collect();
    let mut addresses = Vec::new();
    for l in listeners {
        let err = |source| RuntimeError::Bind {
            address: l.address.clone(),
            source,
        };
        let requested: SocketAddr = l
            .address
            .parse()
            .map_err(|_| err(std::io::Error::other("not an IP:port address")))?;
        // The first bind resolves port 0; the others join that port.
        let first = bind_one(requested).map_err(err)?;
        let addr = first.local_addr().map_err(err)?;
        per_shard[0].push(first);
        for sockets in per_shard.iter_mut().skip(1) {
            sockets.push(bind_one(addr).map_err(err)?);
        }
        addresses.push(addr);
    }
    Ok(Bound {
        addresses,
        per_shard,
    })
}

fn bind_one(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
