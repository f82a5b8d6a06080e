//! Cross-replica invalidation of the virtual-key cache.
//!
//! Every replica caches resolved keys in memory ([`crate::virtual_keys`]); a key blocked,
//! updated, deleted or rotated through one replica must stop working on all of them within
//! a second. Two ways to tell the others, chosen from the config:
//!
//! - **Redis pub/sub** when the config has a Redis cache (`litellm_settings.cache_params`
//!   of type `redis`): each change is published on `<namespace>:switchyard:key_invalidation`
//!   (`namespace` from `cache_params`, else `litellm`) as `key:<sha256>` or `all`, tagged with
//!   the sender's instance id so a replica ignores its own messages. Delivery takes a
//!   round trip to Redis (milliseconds). A subscriber that lost its connection may have
//!   missed messages, so every (re)connect drops the whole local cache.
//! - **A polled counter** in the database otherwise (`switchyard_auth_changes`): each
//!   change increments it, and every replica reads it every [`POLL_INTERVAL`] and drops its
//!   whole cache when it moved. One indexed single-row read per replica per interval, off
//!   the request path; coarse (any change reloads every cached key once) but it needs no
//!   extra infrastructure and cannot miss a change.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{
    Builder, ClientLike, Config as RedisConfig, EventInterface, PubsubInterface, ReconnectPolicy,
};
use switchyard_store::Store;
use tokio::sync::broadcast::error::RecvError;

use crate::virtual_keys::VirtualKeys;

/// How often a replica without Redis reads the change counter.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Bound on one publish: a slow Redis must not hold a management response for long (the
/// change is already in the database; other replicas then see it at their TTL).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
const ALL: &str = "all";
const KEY_PREFIX: &str = "key:";

/// One change to announce.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// One key, by token hash.
    Key(&'a str),
    /// Everything (team, user and organization changes).
    All,
}

/// How this replica reaches the others.
#[derive(Clone, Default)]
pub(crate) enum Peers {
    /// No other replica to tell (tests, or sync switched off).
    #[default]
    Alone,
    Redis(Arc<RedisPeers>),
    Counter,
}

pub(crate) struct RedisPeers {
    publisher: fred::clients::Client,
    channel: String,
    instance: String,
}

impl Peers {
    /// Tells the other replicas about a change already applied locally. Failures are
    /// logged: the write itself succeeded, and the other replicas' TTL still bounds the
    /// staleness.
    pub(crate) async fn announce(&self, store: &Store, change: Change<'_>) {
        match self {
            Peers::Alone => {}
            Peers::Counter => {
                if let Err(error) = store.bump_auth_changes().await {
                    tracing::warn!(%error, "could not record an auth change for other replicas");
                }
            }
            Peers::Redis(redis) => {
                let body = match change {
                    Change::Key(hash) => format!("{}|{KEY_PREFIX}{hash}", redis.instance),
                    Change::All => format!("{}|{ALL}", redis.instance),
                };
                let publish = redis.publisher.publish::<i64, _, _>(&redis.channel, body);
                match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "could not publish a key invalidation")
                    }
                    Err(_) => tracing::warn!("publishing a key invalidation timed out"),
                }
            }
        }
    }
}

/// How the replicas of one deployment share key invalidations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySync {
    /// Nothing shared: other replicas see changes when their cache entries expire.
    Off,
    /// Publish and subscribe on `channel` of the Redis at `url`.
    Redis { url: String, channel: String },
    /// Poll the database's change counter every `interval`.
    Poll { interval: Duration },
}

impl KeySync {
    /// The channel name for a cache namespace.
    pub fn channel_for(namespace: Option<&str>) -> String {
        format!(
            "{}:switchyard:key_invalidation",
            namespace.filter(|n| !n.is_empty()).unwrap_or("litellm")
        )
    }
}

/// Starts listening for the other replicas' changes and returns `keys` set up to announce
/// its own. Must run inside a Tokio runtime (the listener is a task); without one, or with
/// [`KeySync::Off`], the keys are returned unchanged.
pub fn start(keys: VirtualKeys, sync: &KeySync) -> VirtualKeys {
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::warn!("no Tokio runtime: cross-replica key invalidation is off");
        return keys;
    }
    match sync {
        KeySync::Off => keys,
        KeySync::Poll { interval } => {
            let keys = keys.with_peers(Peers::Counter);
            tokio::spawn(poll_counter(keys.clone(), *interval));
            keys
        }
        KeySync::Redis { url, channel } => match start_redis(&keys, url, channel) {
            Ok(peers) => keys.with_peers(Peers::Redis(peers)),
            Err(error) => {
                tracing::error!(%error, "cannot set up Redis key invalidation; polling the database instead");
                let keys = keys.with_peers(Peers::Counter);
                tokio::spawn(poll_counter(keys.clone(), POLL_INTERVAL));
                keys
            }
        },
    }
}

async fn poll_counter(keys: VirtualKeys, interval: Duration) {
    let mut last: Option<i64> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match keys.store().auth_changes().await {
            Ok(now) => {
                if last.is_some_and(|seen| seen != now) {
                    keys.forget_all();
                }
                last = Some(now);
            }
            Err(error) => tracing::debug!(%error, "reading the auth change counter failed"),
        }
    }
}

fn start_redis(
    keys: &VirtualKeys,
    url: &str,
    channel: &str,
) -> Result<Arc<RedisPeers>, fred::error::Error> {
    let mut config = RedisConfig::from_url(url)?;
    // Redis down at start-up: keep retrying in the background rather than fail the gateway.
    config.fail_fast = false;
    let policy = ReconnectPolicy::new_exponential(0, 100, 5_000, 2);
    let publisher = Builder::from_config(config.clone())
        .set_policy(policy.clone())
        .build()?;
    let subscriber = Builder::from_config(config)
        .set_policy(policy)
        .build_subscriber_client()?;
    drop(publisher.connect());
    let instance = uuid::Uuid::new_v4().simple().to_string();
    let channel = channel.to_owned();

    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    drop(subscriber.connect());
    // Re-subscribes after every reconnect.
    drop(subscriber.manage_subscriptions());
    {
        let subscriber = subscriber.clone();
        let channel = channel.clone();
        tokio::spawn(async move {
            if let Err(error) = subscriber.wait_for_connect().await {
                tracing::warn!(%error, "key invalidation subscriber did not connect");
            }
            if let Err(error) = subscriber.subscribe(channel.as_str()).await {
                tracing::warn!(%error, "cannot subscribe to key invalidations");
            }
        });
    }
    {
        let keys = keys.clone();
        tokio::spawn(async move {
            // Messages sent while the connection was down are lost: start afresh.
            while reconnects.recv().await.is_ok() {
                keys.forget_all();
            }
        });
    }
    {
        let keys = keys.clone();
        let channel = channel.clone();
        let own = format!("{instance}|");
        tokio::spawn(async move {
            // Keeps the subscriber (and its connection) alive as long as the listener.
            let _subscriber = subscriber;
            loop {
                match messages.recv().await {
                    Ok(message) if message.channel == channel.as_str() => {
                        let Some(body) = message.value.as_str() else {
                            continue;
                        };
                        if body.starts_with(&own) {
                            continue;
                        }
                        match body.split_once('|').map(|(_, change)| change) {
                            Some(ALL) => keys.forget_all(),
                            Some(change) => {
                                if let Some(hash) = change.strip_prefix(KEY_PREFIX) {
                                    keys.forget(hash).await;
                                }
                            }
                            None => {}
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => keys.forget_all(),
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }
    Ok(Arc::new(RedisPeers {
        publisher,
        channel,
        instance,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_is_namespaced() {
        assert_eq!(
            KeySync::channel_for(Some("team-a")),
            "team-a:switchyard:key_invalidation"
        );
        assert_eq!(
            KeySync::channel_for(None),
            "litellm:switchyard:key_invalidation"
        );
        assert_eq!(
            KeySync::channel_for(Some("")),
            "litellm:switchyard:key_invalidation"
        );
    }
}
