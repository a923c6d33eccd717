//! A Redis server as the keeper of global rate-limit budgets: multiplexed connections that
//! reconnect by themselves (redis-rs' `ConnectionManager`; one per request thread, driven by
//! that thread's runtime, and one for the heartbeats), the GCRA script globally limited
//! requests run, a per-call timeout, and the server's health as requests and heartbeats find
//! it.
//!
//! A call that fails or misses its timeout marks the server down for [`DOWN_FOR`]: until then
//! requests do not ask it at all (they take their fallback at once), so none ever waits behind a
//! dead connection. Every second each replica also records a heartbeat per budget (a sorted set
//! of the replicas seen in the last [`REPLICA_WINDOW`]), which tells the replica its share for
//! the fallback and brings a server marked down back as soon as it answers.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, IntoConnectionInfo, Script, ServerErrorKind, TlsCertificates};

use crate::runtime::buckets::Bucket;
use crate::runtime::registry::Registry;

/// How long a server that failed a call is left alone.
pub const DOWN_FOR: Duration = Duration::from_secs(1);
/// How often a replica records its heartbeats (and probes a server marked down).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A replica counts towards a budget's replicas for this long after its last heartbeat.
const REPLICA_WINDOW: Duration = Duration::from_secs(5);
/// The most a heartbeat waits for the server.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);
/// The most often the proxy logs that the server cannot be used.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The most requests a replica asks Redis for in one call.
pub const MAX_LEASE: u32 = 16;
/// How long requests granted ahead may be spent; unspent ones are lost (never admitted late).
pub const LEASE_FOR: Duration = Duration::from_millis(100);
/// Prefix of every key the proxy writes.
pub const KEY_PREFIX: &str = "gatehouse:rl:";

/// GCRA in one atomic step, on the server's clock. KEYS[1] holds the budget's theoretical
/// arrival time (TAT, µs) and expires when the budget is full again; ARGV[1] is the emission
/// interval (µs), ARGV[2] the burst, ARGV[3] how many requests' worth the replica would like at
/// once (its lease, at least 1). When one request is admissible, grants between 1 and that many,
/// never more than half of what the budget holds free, and moves the TAT on by as many
/// intervals; returns the number granted. Otherwise returns minus the µs until one would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allow_at = tat - interval * (tonumber(ARGV[2]) - 1)
if now < allow_at then return now - allow_at end
local free = math.floor((now - allow_at) / interval) + 1
local granted = math.max(1, math.min(tonumber(ARGV[3]), math.floor(free / 2)))
local next_tat = tat + interval * granted
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return granted
";

/// One replica's heartbeat for a budget: KEYS[1] is the budget's sorted set of replicas
/// (scored by their last heartbeat, ms), ARGV[1] the replica, ARGV[2] the window (ms). Returns
/// the replicas seen within the window.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window * 2)
return redis.call('ZCARD', KEYS[1])
";

/// Where a Redis server is and how to log in: what identifies a connection. Its `Debug` never
/// shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisTarget {
    /// `redis://HOST:PORT[/DB]` or `rediss://…`, without credentials.
    pub url: String,
    /// ACL user, when not in the URL.
    pub username: Option<String>,
    /// Password, when not in the URL.
    pub password: Option<String>,
    /// PEM authorities for `rediss`; absent: the web PKI roots.
    pub authorities: Option<Vec<u8>>,
    /// How long a request waits for an answer.
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.shown_address())
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisTarget {
    /// The target a `--redis` URL names (credentials may be in it, as
    /// `redis://USER:PASSWORD@HOST:PORT`); refused when it does not parse.
    pub fn from_url(url: &str, timeout: Duration) -> Result<Self, String> {
        url.into_connection_info()
            .map_err(|e| format!("--redis: not a Redis URL ({e})"))?;
        Ok(Self {
            url: url.to_owned(),
            username: None,
            password: None,
            authorities: None,
            timeout,
        })
    }

    /// The address for log lines: the URL without credentials.
    pub fn shown_address(&self) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://{host}")
            }
            None => self.url.clone(),
        }
    }

    fn client(&self) -> redis::RedisResult<Client> {
        let info = self.url.as_str().into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        let info = info.set_redis_settings(settings);
        match &self.authorities {
            Some(pem) => Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => Client::open(info),
        }
    }
}

/// Why a call to the server did not decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the timeout.
    Timeout,
    /// The server answered with an error, or the connection failed.
    Error,
    /// The server failed a call less than [`DOWN_FOR`] ago and was not asked.
    Down,
    /// No answer within the timeout to a connection's first call (which also connects): this
    /// request falls back, the server is not marked down.
    Connecting,
    /// No Redis server is configured.
    Unconfigured,
}

impl Failure {
    /// The `reason` label of `gatehouse_rate_limit_fallbacks_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Down => "down",
            Self::Connecting => "connecting",
            Self::Unconfigured => "unconfigured",
        }
    }
}

/// What identifies a budget's local state: its name and the limit's numbers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// The budget's name (its Redis key without [`KEY_PREFIX`]).
    pub budget: String,
    /// Requests per second.
    pub rate: u32,
    /// Burst.
    pub burst: u32,
}

/// What a replica knows of a budget besides Redis: how many replicas share it, and the local
/// bucket it falls back to.
#[derive(Debug)]
pub struct BudgetState {
    key: String,
    replicas_key: String,
    replicas: AtomicU32,
    /// Requests Redis granted ahead and not spent yet, and until when they may be.
    lease: Mutex<(u32, Instant)>,
    /// Before this instant Redis would refuse the budget's next request (it said so): requests
    /// until then are refused here, without asking. Exact, as the budget's TAT only moves on.
    refused_until: Mutex<Option<Instant>>,
    /// The fallback bucket and the share it was made for.
    fallback: Mutex<Option<(u32, Arc<Bucket>)>>,
}

impl BudgetState {
    /// The state of a budget no Redis server keeps (every request falls back).
    pub fn local(budget: &str) -> Self {
        Self::new(budget)
    }

    fn new(budget: &str) -> Self {
        Self {
            key: format!("{KEY_PREFIX}{budget}"),
            replicas_key: format!("{KEY_PREFIX}{budget}:replicas"),
            replicas: AtomicU32::new(1),
            lease: Mutex::new((0, Instant::now())),
            refused_until: Mutex::new(None),
            fallback: Mutex::new(None),
        }
    }

    /// The budget's Redis key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The wait Redis would answer now, when it said the budget is empty until later.
    pub fn refused_for(&self) -> Option<Duration> {
        let until = *self
            .refused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// Remembers that Redis refuses the budget for `wait` from now.
    pub fn refuse_for(&self, wait: Duration) {
        *self
            .refused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + wait);
    }

    /// Spends one request of the lease, if one is left and not expired.
    pub fn spend_lease(&self) -> bool {
        let mut lease = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if lease.0 > 0 && Instant::now() < lease.1 {
            lease.0 -= 1;
            true
        } else {
            false
        }
    }

    /// Keeps `tokens` granted ahead, to spend within [`LEASE_FOR`]; what the lease still held
    /// is added.
    pub fn lease(&self, tokens: u32) {
        let now = Instant::now();
        let mut lease = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        let left = if now < lease.1 { lease.0 } else { 0 };
        *lease = (left.saturating_add(tokens), now + LEASE_FOR);
    }

    /// How many requests to ask Redis for at once: at most [`MAX_LEASE`], and never more than a
    /// quarter of the burst shared among the replicas, so leases hold little of the budget.
    pub fn lease_size(&self, burst: u32) -> u32 {
        (burst / (4 * self.replicas())).clamp(1, MAX_LEASE)
    }

    /// Replicas that shared the budget at the last heartbeat (1 before any).
    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::Relaxed).max(1)
    }

    /// The local bucket for this replica's share (`rate` and `burst` divided by the replicas,
    /// at least 1 each); kept while the share stays the same.
    pub fn fallback(&self, rate: u32, burst: u32) -> Arc<Bucket> {
        use governor::{Quota, RateLimiter};
        use std::num::NonZeroU32;
        let replicas = self.replicas();
        let mut slot = self.fallback.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((share_of, bucket)) = slot.as_ref()
            && *share_of == replicas
        {
            return bucket.clone();
        }
        let share = |n: u32| NonZeroU32::new((n / replicas).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(share(rate)).allow_burst(share(burst));
        let bucket = Arc::new(RateLimiter::direct(quota));
        *slot = Some((replicas, bucket.clone()));
        bucket
    }
}

/// One Redis server in use; see the module doc.
pub struct RedisStore {
    target: RedisTarget,
    /// Identifies the store's connections in [`THREAD_CONNECTIONS`].
    id: u64,
    /// Dropped with the store, so threads can forget its connections.
    alive: Arc<()>,
    client: Client,
    config: ConnectionManagerConfig,
    /// The Redis thread's connection: heartbeats, and requests outside any runtime.
    connection: ConnectionManager,
    gcra: Script,
    heartbeat: Script,
    replica: String,
    started: Instant,
    /// ms since `started` until which the server is not asked; 0: up.
    down_until: AtomicU64,
    /// ms since `started` of the last warning; fallbacks since it.
    last_log: AtomicU64,
    unlogged: AtomicU64,
    logged_down: AtomicBool,
    budgets: Registry<BudgetKey, BudgetState>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("budgets", &self.budgets.len())
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// Each request thread's own connection to each store (store id → connection): a request
    /// sends its script on a connection its own thread drives, and its answer wakes it there,
    /// with no hop to another thread and back (which cost a third more CPU per request).
    static THREAD_CONNECTIONS: std::cell::RefCell<Vec<ThreadConnection>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// One request thread's connection to one store's server.
struct ThreadConnection {
    /// The store's id.
    store: u64,
    /// Gone with the store.
    alive: Weak<()>,
    connection: ConnectionManager,
    /// Whether a call was made on it yet.
    tried: Arc<AtomicBool>,
}

/// Store ids, unique in the process.
static NEXT_STORE: AtomicU64 = AtomicU64::new(0);

/// The thread whose runtime drives the heartbeats and their connection.
fn background() -> &'static tokio::runtime::Handle {
    static HANDLE: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime for the Redis connections");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("redis".to_owned())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("the Redis thread");
        handle
    })
}

impl RedisStore {
    /// A store for `target`, connecting lazily (see [`RedisStore::spawn_heartbeats`]).
    pub fn open(target: &RedisTarget) -> Result<Self, String> {
        let shown = target.shown_address();
        let client = target.client().map_err(|e| format!("Redis {shown}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let handle = background();
        let connection = {
            let _entered = handle.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                .map_err(|e| format!("Redis {shown}: {e}"))?
        };
        let replica = format!(
            "{}-{}-{:08x}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "proxy".to_owned()),
            std::process::id(),
            fastrand::u32(..)
        );
        Ok(Self {
            target: target.clone(),
            id: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            client,
            config,
            connection,
            gcra: Script::new(GCRA),
            heartbeat: Script::new(HEARTBEAT),
            replica,
            started: Instant::now(),
            down_until: AtomicU64::new(0),
            last_log: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            logged_down: AtomicBool::new(false),
            budgets: Registry::default(),
        })
    }

    /// Starts the heartbeats, which run while the store is held.
    pub fn spawn_heartbeats(self: &Arc<Self>) {
        background().spawn(heartbeats(Arc::downgrade(self)));
    }

    /// The local state of a budget, shared by every table that uses it.
    pub fn budget(&self, key: &BudgetKey) -> Arc<BudgetState> {
        self.budgets
            .get_or_insert_with(key, || BudgetState::new(&key.budget))
            .0
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes requests from `budget`, `want` at most: `Ok(Ok(granted))` admitted (with
    /// `granted - 1` more to spend), `Ok(Err(wait))` refused until then, `Err` when the server
    /// could not decide.
    pub async fn take(
        &self,
        budget: &BudgetState,
        interval_us: u64,
        burst: u32,
        want: u32,
    ) -> Result<Result<u32, Duration>, Failure> {
        if self.down_until.load(Ordering::Relaxed) > self.now_ms() {
            return Err(self.failed(Failure::Down));
        }
        let (mut connection, tried) = self.thread_connection();
        let first_call = !tried.swap(true, Ordering::Relaxed);
        // EVALSHA written directly (one command, no script invocation to build first); after a
        // Redis restart its script cache is empty, and the first call loads the script again.
        let mut evalsha = redis::Cmd::with_capacity(7, 96);
        evalsha
            .arg("EVALSHA")
            .arg(self.gcra.get_hash())
            .arg(1)
            .arg(budget.key())
            .arg(interval_us)
            .arg(burst)
            .arg(want.max(1));
        let call = async {
            match evalsha.query_async::<i64>(&mut connection).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    self.gcra.load_async(&mut connection).await?;
                    evalsha.query_async::<i64>(&mut connection).await
                }
                answer => answer,
            }
        };
        let mut call = std::pin::pin!(call);
        let answered = match tokio::time::timeout(self.target.timeout, &mut call).await {
            Ok(answer) => Ok(answer),
            // The answer may be in, waiting for the connection's task, which the same turn of
            // a busy event loop woke after this timer: let it run once before calling the
            // server late (a loaded proxy would otherwise time out on answers it has).
            Err(late) => {
                tokio::task::yield_now().await;
                futures_util::FutureExt::now_or_never(&mut call).ok_or(late)
            }
        };
        match answered {
            Ok(Ok(answer)) => {
                if self.logged_down.load(Ordering::Relaxed) {
                    self.answered();
                }
                Ok(match u32::try_from(answer) {
                    Ok(granted) => Ok(granted.max(1)),
                    Err(_) => Err(Duration::from_micros(answer.unsigned_abs())),
                })
            }
            Ok(Err(e)) => {
                tracing::debug!("Redis {}: {e}", self.target.shown_address());
                Err(self.failed(Failure::Error))
            }
            // A connection's first call also connects: missing there says little about the
            // server (a later call, or the heartbeats, will tell).
            Err(_) if first_call => Err(self.failed(Failure::Connecting)),
            Err(_) => Err(self.failed(Failure::Timeout)),
        }
    }

    /// This thread's connection to the server, made (lazily connecting, driven by this thread's
    /// runtime) on its first request, and whether a call was made on it yet; the Redis
    /// thread's outside a runtime.
    fn thread_connection(&self) -> (ConnectionManager, Arc<AtomicBool>) {
        let shared = || (self.connection.clone(), Arc::new(AtomicBool::new(true)));
        if tokio::runtime::Handle::try_current().is_err() {
            return shared();
        }
        THREAD_CONNECTIONS.with_borrow_mut(|connections| {
            if let Some(found) = connections.iter().find(|c| c.store == self.id) {
                return (found.connection.clone(), found.tried.clone());
            }
            // Connections of stores no table holds any more are closed here.
            connections.retain(|c| c.alive.strong_count() > 0);
            match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            {
                Ok(connection) => {
                    let tried = Arc::new(AtomicBool::new(false));
                    connections.push(ThreadConnection {
                        store: self.id,
                        alive: Arc::downgrade(&self.alive),
                        connection: connection.clone(),
                        tried: tried.clone(),
                    });
                    (connection, tried)
                }
                Err(_) => shared(),
            }
        })
    }

    /// Marks the server down (unless it was skipped for being down) and logs it, at most once
    /// per [`LOG_EVERY`].
    fn failed(&self, failure: Failure) -> Failure {
        let now = self.now_ms();
        if !matches!(failure, Failure::Down | Failure::Connecting) {
            let until = now + u64::try_from(DOWN_FOR.as_millis()).unwrap_or(u64::MAX);
            self.down_until.store(until, Ordering::Relaxed);
        }
        let unlogged = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_log.load(Ordering::Relaxed);
        let due = !self.logged_down.load(Ordering::Relaxed)
            || now.saturating_sub(last) >= u64::try_from(LOG_EVERY.as_millis()).unwrap_or(0);
        if due
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.logged_down.store(true, Ordering::Relaxed);
            self.unlogged.store(0, Ordering::Relaxed);
            tracing::warn!(
                redis = %self.target.shown_address(),
                reason = failure.label(),
                fallbacks = unlogged,
                "Redis cannot decide global rate limits ({}): each replica applies the client's \
                 onRedisFailure policy until it answers again (checked every second)",
                failure.label()
            );
        }
        failure
    }

    /// The server answered: clears the down mark, saying so once.
    fn answered(&self) {
        self.down_until.store(0, Ordering::Relaxed);
        if self.logged_down.swap(false, Ordering::Relaxed) {
            tracing::info!(
                redis = %self.target.shown_address(),
                "Redis answers again: global rate limits are shared again"
            );
        }
    }

    /// One heartbeat per budget in use; true when the server answered them all.
    async fn beat(&self) -> bool {
        let window = u64::try_from(REPLICA_WINDOW.as_millis()).unwrap_or(u64::MAX);
        let mut all = true;
        for (_, budget) in self.budgets.live() {
            let mut connection = self.connection.clone();
            let mut invocation = self.heartbeat.key(&budget.replicas_key);
            invocation.arg(&self.replica).arg(window);
            let call = invocation.invoke_async::<u32>(&mut connection);
            match tokio::time::timeout(HEARTBEAT_TIMEOUT, call).await {
                Ok(Ok(replicas)) => budget.replicas.store(replicas.max(1), Ordering::Relaxed),
                _ => all = false,
            }
        }
        all
    }
}

/// Heartbeats every [`HEARTBEAT_EVERY`] while `store` is held; a server marked down that
/// answers them all is up again.
async fn heartbeats(store: Weak<RedisStore>) {
    // The GCRA script loaded at once: a request thread's first call then needs no second
    // round trip to load it.
    if let Some(live) = store.upgrade() {
        let mut connection = live.connection.clone();
        let _ =
            tokio::time::timeout(HEARTBEAT_TIMEOUT, live.gcra.load_async(&mut connection)).await;
    }
    loop {
        let Some(live) = store.upgrade() else { return };
        if live.beat().await && live.down_until.load(Ordering::Relaxed) != 0 {
            live.answered();
        }
        drop(live);
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_shows_no_credentials() {
        let target =
            RedisTarget::from_url("redis://app:s3cret@cache:6379/0", Duration::from_millis(5))
                .unwrap();
        assert_eq!(target.shown_address(), "redis://cache:6379/0");
        assert!(!format!("{target:?}").contains("s3cret"));
        assert!(RedisTarget::from_url("http://cache", Duration::from_millis(5)).is_err());
    }

    #[test]
    fn the_fallback_share_divides_by_the_replicas_seen() {
        let budget = BudgetState::new("gateway/shop/public/acme");
        budget.replicas.store(4, Ordering::Relaxed);
        let bucket = budget.fallback(100, 8);
        let admitted = (0..10).filter(|_| bucket.check().is_ok()).count();
        assert_eq!(admitted, 2, "a quarter of the burst");
        assert!(Arc::ptr_eq(&bucket, &budget.fallback(100, 8)));
        budget.replicas.store(1, Ordering::Relaxed);
        assert!(!Arc::ptr_eq(&bucket, &budget.fallback(100, 8)));
    }
}
