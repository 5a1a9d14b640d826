//! Usage records and totals, and API keys' budgets, for the usage API.

use std::collections::HashSet;

use kai_core::{
    ApiKeyId, Budget, BudgetLimit, UsageFilter, UsageGroup, UsageId, UsageRecord, UsageTotals,
};

use crate::error::GatewayError;
use crate::gateway::Gateway;

impl Gateway {
    /// Usage totals over `filter`.
    pub async fn usage_totals(&self, filter: &UsageFilter) -> Result<UsageTotals, GatewayError> {
        Ok(self.inner.store.usage_totals(filter).await?)
    }

    /// Usage totals per group.
    pub async fn usage_grouped(
        &self,
        filter: &UsageFilter,
        by: UsageGroup,
    ) -> Result<Vec<(String, UsageTotals)>, GatewayError> {
        Ok(self.inner.store.usage_grouped(filter, by).await?)
    }

    /// Usage records, newest first.
    pub async fn usage_records(
        &self,
        filter: &UsageFilter,
        limit: u32,
        before: Option<UsageId>,
    ) -> Result<Vec<UsageRecord>, GatewayError> {
        Ok(self
            .inner
            .store
            .usage_records(filter, limit, before)
            .await?)
    }

    /// A key's budgets.
    pub async fn budgets(&self, key: ApiKeyId) -> Result<Vec<Budget>, GatewayError> {
        Ok(self.inner.store.key_budgets(key).await?)
    }

    /// Replaces a key's budgets.
    pub async fn set_budgets(&self, key: ApiKeyId, budgets: &[Budget]) -> Result<(), GatewayError> {
        let mut seen = HashSet::new();
        for budget in budgets {
            let kind = matches!(budget.limit, BudgetLimit::Tokens(_));
            if !seen.insert((budget.period, kind)) {
                return Err(GatewayError::Invalid {
                    field: "budgets".into(),
                    message: format!(
                        "two {} budgets per {}; give one",
                        if kind { "token" } else { "dollar" },
                        budget.period
                    ),
                });
            }
        }
        if !self.inner.store.set_key_budgets(key, budgets).await? {
            return Err(GatewayError::NotFound("API key".into()));
        }
        self.inner.accounting.forget_budgets(key);
        Ok(())
    }
}
