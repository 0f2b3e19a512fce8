//! Etsy's listener keys: `port`, `address`, `address_ipv6` and `server`,
//! or a `servers` list, -> `--port`, `--name`, `--transports`.

use serde_json::{Map, Value};

use super::etsy::{boolean, port, string};
use super::{Group, KeyError, Mapped};

/// `port`, `address`, `address_ipv6`, `server`, or a `servers` list sharing
/// one address and port. Etsy's default server is UDP alone.
pub(super) fn listeners(object: &Map<String, Value>, out: &mut Mapped) -> Result<(), KeyError> {
    let servers: Vec<(&str, &Map<String, Value>)> = match object.get("servers") {
        None => vec![("", object)],
        Some(Value::Array(list)) if !list.is_empty() => {
            let mut found = Vec::new();
            for item in list {
                match item {
                    Value::Object(server) => found.push(("servers[].", server)),
                    _ => {
                        return Err(KeyError::new(
                            "servers",
                            "must be a list of { server, address, port } objects",
                        ))
                    }
                }
            }
            found
        }
        Some(_) => {
            return Err(KeyError::new(
                "servers",
                "must be a non-empty list of { server, address, port } objects",
            ))
        }
    };
    let (mut udp, mut tcp) = (false, false);
    let mut bind: Option<(Option<u16>, Option<String>)> = None;
    for (prefix, server) in servers {
        let key = |name: &str| format!("{prefix}{name}");
        match server.get("server") {
            None => udp = true,
            Some(value) => match string(&key("server"), value)?.as_str() {
                "./servers/udp" | "udp" => udp = true,
                "./servers/tcp" | "tcp" => tcp = true,
                other => {
                    return Err(KeyError::new(
                        &key("server"),
                        format!("must be \"./servers/udp\" or \"./servers/tcp\", not {other:?}"),
                    ))
                }
            },
        }
        let port = server
            .get("port")
            .map(|v| port(&key("port"), v))
            .transpose()?;
        let address = server
            .get("address")
            .map(|v| string(&key("address"), v))
            .transpose()?;
        let ipv6 = match server.get("address_ipv6") {
            Some(value) => boolean(&key("address_ipv6"), value)?,
            None => false,
        };
        // Etsy binds udp6 on `::` when address_ipv6 is set without an address.
        let address = address.or_else(|| ipv6.then(|| "::".to_string()));
        for name in server.keys() {
            if !prefix.is_empty()
                && !["server", "port", "address", "address_ipv6"].contains(&name.as_str())
            {
                out.warnings
                    .push(format!("config key {} is not supported", key(name)));
            }
        }
        match &bind {
            None => bind = Some((port, address)),
            Some(first) if *first == (port, address.clone()) => {}
            Some(_) => {
                return Err(KeyError::new("servers", "every server must share one address and port here (one metrics port for UDP and TCP)"))
            }
        }
    }
    let transports = match (udp, tcp) {
        (true, true) => "udp,tcp",
        (false, true) => "tcp",
        _ => "udp",
    };
    let key = if object.contains_key("servers") {
        "servers"
    } else {
        "server"
    };
    out.groups.push(Group::with(key, "transports", transports));
    if let Some((port, address)) = bind {
        if let Some(port) = port {
            out.groups
                .push(Group::with("port", "port", port.to_string()));
        }
        if let Some(address) = address {
            out.groups.push(Group::with("address", "name", address));
        }
    }
    Ok(())
}
