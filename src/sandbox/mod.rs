//! The embedded sandbox: one loopback listener per system, each speaking that system's real
//! wire protocol, with deterministic answers and injectable faults.

pub mod fault;
