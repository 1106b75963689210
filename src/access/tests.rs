use super::*;
use std::time::UNIX_EPOCH;

fn entry<'a>(headers: &'a [(&'a str, &'a str)]) -> Entry<'a> {
    Entry {
        remote: Some("10.1.2.3:5555".parse().unwrap()),
        method: "GET",
        target: "/pid?x=1",
        version: "HTTP/1.1",
        status: 200,
        bytes: 6,
        // 2023-11-14 22:13:20 UTC
        started: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        took: Duration::from_micros(1_234_567),
        headers,
    }
}

#[test]
fn the_default_format_is_gunicorns() {
    let h = [("User-Agent", "curl/8.5.0"), ("referer", "http://x/")];
    assert_eq!(
        AccessFormat::default().render(&entry(&h)),
        "10.1.2.3 - - [14/Nov/2023:22:13:20 +0000] \"GET /pid?x=1 HTTP/1.1\" 200 6 \"http://x/\" \"curl/8.5.0\"\n"
    );
    let none = AccessFormat::default().render(&Entry { remote: None, bytes: 0, ..entry(&[]) });
    assert_eq!(none, "- - - [14/Nov/2023:22:13:20 +0000] \"GET /pid?x=1 HTTP/1.1\" 200 - \"-\" \"-\"\n");
}

#[test]
fn every_atom() {
    let f: AccessFormat =
        "%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(T)s|%(M)s|%(D)s|%(L)s|%({X-Req}i)s|%({nope}i)s|100%%"
            .parse()
            .unwrap();
    let h = [("x-req", "abc")];
    assert_eq!(f.render(&entry(&h)), "GET|/pid|x=1|HTTP/1.1|200|6|1|1234|1234567|1.234567|abc|-|100%\n");
    let p: AccessFormat = "%(p)s".parse().unwrap();
    assert_eq!(p.render(&entry(&[])), format!("<{}>\n", std::process::id()));
}

#[test]
fn bad_formats_are_named() {
    assert_eq!("%(zz)s".parse::<AccessFormat>(), Err(FormatError::UnknownAtom("zz".into())));
    assert_eq!("ok %d".parse::<AccessFormat>(), Err(FormatError::LonePercent(3)));
    assert_eq!("%(h".parse::<AccessFormat>(), Err(FormatError::LonePercent(0)));
    assert_eq!("%({}i)s".parse::<AccessFormat>(), Err(FormatError::UnknownAtom("{}i".into())));
}

#[test]
fn what_a_client_sends_cannot_forge_a_line() {
    let h = [("User-Agent", "evil\"\n127.0.0.1 - - [x] \"GET / HTTP/1.1\" 200")];
    let line = AccessFormat::default().render(&Entry { target: "/a\r\nb\\", ..entry(&h) });
    assert_eq!(line.matches('\n').count(), 1, "{line}");
    assert!(line.contains("/a\\x0d\\x0ab\\x5c") && line.contains("evil\\x22\\x0a127"), "{line}");
}

#[test]
fn dates_are_the_civil_calendars() {
    let at = |s: u64| clf_time(UNIX_EPOCH + Duration::from_secs(s));
    assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(at(951_782_400), "29/Feb/2000:00:00:00 +0000");
    assert_eq!(at(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
    assert_eq!(at(1_709_251_200), "01/Mar/2024:00:00:00 +0000");
    assert_eq!(at(4_102_444_800), "01/Jan/2100:00:00:00 +0000");
    // Day by day for 1,000 years, each date follows the one before (the month's length, leap
    // years included, by the rule, not by the algorithm under test).
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let (mut y, mut m, mut d) = (1970i64, 1usize, 1i64);
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    for day in 0..365_243u64 {
        assert_eq!(at(day * 86_400 + 43_200), format!("{d:02}/{}/{y}:12:00:00 +0000", MONTHS[m - 1]));
        let len = match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        d += 1;
        if d > len {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
}
