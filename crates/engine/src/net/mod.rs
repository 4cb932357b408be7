//! Connections and their witnesses: the HTTP transport whose streams we own (`transport`),
//! the in-process ledger and the OS socket table (`sockets`), and the one close-then-verify
//! routine (`closing`). See ARCHITECTURE.md, "Verified closing".

mod closing;
pub mod record;
pub mod sockets;
pub mod transport;

pub use closing::{FORCE_BUDGET, Settled, settle};
