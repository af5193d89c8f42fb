//! FIX 4.4 without I/O: the codec ([`codec`]), the data dictionary with its repeating groups
//! ([`dictionary`]), the session layer ([`session`]), and the stores behind resends
//! ([`resend_store`], [`session_store`]).
//!
//! Architecture invariant: nothing here opens a socket, spawns a thread or reads a clock; time
//! comes in as an argument and bytes go out as buffers. The only I/O is [`session_store`]'s
//! files, which the transport shells call at logon and logout, never per message. The gateway's
//! QUIC and TCP shells, the client and the fuzz targets all drive this same code.

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

pub mod codec;
pub mod dictionary;
pub mod resend_store;
pub mod session;
pub mod session_store;
