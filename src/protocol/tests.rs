//! One named test per syntax form.

use super::*;

fn ok(line: &str) -> Line<'_> {
    parse_line(line.as_bytes()).expect(line)
}

fn bad(line: &[u8]) -> ParseError {
    parse_line(line).expect_err(&String::from_utf8_lossy(line))
}

#[test]
fn counter() {
    let line = ok("hits:3|c");
    assert_eq!(line.key, "hits");
    assert_eq!(
        line.values,
        [Value::Counter {
            value: 3.0,
            rate: 1.0
        }]
    );
}

#[test]
fn counter_with_rate() {
    assert_eq!(
        ok("hits:1|c|@0.1").values,
        [Value::Counter {
            value: 1.0,
            rate: 0.1
        }]
    );
}

#[test]
fn gauge_absolute_and_delta() {
    assert_eq!(
        ok("g:5|g").values,
        [Value::Gauge {
            value: 5.0,
            delta: false
        }]
    );
    assert_eq!(
        ok("g:+5|g").values,
        [Value::Gauge {
            value: 5.0,
            delta: true
        }]
    );
    assert_eq!(
        ok("g:-5|g").values,
        [Value::Gauge {
            value: -5.0,
            delta: true
        }]
    );
}

#[test]
fn timer_histogram_distribution() {
    for t in ["ms", "h", "d"] {
        let text = format!("t:2.5|{t}");
        assert_eq!(
            parse_line(text.as_bytes()).unwrap().values,
            [Value::Timer {
                value: 2.5,
                rate: 1.0
            }]
        );
    }
}

#[test]
fn set_member_is_text() {
    assert_eq!(ok("u:alice|s").values, [Value::Set("alice")]);
}

#[test]
fn several_values_per_line() {
    let line = ok("x:1|c:5|ms|@0.5:7|g");
    assert_eq!(
        line.values,
        [
            Value::Counter {
                value: 1.0,
                rate: 1.0
            },
            Value::Timer {
                value: 5.0,
                rate: 0.5
            },
            Value::Gauge {
                value: 7.0,
                delta: false
            },
        ]
    );
}

#[test]
fn tags_sorted_and_cleaned() {
    assert_eq!(
        ok("req:1|c|#zone:b,app:web/1,beta").key,
        "req;app=web-1;beta=true;zone=b"
    );
    assert_eq!(ok("req:1|c|@0.5|#a:b").key, "req;a=b");
}

#[test]
fn name_cleaning() {
    assert_eq!(clean_name(b"a/b c\t d"), "a-b_c__d");
    assert_eq!(clean_name(b"ok.name-1_x"), "ok.name-1_x");
    assert_eq!(clean_name(b"we!rd$name"), "werdname");
    assert_eq!(clean_name("é".as_bytes()), "");
}

#[test]
fn numbers() {
    assert_eq!(parse_number("1e3"), Some(1000.0));
    assert_eq!(parse_number("-.5"), Some(-0.5));
    assert_eq!(parse_number("5."), Some(5.0));
    for bad in [
        "nan", "NaN", "inf", "-inf", "infinity", "1e999", "", "+", "0x10", "1_0",
    ] {
        assert_eq!(parse_number(bad), None, "{bad}");
    }
}

#[test]
fn bad_lines() {
    assert_eq!(bad(b"novalue"), ParseError::MissingValue);
    assert_eq!(bad(b"x:1"), ParseError::MissingType);
    assert_eq!(bad(b"x:1|"), ParseError::MissingType);
    assert_eq!(bad(b"x:1|q"), ParseError::UnknownType);
    assert_eq!(bad(b"x:abc|c"), ParseError::BadValue);
    assert_eq!(bad(b"x:nan|g"), ParseError::BadValue);
    assert_eq!(bad(b"x:|s"), ParseError::BadValue);
    assert_eq!(bad(b"x:1|c|@0"), ParseError::BadRate);
    assert_eq!(bad(b"x:1|c|@1.5"), ParseError::BadRate);
    assert_eq!(bad(b"x:1|c|@x"), ParseError::BadRate);
    assert_eq!(bad(b"x:1|c|0.5"), ParseError::UnknownField);
    assert_eq!(bad(b"x:1|c|@0.5|z"), ParseError::UnknownField);
    assert_eq!(bad(b"!!!:1|c"), ParseError::EmptyName);
    assert_eq!(bad(b":1|c"), ParseError::EmptyName);
    assert_eq!(bad(b"x:\xff|s"), ParseError::NotUtf8);
    assert_eq!(bad(b"x:1|c:bad|c"), ParseError::BadValue);
    assert_eq!(bad(b"x:1|c|#:v"), ParseError::BadTag);
}

#[test]
fn reasons_have_distinct_indexes() {
    for (i, reason) in ParseError::ALL.iter().enumerate() {
        assert_eq!(reason.index(), i);
    }
}

#[test]
fn too_long() {
    let mut values = Vec::new();
    assert_eq!(
        parse_line_into(b"abcdef:1|c", 5, &mut values),
        Err(ParseError::TooLong)
    );
}

fn one(value: f64) -> Value<'static> {
    Value::Counter { value, rate: 1.0 }
}

#[test]
fn invalid_utf8_in_the_name_is_removed_not_fatal() {
    assert_eq!(ok_bytes(b"x\xff:1|c").key, "x");
}

fn ok_bytes(line: &[u8]) -> Line<'_> {
    parse_line(line).expect("line")
}

#[test]
fn dogstatsd_fields_after_tags_are_not_tags() {
    assert_eq!(ok("x:1|c|#a:b|c:abc123").key, "x;a=b");
    let stamped = ok("x:1|c|#a:b|T1796216437");
    assert_eq!(
        (stamped.key.as_ref(), stamped.timestamp),
        ("x;a=b", Some(1796216437))
    );
    assert_eq!(ok("x:1|c|#a:b|e:it-false,cn-x").key, "x;a=b");
}

#[test]
fn dogstatsd_fields_in_any_order() {
    for line in [
        "x:2|c|@0.5|#a:b|c:id|e:ext|T100",
        "x:2|c|T100|e:ext|c:id|#a:b|@0.5",
        "x:2|c|c:id|@0.5|T100|#a:b|e:ext",
    ] {
        let mut values = Vec::new();
        let parsed = parse_line_into(line.as_bytes(), 1000, &mut values).expect(line);
        assert_eq!(parsed.key, "x;a=b", "{line}");
        assert_eq!(parsed.timestamp, Some(100));
        assert!(parsed.container_id && parsed.external_data);
        assert_eq!(
            values,
            [Value::Counter {
                value: 2.0,
                rate: 0.5
            }]
        );
    }
}

#[test]
fn container_id_alone_is_accepted() {
    let mut values = Vec::new();
    let parsed = parse_line_into(b"x:1|c|c:abc", 100, &mut values).unwrap();
    assert!(parsed.container_id && !parsed.external_data);
    assert_eq!(values, [one(1.0)]);
}

#[test]
fn cardinality_is_accepted_once() {
    // What datadog (`DogStatsd(cardinality="low")`, DD_CARDINALITY) and
    // hot-shots (`cardinality: 'low'`) append after the container id.
    let line = ok("x:1|c|#a:b|c:abc|card:low");
    assert_eq!(
        (line.key.as_ref(), line.values.as_slice()),
        ("x;a=b", &[one(1.0)][..])
    );
    assert_eq!(ok("x:1|c|card:high|T100").timestamp, Some(100));
    assert_eq!(bad(b"x:1|c|card:low|card:low"), ParseError::DuplicateField);
    assert_eq!(bad(b"x:1|c|card"), ParseError::UnknownField);
}

#[test]
fn second_tag_section_merges() {
    assert_eq!(ok("x:1|c|#b:2|@1|#a:1").key, "x;a=1;b=2");
}

#[test]
fn duplicate_fields_are_refused() {
    for line in [
        &b"x:1|c|@0.5|@0.5"[..],
        b"x:1|c|c:a|c:b",
        b"x:1|c|e:a|e:b",
        b"x:1|c|T1|T2",
    ] {
        assert_eq!(bad(line), ParseError::DuplicateField, "{line:?}");
    }
}

#[test]
fn unknown_and_empty_fields_are_refused() {
    assert_eq!(bad(b"x:1|c|z:1"), ParseError::UnknownField);
    assert_eq!(bad(b"x:1|c|"), ParseError::UnknownField);
}

#[test]
fn timestamps_only_on_counters_and_gauges() {
    assert_eq!(ok("g:5|g|T1700000000").timestamp, Some(1_700_000_000));
    assert_eq!(bad(b"t:5|ms|T1700000000"), ParseError::BadTimestamp);
    assert_eq!(bad(b"s:a|s|T1700000000"), ParseError::BadTimestamp);
    assert_eq!(bad(b"c:5|c|Tsoon"), ParseError::BadTimestamp);
    assert_eq!(bad(b"c:5|c|T"), ParseError::BadTimestamp);
}

#[test]
fn packed_values_of_every_type() {
    assert_eq!(ok("c:1:2:3|c").values, [one(1.0), one(2.0), one(3.0)]);
    assert_eq!(
        ok("t:1:2|h|@0.5").values,
        [
            Value::Timer {
                value: 1.0,
                rate: 0.5
            },
            Value::Timer {
                value: 2.0,
                rate: 0.5
            },
        ]
    );
    assert_eq!(ok("u:a:b|s").values, [Value::Set("a"), Value::Set("b")]);
    assert_eq!(
        ok("g:1:+2|g").values,
        [
            Value::Gauge {
                value: 1.0,
                delta: false
            },
            Value::Gauge {
                value: 2.0,
                delta: true
            },
        ]
    );
}

#[test]
fn packed_values_with_the_multi_metric_form() {
    assert_eq!(
        ok("x:1:2|c:5|ms").values,
        [
            one(1.0),
            one(2.0),
            Value::Timer {
                value: 5.0,
                rate: 1.0
            },
        ]
    );
}

#[test]
fn events_and_service_checks_have_their_own_reason() {
    assert_eq!(bad(b"_e{5,4}:title|text|#a:b"), ParseError::Event);
    assert_eq!(bad(b"_sc|db.up|0|#env:prod"), ParseError::ServiceCheck);
}

#[test]
fn graphite_tags_in_the_name() {
    assert_eq!(
        ok("req;route=home;method=get:1|c").key,
        "req;method=get;route=home"
    );
}

#[test]
fn influx_tags_in_the_name() {
    assert_eq!(ok("cpu,host=a,dc=x:1|c").key, "cpu;dc=x;host=a");
}

#[test]
fn influx_bare_tags_in_the_name() {
    assert_eq!(
        ok("cpu,canary,env=prod:1|c").key,
        "cpu;canary=true;env=prod"
    );
}

#[test]
fn every_tag_dialect_merges() {
    assert_eq!(ok("m;a=1,b=2:1|c|#c:3,a:9").key, "m;a=9;b=2;c=3");
}

#[test]
fn sections_without_equals_are_cleaned_as_the_original() {
    assert_eq!(ok("a;b:1|c").key, "ab");
    assert_eq!(ok("a,b:1|c").key, "ab");
}

#[test]
fn empty_tag_key_discards_the_line() {
    assert_eq!(bad(b"m;=v:1|c"), ParseError::BadTag);
    assert_eq!(bad(b"m:1|c|#:v"), ParseError::BadTag);
}

#[test]
fn white_space_around_a_value() {
    assert_eq!(ok("x: 5 |c").values, [one(5.0)]);
    assert_eq!(ok("x:\t5|c").values, [one(5.0)]);
}

#[test]
fn spaces_in_names_as_the_original() {
    assert_eq!(ok("a  b:1|c").key, "a__b");
    assert_eq!(ok("a \t b:1|c").key, "a___b");
    assert_eq!(ok("a\u{a0}b:1|c").key, "ab");
}

#[test]
fn long_names_and_many_tags_are_refused() {
    let long = format!("{}:1|c", "x".repeat(256));
    assert_eq!(bad(long.as_bytes()), ParseError::NameTooLong);
    let fine = format!("{}.{}:1|c", "x".repeat(255), "y".repeat(255));
    assert!(parse_line(fine.as_bytes()).is_ok());
    let tags: String = (0..65).map(|i| format!("t{i},")).collect();
    assert_eq!(
        bad(format!("x:1|c|#{tags}").as_bytes()),
        ParseError::TooManyTags
    );
}

#[test]
fn stat_keys_follow_the_reason_names() {
    assert_eq!(ParseError::ServiceCheck.key(), "service_check");
    assert_eq!(ParseError::NotUtf8.stat_key(), "metrics.discarded.not_utf8");
}
