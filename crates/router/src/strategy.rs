//! Picking one deployment of a group.
//!
//! Every strategy chooses among candidates that already passed the router's filters (not
//! tried yet, not cooling down, under their `rpm`/`tpm` limits, large enough context window,
//! lowest `order` tier). The choice functions here are pure: the measurements come in as
//! slices and the randomness as an [`Rng`], so tests can seed it.
//!
//! - `simple-shuffle` (LiteLLM's default): weighted random, with the weight taken from the
//!   first of `weight`, `rpm`, `tpm` that any member sets.
//! - `least-busy`: the candidate with the fewest calls in flight (ties broken at random).
//! - `latency-based-routing`: the lowest recent latency per output token (time to first
//!   token for streams); any candidate within `lowest_latency_buffer` (a fraction) of the
//!   lowest may be picked, at random. Candidates with no recent samples count as 0, so new
//!   deployments are tried.
//! - `usage-based-routing-v2`: the lowest token usage this minute (ties at random).
//! - `cost-based-routing`: the lowest input + output price per token; a deployment without a
//!   known price counts as $5 + $5 per token (LiteLLM's default), so priced ones win. Ties
//!   are broken at random so equally cheap deployments share the load.

use std::time::Duration;

use rand::Rng;

/// `router_settings.routing_strategy`, for the strategies this router implements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RoutingStrategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    UsageBased,
    CostBased,
}

impl RoutingStrategy {
    /// The strategy a config name selects; `None` for names not implemented here. The
    /// deprecated `usage-based-routing` (v1) selects the v2 behaviour.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "simple-shuffle" => Some(Self::SimpleShuffle),
            "least-busy" => Some(Self::LeastBusy),
            "latency-based-routing" => Some(Self::LatencyBased),
            "usage-based-routing-v2" | "usage-based-routing" => Some(Self::UsageBased),
            "cost-based-routing" => Some(Self::CostBased),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleShuffle => "simple-shuffle",
            Self::LeastBusy => "least-busy",
            Self::LatencyBased => "latency-based-routing",
            Self::UsageBased => "usage-based-routing-v2",
            Self::CostBased => "cost-based-routing",
        }
    }
}

/// `router_settings.routing_strategy_args`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrategyArgs {
    /// How long a latency sample counts (`ttl`, seconds in the config; default one hour).
    pub ttl: Duration,
    /// Candidates within this fraction of the lowest latency are equally good
    /// (`lowest_latency_buffer`, default 0: only the fastest).
    pub lowest_latency_buffer: f64,
}

impl Default for StrategyArgs {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            lowest_latency_buffer: 0.0,
        }
    }
}

/// The price per token LiteLLM assumes for each of input and output when a deployment's
/// price is unknown.
pub const UNKNOWN_PRICE_PER_TOKEN: f64 = 5.0;

/// Index of an entry no more than `tolerance` (a fraction) above the lowest value, chosen
/// uniformly at random among those; 0 for an empty slice.
pub fn lowest_within(values: &[f64], tolerance: f64, rng: &mut impl Rng) -> usize {
    let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
    if !lowest.is_finite() {
        return 0;
    }
    let ceiling = lowest + lowest.abs() * tolerance.max(0.0);
    let eligible = values.iter().filter(|&&v| v <= ceiling).count();
    let mut ticket = if eligible > 1 {
        rng.gen_range(0..eligible)
    } else {
        0
    };
    for (index, &value) in values.iter().enumerate() {
        if value <= ceiling {
            if ticket == 0 {
                return index;
            }
            ticket -= 1;
        }
    }
    0
}

/// Index (into `loads`) of a least-loaded entry; ties are broken uniformly at random.
pub fn least_busy(loads: &[usize]) -> usize {
    let loads: Vec<f64> = loads.iter().map(|&load| load as f64).collect();
    lowest_within(&loads, 0.0, &mut rand::thread_rng())
}

/// The traffic hints a deployment carries in `litellm_params`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Weights {
    pub weight: Option<f64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

/// Reads one traffic hint of a deployment.
type WeightSource = fn(&Weights) -> Option<f64>;

/// Per-member weights for a group, normalised to sum to 1 (uniform when nobody sets any).
pub fn group_weights<'a>(members: impl Iterator<Item = &'a Weights> + Clone) -> Vec<f64> {
    let sources: [WeightSource; 3] = [
        |w| w.weight,
        |w| w.rpm.map(|v| v as f64),
        |w| w.tpm.map(|v| v as f64),
    ];
    for source in sources {
        let values: Vec<f64> = members
            .clone()
            .map(|w| {
                source(w)
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .unwrap_or(0.0)
            })
            .collect();
        let total: f64 = values.iter().sum();
        if total > 0.0 {
            return values.into_iter().map(|v| v / total).collect();
        }
    }
    let count = members.count().max(1);
    vec![1.0 / count as f64; count]
}

/// Index of the picked member given normalised weights.
pub fn simple_shuffle(weights: &[f64]) -> usize {
    weighted(weights, &mut rand::thread_rng())
}

/// Index of the picked member given normalised weights, drawing from `rng`.
pub fn weighted(weights: &[f64], rng: &mut impl Rng) -> usize {
    if weights.len() <= 1 {
        return 0;
    }
    let mut ticket: f64 = rng.gen();
    for (index, weight) in weights.iter().enumerate() {
        if ticket < *weight {
            return index;
        }
        ticket -= weight;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_then_rpm_then_uniform() {
        let with_weight = [
            Weights {
                weight: Some(9.0),
                rpm: Some(1),
                ..Weights::default()
            },
            Weights {
                weight: Some(1.0),
                rpm: Some(100),
                ..Weights::default()
            },
        ];
        assert_eq!(group_weights(with_weight.iter()), vec![0.9, 0.1]);
        let with_rpm = [
            Weights {
                rpm: Some(30),
                ..Weights::default()
            },
            Weights {
                rpm: Some(10),
                ..Weights::default()
            },
        ];
        assert_eq!(group_weights(with_rpm.iter()), vec![0.75, 0.25]);
        let none = [Weights::default(), Weights::default()];
        assert_eq!(group_weights(none.iter()), vec![0.5, 0.5]);
    }

    #[test]
    fn least_busy_picks_the_lowest_and_spreads_ties() {
        assert_eq!(least_busy(&[3, 1, 2]), 1);
        assert_eq!(least_busy(&[0]), 0);
        assert_eq!(least_busy(&[]), 0);
        let mut seen = [0usize; 3];
        for _ in 0..300 {
            seen[least_busy(&[1, 5, 1])] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[0] > 50 && seen[2] > 50, "{seen:?}");
    }

    #[test]
    fn strategy_names() {
        assert_eq!(
            RoutingStrategy::from_name("least-busy"),
            Some(RoutingStrategy::LeastBusy)
        );
        assert_eq!(
            RoutingStrategy::from_name("simple-shuffle"),
            Some(RoutingStrategy::SimpleShuffle)
        );
        for strategy in [
            RoutingStrategy::LatencyBased,
            RoutingStrategy::UsageBased,
            RoutingStrategy::CostBased,
        ] {
            assert_eq!(RoutingStrategy::from_name(strategy.name()), Some(strategy));
        }
        assert_eq!(RoutingStrategy::from_name("nope"), None);
        assert_eq!(RoutingStrategy::default().name(), "simple-shuffle");
    }

    fn seeded() -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(42)
    }

    #[test]
    fn lowest_within_a_buffer_spreads_over_the_close_ones_only() {
        let mut rng = seeded();
        let latencies = [0.50, 0.10, 0.11, 0.30];
        // No buffer: only the fastest.
        for _ in 0..100 {
            assert_eq!(lowest_within(&latencies, 0.0, &mut rng), 1);
        }
        // A 20% buffer admits 0.11 too, never 0.30 or 0.50.
        let mut seen = [0usize; 4];
        for _ in 0..1_000 {
            seen[lowest_within(&latencies, 0.2, &mut rng)] += 1;
        }
        assert_eq!((seen[0], seen[3]), (0, 0), "{seen:?}");
        assert!(seen[1] > 400 && seen[2] > 400, "{seen:?}");
        assert_eq!(lowest_within(&[], 0.5, &mut rng), 0);
    }

    #[test]
    fn the_same_seed_picks_the_same_sequence() {
        let weights = [0.2, 0.3, 0.5];
        let run = || {
            let mut rng = seeded();
            (0..20)
                .map(|_| weighted(&weights, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn nine_to_one_weights_split_about_ninety_percent() {
        let weights = [0.9, 0.1];
        let picks = (0..10_000)
            .filter(|_| simple_shuffle(&weights) == 0)
            .count();
        assert!((8_700..=9_300).contains(&picks), "{picks}");
    }
}
