//! `/scrape?target=`: scrapes another Redis than `--redis.addr`.
//!
//! The target must be `--redis.addr` itself or pass the allow-list
//! (`--scrape.allowed-targets`); its credentials come from the one
//! [`CredentialResolver`]. Targets are kept (with their connections) in a
//! bounded cache; one whose scrape failed is dropped so the next request
//! resolves and checks it again. Refusals answer 403, bad requests 400, and
//! both count in `redis_target_scrape_request_errors_total`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use oxmon_core::collector::BoxFuture;
use oxmon_core::metrics::Value;
use oxmon_core::{HttpError, MetricFamily, Route, RouteRequest};

use crate::address::Address;
use crate::allow_list::{AllowList, Decision};
use crate::credentials::{CredentialResolver, Credentials};
use crate::target::{Options, Target};

/// A short, non-reversible tag for URI credentials (cache key only).
fn fingerprint(creds: &Credentials) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    creds.user.hash(&mut h);
    creds.password.hash(&mut h);
    h.finish()
}

/// The `/scrape` route.
pub struct ScrapeRoute {
    /// Settings shared by every target.
    pub opts: Arc<Options>,
    /// `--redis.addr` (none when it is empty).
    pub main: Option<Arc<Target>>,
    /// Which other targets may be scraped.
    pub allow: AllowList,
    /// Credentials of each target.
    pub credentials: CredentialResolver,
    /// Targets seen so far.
    pub cache: TargetCache,
}

impl ScrapeRoute {
    async fn handle_inner(&self, req: &RouteRequest) -> Result<Vec<MetricFamily>, HttpError> {
        let raw = req
            .param("target")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| HttpError::bad_request("'target' parameter must be specified"))?;
        let addr = Address::parse(raw).map_err(|e| HttpError::bad_request(e.to_string()))?;
        let key = addr.key();
        let uri_creds = Credentials::from_uri(&addr);
        let main = self.main.as_ref().filter(|m| m.key() == key);
        if let (Some(main), None) = (main, &uri_creds) {
            return Ok(main.scrape(&self.opts, &req.ctx).await);
        }
        let cache_key = match &uri_creds {
            // Never share a connection authenticated with other credentials.
            Some(c) => format!("{key}#{}", fingerprint(c)),
            None => key.clone(),
        };
        if let Some(t) = self.cache.get(&cache_key) {
            return Ok(self.scrape_cached(&cache_key, &t, req).await);
        }
        let pin = if main.is_some() {
            None
        } else {
            match self.allow.check(&addr, req.ctx.remaining()).await {
                Decision::ByName => None,
                Decision::ByAddress(sa) => Some(sa),
                Decision::Refused(why) => {
                    tracing::warn!(target = %key, reason = %why, "refused /scrape target");
                    return Err(HttpError::forbidden(format!(
                        "target {key} is not allowed: {why}"
                    )));
                }
            }
        };
        let creds = self.credentials.resolve(&addr);
        let target = Target::new(&addr, creds, &self.opts.tls, pin)
            .map_err(|e| HttpError::bad_request(e.to_string()))?;
        let t = self.cache.insert(cache_key.clone(), Arc::new(target));
        Ok(self.scrape_cached(&cache_key, &t, req).await)
    }

    async fn scrape_cached(
        &self,
        cache_key: &str,
        t: &Arc<Target>,
        req: &RouteRequest,
    ) -> Vec<MetricFamily> {
        let fams = t.scrape(&self.opts, &req.ctx).await;
        let up_name = self.opts.names.get("up").0;
        let down = fams.iter().any(|f| {
            f.name == up_name
                && f.metrics
                    .first()
                    .is_some_and(|m| m.value == Value::Single(0.0))
        });
        if down {
            // Re-resolve and re-check the allow-list on the next request.
            self.cache.remove(cache_key);
        }
        fams
    }
}

impl Route for ScrapeRoute {
    fn handle<'a>(
        &'a self,
        req: &'a RouteRequest,
    ) -> BoxFuture<'a, Result<Vec<MetricFamily>, HttpError>> {
        Box::pin(async move {
            let r = self.handle_inner(req).await;
            if r.is_err() {
                self.opts.request_errors.fetch_add(1, Ordering::Relaxed);
            }
            r
        })
    }
}

/// The `/scrape` targets seen so far, with their kept connections; the
/// least recently used are dropped beyond a bound.
pub struct TargetCache {
    map: Mutex<std::collections::HashMap<String, Arc<Target>>>,
    started: std::time::Instant,
    max: usize,
}

impl TargetCache {
    /// An empty cache holding at most `max` targets.
    pub fn new(max: usize) -> Self {
        TargetCache {
            map: Mutex::new(std::collections::HashMap::new()),
            started: std::time::Instant::now(),
            max: max.max(1),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The cached target for `key`.
    pub fn get(&self, key: &str) -> Option<Arc<Target>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let t = map.get(key).cloned();
        if let Some(t) = &t {
            t.last_used.store(self.now(), Ordering::Relaxed);
        }
        t
    }

    /// Stores a target, evicting the least recently used one when full.
    pub fn insert(&self, key: String, target: Arc<Target>) -> Arc<Target> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        target.last_used.store(self.now(), Ordering::Relaxed);
        if map.len() >= self.max && !map.contains_key(&key) {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, t)| t.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.entry(key).or_insert(target).clone()
    }

    /// Forgets a target (after a failed scrape, so the next request
    /// re-resolves and re-checks it).
    pub fn remove(&self, key: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
