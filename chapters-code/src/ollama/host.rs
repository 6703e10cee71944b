//! Ollama's address, from a flag, `$OLLAMA_HOST` or the default, parsed the way Ollama parses it.

use std::fmt;

use anyhow::{Context, Result, bail};
use reqwest::Url;

/// Where Ollama listens unless `OLLAMA_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:11434";

/// An Ollama server's address: a URL whose path ends in `/`, so that API paths join onto it.
/// It may carry credentials; [`shown`](Host::shown) is the form without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    url: Url,
}

impl Host {
    /// `value` (a `--host` flag or `$OLLAMA_HOST`, which the caller reads; see
    /// [`Settings`](crate::settings::Settings)), else [`DEFAULT_HOST`], read the way Ollama reads
    /// OLLAMA_HOST (envconfig.Host): no scheme means http on port 11434, `http://` and
    /// `https://` without a port mean 80 and 443, and 0.0.0.0 (where a server listens, not an
    /// address to connect to) means this machine.
    pub fn resolve(value: Option<&str>) -> Result<Host> {
        let raw = value.unwrap_or(DEFAULT_HOST).trim();
        let (scheme, rest, default_port) = match raw.split_once("://") {
            None => ("http", raw, 11434),
            Some(("http", rest)) => ("http", rest, 80),
            Some(("https", rest)) => ("https", rest, 443),
            Some((other, _)) => {
                bail!("Ollama's address {:?}: the scheme must be http or https, not {other}", redact_str(raw))
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let (host, port) = split_host_port(hostport, default_port)
            .with_context(|| format!("Ollama's address {:?} is not host[:port]", redact_str(raw)))?;
        let host = match host.as_str() {
            "" | "0.0.0.0" => "127.0.0.1".to_string(),
            "[::]" => "[::1]".to_string(),
            _ => host,
        };
        let path = path.trim_end_matches('/');
        let url = format!("{scheme}://{userinfo}{host}:{port}/{path}{}", if path.is_empty() { "" } else { "/" });
        let url = Url::parse(&url).with_context(|| format!("Ollama's address {:?} is not a URL", redact_str(raw)))?;
        Ok(Host { url })
    }

    /// The URL requests go to, credentials included.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The address as shown to the reader: without user name or password, and without the
    /// trailing `/`.
    pub fn shown(&self) -> String {
        let mut u = self.url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.as_str().trim_end_matches('/').to_string()
    }

    /// The URL of an API path (`api/version`) on this server.
    pub fn endpoint(&self, path: &str) -> Result<Url> {
        self.url.join(path).with_context(|| format!("{} + {path} is not a URL", self.shown()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// `host:port`, `[v6]:port`, a bare host or a bare IPv6 address.
fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16)> {
    let port = |p: &str| p.parse::<u16>().with_context(|| format!("port {p:?}"));
    if let Ok(ip) = s.parse::<std::net::Ipv6Addr>() {
        return Ok((format!("[{ip}]"), default_port));
    }
    if let Some((v6, rest)) = s.strip_prefix('[').and_then(|r| r.split_once(']')) {
        let ip: std::net::Ipv6Addr = v6.parse().with_context(|| format!("IPv6 address {v6:?}"))?;
        let p = match rest.strip_prefix(':') {
            Some(p) => port(p)?,
            None if rest.is_empty() => default_port,
            None => bail!("{rest:?} after the address"),
        };
        return Ok((format!("[{ip}]"), p));
    }
    let (host, p) = match s.rsplit_once(':') {
        Some((h, p)) => (h, port(p)?),
        None => (s, default_port),
    };
    if host.contains([':', '/', ' ', '[', ']']) {
        bail!("host {host:?}")
    }
    Ok((host.to_string(), p))
}

/// An address as typed, for error messages: without what stands before an `@`.
fn redact_str(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, h)) => format!("{scheme}://…@{h}"),
            None => s.to_string(),
        },
        None => s.split_once('@').map(|(_, h)| format!("…@{h}")).unwrap_or_else(|| s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> String {
        Host::resolve(Some(s)).unwrap().url().to_string()
    }

    #[test]
    fn hosts_are_read_like_ollama() {
        assert_eq!(url("127.0.0.1:5000"), "http://127.0.0.1:5000/");
        assert_eq!(url("example.org"), "http://example.org:11434/");
        assert_eq!(url("http://example.org"), "http://example.org/");
        assert_eq!(url("https://example.org/ollama/"), "https://example.org/ollama/");
        assert_eq!(url("[::1]:8080"), "http://[::1]:8080/");
        assert_eq!(url(""), "http://127.0.0.1:11434/");
        assert_eq!(url(DEFAULT_HOST), "http://127.0.0.1:11434/");
        assert!(Host::resolve(Some("ftp://x")).is_err());
        assert!(Host::resolve(Some("host:notaport")).is_err());
    }

    #[test]
    fn a_listen_address_means_this_machine() {
        assert_eq!(url("0.0.0.0"), "http://127.0.0.1:11434/");
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/");
        assert_eq!(url("http://0.0.0.0:11434"), "http://127.0.0.1:11434/");
        assert_eq!(url("[::]"), "http://[::1]:11434/");
        assert_eq!(url("::"), "http://[::1]:11434/");
    }

    #[test]
    fn a_bare_host_gets_ollamas_port() {
        assert_eq!(url("127.0.0.1"), "http://127.0.0.1:11434/");
        assert_eq!(url("localhost"), "http://localhost:11434/");
        assert_eq!(url("::1"), "http://[::1]:11434/");
    }

    #[test]
    fn paths_end_in_a_slash_so_api_paths_join() {
        let h = Host::resolve(Some("https://example.org/ollama")).unwrap();
        assert_eq!(h.url().as_str(), "https://example.org/ollama/");
        assert_eq!(h.endpoint("api/tags").unwrap().as_str(), "https://example.org/ollama/api/tags");
        assert_eq!(h.shown(), "https://example.org/ollama");
    }

    #[test]
    fn credentials_are_used_but_not_shown() {
        let h = Host::resolve(Some("http://me:secret@example.org:1234")).unwrap();
        assert_eq!(h.url().password(), Some("secret"));
        assert_eq!(h.shown(), "http://example.org:1234");
        assert_eq!(h.to_string(), "http://example.org:1234");
        for bad in ["ftp://me:secret@x", "http://me:secret@x:port", "me:secret@x:port"] {
            let e = format!("{:#}", Host::resolve(Some(bad)).unwrap_err());
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
