//! `/experiments/metrics`: [`ExperimentMetricsRequest`].

use super::{Body, invalid};
use crate::{Client, CsvRecords, Result};

/// Experiment metrics as CSV, from `/experiments/metrics`. Created by
/// [`Client::experiment_metrics`].
#[derive(Debug, Clone)]
pub struct ExperimentMetricsRequest {
    client: Client,
    experiment_ids: Vec<i64>,
    campaign_ids: Vec<i64>,
}

/// The most IDs (experiments and campaigns together) one metrics request may carry.
pub const MAX_METRICS_IDS: usize = 200;

impl Client {
    /// Exports metrics of email experiments, selected by experiment and/or campaign IDs
    /// (1 to 200 IDs in all).
    ///
    /// ```no_run
    /// # use futures::TryStreamExt;
    /// # async fn demo(client: iterable_export::Client) -> iterable_export::Result<()> {
    /// let mut rows = client.experiment_metrics().experiment_ids([1, 2]).campaign_ids([3]).send().await?;
    /// println!("{:?}", rows.headers());
    /// while let Some(row) = rows.try_next().await? {
    ///     println!("{:?}", row.get(0));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn experiment_metrics(&self) -> ExperimentMetricsRequest {
        ExperimentMetricsRequest {
            client: self.clone(),
            experiment_ids: Vec::new(),
            campaign_ids: Vec::new(),
        }
    }
}

impl ExperimentMetricsRequest {
    /// Adds experiment IDs.
    pub fn experiment_ids(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.experiment_ids.extend(ids);
        self
    }

    /// Adds campaign IDs.
    pub fn campaign_ids(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.campaign_ids.extend(ids);
        self
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) for no IDs or more than [`MAX_METRICS_IDS`].
    pub fn validate(&self) -> Result<()> {
        let count = self.experiment_ids.len() + self.campaign_ids.len();
        if count == 0 {
            return Err(invalid("no experiment or campaign IDs: give at least one"));
        }
        if count > MAX_METRICS_IDS {
            return Err(invalid(format!(
                "{count} IDs given, but one request takes at most {MAX_METRICS_IDS}: split them into several requests"
            )));
        }
        Ok(())
    }

    /// Sends the request (retrying transient failures) and returns the raw CSV body.
    pub async fn body(&self) -> Result<Body> {
        self.validate()?;
        self.client
            .with_retries(crate::client::Throttle::Unlimited, || self.open())
            .await
    }

    async fn open(&self) -> Result<Body> {
        let mut request = self.client.generated().export_experiment_metrics();
        if !self.experiment_ids.is_empty() {
            request = request.experiment_id(self.experiment_ids.clone());
        }
        if !self.campaign_ids.is_empty() {
            request = request.campaign_id(self.campaign_ids.clone());
        }
        Ok(Body {
            inner: self.client.body(request.send().await).await?,
        })
    }

    /// Sends the request and streams the CSV rows.
    pub async fn send(&self) -> Result<CsvRecords> {
        let body = self.body().await?;
        CsvRecords::new(body.into_inner(), self.client.max_line_length()).await
    }
}

#[cfg(test)]
mod tests {
    use crate::Result;
    use crate::export::test_support::{client, message};

    #[test]
    fn metric_ids_are_validated() -> Result<()> {
        let c = client()?;
        assert_eq!(
            message(c.experiment_metrics().validate()),
            "no experiment or campaign IDs: give at least one"
        );
        let too_many = c.experiment_metrics().experiment_ids(0..150).campaign_ids(0..51);
        assert!(message(too_many.validate()).starts_with("201 IDs given, but one request takes at most 200"));
        c.experiment_metrics()
            .experiment_ids(0..100)
            .campaign_ids(0..100)
            .validate()?;
        Ok(())
    }
}
