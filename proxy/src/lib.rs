//! Gatehouse data plane.
