//! NSCA client: the passive-check protocol of NSCA 2.x, spoken natively.
//!
//! One check per TCP connection. The server opens with a 132-byte init packet
//! (a 128-byte IV, then its Unix time as a big-endian u32); the client answers
//! with one data packet, encrypted with the IV and the shared password, and
//! closes. The server answers nothing, so success here means "delivered to the
//! server's socket"; a wrong password or method is only visible in its syslog.
//!
//! One file per concern, all re-exported here so callers need one path:
//! - `packet`: the data packet's layout, its CRC, the init packet;
//! - `crypto`: [`Encryption`] and the ciphers that seal a packet;
//! - `send_nsca_cfg`: the `send_nsca.cfg` file format;
//! - `client`: [`NscaClient`], the only part that touches the network;
//! - `error`: [`NscaError`], shared by all of them.
//!
//! Everything except [`NscaClient::send_check`] is pure, so the packet bytes
//! are tested against captures of the real `send_nsca` client.

mod client;
mod crypto;
mod error;
mod packet;
mod send_nsca_cfg;

pub use client::{NscaClient, DEFAULT_PORT, DEFAULT_TIMEOUT};
pub use crypto::{decrypt, encrypt, Encryption};
pub use error::NscaError;
pub use packet::{
    build_packet, crc32, packet_crc_ok, padding_fill, parse_init_packet, INIT_PACKET_LEN, IV_LEN,
    LEGACY_PACKET_LEN, PACKET_LEN,
};
pub use send_nsca_cfg::{load_send_nsca_config, parse_send_nsca_config, SendNscaConfig};
