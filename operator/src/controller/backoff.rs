//! Exponential delays per object: retries after API errors (reset by a successful reconcile),
//! and the next look at proxy replicas that do not serve the current table yet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// First retry delay after an error.
const FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay after errors.
const MAX: Duration = Duration::from_secs(300);

/// Failure counts by object key (`Kind/namespace/name`).
#[derive(Debug)]
pub struct RetryBackoff {
    failures: Mutex<HashMap<String, u32>>,
    first: Duration,
    max: Duration,
}

impl Default for RetryBackoff {
    /// The delays after API errors: 1 s doubling up to 5 minutes.
    fn default() -> Self {
        Self::new(FIRST, MAX)
    }
}

impl RetryBackoff {
    /// Delays starting at `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            failures: Mutex::default(),
            first,
            max,
        }
    }

    /// Records a failure and returns how long to wait: `first`, twice that, four times… up to
    /// `max` (1s, 2s, 4s… up to 5 minutes by default).
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_insert(0);
        let delay = self
            .first
            .saturating_mul(2_u32.saturating_pow(*count))
            .min(self.max);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of an object that reconciled.
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let backoff = RetryBackoff::default();
        let delays: Vec<u64> = (0..11)
            .map(|_| backoff.next_delay("Gateway/shop/public").as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff.next_delay("Aggregator/shop/page").as_secs(), 1);
        backoff.reset("Gateway/shop/public");
        assert_eq!(backoff.next_delay("Gateway/shop/public").as_secs(), 1);
    }

    #[test]
    fn custom_limits() {
        let backoff = RetryBackoff::new(Duration::from_millis(200), Duration::from_secs(1));
        let delays: Vec<u128> = (0..5)
            .map(|_| backoff.next_delay("Gateway/shop/public").as_millis())
            .collect();
        assert_eq!(delays, [200, 400, 800, 1000, 1000]);
    }
}
