//! Hostile documents at (just under) the input size limit: shapes whose parsing cost grows
//! faster than their size (namespace declarations in scope × elements, attributes per element)
//! or that are merely numerous (tiny nodes, long values). Every stanza parser must answer each
//! with a typed result, quickly.
//!
//! The time bound is a coarse guard against quadratic blow-up (which took tens of seconds to
//! minutes on these shapes), not a speed goal: a bounded parse takes milliseconds, and the bound
//! leaves orders of magnitude for a debug build on a loaded machine.

use std::time::{Duration, Instant};

use olmo::omemo::Version;
use olmo::omemo::stanza::{
    BundleElement, DeviceListElement, EncryptedElement, Envelope, Limit, StanzaError,
};

const O2: &str = "urn:xmpp:omemo:2";
const BOUND: Duration = Duration::from_secs(1);

/// Room under [`Limit::InputBytes`] for the root element's tags.
const BUDGET: usize = 256 * 1024 - 128;

/// `<encrypted xmlns='urn:xmpp:omemo:2' {attributes}>{content}</encrypted>`, at most the size
/// limit.
fn encrypted(attributes: &str, content: &str) -> String {
    let xml = format!("<encrypted xmlns='{O2}'{attributes}>{content}</encrypted>");
    assert!(xml.len() <= Limit::InputBytes.max(), "{} bytes", xml.len());
    xml
}

/// ` xmlns:p0='u' xmlns:p1='u' …`, `n` prefixed declarations.
fn prefixes(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!(" xmlns:{prefix}{i}='u'")).collect()
}

/// One public parser, applied to the document at hand.
type Parse<'a> = dyn Fn() -> Result<(), StanzaError> + 'a;

/// Feeds `xml` to every public stanza parser; each must finish within [`BOUND`], and when
/// `refusal` is set, refuse with it. Returns the slowest parse.
fn parse_everywhere(shape: &str, xml: &str, refusal: Option<Limit>) -> Duration {
    let parsers: [(&str, &Parse); 7] = [
        ("Encrypted::parse", &|| {
            EncryptedElement::parse(xml).map(drop)
        }),
        ("Encrypted::parse_version(2)", &|| {
            EncryptedElement::parse_version(xml, Version::Omemo2).map(drop)
        }),
        ("Encrypted::parse_version(0.3)", &|| {
            EncryptedElement::parse_version(xml, Version::Omemo03).map(drop)
        }),
        ("Bundle::parse", &|| BundleElement::parse(xml).map(drop)),
        ("DeviceList::parse", &|| {
            DeviceListElement::parse(xml).map(drop)
        }),
        ("Envelope::parse", &|| Envelope::parse(xml).map(drop)),
        ("Envelope::parse_bytes", &|| {
            Envelope::parse_bytes(xml.as_bytes()).map(drop)
        }),
    ];
    let mut slowest = Duration::ZERO;
    for (name, parse) in parsers {
        let start = Instant::now();
        let result = parse();
        let took = start.elapsed();
        eprintln!("{shape}: {name}: {took:?} ({} bytes)", xml.len());
        assert!(took < BOUND, "{shape}: {name} took {took:?}");
        if let Some(limit) = refusal {
            assert_eq!(result, Err(StanzaError::TooLarge(limit)), "{shape}: {name}");
        }
        slowest = slowest.max(took);
    }
    slowest
}

/// The reported shape: a root declaring `n` prefixes and `m` children declaring one more each.
fn inherited_prefixes(n: usize, m: usize) -> String {
    encrypted(&prefixes("p", n), &"<c xmlns:q='u'/>".repeat(m))
}

#[test]
fn reported_namespace_shape() {
    parse_everywhere(
        "4000 x 2000 prefixes",
        &inherited_prefixes(4_000, 2_000),
        Some(Limit::Namespaces),
    );
}

#[test]
fn reported_namespace_shape_scaled_down() {
    parse_everywhere(
        "1000 x 500 prefixes",
        &inherited_prefixes(1_000, 500),
        Some(Limit::Namespaces),
    );
}

#[test]
fn prefixes_in_scope_times_elements_at_full_size() {
    // Half the budget for declarations (~16 bytes each), half for children (16 bytes each).
    let n = BUDGET / 2 / 16;
    parse_everywhere(
        "prefixed x prefixed",
        &inherited_prefixes(n, BUDGET / 2 / 16),
        Some(Limit::Namespaces),
    );
    parse_everywhere(
        "prefixed x default redeclared",
        &encrypted(
            &prefixes("p", n),
            &"<c xmlns='urn:x'/>".repeat(BUDGET / 2 / 18),
        ),
        Some(Limit::Namespaces),
    );
    // Within the limit in scope, every element may still declare: linear.
    let few = Limit::Namespaces.max() - 2;
    parse_everywhere(
        "just within the limit x prefixed",
        &encrypted(
            &prefixes("p", few),
            &"<c xmlns:q='u'/>".repeat((BUDGET - 512) / 16),
        ),
        None,
    );
    parse_everywhere(
        "default redeclared on every element",
        &encrypted("", &format!("<c xmlns='{O2}'/>").repeat(BUDGET / 32)),
        None,
    );
}

#[test]
fn declarations_on_every_element_of_a_deep_chain() {
    // Depth 63 under the root, each level adding 40 prefixes, then leaves declaring one more.
    let levels = Limit::Depth.max() - 2;
    let open: String = (0..levels)
        .map(|level| format!("<d{}>", prefixes(&format!("l{level}x"), 40)))
        .collect();
    let close = "</d>".repeat(levels);
    let leaves = "<c xmlns:q='u'/>".repeat((BUDGET - open.len() - close.len()) / 16);
    parse_everywhere(
        "deep chain of declarations",
        &encrypted("", &format!("{open}{leaves}{close}")),
        Some(Limit::Namespaces),
    );
    // Default namespace redeclared on every level: one prefix in scope, however deep.
    let open = format!("<d xmlns='{O2}'>").repeat(levels);
    let leaves = format!("<c xmlns='{O2}'/>").repeat((BUDGET - open.len() - close.len()) / 32);
    parse_everywhere(
        "deep chain of default redeclarations",
        &encrypted("", &format!("{open}{leaves}{close}")),
        None,
    );
}

#[test]
fn many_declarations_on_one_element() {
    parse_everywhere(
        "one element, all prefixes",
        &encrypted(&prefixes("p", BUDGET / 18), ""),
        Some(Limit::Namespaces),
    );
    // Distinct namespace names, in descending order, each on its own element.
    let children: String = (0..BUDGET / 24)
        .rev()
        .map(|i| format!("<c xmlns='u{i:05}'/>"))
        .collect();
    parse_everywhere("distinct names", &encrypted("", &children), None);
}

#[test]
fn attributes_per_element() {
    // ` a12345=''`: 10 bytes each; the reported element had 27,000.
    let attributes: String = (0..BUDGET / 10).map(|i| format!(" a{i:05}=''")).collect();
    parse_everywhere(
        "one element, all attributes",
        &encrypted(&attributes, ""),
        Some(Limit::Attributes),
    );
    // As many elements as fit with as many attributes as are allowed.
    let allowed: String = (0..Limit::Attributes.max())
        .map(|i| format!(" a{i}=''"))
        .collect();
    let element = format!("<c{allowed}/>");
    parse_everywhere(
        "elements at the attribute limit",
        &encrypted("", &element.repeat(BUDGET / element.len())),
        None,
    );
}

#[test]
fn node_count() {
    parse_everywhere(
        "tiny elements",
        &encrypted("", &"<a/>".repeat(BUDGET / 4)),
        Some(Limit::Nodes),
    );
    parse_everywhere(
        "text and comments",
        &encrypted("", &"x<!---->".repeat(BUDGET / 8)),
        Some(Limit::Nodes),
    );
    parse_everywhere(
        "processing instructions",
        &encrypted("", &"<?a?>".repeat(BUDGET / 5)),
        Some(Limit::Nodes),
    );
}

#[test]
fn long_values() {
    let value = "v".repeat(BUDGET / 4 - 8);
    let attributes = format!(" a='{value}' b='{value}' c='{value}'");
    parse_everywhere("long attribute values", &encrypted(&attributes, ""), None);
    let text = format!("<header sid='1'><payload>{value}{value}</payload></header>");
    parse_everywhere("long text", &encrypted("", &text), None);
}

#[test]
fn a_full_header_of_keys_still_parses() {
    // Line-wrapped, so each key brings an element, its text and the whitespace after it.
    let keys = "\n<key rid='1'>AQ==</key>".repeat(Limit::Keys.max());
    let xml = encrypted(
        "",
        &format!("<header sid='1'><keys jid='a@b'>{keys}\n</keys></header>"),
    );
    let start = Instant::now();
    let parsed = EncryptedElement::parse(&xml).unwrap();
    assert!(start.elapsed() < BOUND);
    assert_eq!(parsed.keys.len(), Limit::Keys.max());
}
