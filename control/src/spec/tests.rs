//! Spec text fixtures: the examples parse, every refusal names line and field.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use core::net::Ipv4Addr;
use dataplane::MacAddr;
use services::{HookPoint, Registry};

const ECHO: &str = include_str!("../../../examples/echo.toml");
const ROUTER: &str = include_str!("../../../examples/router.toml");
const ECHO_IGB: &str = include_str!("../../../examples/echo-igb.toml");
const FIREWALL: &str = include_str!("../../../examples/firewall.toml");
const NAT: &str = include_str!("../../../examples/nat.toml");

const INTERFACE: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"virtio\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n";

fn parse(text: &str) -> Result<Spec, SpecError> {
    Spec::parse(text, &Registry::with_builtin())
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

use alloc::string::String;

#[test]
fn the_examples_parse() {
    let spec = parse(ECHO).unwrap();
    assert_eq!(spec.interfaces.len(), 1);
    let eth0 = &spec.interfaces[0];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.driver, Driver::Virtio);
    assert_eq!(eth0.mac, MacAddr([2, 0, 0, 0, 0, 1]));
    assert_eq!(eth0.address, "10.0.0.2/24".parse().unwrap());
    assert_eq!(eth0.queues, 1);
    assert_eq!(spec.services.len(), 1);
    let echo = &spec.services[0];
    assert_eq!(
        (echo.kind, &echo.attach, &echo.cores, echo.line),
        ("udp-echo", &vec![HookPoint::Udp(7)], &None, 13)
    );
    assert_eq!(
        alloc::format!("{:?}", echo.config),
        "udp-echo UdpEchoConfig { port: UdpPort(7) }"
    );
    assert_eq!((eth0.ifname.as_deref(), eth0.first_queue), (None, 0));
    let af_xdp = parse(&alloc::format!(
        "{}ifname = \"veth1\"\nfirst_queue = 2\n",
        INTERFACE.replace("virtio", "af-xdp")
    ))
    .unwrap();
    let interface = &af_xdp.interfaces[0];
    assert_eq!(
        (
            interface.driver,
            interface.ifname.as_deref(),
            interface.first_queue
        ),
        (Driver::AfXdp, Some("veth1"), 2)
    );
    assert!(interface.driver.is_hosted() && !Driver::Igb.is_hosted());
    let igb = parse(ECHO_IGB).unwrap();
    assert_eq!(igb.interfaces[0].driver, Driver::Igb);
    assert_eq!(igb.interfaces[0].driver.name(), "igb");
    let router = parse(ROUTER).unwrap();
    assert_eq!(router.interfaces.len(), 2);
    assert_eq!(router.services[0].kind, "l3fwd");
    assert_eq!(router.services[0].attach, vec![HookPoint::Ipv4Forward]);
    let firewall = parse(FIREWALL).unwrap();
    let kinds: Vec<&str> = firewall
        .services
        .iter()
        .map(|service| service.kind)
        .collect();
    assert_eq!(kinds, ["firewall", "l3fwd"]);
    assert_eq!(firewall.services[0].attach, vec![HookPoint::Ipv4Forward]);
    let mistake = FIREWALL.replace("destination_port = 8081", "destination_port = 80811");
    let error = parse(&mistake).unwrap_err().to_string();
    assert!(error.contains("80811"), "{error}");
    let nat = parse(NAT).unwrap();
    let kinds: Vec<&str> = nat.services.iter().map(|service| service.kind).collect();
    assert_eq!(kinds, ["nat", "l3fwd"]);
    assert_eq!(nat.services[0].attach, vec![HookPoint::Ipv4Forward]);
    for (mistake, says) in [
        (
            NAT.replace("outside = \"eth1\"", "outside = \"eth7\""),
            "outside names no interface",
        ),
        (
            NAT.replace("20000-29999", "30000-40000"),
            "stay out of 32768-60999",
        ),
        (
            NAT.replace("port = 8080", "port = 20080"),
            "lies in the masquerade ports",
        ),
        (
            NAT.replace("to = \"10.0.1.2:8000\"", "to = \"10.0.1.2\""),
            "socket address",
        ),
    ] {
        let error = parse(&mistake).unwrap_err().to_string();
        assert!(error.contains(says), "{error}");
    }
}

#[test]
fn routes_resolve_interfaces_and_next_hops() {
    let text = alloc::format!(
        "{INTERFACE}[[interface]]\nname = \"eth1\"\ndriver = \"tap\"\nmac = \"02:00:00:00:00:02\"\naddress = \"192.168.1.1/24\"\nqueues = 2\n\
         [[route]]\ndestination = \"0.0.0.0/0\"\nvia = \"10.0.0.1\"\n\
         [[route]]\ndestination = \"172.16.0.0/12\"\ninterface = \"eth1\"\n\
         [[route]]\ndestination = \"10.9.0.0/16\"\nvia = \"192.168.1.254\"\ninterface = \"eth1\"\n\
         [[service]]\nkind = \"udp-echo\"\nport = 7\ncores = [0, 1]\n\
         [[service]]\nkind = \"udp-echo\"\nport = 9\n"
    );
    let spec = parse(&text).unwrap();
    assert_eq!(spec.interfaces[1].queues, 2);
    assert_eq!(spec.interfaces[1].driver, Driver::Tap);
    assert_eq!(
        spec.routes,
        vec![
            Route {
                destination: "0.0.0.0/0".parse().unwrap(),
                via: Some(Ipv4Addr::new(10, 0, 0, 1)),
                interface: 0
            },
            Route {
                destination: "172.16.0.0/12".parse().unwrap(),
                via: None,
                interface: 1
            },
            Route {
                destination: "10.9.0.0/16".parse().unwrap(),
                via: Some(Ipv4Addr::new(192, 168, 1, 254)),
                interface: 1
            },
        ]
    );
    assert!(spec.services[0].runs_on(1) && !spec.services[0].runs_on(2));
    assert!(spec.services[1].runs_on(5));
    assert_eq!(spec.services_on(2).count(), 1);
}

#[test]
fn the_documented_mac_error() {
    let text = "# comment\n\n[[interface]]\nname = \"eth0\"\ndriver = \"virtio\"\n\nmac = \"zz\"\naddress = \"10.0.0.2/24\"\n";
    assert_eq!(
        error(text),
        "line 7: interface[0].mac: expected a MAC address like 02:00:00:00:00:01, got \"zz\""
    );
}

#[test]
fn every_refusal_names_line_and_field() {
    let cases: &[(String, &str)] = &[
        (
            "a = [1,".to_string(),
            "line 1: unclosed array, expected `]`",
        ),
        ("name = 1".to_string(), "line 1: name: unknown key"),
        (
            "[interfaces]\n".to_string(),
            "line 1: [interfaces]: unknown key",
        ),
        (
            "[interface]\nname = \"x\"\n".to_string(),
            "line 1: interface: expected an array of tables ([[...]]), got a table ([...])",
        ),
        (
            INTERFACE
                .replace("queues", "x")
                .replace("name =", "colour = \"red\"\nname =")
                .to_string(),
            "line 2: interface[0].colour: unknown key",
        ),
        (
            INTERFACE.replace("name = \"eth0\"\n", ""),
            "line 1: interface[0].name: required key is missing",
        ),
        (
            INTERFACE.replace("\"eth0\"", "0"),
            "line 2: interface[0].name: expected a string, got an integer",
        ),
        (
            INTERFACE.replace("\"eth0\"", "\"\""),
            "line 2: interface[0].name: expected a non-empty name, got \"\"",
        ),
        (
            INTERFACE.replace("virtio", "e1000"),
            "line 3: interface[0].driver: expected one of virtio, igb, tap, af-packet, af-xdp, loopback, got \"e1000\"",
        ),
        (
            INTERFACE.replace("02:00:00:00:00:01", "01:00:5e:00:00:01"),
            "line 4: interface[0].mac: expected a unicast MAC address (first byte even, not all zero), got \"01:00:5e:00:00:01\"",
        ),
        (
            INTERFACE.replace("10.0.0.2/24", "10.0.0.2"),
            "line 5: interface[0].address: expected an IPv4 address with prefix like 10.0.0.2/24, got \"10.0.0.2\"",
        ),
        (
            INTERFACE.replace("10.0.0.2/24", "10.0.0.0/24"),
            "line 5: interface[0].address: expected a host address inside its subnet, like 10.0.0.2/24, got \"10.0.0.0/24\"",
        ),
        (
            alloc::format!("{INTERFACE}queues = 0\n"),
            "line 6: interface[0].queues: expected a queue count from 1 to 64, got \"0\"",
        ),
        (
            alloc::format!("{INTERFACE}queues = true\n"),
            "line 6: interface[0].queues: expected an integer, got a boolean",
        ),
        (
            alloc::format!("{INTERFACE}ifname = \"veth1\"\n"),
            "line 6: interface[0].ifname: driver `virtio` does not run on a Linux interface; ifname is for tap, af-packet and af-xdp",
        ),
        (
            alloc::format!(
                "{}ifname = \"a/b\"\n",
                INTERFACE.replace("virtio", "af-xdp")
            ),
            "line 6: interface[0].ifname: expected a Linux interface name of 1 to 15 bytes without / or spaces, got \"a/b\"",
        ),
        (
            alloc::format!("{}ifname = 7\n", INTERFACE.replace("virtio", "tap")),
            "line 6: interface[0].ifname: expected a string, got an integer",
        ),
        (
            alloc::format!(
                "{}first_queue = 1\n",
                INTERFACE.replace("virtio", "af-packet")
            ),
            "line 6: interface[0].first_queue: driver `af-packet` does not bind NIC queues by number; first_queue is for af-xdp",
        ),
        (
            alloc::format!(
                "{}first_queue = -1\n",
                INTERFACE.replace("virtio", "af-xdp")
            ),
            "line 6: interface[0].first_queue: expected a NIC queue number from 0 to 4294967295, got \"-1\"",
        ),
        (
            alloc::format!("{INTERFACE}{INTERFACE}"),
            "line 7: interface[1].name: \"eth0\" is already used by interface[0]",
        ),
        (
            alloc::format!("{INTERFACE}{}", INTERFACE.replace("eth0", "eth1")),
            "line 9: interface[1].mac: \"02:00:00:00:00:01\" is already used by interface[0]",
        ),
        (
            alloc::format!(
                "{INTERFACE}{}",
                INTERFACE.replace("eth0", "eth1").replace(":01\"", ":02\"")
            ),
            "line 10: interface[1].address: \"10.0.0.2/24\" is already used by interface[0]",
        ),
        (
            alloc::format!(
                "{0}{1}{2}{3}{4}",
                INTERFACE,
                INTERFACE
                    .replace("eth0", "e1")
                    .replace(":01\"", ":02\"")
                    .replace(".2/", ".3/"),
                INTERFACE
                    .replace("eth0", "e2")
                    .replace(":01\"", ":03\"")
                    .replace(".2/", ".4/"),
                INTERFACE
                    .replace("eth0", "e3")
                    .replace(":01\"", ":04\"")
                    .replace(".2/", ".5/"),
                INTERFACE
                    .replace("eth0", "e4")
                    .replace(":01\"", ":05\"")
                    .replace(".2/", ".6/"),
            ),
            "line 21: interface[4]: at most 4 interfaces are supported",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"10.2.0.1/16\"\nvia = \"10.0.0.1\"\n"
            ),
            "line 7: route[0].destination: expected a subnet with its host bits clear, like 10.2.0.0/16, got \"10.2.0.1/16\"",
        ),
        (
            alloc::format!("{INTERFACE}[[route]]\ndestination = \"default\"\n"),
            "line 7: route[0].destination: expected a subnet like 10.2.0.0/16 or 0.0.0.0/0, got \"default\"",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\nvia = \"10.1.0.1\"\n"
            ),
            "line 8: route[0].via: next hop 10.1.0.1 is not on a connected subnet",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\nvia = \"10.0.0.2\"\n"
            ),
            "line 8: route[0].via: next hop 10.0.0.2 is not on a connected subnet",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\nvia = \"10.0.0.x\"\n"
            ),
            "line 8: route[0].via: expected an IPv4 address like 10.0.0.1, got \"10.0.0.x\"",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\ninterface = \"eth9\"\n"
            ),
            "line 8: route[0].interface: no interface is named \"eth9\"",
        ),
        (
            alloc::format!("{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\n"),
            "line 6: route[0]: a route needs `via`, `interface` or both",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\ninterface = \"eth0\"\nmetric = 1\n"
            ),
            "line 9: route[0].metric: unknown key",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[route]]\ndestination = \"0.0.0.0/0\"\ninterface = \"eth0\"\n[[route]]\ndestination = \"0.0.0.0/0\"\ninterface = \"eth0\"\n"
            ),
            "line 10: route[1].destination: \"0.0.0.0/0\" is already used by route[0]",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"teleport\"\n"),
            "line 7: service[0].kind: expected a registered service kind (conntrack, firewall, http, kv, l2fwd, l3fwd, lb, nat, tcp-echo, tcp-proxy, udp-echo), got \"teleport\"",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nport = 7\n"),
            "line 6: service[0].kind: required key is missing",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"udp-echo\"\n"),
            "line 6: service[0].port: required key is missing",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 70000\n"),
            "line 8: service[0].port: expected a UDP port from 1 to 65535, got \"70000\"",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l3fwd\"\nport = 7\n"),
            "line 8: service[0].port: unknown key",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\n[[service]]\nkind = \"udp-echo\"\nport = 7\n"
            ),
            "line 10: service[1].kind: service[0] already echoes at udp:7",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l2fwd\"\ncores = 1\n"),
            "line 8: service[0].cores: expected an array of core numbers, got an integer",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l2fwd\"\ncores = [\"a\"]\n"),
            "line 8: service[0].cores: expected an array of core numbers, got a string",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l2fwd\"\ncores = [-1]\n"),
            "line 8: service[0].cores: expected core numbers from 0 to 1023, got \"-1\"",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l2fwd\"\ncores = [1, 1]\n"),
            "line 8: service[0].cores: \"1\" is already used by service[0].cores",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l2fwd\"\ncores = []\n"),
            "line 8: service[0].cores: expected at least one core (omit `cores` for all), got \"[]\"",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"l3fwd\"\n"),
            "line 7: service[0].kind: l3fwd needs at least two interfaces",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"l2fwd\"\n[[service]]\nkind = \"udp-echo\"\nport = 7\n"
            ),
            "line 7: service[0].kind: l2fwd reflects every frame and cannot share the spec with IP services",
        ),
        (
            "[[service]]\nkind = \"udp-echo\"\nport = 9\n".to_string(),
            "line 2: service[0].kind: a service needs at least one interface",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\nattach = \"tcp:80\"\n"
            ),
            "line 9: service[0].attach: udp-echo handles packets; tcp:80 takes TCP apps (tcp-echo, http, kv)",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\nattach = \"eth:0x0800\"\n"
            ),
            "line 9: service[0].attach: EtherType 0x0800 belongs to the stack: attach at port:rx or at an ipv4: hook point",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\nattach = 5\n"),
            "line 9: service[0].attach: expected a hook point or an array of them, got an integer",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\nattach = []\n"),
            "line 9: service[0].attach: expected at least one hook point (omit `attach` for the kind's own), got \"[]\"",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\nattach = [\"udp:9\", \"udp:0x9\"]\n"
            ),
            "line 9: service[0].attach: \"udp:0x9\" is already used by service[0].attach",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = \"7\"\n"),
            "line 8: service[0].port: invalid type: string \"7\", expected a UDP port from 1 to 65535",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\n[[service]]\nkind = \"udp-echo\"\nport = 8\nattach = \"udp:7\"\n"
            ),
            "line 10: service[1].kind: service[0] already echoes at udp:7",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"l3fwd\"\ncores = [0]\nattach = [\"ipv4:proto:6\"]\nroutes = 1\n"
            ),
            "line 10: service[0].routes: unknown key",
        ),
    ];
    let mut wrong = 0;
    for (text, expected) in cases {
        let got = error(text);
        if &got != expected {
            std::println!("spec:\n{text}\n  got:  {got}\n  want: {expected}");
            wrong += 1;
        }
    }
    assert_eq!(
        wrong, 0,
        "{wrong} refusals worded otherwise (printed above)"
    );
}

#[test]
fn the_management_table_names_an_address_a_port_and_a_token_digest() {
    assert_eq!(parse(INTERFACE).unwrap().management, None);
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let spec = parse(&format!(
        "{INTERFACE}[management]\nlisten = \"10.0.0.2:8080\"\ntoken_sha256 = \"{digest}\"\n"
    ))
    .unwrap();
    let management = spec.management.unwrap();
    assert_eq!(management.listen.to_string(), "10.0.0.2:8080");
    assert_eq!(management.core, 0);
    assert_eq!(management.token_sha256.unwrap()[..2], [0x9f, 0x86]);
    assert_eq!(management.idle_timeout_ms, 60_000);
    let spec = parse(&format!(
        "{INTERFACE}[management]\nlisten = \"10.0.0.2:8080\"\nidle_timeout_ms = 2000\n"
    ))
    .unwrap();
    assert_eq!(spec.management.unwrap().idle_timeout_ms, 2000);
    for (text, expected) in [
        (
            "[management]\nlisten = \"10.9.9.9:8080\"\n",
            "line 7: management.listen: expected one of the interfaces' addresses and a port, got \"10.9.9.9:8080\"",
        ),
        (
            "[management]\nlisten = \"10.0.0.2\"\n",
            "line 7: management.listen: expected an address and port like 10.0.0.2:8080, got \"10.0.0.2\"",
        ),
        (
            "[management]\nlisten = \"10.0.0.2:80\"\ntoken_sha256 = \"abc\"\n",
            "line 8: management.token_sha256: expected 64 hexadecimal digits (a SHA-256), got \"abc\"",
        ),
        (
            "[[service]]\nkind = \"tcp-echo\"\nport = 7\n[management]\nlisten = \"10.0.0.2:7\"\n",
            "line 10: management.listen: TCP port 7 is served by `tcp-echo` already",
        ),
        (
            "[management]\nport = 1\n",
            "line 7: management.port: unknown key",
        ),
        (
            "[management]\nlisten = \"10.0.0.2:8080\"\nidle_timeout_ms = 0\n",
            "line 8: management.idle_timeout_ms: expected milliseconds from 100 to 3600000, got \"0\"",
        ),
        (
            "[management]\nlisten = \"10.0.0.2:8080\"\nidle_timeout_ms = \"2s\"\n",
            "line 8: management.idle_timeout_ms: expected an integer, got a string",
        ),
    ] {
        assert_eq!(error(&format!("{INTERFACE}{text}")), expected, "{text}");
    }
}

#[test]
fn the_tcp_table_sets_the_stack_limits_and_names_line_and_field() {
    assert_eq!(
        parse(INTERFACE).unwrap().tcp,
        services::tcp::TcpConfig::default()
    );
    let spec = parse(&format!(
        "{INTERFACE}[tcp]\nsyn_backlog = 16\nrto_min_ms = 5\ntime_wait_ms = 1000\n"
    ))
    .unwrap();
    assert_eq!(
        (
            spec.tcp.syn_backlog,
            spec.tcp.rto_min_ms,
            spec.tcp.time_wait_ms
        ),
        (16, 5, 1000)
    );
    assert_eq!(
        spec.tcp.max_connections, 16_384,
        "the rest keep their defaults"
    );
    for (text, expected) in [
        (
            "[tcp]\nsyn_backlog = 70000\n",
            "line 7: tcp.syn_backlog: expected half-open connections per core before SYN cookies, from 0 to 65536, got \"70000\"",
        ),
        ("[tcp]\nnagle = true\n", "line 7: tcp.nagle: unknown key"),
        (
            "[tcp]\nrto_max_ms = 100\nrto_min_ms = 200\n",
            "line 8: tcp.rto_min_ms: rto_min_ms is above rto_max_ms",
        ),
    ] {
        assert_eq!(error(&format!("{INTERFACE}{text}")), expected, "{text}");
    }
}

#[test]
fn idle_says_halt_or_poll_and_names_line_and_field() {
    assert_eq!(parse(INTERFACE).unwrap().idle, IdleMode::Halt);
    for (idle, mode) in [("halt", IdleMode::Halt), ("poll", IdleMode::Poll)] {
        let spec = parse(&format!("idle = \"{idle}\"\n{INTERFACE}")).unwrap();
        assert_eq!(spec.idle, mode);
        assert_eq!(mode.name(), idle);
    }
    for (text, expected) in [
        (
            format!("# comment\nidle = \"sleep\"\n{INTERFACE}"),
            "line 2: idle: expected \"halt\" (sleep when idle), \"poll\" (never sleep) or \"haltpoll\" (poll a while, then sleep), got \"sleep\"",
        ),
        (
            format!("idle = true\n{INTERFACE}"),
            "line 1: idle: expected a string, got a boolean",
        ),
        (
            format!("{INTERFACE}[idle]\nmode = \"poll\"\n"),
            "line 6: idle: expected a string, got a table",
        ),
        // After a table header the key belongs to that table.
        (
            format!("{INTERFACE}idle = \"poll\"\n"),
            "line 6: interface[0].idle: unknown key",
        ),
    ] {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn haltpoll_takes_a_bounded_window_only_with_its_mode() {
    let spec = parse(&format!("idle = \"haltpoll\"\n{INTERFACE}")).unwrap();
    assert_eq!(spec.idle, IdleMode::HaltPoll { max_window_us: 200 });
    assert_eq!(spec.idle.name(), "haltpoll");
    assert!(spec.idle.sleeps() && IdleMode::Halt.sleeps() && !IdleMode::Poll.sleeps());
    for (text, window) in [("halt_poll_us = 1_000", 1000), ("halt_poll_us = 0", 0)] {
        let spec = parse(&format!("idle = \"haltpoll\"\n{text}\n{INTERFACE}")).unwrap();
        assert_eq!(
            spec.idle,
            IdleMode::HaltPoll {
                max_window_us: window
            }
        );
    }
    for (text, expected) in [
        (
            format!("idle = \"haltpoll\"\nhalt_poll_us = 10001\n{INTERFACE}"),
            "line 2: halt_poll_us: expected a window in microseconds from 0 to 10000, got \"10001\"",
        ),
        (
            format!("idle = \"haltpoll\"\nhalt_poll_us = -1\n{INTERFACE}"),
            "line 2: halt_poll_us: expected a window in microseconds from 0 to 10000, got \"-1\"",
        ),
        (
            format!("idle = \"haltpoll\"\nhalt_poll_us = \"200\"\n{INTERFACE}"),
            "line 2: halt_poll_us: expected an integer, got a string",
        ),
        (
            format!("halt_poll_us = 100\n{INTERFACE}"),
            "line 1: halt_poll_us: expected halt_poll_us only with idle = \"haltpoll\", got \"100\"",
        ),
        (
            format!("idle = \"poll\"\nhalt_poll_us = 100\n{INTERFACE}"),
            "line 2: halt_poll_us: expected halt_poll_us only with idle = \"haltpoll\", got \"100\"",
        ),
    ] {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn the_ipv4_table_sets_reassembly_limits_and_names_line_and_field() {
    let defaults = parse(INTERFACE).unwrap().ipv4.reassembly;
    assert_eq!(defaults, services::reassembly::ReassemblyLimits::default());
    assert_eq!((defaults.datagrams, defaults.max_bytes), (8, 65535));
    let spec = parse(&format!(
        "{INTERFACE}[ipv4]\nreassembly_datagrams = 2\nreassembly_max_bytes = 9000\n"
    ))
    .unwrap();
    assert_eq!(
        (
            spec.ipv4.reassembly.datagrams,
            spec.ipv4.reassembly.max_bytes
        ),
        (2, 9000)
    );
    assert_eq!(
        parse(&format!("{INTERFACE}[ipv4]\nreassembly_datagrams = 0\n"))
            .unwrap()
            .ipv4
            .reassembly
            .datagrams,
        0
    );
    for (text, expected) in [
        (
            "[ipv4]\nreassembly_datagrams = 65\n",
            "line 7: ipv4.reassembly_datagrams: expected datagrams in progress per core, from 0 (off) to 64, got \"65\"",
        ),
        (
            "[ipv4]\nreassembly_max_bytes = 100\n",
            "line 7: ipv4.reassembly_max_bytes: expected the largest datagram to reassemble, from 576 to 65535 bytes, got \"100\"",
        ),
        (
            "[ipv4]\nreassembly_max_bytes = \"64k\"\n",
            "line 7: ipv4.reassembly_max_bytes: expected an integer, got a string",
        ),
        (
            "[ipv4]\nfragments = 3\n",
            "line 7: ipv4.fragments: unknown key",
        ),
        (
            "[[ipv4]]\nreassembly_datagrams = 1\n",
            "line 6: ipv4: expected a table ([...]), got an array of tables ([[...]])",
        ),
    ] {
        assert_eq!(error(&format!("{INTERFACE}{text}")), expected, "{text}");
    }
}

#[test]
fn an_http_service_parses_and_its_mistakes_name_line_and_field() {
    let example = parse(include_str!("../../../examples/http.toml")).unwrap();
    assert_eq!(example.services[0].attach, vec![HookPoint::Tcp(80)]);
    let spec = parse(&format!(
        "{INTERFACE}[[service]]\nkind = \"http\"\nport = 80\nidle_timeout_ms = 5000\nroutes = [\n  {{ path = \"/\", body = \"hello from warpcore\\n\", content_type = \"text/plain\" }},\n  {{ path = \"/index.html\", file = \"index.html\" }},\n  {{ path = \"/bytes\", generate = \"pattern\" }},\n  {{ path = \"/echo\", echo = true }},\n]\n"
    ))
    .unwrap();
    let http = &spec.services[0];
    assert_eq!(
        (http.kind, &http.attach),
        ("http", &vec![HookPoint::Tcp(80)])
    );
    let debug = alloc::format!("{:?}", http.config);
    assert!(
        debug.contains("max_header_bytes: 8192, max_body_bytes: 1048576, idle_timeout_ms: 5000"),
        "{debug}"
    );
    let route = |routes: &str| {
        format!("{INTERFACE}[[service]]\nkind = \"http\"\nport = 80\nroutes = [\n{routes}\n]\n")
    };
    for (text, expected) in [
        (
            route(
                "  { path = \"/\", body = \"x\" },\n  { path = \"/y\", body = \"y\", echo = true },",
            ),
            "line 9: service[0].routes: route \"/y\" needs exactly one of body, file, generate or echo = true",
        ),
        (
            route("  { path = \"/\", file = \"logo.png\" },"),
            "line 9: service[0].routes: route \"/\": no built-in file is named \"logo.png\" (there are: index.html)",
        ),
        (
            route("  { path = \"x\", body = \"x\" },"),
            "line 9: service[0].routes: route path \"x\" must start with '/' and be visible ASCII without '?'",
        ),
        (
            route("  { path = \"/\", body = \"x\" },\n  { path = \"/\", echo = true },"),
            "line 9: service[0].routes: route path \"/\" is given twice",
        ),
        (
            route("  { path = \"/\", generate = \"random\" },"),
            "line 10: service[0].routes: unknown variant `random`, expected `pattern`",
        ),
        (
            route("  { path = \"/\", body = \"x\", colour = \"red\" },"),
            "line 10: service[0].routes: unknown field `colour`, expected one of `path`, `body`, `file`, `generate`, `echo`, `content_type`",
        ),
        (
            format!(
                "{INTERFACE}[[service]]\nkind = \"http\"\nport = 80\nmax_header_bytes = 10\nroutes = []\n"
            ),
            "line 9: service[0].max_header_bytes: expected a header limit from 256 to 65536 bytes, got \"10\"",
        ),
        (
            format!("{INTERFACE}[[service]]\nkind = \"http\"\nport = 0\nroutes = []\n"),
            "line 8: service[0].port: expected a TCP port from 1 to 65535, got \"0\"",
        ),
        (
            format!("{INTERFACE}[[service]]\nkind = \"http\"\nport = 80\n"),
            "line 6: service[0].routes: required key is missing",
        ),
        (
            format!(
                "{INTERFACE}[[service]]\nkind = \"http\"\nport = 80\nroutes = []\n[[service]]\nkind = \"http\"\nport = 80\nroutes = []\n"
            ),
            "line 11: service[1].kind: service[0] already serves tcp:80",
        ),
    ] {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn a_kv_service_parses_with_defaults_and_names_line_and_field() {
    let text = alloc::format!(
        "{INTERFACE}[[service]]\nkind = \"kv\"\nport = 11211\nmemory_bytes = 67108864\nmax_item_bytes = 1048576\n\
         [[service]]\nkind = \"kv\"\nport = 11212\ncores = [1]\n"
    );
    let spec = parse(&text).unwrap();
    let kv = &spec.services[0];
    assert_eq!(
        (kv.kind, &kv.attach, kv.line),
        ("kv", &vec![HookPoint::Tcp(11211)], 7)
    );
    assert_eq!(
        alloc::format!("{:?}", spec.services[1].config),
        "kv KvConfig { port: TcpPort(11212), memory_bytes: 67108864, max_item_bytes: 1048576 }"
    );
    for (text, message) in [
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"kv\"\nport = 11211\nmemory = 1\n"),
            "line 9: service[0].memory: unknown key",
        ),
        (
            alloc::format!("{INTERFACE}[[service]]\nkind = \"kv\"\n"),
            "line 6: service[0].port: required key is missing",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"kv\"\nport = 11211\nmemory_bytes = 4096\n"
            ),
            "line 7: service[0].kind: max_item_bytes cannot exceed memory_bytes",
        ),
        (
            alloc::format!(
                "{INTERFACE}[[service]]\nkind = \"kv\"\nport = 11211\n[[service]]\nkind = \"kv\"\nport = 11211\n"
            ),
            "line 10: service[1].kind: service[0] already serves tcp:11211",
        ),
    ] {
        assert_eq!(error(&text), message, "{text}");
    }
}
