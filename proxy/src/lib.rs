//! Gatehouse data plane: a Pingora proxy that serves a compiled route table.
//!
//! The router ([`router`]) is pure and decides which route serves a request; [`gateway`] is the
//! thin Pingora driver; [`reload`] swaps tables in atomically, fed by files and, in a cluster, by
//! [`cluster`] (the route ConfigMap and client Secrets watched through the Kubernetes API); [`runtime`] owns the state that
//! outlives tables (rate-limit buckets, upstream addresses refreshed in the background, passive
//! health); [`admin`] serves health, readiness, metrics, the loaded table's identity and who calls which contract version ([`usage`]). See `proxy/README.md` for the user-facing contract.
#![deny(unsafe_code)]

pub mod access;
pub mod admin;
pub mod aggregate;
pub mod app;
pub mod bound;
pub mod cli;
pub mod clients;
pub mod cluster;
pub mod contract_documents;
pub mod cors;
mod delegate;
pub mod deprecation;
pub mod gateway;
pub mod global_limit;
pub mod grpc;
pub mod head_guard;
pub mod headers;
pub mod listen;
pub mod metrics;
pub mod problem;
pub mod reload;
pub mod request_head;
pub mod rewrite;
pub mod router;
pub mod runtime;
pub mod server;
pub mod source;
pub mod table;
pub mod tls;
pub mod tunnel;
pub mod upstream;
pub mod usage;
