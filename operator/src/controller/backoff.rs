//! Exponential retry delays per object after API errors, reset by a successful reconcile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// First retry delay.
const FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX: Duration = Duration::from_secs(300);

/// Failure counts by object key (`Kind/namespace/name`).
#[derive(Debug, Default)]
pub struct RetryBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl RetryBackoff {
    /// Records a failure and returns how long to wait: 1s, 2s, 4s… up to 5 minutes.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_insert(0);
        let delay = FIRST.saturating_mul(2_u32.saturating_pow(*count)).min(MAX);
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
}
