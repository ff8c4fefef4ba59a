//! Addresses on the command line: `HOST:PORT`, or a bare `PORT` on 127.0.0.1.

use std::net::{SocketAddr, ToSocketAddrs};

/// Parses `HOST:PORT` or `PORT` (on 127.0.0.1).
///
/// # Errors
///
/// When the text is not an address, naming it.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    resolve(text)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// Parses an address as [`parse_addr`] does, and requires it to be loopback (the scope
/// serves this machine only).
///
/// # Errors
///
/// When the address does not parse, does not resolve, or is not a loopback address.
pub fn parse_loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addrs = resolve(text)?;
    match addrs.iter().find(|a| a.ip().is_loopback()) {
        Some(addr) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(*addr),
        _ => Err(format!(
            "{text:?} is not a loopback address; the scope serves this machine only \
             (use 127.0.0.1, localhost or [::1])"
        )),
    }
}

fn resolve(text: &str) -> Result<Vec<SocketAddr>, String> {
    let full = if text.parse::<u16>().is_ok() {
        format!("127.0.0.1:{text}")
    } else {
        text.to_owned()
    };
    Ok(full
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not an address (HOST:PORT or PORT): {e}"))?
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_the_loopback_check_holds() {
        assert_eq!(
            parse_addr("7770").unwrap(),
            "127.0.0.1:7770".parse().unwrap()
        );
        assert!(parse_addr("0.0.0.0:1").is_ok());
        assert_eq!(parse_loopback_addr("127.0.0.1:7780").unwrap().port(), 7780);
        assert!(parse_loopback_addr("[::1]:0").unwrap().ip().is_loopback());
        assert!(parse_loopback_addr("localhost:7780")
            .unwrap()
            .ip()
            .is_loopback());
        let err = parse_loopback_addr("0.0.0.0:7780").unwrap_err();
        assert!(
            err.starts_with("\"0.0.0.0:7780\" is not a loopback address"),
            "{err}"
        );
        assert!(parse_loopback_addr("192.168.1.2:7780").is_err());
        assert!(parse_loopback_addr("signals.js")
            .unwrap_err()
            .contains("is not an address"));
    }
}
