//! Placements and points printed by npm hashring 3.2.0 set up as proxy.js
//! does (`new HashRing({n: 100, ...}, 'md5', {replicas: 0})`) for three
//! loopback nodes; tests/proxy_etsy.rs checks 10,000 names against proxy.js.

use super::*;

fn ids() -> Vec<String> {
    ["127.0.0.1:8127", "127.0.0.1:8129", "127.0.0.1:8131"]
        .map(String::from)
        .to_vec()
}

const NAMES: [&str; 12] = [
    "foo",
    "bar.baz",
    "a",
    "",
    "stats.x.y",
    "h\u{e9}",
    "x\u{fffd}y",
    "gorets",
    "glork",
    "foo.bar.1",
    "foo.bar.2",
    "foo.bar.3",
];

#[test]
fn placement_equals_hashring() {
    let ring = Ring::build(&ids(), vec![0, 1, 2]);
    let got: Vec<usize> = NAMES
        .iter()
        .map(|n| ring.node_for(n.as_bytes()).unwrap())
        .collect();
    assert_eq!(got, [0, 0, 0, 2, 0, 2, 0, 0, 1, 0, 2, 2]);
}

#[test]
fn points_equal_hashring() {
    let ring = Ring::build(&ids(), vec![0, 1, 2]);
    assert_eq!(ring.points.len(), 120);
    let first: Vec<(u32, usize)> = ring.points[..3].iter().map(|p| (p.value, p.node)).collect();
    assert_eq!(first, [(18286208, 1), (50919014, 0), (52421221, 2)]);
}

#[test]
fn removed_node_gives_its_names_away_and_comes_back_last() {
    let ids = ids();
    let ring = Ring::build(&ids, vec![0, 1, 2]).without(&ids, 1);
    let got: Vec<usize> = NAMES
        .iter()
        .map(|n| ring.node_for(n.as_bytes()).unwrap())
        .collect();
    assert_eq!(got, [0, 0, 0, 2, 0, 2, 0, 0, 2, 0, 2, 2]);
    let back = ring.with(&ids, 1);
    assert_eq!(back.servers(), [0, 2, 1]);
    assert_eq!(back.points.len(), 120);
}

#[test]
fn bad_utf8_hashes_as_the_replacement_character() {
    assert_eq!(key_hash(b"x\xffy"), key_hash("x\u{fffd}y".as_bytes()));
}

#[test]
fn empty_ring_has_no_node() {
    assert_eq!(Ring::default().node_for(b"foo"), None);
}
