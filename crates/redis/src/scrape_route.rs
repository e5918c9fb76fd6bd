//! `/scrape?target=`: scrapes another Redis than `--redis.addr`.
//!
//! The target must be `--redis.addr` itself or pass core's multi-target
//! guard (`--scrape.allowed-targets`: CIDRs checked against every resolved
//! address, then the connection pinned to the checked address; host and
//! unix socket globs); its credentials come from the one
//! [`CredentialResolver`]. Targets are kept (with their connections) in a
//! bounded cache, least recently used and idle ones dropped; one whose
//! scrape failed is dropped at once so the next request resolves and checks
//! it again. Refusals answer 403, bad requests 400, and both count in
//! `redis_target_scrape_request_errors_total`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use oxmon_core::collector::BoxFuture;
use oxmon_core::metrics::Value;
use oxmon_core::target_guard::{AllowList, Allowed, TargetCache};
use oxmon_core::{HttpError, MetricFamily, Route, RouteRequest};

use crate::address::Address;
use crate::credentials::{CredentialResolver, Credentials};
use crate::target::{Options, Target};

/// `/scrape` targets kept with their connections.
const MAX_TARGETS: usize = 1000;

/// A kept target unused this long is dropped (with its connection).
const IDLE_TARGET: Duration = Duration::from_secs(15 * 60);

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
    opts: Arc<Options>,
    /// `--redis.addr` (none when it is empty).
    main: Option<Arc<Target>>,
    allow: AllowList,
    credentials: CredentialResolver,
    cache: TargetCache<Arc<Target>>,
}

impl ScrapeRoute {
    /// The route; `allow` must permit `main` itself.
    pub fn new(
        opts: Arc<Options>,
        main: Option<Arc<Target>>,
        allow: AllowList,
        credentials: CredentialResolver,
    ) -> Self {
        ScrapeRoute {
            opts,
            main,
            allow,
            credentials,
            cache: TargetCache::new(MAX_TARGETS, IDLE_TARGET),
        }
    }

    async fn handle_inner(&self, req: &RouteRequest) -> Result<Vec<MetricFamily>, HttpError> {
        let raw = req
            .param("target")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| HttpError::bad_request("'target' parameter must be specified"))?;
        let addr = Address::parse(raw).map_err(|e| HttpError::bad_request(e.to_string()))?;
        let key = addr.key();
        let uri_creds = Credentials::from_uri(&addr);
        // --redis.addr without other credentials is the /metrics target
        // itself, with its connection.
        if let Some(main) = self.main.as_ref().filter(|m| m.key() == key) {
            if uri_creds.is_none() {
                return Ok(main.scrape(&self.opts, &req.ctx).await);
            }
        }
        let cache_key = match &uri_creds {
            // Never share a connection authenticated with other credentials.
            Some(c) => format!("{key}#{}", fingerprint(c)),
            None => key.clone(),
        };
        if let Some(t) = self.cache.get(&cache_key) {
            return Ok(self.scrape_cached(&cache_key, &t, req).await);
        }
        let pin = match self
            .allow
            .check(&addr.guard_target(), req.ctx.remaining())
            .await
        {
            Ok(Allowed::ByName) => None,
            Ok(Allowed::ByAddress(sa)) => Some(sa),
            Err(refused) => {
                tracing::warn!(target = %key, reason = %refused, "refused /scrape target");
                return Err(HttpError::forbidden(refused.to_string()));
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
