//! `/export/userEvents`: [`UserEventsRequest`].

use super::{Body, invalid};
use crate::{Client, Result, UserEvents};

/// The events of one user, from `/export/userEvents`. Created by [`Client::user_events`].
#[derive(Debug, Clone)]
pub struct UserEventsRequest {
    client: Client,
    email: String,
    include_custom_events: Option<bool>,
}

impl Client {
    /// Exports every event of the user with this email address. The real API answers one JSON
    /// event per line (with a `_type` field); the spec's `{"events": [...]}` form is accepted
    /// too. Both are streamed.
    ///
    /// ```no_run
    /// # use futures::TryStreamExt;
    /// # async fn demo(client: iterable_export::Client) -> iterable_export::Result<()> {
    /// let mut events = client.user_events("a@example.com").include_custom_events(true).send().await?;
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{:?} {:?}", event.event_type, event.created_at);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn user_events(&self, email: impl Into<String>) -> UserEventsRequest {
        UserEventsRequest {
            client: self.clone(),
            email: email.into(),
            include_custom_events: None,
        }
    }
}

impl UserEventsRequest {
    /// Whether custom events are included (the API's default is `true`).
    pub fn include_custom_events(mut self, include: bool) -> Self {
        self.include_custom_events = Some(include);
        self
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) when the email is not an address.
    pub fn validate(&self) -> Result<()> {
        validate_email(&self.email)
    }

    /// Sends the request (retrying transient failures) and returns the raw body.
    pub async fn body(&self) -> Result<Body> {
        self.validate()?;
        self.client
            .with_retries(crate::client::Throttle::Unlimited, || self.open())
            .await
    }

    async fn open(&self) -> Result<Body> {
        let mut request = self
            .client
            .generated()
            .export_user_events()
            .email(self.email.trim().to_owned());
        if let Some(include) = self.include_custom_events {
            request = request.include_custom_events(include);
        }
        Ok(Body {
            inner: self.client.body(request.send().await).await?,
        })
    }

    /// Sends the request and streams the user's events.
    pub async fn send(&self) -> Result<UserEvents> {
        let body = self.body().await?;
        Ok(UserEvents::new(body.into_inner(), self.client.max_line_length()))
    }
}

fn validate_email(email: &str) -> Result<()> {
    let email = email.trim();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "{email:?} is not an email address (expected e.g. user@example.com)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::Result;
    use crate::export::test_support::{client, message};

    #[test]
    fn emails_are_validated() -> Result<()> {
        let c = client()?;
        for bad in ["", "a", "a@", "@b.com", "a@b", "a b@c.com", "a@b@c.com", "a@.com"] {
            assert!(
                message(c.user_events(bad).validate()).contains("is not an email address"),
                "{bad}"
            );
        }
        c.user_events("a@example.com").validate()?;
        Ok(())
    }
}
