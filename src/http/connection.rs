//! Each connection's socket, kept with the connection so that an event stream can
//! shrink its send buffer and close it while its response is not being written.

use std::any::Any;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use actix_web::HttpRequest;

/// The kernel send buffer of an event stream's connection (the kernel doubles it).
/// Events are small; the default, which grows to megabytes, only delays noticing a
/// client that stopped reading and holds that much memory for it.
const EVENT_SEND_BUFFER: usize = 32 * 1024;

/// A duplicate of the connection's descriptor (closed with the connection's data).
struct ConnectionSocket(Arc<OwnedFd>);

/// Registered with the server: remembers every TCP connection's socket, under TLS too.
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    let stream = match connection.downcast_ref::<TcpStream>() {
        Some(plain) => plain,
        None => match connection.downcast_ref::<TlsStream<TcpStream>>() {
            Some(tls) => tls.get_ref().0,
            None => return,
        },
    };
    match stream.as_fd().try_clone_to_owned() {
        Ok(socket) => {
            data.insert(ConnectionSocket(Arc::new(socket)));
        }
        Err(e) => log::debug!("connection socket not kept: {e}"),
    }
}

/// The socket of `request`'s connection, given the small send buffer of an event
/// stream; `None` when it was not kept.
pub fn event_socket(request: &HttpRequest) -> Option<Arc<OwnedFd>> {
    let socket = Arc::clone(&request.conn_data::<ConnectionSocket>()?.0);
    if let Err(e) =
        rustix::net::sockopt::set_socket_send_buffer_size(socket.as_ref(), EVENT_SEND_BUFFER)
    {
        log::debug!("event stream send buffer left as it is: {e}");
    }
    Some(socket)
}
