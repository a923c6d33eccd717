//! Gatehouse operator: turns Gateway, EdgeService and Aggregator resources into running,
//! autoscaled proxies.
//!
//! The pure half (what to build) lives in [`references`], [`plan`] and [`build`] and is shared by
//! `gatehouse-operator render` and the controllers; the I/O half (reading the cluster, applying,
//! reporting status) lives in [`controller`], with [`leader`], [`admin`] and [`metrics`] around it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod build;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod references;
pub mod render;
pub mod settings;

/// The one field manager every server-side apply of the operator uses.
pub const FIELD_MANAGER: &str = "gatehouse-operator";
