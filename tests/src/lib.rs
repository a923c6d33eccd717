//! Shared helpers of the end-to-end tests.
#![forbid(unsafe_code)]

pub mod binaries;
pub mod ports;

#[cfg(test)]
mod ports_tests {
    use super::ports::free_port;

    #[test]
    fn ports_are_never_handed_out_twice_and_stay_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(
            ports.iter().all(|p| (20_000..32_000).contains(p)),
            "{ports:?}"
        );
    }
}
