//! Gatehouse operator: turns Gateway, EdgeService and Aggregator resources into running,
//! autoscaled proxies.
//!
//! The pure half (what to build) lives in [`references`], [`plan`] and [`objects`] and is shared by
//! `gatehouse-operator render` and the controllers; the I/O half (reading the cluster, applying,
//! reporting status) lives in [`controller`], with [`leader`], [`admin`] and [`metrics`] around it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod controller;
pub mod diff;
pub mod leader;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod plan;
pub mod references;
pub mod render;
pub mod settings;

/// The allocator of every program built on this crate: the operator binary, and so the render
/// benchmark, which measures what the binary does. `render` allocates and frees millions of small
/// values (YAML, JSON and CEL trees) from two threads; mimalloc does that at about two thirds
/// of glibc malloc's cost (`bench/RESULTS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The one field manager every server-side apply of the operator uses.
pub const FIELD_MANAGER: &str = "gatehouse-operator";
