//! Gatehouse API: the custom resources, their validation, and the route table they compile to.
//!
//! Everything here is pure: no I/O, no async runtime. The operator and the proxy share it, so a
//! resource means the same thing in the cluster and in standalone mode.
#![forbid(unsafe_code)]

pub mod admission;
pub mod certificate;
pub mod compile;
pub mod crd;
pub mod duration;
pub mod exposure;
pub mod expression;
pub mod naming;
pub mod normalize;
pub mod openapi;
pub mod path;
pub mod prepare;
pub mod rate_limits;
pub mod resource;
pub mod route_table;
pub mod table_file;
pub mod template;
pub mod usage;
pub mod validate;
pub mod versioning;
pub mod yaml;
