//! kai's trust core.

pub mod crypto;
