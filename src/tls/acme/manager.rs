//! The ACME client loop: for each managed certificate, order one when none is stored or the
//! stored one reached its renewal time ([`super::renew_at`]), then sleep until the next
//! renewal time (at most 12 hours, so a clock jump or a deleted file is noticed). A failed
//! order is tried again after a back-off that doubles from 10 s to 1 hour, which stays within
//! Let's Encrypt's failed-validation limit (5 per name per hour).
//!
//! One order: the account (created once per CA and stored), a new order for the site's
//! names, an http-01 challenge per pending authorization (its answer published through the
//! store, withdrawn when the order is done whatever the outcome), the CSR for a fresh ECDSA
//! P-256 key, and the certificate chain, stored; then `on_issued` makes the servers present
//! it. The protocol itself (JWS, nonces, polling) is instant-acme's.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use super::{Managed, Settings, Store, renew_at};

/// Longest sleep between two looks at the certificates.
const MAX_SLEEP: Duration = Duration::from_secs(12 * 3600);
/// First wait after a failed order; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long the CA may take to validate the challenges, then to issue.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// Called with a certificate just stored.
pub type OnIssued = Box<dyn Fn(&Managed) + Send + Sync>;

/// Runs the loop for `settings` until the task is dropped.
pub async fn run(settings: Settings, store: Store, on_issued: OnIssued) {
    let mut client = Client {
        settings,
        store,
        account: None,
    };
    let mut failures: HashMap<String, u32> = HashMap::new();
    loop {
        let now = SystemTime::now();
        let mut next = now + MAX_SLEEP;
        for managed in client.settings.certificates.clone() {
            let name = managed.names[0].clone();
            let stored = client.store.load_certificate(&managed.names);
            let due = stored
                .as_ref()
                .map(|s| renew_at(s.not_before, s.not_after, client.settings.renew_before));
            if let Some(due) = due
                && due > now
            {
                next = next.min(due);
                continue;
            }
            let renewing = stored.is_some();
            tracing::info!(site = %managed.site, names = ?managed.names, renewing, "ordering an ACME certificate");
            match client.order(&managed.names).await {
                Ok(()) => {
                    failures.remove(&name);
                    tracing::info!(site = %managed.site, names = ?managed.names, "ACME certificate issued and stored");
                    on_issued(&managed);
                    if let Some(s) = client.store.load_certificate(&managed.names) {
                        let due = renew_at(s.not_before, s.not_after, client.settings.renew_before);
                        next = next.min(due.max(SystemTime::now() + Duration::from_secs(1)));
                    }
                }
                Err(e) => {
                    let count = failures.entry(name).or_insert(0);
                    *count += 1;
                    let wait = backoff(*count);
                    tracing::error!(site = %managed.site, error = %format!("{e:#}"), retry_in = ?wait, "ACME order failed");
                    next = next.min(SystemTime::now() + wait);
                }
            }
        }
        let sleep = next
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(sleep).await;
    }
}

/// The wait after the `failures`-th failure in a row.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

struct Client {
    settings: Settings,
    store: Store,
    account: Option<Account>,
}

impl Client {
    /// The account at the CA: restored from the store, else created and stored.
    async fn account(&mut self) -> anyhow::Result<Account> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let directory = &self.settings.directory;
        let builder = || match &self.settings.ca_root {
            Some(root) => Account::builder_with_root(root)
                .with_context(|| format!("cannot trust {}", root.display())),
            None => Account::builder().context("cannot set up the HTTPS client"),
        };
        let stored = self
            .store
            .load_account(directory)
            .context("cannot read the stored ACME account")?;
        let account = match stored {
            Some(json) => {
                let credentials: AccountCredentials =
                    serde_json::from_str(&json).context("the stored ACME account is damaged")?;
                builder()?
                    .from_credentials(credentials)
                    .await
                    .with_context(|| format!("cannot reach the ACME directory {directory}"))?
            }
            None => {
                let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
                let (account, credentials) = builder()?
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        directory.clone(),
                        None,
                    )
                    .await
                    .with_context(|| format!("cannot create an account at {directory}"))?;
                let json = serde_json::to_string(&credentials)?;
                self.store
                    .save_account(directory, &json)
                    .context("cannot store the ACME account")?;
                tracing::info!(%directory, id = account.id(), "ACME account created");
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// One order for `names`, ending with the certificate stored.
    async fn order(&mut self, names: &[String]) -> anyhow::Result<()> {
        let account = match self.account().await {
            Ok(account) => account,
            Err(e) => {
                self.account = None;
                return Err(e);
            }
        };
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .context("the CA refused the order")?;
        let mut published = Published {
            store: &self.store,
            tokens: Vec::new(),
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("cannot read an authorization")?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => bail!(
                    "the authorization for {} is {status:?}",
                    authorization.identifier()
                ),
            }
            let identifier = authorization.identifier().to_string();
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| anyhow!("the CA offers no http-01 challenge for {identifier}"))?;
            let token = challenge.token.clone();
            self.store
                .put_challenge(&token, challenge.key_authorization().as_str())
                .context("cannot publish the challenge answer")?;
            published.tokens.push(token);
            challenge
                .set_ready()
                .await
                .with_context(|| format!("the CA did not take the challenge for {identifier}"))?;
        }
        let retries = RetryPolicy::new().timeout(ORDER_TIMEOUT);
        let status = order
            .poll_ready(&retries)
            .await
            .context("the CA did not validate the challenges")?;
        if status != OrderStatus::Ready {
            bail!("the order became {status:?}: the CA could not validate every name");
        }
        drop(published);
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key)?;
        order
            .finalize_csr(csr.der())
            .await
            .context("the CA refused the certificate request")?;
        let chain = order
            .poll_certificate(&retries)
            .await
            .context("the CA did not issue the certificate")?;
        self.store
            .save_certificate(&names[0], &chain, &key.serialize_pem())
            .context("cannot store the certificate")?;
        Ok(())
    }
}

/// Challenge answers published for one order, withdrawn when it is dropped.
struct Published<'a> {
    store: &'a Store,
    tokens: Vec<String>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.store.remove_challenge(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_orders_back_off_from_ten_seconds_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(5), Duration::from_secs(160));
        assert_eq!(backoff(9), Duration::from_secs(2560));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
