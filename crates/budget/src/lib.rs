//! Pricing and per-call cost, compatible with LiteLLM's model cost map.
//!
//! - [`PriceMap`]: the shipped price table (`data/prices.json`, LiteLLM's
//!   `model_prices_and_context_window.json` format), optionally merged with a LiteLLM price map
//!   file loaded at start-up, plus per-deployment custom pricing registered under the deployment
//!   id. Lookups follow LiteLLM: deployment id → `base_model` → `provider/model` → bare `model`.
//! - [`ModelPrice`]: one entry's rates; [`ModelPrice::from_params`] builds custom pricing from a
//!   deployment's raw `litellm_params` / `model_info`.
//! - [`cost_of`] / [`cost_breakdown`]: LiteLLM's cost formula over a provider's reported
//!   [`Usage`](switchyard_llm_types::Usage).
//! - [`estimate`]: a documented chars/4 token *estimate* for providers that report no usage.

mod cost;
mod error;
pub mod estimate;
mod price;

pub use cost::{cost_breakdown, cost_of, CostBreakdown, TokenCounts};
pub use error::BudgetError;
pub use price::{ModelPrice, PriceLookup, PriceMap, PriceSource, TierRates, SHIPPED_PRICES_JSON};

#[cfg(test)]
mod tests;
