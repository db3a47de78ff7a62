//! The client's network address, for per-IP rate limits and the audit trail.
//!
//! Without proxies in front (`trusted_proxy_hops` 0) it is the TCP peer. Behind N proxies or
//! load balancers that each append to `X-Forwarded-For`, it is the N-th address from the right:
//! the entries further left were written by the client and cannot be trusted, and trusting the
//! leftmost would let anyone dodge the limits by sending a fresh header with each try.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::AppState;

/// The client's address, or None when it cannot be known (a request not from a socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The address as a rate-limit key part and audit source (`unknown` when unknown).
    pub fn key(&self) -> String {
        self.0
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".to_string())
    }
}

/// The client address given the peer and the number of trusted proxies in front.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted_hops: usize) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .len()
        .checked_sub(trusted_hops)
        .and_then(|i| forwarded.get(i).copied())
        .or(peer)
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            state.config.trusted_proxy_hops,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        assert_eq!(client_ip(Some(ip("10.0.0.1")), &h, 0), Some(ip("10.0.0.1")));
    }

    #[test]
    fn behind_one_proxy_the_rightmost_forwarded_address_is_the_client() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9"),
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, 1),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(Some(ip("10.0.0.1")), &h, 2), Some(ip("6.6.6.6")));
        // Fewer entries than proxies, or garbage: fall back to the peer.
        assert_eq!(client_ip(Some(ip("10.0.0.1")), &h, 3), Some(ip("10.0.0.1")));
        h.insert("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_ip(Some(ip("10.0.0.1")), &h, 1), Some(ip("10.0.0.1")));
    }
}
