//! `src/sansio` compiled under `#![no_std]` (see Cargo.toml). Nothing else is in this crate:
//! the modules are included as they are, with the same paths (`crate::sansio::...`).
#![no_std]

#[path = "../../../src/sansio/mod.rs"]
pub mod sansio;
