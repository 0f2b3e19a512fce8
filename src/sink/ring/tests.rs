use super::*;

fn node(server: &str, instance: Option<&str>) -> RingNode {
    RingNode {
        server: server.into(),
        instance: instance.map(Into::into),
    }
}

#[test]
fn tuple_text_is_pythons() {
    assert_eq!(
        python_tuple_repr(&node("127.0.0.1", None)),
        "('127.0.0.1', None)"
    );
    assert_eq!(python_tuple_repr(&node("h", Some("a"))), "('h', 'a')");
    assert_eq!(
        python_tuple_repr(&node("it's", Some("\\"))),
        "(\"it's\", '\\\\')"
    );
}

#[test]
fn fnv1a_matches_the_reference_vectors() {
    assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn jump_matches_the_paper_for_small_keys() {
    // Every key lands in the one bucket there is; more buckets spread them.
    for key in 0..100 {
        assert_eq!(jump_bucket(key, 1), 0);
        assert!(jump_bucket(key, 7) < 7);
    }
}

#[test]
fn replicas_are_distinct_and_bounded() {
    let ring = HashRing::new(
        &[node("a", None), node("b", None), node("c", None)],
        HashType::CarbonCh,
    );
    let all: Vec<usize> = ring.nodes_of(b"some.metric", 5).collect();
    assert_eq!(all.len(), 3);
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, vec![0, 1, 2]);
    assert_eq!(ring.node_of(b"some.metric"), Some(all[0]));
    let mut placement = Placement::default();
    assert_eq!(ring.place(b"some.metric", 5, &mut placement), &all[..]);
}

#[test]
fn replicas_go_to_distinct_servers() {
    let nodes = [node("a", Some("1")), node("a", Some("2")), node("b", None)];
    let ring = HashRing::new(&nodes, HashType::CarbonCh);
    let mut placement = Placement::default();
    for i in 0..200 {
        let name = format!("m.{i}");
        let placed = ring.place(name.as_bytes(), 2, &mut placement).to_vec();
        assert_eq!(placed.len(), 2, "{name}");
        assert!(placed.contains(&2), "{name}: one replica on server b");
        assert_eq!(placed[0], ring.node_of(name.as_bytes()).unwrap());
    }
}

#[test]
fn jump_orders_by_instance_then_as_given() {
    let nodes = [
        node("x", None),
        node("y", Some("10")),
        node("z", Some("9")),
        node("w", None),
        node("v", Some("b")),
    ];
    assert_eq!(jump_order(&nodes, (0..5).collect()), vec![2, 1, 4, 0, 3]);
    let ring = HashRing::new(&nodes, HashType::JumpFnv1aCh);
    let mut placement = Placement::default();
    let placed = ring.place(b"some.metric", 9, &mut placement).to_vec();
    let mut sorted = placed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![0, 1, 2, 3, 4], "every node once: {placed:?}");
    assert_eq!(ring.node_of(b"some.metric"), Some(placed[0]));
}

#[test]
fn a_repeated_node_counts_once() {
    let ring = HashRing::new(&[node("a", None), node("a", None)], HashType::CarbonCh);
    assert_eq!(ring.nodes_of(b"x", 2).collect::<Vec<_>>(), vec![0]);
    assert_eq!(HashRing::new(&[], HashType::CarbonCh).node_of(b"x"), None);
    assert_eq!(
        HashRing::new(&[], HashType::JumpFnv1aCh).node_of(b"x"),
        None
    );
}
