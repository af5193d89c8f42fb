//! Payments inside `serve`: the `[payments]` table, the payments API beside the ledger's on the
//! shared HTTP endpoint, API keys on both, and one OpenAPI document for the two at
//! `/openapi.json`.
//!
//! Payments run over the ledger [`SettlementRun`](crate::settlement_run::SettlementRun) opened:
//! the same store (redb by default, PostgreSQL when `[settlement.store]` says so) holds the
//! postings, the payment records, the idempotency keys and the webhook deliveries, each payment
//! step's in one transaction.
//! The rails are the seeded simulator (`[payments.simulator]`).

use std::sync::Arc;

use payments::config::{ApiKeyConfig, ConfigError};
use payments::{PaymentsConfig, SimulatedConnector};
use serde_json::{json, Value};
use settlement::AnyStore;

use crate::settlement_run::SharedSettlement;

/// Why payments could not start.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsRunError {
    /// A key of `[payments]` is wrong (the message names it).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The stored records or the webhook thread.
    #[error("{0}")]
    Start(#[from] payments::api::StartError),
}

/// The demo API keys of the embedded configuration: `demo-<account>` for each demo account
/// and `demo-operator`, which sees all. Stored hashed like any other key; a real venue
/// replaces them (`exchange ledger key` prints a new entry).
pub fn demo_api_keys() -> Vec<ApiKeyConfig> {
    [
        (
            "operator",
            None,
            "308dd56887e45b96488dae17e08b15a3",
            "afc8867f4c94fedd129e0bd61fac5e249443f3e2ca9f45012d2bed37517f0e83",
        ),
        (
            "alice",
            Some("alice"),
            "4f9324e9268a8b00e54c5806dcdfe0b3",
            "e6d50a573c9dc5f9ca77f2c4e8c6da46e97f0286ab293efe5ce45fb92a92e59e",
        ),
        (
            "bob",
            Some("bob"),
            "adcde71622114f57c2269383493fe885",
            "7dc8badfd8b425e6fe1d28219a5c08c4f238946f9780a36b3f19f81d03484f5f",
        ),
        (
            "carol",
            Some("carol"),
            "d860560544a0e801a1ba5b89a1a51c1e",
            "b12226647bed38a3a17b3b9e13a030518b797d0f2984a704ca6922ecb3c1b7fd",
        ),
        (
            "dave",
            Some("dave"),
            "5fd0289a6d6f4a2095e594fece6ac527",
            "8f7444dd48631851aeecfaf67f77adc51c016c7778c531edc230c0b03f19a32f",
        ),
    ]
    .into_iter()
    .map(|(id, account, salt, sha256)| ApiKeyConfig {
        id: format!("demo-{id}"),
        account: account.map(str::to_owned),
        salt: salt.into(),
        sha256: sha256.into(),
    })
    .collect()
}

/// `[payments]` of the embedded configuration: the crate's defaults and the demo keys.
pub fn default_section() -> PaymentsConfig {
    PaymentsConfig { api_keys: demo_api_keys(), ..PaymentsConfig::default() }
}

/// The running payments service.
pub struct PaymentsRun {
    service: Arc<payments::Service<AnyStore>>,
}

impl std::fmt::Debug for PaymentsRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsRun").finish_non_exhaustive()
    }
}

impl PaymentsRun {
    /// Checks `[payments]`, reads the stored payment records, idempotency keys and webhook
    /// deliveries back (resolving the payments a stop cut off at the rails by asking the rails)
    /// and starts the webhook worker, which resumes the pending deliveries. `None` when
    /// `enabled = false`.
    pub fn start(
        config: &PaymentsConfig,
        ledger: SharedSettlement,
    ) -> Result<Option<PaymentsRun>, PaymentsRunError> {
        if !config.enabled {
            return Ok(None);
        }
        config.validate()?;
        let demo = demo_api_keys();
        let in_use: Vec<&str> =
            config.api_keys.iter().filter(|k| demo.contains(k)).map(|k| k.id.as_str()).collect();
        if !in_use.is_empty() {
            tracing::warn!(
                keys = %in_use.join(", "),
                "payments: demo API keys in use (the key is its id; replace them on a real venue)"
            );
        }
        let connector = Box::new(SimulatedConnector::new(config.simulator));
        let service = payments::Service::start(config, ledger, connector, payments::api::system_clock())?;
        Ok(Some(PaymentsRun { service }))
    }

    /// A reader of the service's counters and breaker states, for the metrics copy.
    pub fn stats_source(&self) -> crate::stage_metrics::PaymentsSource {
        let service = Arc::clone(&self.service);
        crate::stage_metrics::PaymentsSource(Arc::new(move || service.stats()))
    }

    /// The payments routes, and the ledger's read routes checked by the same API keys.
    pub fn routes(&self, ledger: SharedSettlement) -> axum::Router {
        let service = Arc::clone(&self.service);
        let authorize: settlement::api::Authorize = Arc::new(move |headers| service.key_account(headers));
        payments::router(Arc::clone(&self.service)).merge(settlement::api::routes(ledger, Some(authorize)))
    }
}

/// One OpenAPI 3.1 document of the ledger's reads and (when served) the payments API.
pub fn openapi_document(with_payments: bool) -> Value {
    let mut doc = settlement::api::openapi_document();
    if !with_payments {
        return doc;
    }
    let pay = payments::api::openapi_document();
    doc["info"] = json!({ "title": "Exchange ledger and payments", "version": env!("CARGO_PKG_VERSION") });
    if let (Some(paths), Some(more)) = (doc["paths"].as_object_mut(), pay["paths"].as_object()) {
        for (k, v) in more {
            paths.insert(k.clone(), v.clone());
        }
        paths.remove("/openapi/payments.json");
    }
    if let (Some(schemas), Some(more)) =
        (doc["components"]["schemas"].as_object_mut(), pay["components"]["schemas"].as_object())
    {
        for (k, v) in more {
            schemas.insert(k.clone(), v.clone());
        }
    }
    doc["components"]["securitySchemes"] = pay["components"]["securitySchemes"].clone();
    doc["security"] = pay["security"].clone();
    // The ledger's reads answer 401 and 403 too once keys guard them.
    let err = json!({ "description": "missing or unknown key (401), another account's (403)",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    for path in ["/v1/balances", "/v1/positions", "/v1/entries"] {
        doc["paths"][path]["get"]["responses"]["401"] = err.clone();
        doc["paths"][path]["get"]["responses"]["403"] = err.clone();
    }
    doc["paths"]["/openapi.json"]["get"]["security"] = json!([]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_keys_hash_to_their_entries() {
        for k in demo_api_keys() {
            let secret = k.id.clone();
            let salt = payments::webhook::unhex(&k.salt).unwrap();
            assert_eq!(payments::api::hash_key(&salt, &secret), k.sha256, "{}", k.id);
        }
        assert_eq!(default_section().validate(), Ok(()));
    }

    #[test]
    fn one_document_covers_ledger_and_payments() {
        let doc = openapi_document(true);
        for path in
            ["/v1/balances", "/v1/entries", "/v1/deposits", "/v1/withdrawals", "/v1/payments/{id}/refunds"]
        {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
        assert!(doc["components"]["schemas"]["Payment"].is_object());
        assert!(doc["components"]["schemas"]["Balance"].is_object());
        assert!(doc["paths"]["/openapi/payments.json"].is_null());
    }
}
