//! Picking one deployment of a group.
//!
//! - `simple-shuffle` (LiteLLM's default): weighted random, with the weight taken from the
//!   first of `weight`, `rpm`, `tpm` that any member sets.
//! - `least-busy`: the candidate with the fewest calls in flight (ties broken at random).

use rand::Rng;

/// `router_settings.routing_strategy`, for the strategies this router implements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RoutingStrategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
}

impl RoutingStrategy {
    /// The strategy a config name selects; `None` for names not implemented here.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "simple-shuffle" => Some(Self::SimpleShuffle),
            "least-busy" => Some(Self::LeastBusy),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleShuffle => "simple-shuffle",
            Self::LeastBusy => "least-busy",
        }
    }
}

/// Index (into `loads`) of a least-loaded entry; ties are broken uniformly at random.
pub fn least_busy(loads: &[usize]) -> usize {
    let Some(&lowest) = loads.iter().min() else {
        return 0;
    };
    let tied = loads.iter().filter(|&&load| load == lowest).count();
    let mut ticket = if tied > 1 {
        rand::thread_rng().gen_range(0..tied)
    } else {
        0
    };
    for (index, &load) in loads.iter().enumerate() {
        if load == lowest {
            if ticket == 0 {
                return index;
            }
            ticket -= 1;
        }
    }
    0
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
    if weights.len() <= 1 {
        return 0;
    }
    let mut ticket: f64 = rand::thread_rng().gen();
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
        assert_eq!(RoutingStrategy::from_name("latency-based-routing"), None);
        assert_eq!(RoutingStrategy::default().name(), "simple-shuffle");
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
