use super::*;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn lines_split_as_etsy_splits_them() {
    assert_eq!(parse("  stats \r\n"), Command::Stats);
    assert_eq!(parse("health DOWN"), Command::Health(Some(false)));
    assert_eq!(
        parse("health  up"),
        Command::Health(None),
        "an empty first parameter"
    );
    assert_eq!(
        parse("delcounters  a b.*"),
        Command::Delete(Kind::Counters, strings(&["", "a", "b.*"]))
    );
    assert_eq!(parse("delgauges"), Command::Delete(Kind::Gauges, vec![]));
    assert_eq!(parse("Stats"), Command::Unknown);
    assert_eq!(parse(""), Command::Unknown);
}

#[test]
fn deletions_report_each_request_in_turn() {
    let names = ["a.b", "a.c", "ab", "x"];
    let (reply, deleted) = delete_stats(
        &names,
        &strings(&["a.*", "x", "a.b", "toString", "", "y.*"]),
    );
    assert_eq!(
        reply,
        "deleted: a.b\ndeleted: a.c\ndeleted: x\nmetric a.b not found\ndeleted: toString\n\
         metric  not found\nmetric y.* not found\nEND\n\n"
    );
    assert_eq!(deleted, strings(&["a.b", "a.c", "x"]));
}

#[test]
fn stats_write_seconds_ago() {
    let view = StatsView {
        now: 1000,
        startup: 900,
        last_msg_seen: 990,
        bad_lines_seen: 2,
        last_flush: 900,
        last_exception: 0,
        flush_time: 1,
        flush_length: 30,
    };
    assert_eq!(
        stats(&view),
        "uptime: 100\nmessages.last_msg_seen: 10\nmessages.bad_lines_seen: 2\n\
         graphite.last_flush: 100\ngraphite.last_exception: 1000\ngraphite.flush_time: 1\n\
         graphite.flush_length: 30\nEND\n\n"
    );
}
