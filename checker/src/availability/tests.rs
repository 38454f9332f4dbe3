//! The availability section on hand-built histories whose outages and
//! latencies are known, so every figure can be checked exactly.

use super::*;

const MS: u64 = 1_000_000;

/// Sends to `t/0` every 100 ms for 10 s, each taking 5 ms: acknowledged,
/// except from 2 s to 7 s, when a kill of n1 makes them fail; a poll every
/// 500 ms taking 2 ms.
fn outage_history() -> History {
    let mut lines = Vec::new();
    let mut push = |t: u64, body: String| {
        let i = lines.len();
        lines.push((t, format!(r#"{{"index":{i},"time":{t},{body}}}"#)));
    };
    push(2_000 * MS, r#""process":"nemesis","type":"info","f":"kill","value":{"targets":["n1"]}"#.into());
    push(7_000 * MS, r#""process":"nemesis","type":"info","f":"start","value":{"targets":["n1"]}"#.into());
    for i in 0..100u64 {
        let t = i * 100 * MS;
        let v = format!(r#""f":"send","value":{{"records":{{"t/0":[{i}]}}}}"#);
        push(t, format!(r#""process":0,"type":"invoke",{v}"#));
        let outcome = if (20..70).contains(&i) { "fail" } else { "ok" };
        push(t + 5 * MS, format!(r#""process":0,"type":"{outcome}",{v}"#));
        if i % 5 == 0 {
            push(t + MS, r#""process":1,"type":"invoke","f":"poll""#.into());
            push(t + 3 * MS, r#""process":1,"type":"ok","f":"poll","value":{"records":{}}"#.into());
        }
    }
    // Index order is arrival order: by time, then as pushed.
    lines.sort_by_key(|(t, _)| *t);
    let text: Vec<String> = lines
        .into_iter()
        .enumerate()
        .map(|(i, (_, l))| {
            let rest = l.split_once(',').unwrap().1;
            format!(r#"{{"index":{i},{rest}"#)
        })
        .collect();
    History::parse(text.join("\n").as_bytes()).unwrap()
}

/// The known outage is the longest unavailable stretch, from the last
/// acknowledgement before it to the first after it (the producer kept
/// trying all along), and the only one.
#[test]
fn a_known_outage_gives_the_known_longest_unavailable_figure() {
    let h = outage_history();
    let a = availability(&h, &fault_windows(&h));
    let p = &a.partitions["t/0"];
    let longest = p.longest_unavailable.unwrap();
    assert!((longest.start_s - 1.905).abs() < 1e-9 && (longest.end_s - 7.005).abs() < 1e-9, "{longest:?}");
    assert_eq!(p.unavailable, vec![longest]);
    assert!((a.unavailable_s - 5.1).abs() < 1e-9, "{}", a.unavailable_s);
    assert_eq!((p.sends.ok, p.sends.fail, p.sends.info), (50, 50, 0));
    assert_eq!((a.ops["send"].ok, a.ops["poll"].ok), (50, 20));
    assert!((a.span_s - 9.905).abs() < 1e-9, "{}", a.span_s);
}

/// Inside the kill's window every send failed; outside it every send was
/// acknowledged, at 10 per second, and took 5 ms.
#[test]
fn a_fault_window_is_compared_with_the_time_outside_it() {
    let h = outage_history();
    let a = availability(&h, &fault_windows(&h));
    assert_eq!(a.faults.len(), 1);
    let kill = &a.faults[0];
    assert_eq!(kill.label, "kill n1 at 2.0–7.0 s");
    let inside = kill.inside.as_ref().unwrap();
    assert_eq!((inside.sends.ok, inside.sends.fail), (0, 50));
    assert!((inside.sends.fail_per_s - 10.0).abs() < 1e-9);
    assert_eq!(inside.send_latency, None);
    let outside = a.outside_faults.as_ref().unwrap();
    assert_eq!((outside.sends.ok, outside.sends.fail, outside.polls.ok), (50, 0, 10));
    let lat = outside.send_latency.as_ref().unwrap();
    assert!((lat.p50_ms - 5.0).abs() < 0.01 && (lat.max_ms - 5.0).abs() < 0.01, "{lat:?}");
    assert!((a.latency["poll"].p99_ms - 2.0).abs() < 0.01);
}

/// No client op at all: an empty section, not a division by zero.
#[test]
fn an_empty_history_has_empty_availability() {
    let h = History::parse(&b""[..]).unwrap();
    let a = availability(&h, &[]);
    assert!(a.ops.is_empty() && a.partitions.is_empty() && a.faults.is_empty());
    assert_eq!(a.unavailable_s, 0.0);
}
