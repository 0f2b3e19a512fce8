//! Expected strings printed by Node 20's util.inspect (see the generator
//! in the comment of each test).

use super::*;

#[test]
fn numbers_as_javascript_writes_them() {
    assert_eq!(js_number(1e+0_f64), "1");
    assert_eq!(js_number(1e-1_f64), "0.1");
    assert_eq!(js_number(1e+21_f64), "1e+21");
    assert_eq!(js_number(1e-7_f64), "1e-7");
    assert_eq!(
        js_number(1.2345678901234568e+20_f64),
        "123456789012345680000"
    );
    assert_eq!(js_number(1.5e-6_f64), "0.0000015");
    assert_eq!(js_number(1e-6_f64), "0.000001");
    assert_eq!(js_number(-0.0_f64), "-0");
    assert_eq!(js_number(-2.5e+0_f64), "-2.5");
    assert_eq!(js_number(3.3333333333333335e+0_f64), "3.3333333333333335");
    assert_eq!(js_number(1e+300_f64), "1e+300");
    assert_eq!(js_number(5e-324_f64), "5e-324");
    assert_eq!(js_number(9.007199254740992e+15_f64), "9007199254740992");
    assert_eq!(js_number(1e+2_f64), "100");
    assert_eq!(js_number(3.333333333333333e-1_f64), "0.3333333333333333");
    assert_eq!(
        js_number(1.7976931348623157e+308_f64),
        "1.7976931348623157e+308"
    );
    assert_eq!(js_number(1.23456e-8_f64), "1.23456e-8");
}

#[test]
fn ties_between_shortest_digits_go_to_even_as_in_v8() {
    // Exactly halfway between ...55.2 and ...55.3: node writes .2.
    assert_eq!(js_number(579214868880355.0 + 0.25), "579214868880355.2");
}

#[test]
fn inspect_empty() {
    let entries: &[(&str, Value<'_>)] = &[];
    assert_eq!(inspect_object(entries), "{}");
}

#[test]
fn inspect_small() {
    let entries: &[(&str, Value<'_>)] = &[
        ("statsd.bad_lines_seen", Value::Number(0e+0_f64)),
        ("statsd.packets_received", Value::Number(3e+0_f64)),
        ("statsd.metrics_received", Value::Number(4e+0_f64)),
        ("foo", Value::Number(2e+0_f64)),
    ];
    assert_eq!(inspect_object(entries), "{\n  'statsd.bad_lines_seen': 0,\n  'statsd.packets_received': 3,\n  'statsd.metrics_received': 4,\n  foo: 2\n}");
}

#[test]
fn inspect_short() {
    let entries: &[(&str, Value<'_>)] = &[
        ("a", Value::Number(1e+0_f64)),
        ("b.c", Value::Number(2e+0_f64)),
    ];
    assert_eq!(inspect_object(entries), "{ a: 1, 'b.c': 2 }");
}

#[test]
fn inspect_long() {
    let entries: &[(&str, Value<'_>)] = &[
        ("some.long.counter.name0", Value::Number(0e+0_f64)),
        ("some.long.counter.name1", Value::Number(1.5e+0_f64)),
        ("some.long.counter.name2", Value::Number(3e+0_f64)),
        ("some.long.counter.name3", Value::Number(4.5e+0_f64)),
        ("some.long.counter.name4", Value::Number(6e+0_f64)),
        ("some.long.counter.name5", Value::Number(7.5e+0_f64)),
        ("some.long.counter.name6", Value::Number(9e+0_f64)),
        ("some.long.counter.name7", Value::Number(1.05e+1_f64)),
    ];
    assert_eq!(inspect_object(entries), "{\n  'some.long.counter.name0': 0,\n  'some.long.counter.name1': 1.5,\n  'some.long.counter.name2': 3,\n  'some.long.counter.name3': 4.5,\n  'some.long.counter.name4': 6,\n  'some.long.counter.name5': 7.5,\n  'some.long.counter.name6': 9,\n  'some.long.counter.name7': 10.5\n}");
}

#[test]
fn inspect_quotes() {
    let entries: &[(&str, Value<'_>)] = &[
        ("it's", Value::Number(1e+0_f64)),
        ("a\"b'c", Value::Number(2e+0_f64)),
        ("a\"b'c`", Value::Number(3e+0_f64)),
        ("tab\tx", Value::Number(4e+0_f64)),
        ("42", Value::Number(5e+0_f64)),
        ("7", Value::Number(6e+0_f64)),
        ("_ok9", Value::Number(7e+0_f64)),
        ("9x", Value::Number(8e+0_f64)),
        ("back\\slash", Value::Number(9e+0_f64)),
        ("007", Value::Number(1e+1_f64)),
    ];
    assert_eq!(inspect_object(entries), "{\n  '7': 6,\n  '42': 5,\n  \"it's\": 1,\n  `a\"b'c`: 2,\n  'a\"b\\'c`': 3,\n  'tab\\tx': 4,\n  _ok9: 7,\n  '9x': 8,\n  'back\\\\slash': 9,\n  '007': 10\n}");
}

#[test]
fn inspect_timers() {
    let entries: &[(&str, Value<'_>)] = &[
        ("t.a", Value::Numbers(&[1e+0_f64, 2e+0_f64, 3e+0_f64])),
        ("t.b", Value::Numbers(&[])),
        (
            "t.many",
            Value::Numbers(&[
                0e+0_f64, 7e+0_f64, 1.4e+1_f64, 2.1e+1_f64, 2.8e+1_f64, 3.5e+1_f64, 4.2e+1_f64,
                4.9e+1_f64, 5.6e+1_f64, 6.3e+1_f64, 7e+1_f64, 7.7e+1_f64, 8.4e+1_f64, 9.1e+1_f64,
                9.8e+1_f64, 4e+0_f64, 1.1e+1_f64, 1.8e+1_f64, 2.5e+1_f64, 3.2e+1_f64, 3.9e+1_f64,
                4.6e+1_f64, 5.3e+1_f64, 6e+1_f64, 6.7e+1_f64, 7.4e+1_f64, 8.1e+1_f64, 8.8e+1_f64,
                9.5e+1_f64, 1e+0_f64,
            ]),
        ),
        (
            "t.wide",
            Value::Numbers(&[
                0e+0_f64,
                1.23456e+2_f64,
                2.46912e+2_f64,
                3.70368e+2_f64,
                4.93824e+2_f64,
                6.1728e+2_f64,
                7.40736e+2_f64,
                8.64192e+2_f64,
                9.87648e+2_f64,
                1.111104e+3_f64,
                1.23456e+3_f64,
                1.358016e+3_f64,
            ]),
        ),
    ];
    assert_eq!(inspect_object(entries), "{\n  't.a': [ 1, 2, 3 ],\n  't.b': [],\n  't.many': [\n     0,  7, 14, 21, 28, 35, 42, 49, 56,\n    63, 70, 77, 84, 91, 98,  4, 11, 18,\n    25, 32, 39, 46, 53, 60, 67, 74, 81,\n    88, 95,  1\n  ],\n  't.wide': [\n          0,  123.456,\n    246.912,  370.368,\n    493.824,   617.28,\n    740.736,  864.192,\n    987.648, 1111.104,\n    1234.56, 1358.016\n  ]\n}");
}

#[test]
fn inspect_huge() {
    let entries: &[(&str, Value<'_>)] = &[(
        "t",
        Value::Numbers(&[
            0e+0_f64,
            1e+0_f64,
            2e+0_f64,
            3e+0_f64,
            4e+0_f64,
            5e+0_f64,
            6e+0_f64,
            7e+0_f64,
            8e+0_f64,
            9e+0_f64,
            1e+1_f64,
            1.1e+1_f64,
            1.2e+1_f64,
            1.3e+1_f64,
            1.4e+1_f64,
            1.5e+1_f64,
            1.6e+1_f64,
            1.7e+1_f64,
            1.8e+1_f64,
            1.9e+1_f64,
            2e+1_f64,
            2.1e+1_f64,
            2.2e+1_f64,
            2.3e+1_f64,
            2.4e+1_f64,
            2.5e+1_f64,
            2.6e+1_f64,
            2.7e+1_f64,
            2.8e+1_f64,
            2.9e+1_f64,
            3e+1_f64,
            3.1e+1_f64,
            3.2e+1_f64,
            3.3e+1_f64,
            3.4e+1_f64,
            3.5e+1_f64,
            3.6e+1_f64,
            3.7e+1_f64,
            3.8e+1_f64,
            3.9e+1_f64,
            4e+1_f64,
            4.1e+1_f64,
            4.2e+1_f64,
            4.3e+1_f64,
            4.4e+1_f64,
            4.5e+1_f64,
            4.6e+1_f64,
            4.7e+1_f64,
            4.8e+1_f64,
            4.9e+1_f64,
            5e+1_f64,
            5.1e+1_f64,
            5.2e+1_f64,
            5.3e+1_f64,
            5.4e+1_f64,
            5.5e+1_f64,
            5.6e+1_f64,
            5.7e+1_f64,
            5.8e+1_f64,
            5.9e+1_f64,
            6e+1_f64,
            6.1e+1_f64,
            6.2e+1_f64,
            6.3e+1_f64,
            6.4e+1_f64,
            6.5e+1_f64,
            6.6e+1_f64,
            6.7e+1_f64,
            6.8e+1_f64,
            6.9e+1_f64,
            7e+1_f64,
            7.1e+1_f64,
            7.2e+1_f64,
            7.3e+1_f64,
            7.4e+1_f64,
            7.5e+1_f64,
            7.6e+1_f64,
            7.7e+1_f64,
            7.8e+1_f64,
            7.9e+1_f64,
            8e+1_f64,
            8.1e+1_f64,
            8.2e+1_f64,
            8.3e+1_f64,
            8.4e+1_f64,
            8.5e+1_f64,
            8.6e+1_f64,
            8.7e+1_f64,
            8.8e+1_f64,
            8.9e+1_f64,
            9e+1_f64,
            9.1e+1_f64,
            9.2e+1_f64,
            9.3e+1_f64,
            9.4e+1_f64,
            9.5e+1_f64,
            9.6e+1_f64,
            9.7e+1_f64,
            9.8e+1_f64,
            9.9e+1_f64,
            1e+2_f64,
            1.01e+2_f64,
            1.02e+2_f64,
            1.03e+2_f64,
            1.04e+2_f64,
            1.05e+2_f64,
            1.06e+2_f64,
            1.07e+2_f64,
            1.08e+2_f64,
            1.09e+2_f64,
            1.1e+2_f64,
            1.11e+2_f64,
            1.12e+2_f64,
            1.13e+2_f64,
            1.14e+2_f64,
            1.15e+2_f64,
            1.16e+2_f64,
            1.17e+2_f64,
            1.18e+2_f64,
            1.19e+2_f64,
            1.2e+2_f64,
            1.21e+2_f64,
            1.22e+2_f64,
            1.23e+2_f64,
            1.24e+2_f64,
            1.25e+2_f64,
            1.26e+2_f64,
            1.27e+2_f64,
            1.28e+2_f64,
            1.29e+2_f64,
            1.3e+2_f64,
            1.31e+2_f64,
            1.32e+2_f64,
            1.33e+2_f64,
            1.34e+2_f64,
            1.35e+2_f64,
            1.36e+2_f64,
            1.37e+2_f64,
            1.38e+2_f64,
            1.39e+2_f64,
            1.4e+2_f64,
            1.41e+2_f64,
            1.42e+2_f64,
            1.43e+2_f64,
            1.44e+2_f64,
            1.45e+2_f64,
            1.46e+2_f64,
            1.47e+2_f64,
            1.48e+2_f64,
            1.49e+2_f64,
        ]),
    )];
    assert_eq!(inspect_object(entries), "{\n  t: [\n     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11,\n    12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,\n    24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,\n    36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,\n    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,\n    60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71,\n    72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83,\n    84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,\n    96, 97, 98, 99,\n    ... 50 more items\n  ]\n}");
}

#[test]
fn inspect_mixed() {
    let entries: &[(&str, Value<'_>)] = &[(
        "t",
        Value::Numbers(&[
            1e+0_f64, 1e+5_f64, 2e+0_f64, 3e+0_f64, 4e+0_f64, 5e+0_f64, 6e+0_f64, 7e+0_f64,
        ]),
    )];
    assert_eq!(
        inspect_object(entries),
        "{\n  t: [\n    1, 100000, 2,\n    3,      4, 5,\n    6,      7\n  ]\n}"
    );
}

#[test]
fn inspect_seven() {
    let entries: &[(&str, Value<'_>)] = &[(
        "t",
        Value::Numbers(&[
            1e+0_f64, 2e+0_f64, 3e+0_f64, 4e+0_f64, 5e+0_f64, 6e+0_f64, 7e+0_f64,
        ]),
    )];
    assert_eq!(
        inspect_object(entries),
        "{\n  t: [\n    1, 2, 3, 4,\n    5, 6, 7\n  ]\n}"
    );
}

#[test]
fn inspect_hundredone() {
    let entries: &[(&str, Value<'_>)] = &[(
        "t",
        Value::Numbers(&[
            0e+0_f64,
            1.0005e+3_f64,
            2.001e+3_f64,
            3.0015e+3_f64,
            4.002e+3_f64,
            5.0025e+3_f64,
            6.003e+3_f64,
            7.0035e+3_f64,
            8.004e+3_f64,
            9.0045e+3_f64,
            1.0005e+4_f64,
            1.10055e+4_f64,
            1.2006e+4_f64,
            1.30065e+4_f64,
            1.4007e+4_f64,
            1.50075e+4_f64,
            1.6008e+4_f64,
            1.70085e+4_f64,
            1.8009e+4_f64,
            1.90095e+4_f64,
            2.001e+4_f64,
            2.10105e+4_f64,
            2.2011e+4_f64,
            2.30115e+4_f64,
            2.4012e+4_f64,
            2.50125e+4_f64,
            2.6013e+4_f64,
            2.70135e+4_f64,
            2.8014e+4_f64,
            2.90145e+4_f64,
            3.0015e+4_f64,
            3.10155e+4_f64,
            3.2016e+4_f64,
            3.30165e+4_f64,
            3.4017e+4_f64,
            3.50175e+4_f64,
            3.6018e+4_f64,
            3.70185e+4_f64,
            3.8019e+4_f64,
            3.90195e+4_f64,
            4.002e+4_f64,
            4.10205e+4_f64,
            4.2021e+4_f64,
            4.30215e+4_f64,
            4.4022e+4_f64,
            4.50225e+4_f64,
            4.6023e+4_f64,
            4.70235e+4_f64,
            4.8024e+4_f64,
            4.90245e+4_f64,
            5.0025e+4_f64,
            5.10255e+4_f64,
            5.2026e+4_f64,
            5.30265e+4_f64,
            5.4027e+4_f64,
            5.50275e+4_f64,
            5.6028e+4_f64,
            5.70285e+4_f64,
            5.8029e+4_f64,
            5.90295e+4_f64,
            6.003e+4_f64,
            6.10305e+4_f64,
            6.2031e+4_f64,
            6.30315e+4_f64,
            6.4032e+4_f64,
            6.50325e+4_f64,
            6.6033e+4_f64,
            6.70335e+4_f64,
            6.8034e+4_f64,
            6.90345e+4_f64,
            7.0035e+4_f64,
            7.10355e+4_f64,
            7.2036e+4_f64,
            7.30365e+4_f64,
            7.4037e+4_f64,
            7.50375e+4_f64,
            7.6038e+4_f64,
            7.70385e+4_f64,
            7.8039e+4_f64,
            7.90395e+4_f64,
            8.004e+4_f64,
            8.10405e+4_f64,
            8.2041e+4_f64,
            8.30415e+4_f64,
            8.4042e+4_f64,
            8.50425e+4_f64,
            8.6043e+4_f64,
            8.70435e+4_f64,
            8.8044e+4_f64,
            8.90445e+4_f64,
            9.0045e+4_f64,
            9.10455e+4_f64,
            9.2046e+4_f64,
            9.30465e+4_f64,
            9.4047e+4_f64,
            9.50475e+4_f64,
            9.6048e+4_f64,
            9.70485e+4_f64,
            9.8049e+4_f64,
            9.90495e+4_f64,
            1.0005e+5_f64,
        ]),
    )];
    assert_eq!(inspect_object(entries), "{\n  t: [\n          0,  1000.5,    2001,  3001.5,    4002,  5002.5,    6003,\n     7003.5,    8004,  9004.5,   10005, 11005.5,   12006, 13006.5,\n      14007, 15007.5,   16008, 17008.5,   18009, 19009.5,   20010,\n    21010.5,   22011, 23011.5,   24012, 25012.5,   26013, 27013.5,\n      28014, 29014.5,   30015, 31015.5,   32016, 33016.5,   34017,\n    35017.5,   36018, 37018.5,   38019, 39019.5,   40020, 41020.5,\n      42021, 43021.5,   44022, 45022.5,   46023, 47023.5,   48024,\n    49024.5,   50025, 51025.5,   52026, 53026.5,   54027, 55027.5,\n      56028, 57028.5,   58029, 59029.5,   60030, 61030.5,   62031,\n    63031.5,   64032, 65032.5,   66033, 67033.5,   68034, 69034.5,\n      70035, 71035.5,   72036, 73036.5,   74037, 75037.5,   76038,\n    77038.5,   78039, 79039.5,   80040, 81040.5,   82041, 83041.5,\n      84042, 85042.5,   86043, 87043.5,   88044, 89044.5,   90045,\n    91045.5,   92046, 93046.5,   94047, 95047.5,   96048, 97048.5,\n      98049, 99049.5,\n    ... 1 more item\n  ]\n}");
}
