//! The `lb` kind's spec table: `examples/lb.toml` parses with the kind's
//! defaults, and every mistake is refused naming its line and field.

use control::Spec;
use services::Registry;

const LB: &str = include_str!("../../examples/lb.toml");

fn error(text: &str) -> String {
    Spec::parse(text, &Registry::with_builtin())
        .unwrap_err()
        .to_string()
}

#[test]
fn the_example_parses() {
    let spec = Spec::parse(LB, &Registry::with_builtin()).unwrap();
    let kinds: Vec<&str> = spec.services.iter().map(|service| service.kind).collect();
    assert_eq!(kinds, ["lb", "l3fwd"]);
    assert_eq!(
        spec.services[0].attach,
        vec![services::HookPoint::Ipv4Forward]
    );
    let debug = format!("{:?}", spec.services[0].config);
    assert!(debug.contains("table_size: 65537"), "{debug}");
    // Without table_size and flows: the defaults.
    let text = LB
        .replace("table_size = 65537", "")
        .replace("flows = 65536", "");
    let spec = Spec::parse(&text, &Registry::with_builtin()).unwrap();
    let debug = format!("{:?}", spec.services[0].config);
    assert!(
        debug.contains("table_size: 65537") && debug.contains("flows: 65536"),
        "{debug}"
    );
}

#[test]
fn mistakes_name_line_and_field() {
    // The service starts on line 23; vip on 25, backends on 26.
    for (from, to, says) in [
        (
            "vip = \"10.0.2.100:80\"",
            "vip = \"10.0.2.100\"",
            "10.0.2.100",
        ),
        (
            "vip = \"10.0.2.100:80\"",
            "vip = \"10.0.2.100:0\"",
            "address:port",
        ),
        ("\"10.0.2.3:8000\"", "\"10.0.2.3:http\"", "10.0.2.3:http"),
        ("\"10.0.2.3:8000\"", "\"10.0.2.2:8000\"", "listed twice"),
        ("table_size = 65537", "table_size = 65536", "table_size"),
        ("table_size = 65537", "table_size = 2", "table_size"),
        ("flows = 65536", "flows = 0", "flows"),
        ("flows = 65536", "flow = 65536", "flow"),
        (
            "backends = [\"10.0.2.2:8000\", \"10.0.2.3:8000\", \"10.0.2.4:8000\"]",
            "backends = []",
            "backends",
        ),
    ] {
        let text = LB.replace(from, to);
        assert_ne!(text, LB, "{from}");
        let message = error(&text);
        assert!(message.contains(says), "{to}: {message}");
        assert!(message.contains("line"), "{to}: {message}");
    }
}
