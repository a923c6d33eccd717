//! Rate-limit buckets, kept across table reloads: one token bucket per client and limit. A
//! reload that leaves a client's limit as it was (a Secret rotation, a change elsewhere in the
//! table) hands the new table the same bucket, so it does not refill a burst; a changed limit
//! is another key and gets a fresh, full bucket.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::registry::Registry;

/// A client's token bucket.
pub type Bucket = DefaultDirectRateLimiter;

/// What identifies a bucket: the client and its limit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BucketKey {
    /// Client name.
    pub client: String,
    /// Tokens added per second.
    pub requests_per_second: NonZeroU32,
    /// Bucket size.
    pub burst: NonZeroU32,
}

/// Every client's bucket while a table uses it.
#[derive(Default)]
pub struct BucketBook {
    buckets: Registry<BucketKey, Bucket>,
}

impl std::fmt::Debug for BucketBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketBook")
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

impl BucketBook {
    /// The bucket of `key`: the one a table already uses, else a new, full one.
    pub fn bucket(&self, key: &BucketKey) -> Arc<Bucket> {
        let quota = Quota::per_second(key.requests_per_second).allow_burst(key.burst);
        self.buckets
            .get_or_insert_with(key, || RateLimiter::direct(quota))
            .0
    }

    /// Forgets buckets no table uses any more.
    pub fn prune(&self) {
        self.buckets.prune();
    }

    /// Buckets known (in use, or dropped since the last prune).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no bucket is known.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(client: &str, rate: u32, burst: u32) -> BucketKey {
        BucketKey {
            client: client.to_owned(),
            requests_per_second: NonZeroU32::new(rate).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn an_unchanged_limit_keeps_its_bucket_and_a_changed_one_starts_full() {
        let book = BucketBook::default();
        let web = book.bucket(&key("web", 1, 2));
        assert!(web.check().is_ok() && web.check().is_ok());
        assert!(web.check().is_err(), "the burst is used up");

        let reloaded = book.bucket(&key("web", 1, 2));
        assert!(
            reloaded.check().is_err(),
            "the next table gets the same bucket"
        );

        let raised = book.bucket(&key("web", 1, 3));
        assert!(raised.check().is_ok(), "a new limit starts full");
        assert!(
            book.bucket(&key("mobile", 1, 2)).check().is_ok(),
            "each client has its own"
        );

        drop((web, reloaded));
        book.prune();
        assert_eq!(book.len(), 1, "only the bucket still held is kept");
    }
}
