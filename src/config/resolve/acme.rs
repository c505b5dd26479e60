//! Resolves `[acme]` into `tls::acme::Settings` for the sites with `acme = true`; without
//! such a site the table is checked but nothing is managed.

use toml::Spanned;

use super::Context;
use crate::config::schema;
use crate::tls::acme;

pub(super) fn acme(
    cx: &mut Context<'_>,
    raw: Option<&Spanned<schema::Acme>>,
    certificates: Vec<acme::Managed>,
) -> Option<acme::Settings> {
    let default = schema::Acme::default();
    let table = raw.map_or(&default, Spanned::get_ref);
    let directory = match &table.directory {
        Some(url) => {
            let text = url.get_ref().trim();
            match text.parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => {
                    text.to_string()
                }
                _ => {
                    cx.error_with_hint(
                        url.span(),
                        format!("`directory` must be an https:// URL, not `{text}`"),
                        format!("Let's Encrypt's is \"{}\"", acme::LETS_ENCRYPT),
                    );
                    String::new()
                }
            }
        }
        None => acme::LETS_ENCRYPT.to_string(),
    };
    let contact = match &table.email {
        Some(email) => {
            let text = email.get_ref().trim();
            let valid = text
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
                && !text.contains(|c: char| c.is_whitespace() || c == ',');
            if !valid {
                cx.error(
                    email.span(),
                    format!("`email` must be one address such as ops@example.com, not `{text}`"),
                );
            }
            vec![format!("mailto:{text}")]
        }
        None => Vec::new(),
    };
    let ca_root = table.ca_root.as_ref().and_then(|path| {
        let full = cx.folder().join(path.get_ref());
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_file() => Some(super::absolute(&full)),
            Ok(_) => {
                cx.error(path.span(), format!("{} is not a file", full.display()));
                None
            }
            Err(e) => {
                cx.error(path.span(), format!("cannot read {}: {e}", full.display()));
                None
            }
        }
    });
    let renew_before = super::limits::duration(cx, "renew_before", &table.renew_before);
    if certificates.is_empty() {
        return None;
    }
    Some(acme::Settings {
        directory,
        contact,
        ca_root,
        renew_before,
        certificates,
        store: None,
    })
}
