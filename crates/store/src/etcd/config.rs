//! Where an [`super::EtcdStore`] connects and how: the `--store` URL parsed into
//! [`EtcdConfig`], a pure function so every spelling is tested without a server.
//!
//! The URL is `etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…][/NAMESPACE]` for plain gRPC
//! and `etcds://…` for TLS (the CA that signed the members' certificates comes from a
//! separate file option, [`EtcdConfig::ca_file`]). The user name and password are
//! percent-decoded, as in any URL; they never appear in an error or a `Debug` output.

use crate::StoreError;
use percent_encoding::percent_decode_str;
use std::path::PathBuf;
use std::time::Duration;

/// The key namespace when the URL names none: every key Slipway writes lives under it, so
/// an etcd cluster shared with other software keeps Slipway's keys apart.
pub const DEFAULT_NAMESPACE: &str = "slipway/";

/// How long connecting to the cluster may take before the store gives up (etcd's own
/// `etcdctl` waits 2 s per endpoint; a few members and a slow start need more).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to reach an etcd cluster.
#[derive(Clone)]
pub struct EtcdConfig {
    /// `http://HOST:PORT` or `https://HOST:PORT`, one per member given.
    pub endpoints: Vec<String>,
    /// The prefix of every key (ends with `/` unless empty).
    pub namespace: String,
    /// User name and password for etcd's authentication, if the URL carried them.
    pub user: Option<(String, String)>,
    /// Whether to speak TLS (`etcds://`).
    pub tls: bool,
    /// A PEM file with the CA that signed the members' certificates (required with TLS).
    pub ca_file: Option<PathBuf>,
    /// Key prefixes whose keys can be created once and never changed or deleted, relative
    /// to the namespace (`releases/`, `slugs/`).
    pub immutable_prefixes: Vec<String>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is a secret: say whether there is one, never what it is.
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("namespace", &self.namespace)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("immutable_prefixes", &self.immutable_prefixes)
            .finish_non_exhaustive()
    }
}

impl EtcdConfig {
    /// A plain-text configuration for `endpoints` (`HOST:PORT` or full `http://` URLs) under
    /// the default namespace.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> EtcdConfig {
        EtcdConfig {
            endpoints: endpoints
                .into_iter()
                .map(Into::into)
                .map(|e: String| {
                    if e.contains("://") {
                        e
                    } else {
                        format!("http://{e}")
                    }
                })
                .collect(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            user: None,
            tls: false,
            ca_file: None,
            immutable_prefixes: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Sets the namespace (a trailing `/` is added if missing, unless it is empty).
    pub fn namespace(mut self, namespace: impl Into<String>) -> EtcdConfig {
        self.namespace = normalize_namespace(namespace.into());
        self
    }

    /// Adds an append-only prefix.
    pub fn immutable_prefix(mut self, prefix: impl Into<String>) -> EtcdConfig {
        self.immutable_prefixes.push(prefix.into());
        self
    }

    /// Parses `etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…][/NAMESPACE]` (or `etcds://`).
    pub fn parse_url(url: &str) -> Result<EtcdConfig, StoreError> {
        let bad = |reason: String| StoreError::InvalidUrl { reason };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("etcd://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("etcds://") {
            (true, rest)
        } else {
            return Err(bad(
                "a store URL starts with etcd:// (or etcds:// for TLS), as in etcd://127.0.0.1:2379"
                    .into(),
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        if authority.contains(['?', '#']) || path.contains(['?', '#']) {
            return Err(bad("a store URL takes no query or fragment".into()));
        }
        let (user, hosts) = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let (name, password) = userinfo.split_once(':').ok_or_else(|| {
                    bad(
                        "credentials in a store URL are USER:PASSWORD@ (the password is missing)"
                            .into(),
                    )
                })?;
                let name = decode(name).ok_or_else(|| {
                    bad("the user name in the store URL is not valid percent-encoded UTF-8".into())
                })?;
                let password = decode(password).ok_or_else(|| {
                    bad("the password in the store URL is not valid percent-encoded UTF-8".into())
                })?;
                if name.is_empty() {
                    return Err(bad("the user name in the store URL is empty".into()));
                }
                (Some((name, password)), &authority[at + 1..])
            }
            None => (None, authority),
        };
        let scheme = if tls { "https" } else { "http" };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            endpoints.push(format!("{scheme}://{}", parse_host_port(host)?));
        }
        let namespace = decode(path).ok_or_else(|| {
            bad("the namespace in the store URL is not valid percent-encoded UTF-8".into())
        })?;
        if namespace.contains('\0') {
            return Err(bad(
                "the namespace in the store URL contains a NUL character".into(),
            ));
        }
        let namespace = if path.is_empty() {
            DEFAULT_NAMESPACE.to_owned()
        } else {
            normalize_namespace(namespace)
        };
        Ok(EtcdConfig {
            endpoints,
            namespace,
            user,
            tls,
            ca_file: None,
            immutable_prefixes: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        })
    }
}

fn decode(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn normalize_namespace(namespace: String) -> String {
    if namespace.is_empty() || namespace.ends_with('/') {
        namespace
    } else {
        format!("{namespace}/")
    }
}

/// Checks one `HOST:PORT` (a name, an IPv4 address, or `[IPv6]`) and returns it as given.
fn parse_host_port(text: &str) -> Result<&str, StoreError> {
    let bad = |what: &str| {
        StoreError::InvalidUrl {
        reason: format!("{what} in the store URL: each member is HOST:PORT, as in etcd://10.0.0.1:2379,10.0.0.2:2379"),
    }
    };
    if text.is_empty() {
        return Err(bad("an empty member"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, port) = rest
            .split_once("]:")
            .ok_or_else(|| bad("an IPv6 member without ]:PORT"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("a member whose IPv6 address does not parse"));
        }
        (v6, port)
    } else {
        text.rsplit_once(':')
            .ok_or_else(|| bad("a member without :PORT"))?
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok {
        return Err(bad("a member with an invalid host name"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text),
        _ => Err(bad("a member whose port is not a number from 1 to 65535")),
    }
}
