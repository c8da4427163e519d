//! `leakguard kernel-proxy`: Jupyter enforcement that user code cannot
//! switch off.
pub mod connection;
pub mod filter;
pub mod wire;
