//! Global rate limits: one budget per client (or per named budget) for every replica, kept in
//! Redis by GCRA (the token bucket's exact form: a burst, then one request per interval, no
//! window edges), one script call per request on the server's clock. When Redis cannot decide
//! in time a replica falls back as the client says: its share of the limit locally (the rate
//! and burst divided by the replicas that sent heartbeats in the last seconds), or 503.
//!
//! A replica far from its client's limit does not ask Redis for every request: a call may grant
//! up to [`store::MAX_LEASE`] requests at once (never more than half of what the budget holds
//! free, nor a quarter of the burst shared among the replicas), which the replica spends within
//! [`store::LEASE_FOR`] or loses. Every admitted request is charged in Redis before it is
//! admitted; near the limit each call grants one, so the limit is as exact as one call per
//! request.
//!
//! A client over its limit does not cost Redis a call per request either: once Redis answered
//! that the budget is empty until some instant, the replica refuses the budget's requests until
//! then by itself (exact: the budget's TAT only ever moves on).
//!
//! What a Redis restart loses: the budgets' state, so each client may get one more burst.

pub mod store;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_api::route_table::RedisFailure;
use governor::clock::{Clock, DefaultClock};

use store::{BudgetKey, BudgetState, Failure, RedisStore};

/// A client's global limit, as a table holds it.
#[derive(Debug)]
pub struct GlobalLimit {
    /// The server; `None` when the table names none and the proxy was given no `--redis`.
    store: Option<Arc<RedisStore>>,
    budget: Arc<BudgetState>,
    rate: u32,
    burst: u32,
    interval_us: u64,
    on_failure: RedisFailure,
}

/// What a global limit says of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted.
    Admitted,
    /// Over the limit: admitted again after this wait.
    Wait(Duration),
    /// Redis could not decide and the client's policy is to refuse.
    Unavailable,
}

impl GlobalLimit {
    /// The limit of `budget`, `rate` per second with `burst`, drawn from `store`.
    pub fn new(
        store: Option<Arc<RedisStore>>,
        budget: &str,
        rate: u32,
        burst: u32,
        on_failure: RedisFailure,
    ) -> Self {
        let rate = rate.max(1);
        let burst = burst.max(1);
        let key = BudgetKey {
            budget: budget.to_owned(),
            rate,
            burst,
        };
        let budget = match &store {
            Some(store) => store.budget(&key),
            None => Arc::new(BudgetState::local(budget)),
        };
        Self {
            store,
            budget,
            rate,
            burst,
            interval_us: 1_000_000 / u64::from(rate),
            on_failure,
        }
    }

    /// Takes one request from the budget; with the failure, when Redis could not decide and
    /// the client's `onRedisFailure` answered instead.
    pub async fn admit(&self) -> (Verdict, Option<Failure>) {
        if self.budget.spend_lease() {
            return (Verdict::Admitted, None);
        }
        if let Some(wait) = self.budget.refused_for() {
            return (Verdict::Wait(wait), None);
        }
        let decided = match &self.store {
            Some(store) => {
                let want = self.budget.lease_size(self.burst);
                store
                    .take(&self.budget, self.interval_us, self.burst, want)
                    .await
            }
            None => Err(Failure::Unconfigured),
        };
        match decided {
            Ok(Ok(granted)) => {
                if granted > 1 {
                    self.budget.lease(granted - 1);
                }
                (Verdict::Admitted, None)
            }
            Ok(Err(wait)) => {
                self.budget.refuse_for(wait);
                (Verdict::Wait(wait), None)
            }
            Err(failure) => (self.fall_back(), Some(failure)),
        }
    }

    fn fall_back(&self) -> Verdict {
        match self.on_failure {
            RedisFailure::Refuse => Verdict::Unavailable,
            RedisFailure::LocalShare => match self.budget.fallback(self.rate, self.burst).check() {
                Ok(()) => Verdict::Admitted,
                Err(not_until) => {
                    Verdict::Wait(not_until.wait_time_from(DefaultClock::default().now()))
                }
            },
        }
    }
}
