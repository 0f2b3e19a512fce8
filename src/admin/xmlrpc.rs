//! The pure XML-RPC half of the endpoint: request body in, response document out.
//! No I/O, so it is unit-tested and fuzzed without sockets.

use std::panic::{catch_unwind, AssertUnwindSafe};

use dxr::{Fault, FaultResponse, MethodCall, MethodResponse, Value};

use super::IstatsSource;

/// Names returned by `system.listMethods`, in that order.
const METHODS: [&str; 2] = ["istats", "system.listMethods"];

/// Fault codes from the widely used "specification for fault code interoperability".
const FAULT_PARSE: i32 = -32700;
const FAULT_NO_METHOD: i32 = -32601;
const FAULT_PARAMS: i32 = -32602;
const FAULT_INTERNAL: i32 = -32603;

/// Deepest element nesting accepted. Our methods take no arguments; 32 still leaves
/// room for clients that send a few nested values, and keeps the recursive
/// deserialiser far from the stack limit.
const MAX_XML_DEPTH: usize = 32;

/// Turns a request body into the XML-RPC response document (a result or a fault).
/// Public for the fuzz target; never panics, whatever the bytes.
pub fn dispatch(body: &[u8], istats: &IstatsSource) -> String {
    let Ok(text) = std::str::from_utf8(body) else {
        return fault(FAULT_PARSE, "request is not UTF-8");
    };
    if let Err(reason) = check_xml(text) {
        return fault(
            FAULT_PARSE,
            &format!("request is not an XML-RPC call: {reason}"),
        );
    }
    let Ok(call) = MethodCall::from_xml(text) else {
        return fault(FAULT_PARSE, "request is not an XML-RPC call");
    };
    match call.name.as_ref() {
        "istats" if !call.params.is_empty() => fault(FAULT_PARAMS, "istats takes no arguments"),
        "istats" => match catch_unwind(AssertUnwindSafe(|| istats())) {
            Ok(json) => response(Value::String(xml_safe(json))),
            Err(_) => fault(FAULT_INTERNAL, "internal error while collecting stats"),
        },
        "system.listMethods" => response(Value::Array(
            METHODS
                .iter()
                .map(|m| Value::String((*m).to_owned()))
                .collect(),
        )),
        other => {
            // The name is the client's text: shorten it and keep it printable.
            let name: String = other.chars().take(64).filter(|c| !c.is_control()).collect();
            fault(
                FAULT_NO_METHOD,
                &format!("method \"{name}\" is not supported"),
            )
        }
    }
}

/// Checks that `text` is well-formed enough and nested at most [`MAX_XML_DEPTH`] deep.
///
/// Streaming and iterative, so it is safe on any input; the recursive deserialiser
/// only sees documents that pass.
pub fn check_xml(text: &str) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(format!("nested deeper than {MAX_XML_DEPTH} elements"));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "malformed XML at byte {}: {e}",
                    reader.error_position()
                ))
            }
        }
    }
}

/// Replaces characters that XML 1.0 cannot carry even escaped, so the response
/// always parses (JSON escapes control characters, but the source is not ours).
fn xml_safe(text: String) -> String {
    let bad = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if text.contains(bad) {
        text.replace(bad, "\u{fffd}")
    } else {
        text
    }
}

/// Put before every document, since dxr writes none.
const XML_DECL: &str = "<?xml version=\"1.0\"?>\n";

/// A result document, or a fault if dxr cannot encode `value`.
fn response(value: Value) -> String {
    match (MethodResponse { value }).to_xml() {
        Ok(xml) => format!("{XML_DECL}{xml}"),
        Err(_) => fault(FAULT_INTERNAL, "cannot encode the response"),
    }
}

/// A fault document; always valid XML-RPC, even if dxr fails.
fn fault(code: i32, text: &str) -> String {
    let doc = FaultResponse {
        fault: Fault::new(code, text.to_owned()),
    };
    match doc.to_xml() {
        Ok(xml) => format!("{XML_DECL}{xml}"),
        // Unreachable in practice (an int and a string always encode); still a valid fault.
        Err(_) => format!(
            "{XML_DECL}<methodResponse><fault><value><struct><member><name>faultCode</name>\
             <value><int>{FAULT_INTERNAL}</int></value></member><member><name>faultString</name>\
             <value><string>internal error</string></value></member></struct></value></fault>\
             </methodResponse>"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn source() -> IstatsSource {
        Arc::new(|| String::from("{\"a\": 1}"))
    }

    #[test]
    fn istats_returns_the_json_string() {
        let call = "<?xml version='1.0'?>\n<methodCall>\n<methodName>istats</methodName>\n<params>\n</params>\n</methodCall>\n";
        let xml = dispatch(call.as_bytes(), &source());
        let resp = MethodResponse::from_xml(&xml).map(|r| r.value);
        assert_eq!(
            resp.ok(),
            Some(Value::String(String::from("{\"a\": 1}"))),
            "{xml}"
        );
    }

    #[test]
    fn list_methods() {
        let call = "<methodCall><methodName>system.listMethods</methodName></methodCall>";
        let xml = dispatch(call.as_bytes(), &source());
        let resp = MethodResponse::from_xml(&xml).map(|r| r.value);
        let want = Value::Array(vec![
            Value::String("istats".into()),
            Value::String("system.listMethods".into()),
        ]);
        assert_eq!(resp.ok(), Some(want), "{xml}");
    }

    fn fault_code(xml: &str) -> Option<i32> {
        FaultResponse::from_xml(xml).ok().map(|f| f.fault.code())
    }

    #[test]
    fn faults() {
        let unknown = "<methodCall><methodName>nope</methodName></methodCall>";
        assert_eq!(
            fault_code(&dispatch(unknown.as_bytes(), &source())),
            Some(FAULT_NO_METHOD)
        );
        let args = "<methodCall><methodName>istats</methodName><params><param><value><int>1</int></value></param></params></methodCall>";
        assert_eq!(
            fault_code(&dispatch(args.as_bytes(), &source())),
            Some(FAULT_PARAMS)
        );
        for garbage in [
            &b"\xff\xfe"[..],
            b"",
            b"hello",
            b"<methodCall>",
            b"<a></b>",
            b"{\"json\": 1}",
        ] {
            assert_eq!(
                fault_code(&dispatch(garbage, &source())),
                Some(FAULT_PARSE),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 200_000;
        let mut doc = String::from("<methodCall><methodName>istats</methodName><params><param>");
        doc.push_str(&"<value><array><data>".repeat(depth));
        doc.push_str(&"</data></array></value>".repeat(depth));
        doc.push_str("</param></params></methodCall>");
        assert_eq!(
            fault_code(&dispatch(doc.as_bytes(), &source())),
            Some(FAULT_PARSE)
        );
    }

    #[test]
    fn panicking_source_gives_a_fault() {
        let bad: IstatsSource = Arc::new(|| panic!("boom"));
        let call = "<methodCall><methodName>istats</methodName></methodCall>";
        assert_eq!(
            fault_code(&dispatch(call.as_bytes(), &bad)),
            Some(FAULT_INTERNAL)
        );
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(xml_safe(String::from("a\u{1}b\tc")), "a\u{fffd}b\tc");
    }
}
