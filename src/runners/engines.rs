//! Does a Node.js version satisfy a package's `engines.node` range?
//!
//! npm's range grammar, the part `engines` fields use in practice: `||` alternatives, each a
//! space-separated set of comparators (`>=18`, `<22.0.0`, `=20.1.0`), caret and tilde
//! ranges (`^18.14.0`, `~20.3`), x-ranges (`18.x`, `20`, `*`) and hyphen ranges
//! (`18 - 20`). Prerelease tags are ignored: a Node release never carries one. An
//! unparseable range is reported as unknown rather than guessed.

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// `v20.20.2`, `20.20.2` or `20.20.2-nightly`: the leading `v` and any tag are dropped.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().trim_start_matches(['v', 'V', '=']);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        Some(Version(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A partial version as written in a range: `18`, `18.2`, `18.x`, `*`.
#[derive(Debug, Clone, Copy)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
}

impl Partial {
    fn parse(text: &str) -> Option<Partial> {
        let text = text.trim().trim_start_matches(['v', 'V']);
        let core = text.split(['-', '+']).next()?;
        if core.is_empty() {
            return None;
        }
        let mut fields = [None; 3];
        for (i, part) in core.split('.').enumerate() {
            if i > 2 {
                return None;
            }
            fields[i] = match part {
                "x" | "X" | "*" => None,
                n => Some(n.parse::<u64>().ok()?),
            };
            // `18.x.5` means `18.x`: nothing after a wildcard counts.
            if fields[i].is_none() {
                break;
            }
        }
        Some(Partial {
            major: fields[0],
            minor: fields[1],
            patch: fields[2],
        })
    }

    fn floor(self) -> Version {
        Version(
            self.major.unwrap_or(0),
            self.minor.unwrap_or(0),
            self.patch.unwrap_or(0),
        )
    }

    /// The first version above everything this partial version covers, when bounded.
    fn ceiling(self) -> Option<Version> {
        match (self.major, self.minor, self.patch) {
            (None, _, _) => None,
            (Some(m), None, _) => Some(Version(m + 1, 0, 0)),
            (Some(m), Some(n), None) => Some(Version(m, n + 1, 0)),
            (Some(m), Some(n), Some(p)) => Some(Version(m, n, p + 1)),
        }
    }
}

/// One `lower <= v < upper` interval (either side open when None), with inclusive flags.
#[derive(Debug, Clone, Copy, Default)]
struct Bound {
    at_least: Option<Version>,
    above: Option<Version>,
    below: Option<Version>,
    at_most: Option<Version>,
}

impl Bound {
    fn admits(&self, v: Version) -> bool {
        self.at_least.is_none_or(|b| v >= b)
            && self.above.is_none_or(|b| v > b)
            && self.below.is_none_or(|b| v < b)
            && self.at_most.is_none_or(|b| v <= b)
    }
}

/// The comparator set `text` (one side of `||`) as bounds that must all hold.
fn comparator_set(text: &str) -> Option<Vec<Bound>> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if let [low, "-", high] = tokens.as_slice() {
        let (low, high) = (Partial::parse(low)?, Partial::parse(high)?);
        return Some(vec![Bound {
            at_least: Some(low.floor()),
            below: high.ceiling(),
            ..Bound::default()
        }]);
    }
    let mut bounds = Vec::new();
    let mut pending_op: Option<&str> = None;
    for token in tokens {
        // `>= 18` is written with a space sometimes: join the operator to its version.
        if matches!(token, ">=" | "<=" | ">" | "<" | "=" | "^" | "~") {
            pending_op = Some(token);
            continue;
        }
        let joined;
        let token = match pending_op.take() {
            Some(op) => {
                joined = format!("{op}{token}");
                joined.as_str()
            }
            None => token,
        };
        bounds.push(comparator(token)?);
    }
    if pending_op.is_some() {
        return None;
    }
    Some(bounds)
}

fn comparator(token: &str) -> Option<Bound> {
    let (op, rest) = ["^", "~>", "~", ">=", "<=", ">", "<", "="]
        .iter()
        .find_map(|op| token.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("", token));
    let p = Partial::parse(rest)?;
    let b = Bound::default();
    Some(match op {
        ">=" => Bound {
            at_least: Some(p.floor()),
            ..b
        },
        ">" => match p.ceiling() {
            Some(c) => Bound {
                at_least: Some(c),
                ..b
            },
            // `>*` admits nothing.
            None => Bound {
                below: Some(Version(0, 0, 0)),
                ..b
            },
        },
        "<" => Bound {
            below: Some(p.floor()),
            ..b
        },
        "<=" => match p.ceiling() {
            Some(c) => Bound {
                below: Some(c),
                ..b
            },
            None => b,
        },
        "^" => {
            let floor = p.floor();
            // The first non-zero field is the one that may not change.
            let upper = match (p.major, p.minor, p.patch) {
                (None, _, _) => None,
                (Some(0), None, _) => Some(Version(1, 0, 0)),
                (Some(0), Some(0), None) => Some(Version(0, 1, 0)),
                (Some(0), Some(0), Some(z)) => Some(Version(0, 0, z + 1)),
                (Some(0), Some(n), _) => Some(Version(0, n + 1, 0)),
                (Some(m), _, _) => Some(Version(m + 1, 0, 0)),
            };
            Bound {
                at_least: Some(floor),
                below: upper,
                ..b
            }
        }
        "~" | "~>" => {
            let upper = match (p.major, p.minor) {
                (None, _) => None,
                (Some(m), None) => Some(Version(m + 1, 0, 0)),
                (Some(m), Some(n)) => Some(Version(m, n + 1, 0)),
            };
            Bound {
                at_least: Some(p.floor()),
                below: upper,
                ..b
            }
        }
        // A bare or `=` version is an x-range: `20` means any 20.x.y.
        _ => Bound {
            at_least: Some(p.floor()),
            below: p.ceiling(),
            ..b
        },
    })
}

/// Whether `version` satisfies `range`; None when the range cannot be read.
pub fn satisfies(version: Version, range: &str) -> Option<bool> {
    let range = range.trim();
    if range.is_empty() || range == "*" || range.eq_ignore_ascii_case("x") {
        return Some(true);
    }
    let mut any = false;
    for alternative in range.split("||") {
        let bounds = comparator_set(alternative)?;
        any |= bounds.iter().all(|b| b.admits(version));
    }
    Some(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, range: &str) -> bool {
        satisfies(Version::parse(v).unwrap(), range).unwrap()
    }

    #[test]
    fn versions_parse_the_way_node_prints_them() {
        assert_eq!(Version::parse("v20.20.2"), Some(Version(20, 20, 2)));
        assert_eq!(Version::parse("22"), Some(Version(22, 0, 0)));
        assert_eq!(
            Version::parse("v23.0.0-nightly2024"),
            Some(Version(23, 0, 0))
        );
        assert_eq!(Version::parse("twenty"), None);
    }

    #[test]
    fn jest_30_engines_range() {
        let jest = "^18.14.0 || ^20.0.0 || ^22.0.0 || >=24.0.0";
        assert!(ok("v20.20.2", jest));
        assert!(ok("v18.14.0", jest));
        assert!(!ok("v18.13.9", jest));
        assert!(!ok("v21.7.0", jest));
        assert!(!ok("v16.20.0", jest));
        assert!(ok("v26.1.0", jest));
    }

    #[test]
    fn comparators_tilde_x_and_hyphen_ranges() {
        assert!(ok("20.1.0", ">=18"));
        assert!(ok("20.1.0", ">= 18 <21"));
        assert!(!ok("21.0.0", ">=18 <21"));
        assert!(ok("20.9.9", "~20.9"));
        assert!(!ok("20.10.0", "~20.9"));
        assert!(ok("18.3.1", "18.x"));
        assert!(!ok("19.0.0", "18.x"));
        assert!(ok("19.0.0", "18 - 20"));
        assert!(!ok("21.0.0", "18 - 20"));
        assert!(ok("20.0.0", "*"));
        assert!(!ok("20.0.0", ">20"));
        assert!(ok("21.0.0", ">20"));
        assert!(ok("20.5.0", "<=20"));
        assert!(ok("0.2.5", "^0.2.3"));
        assert!(!ok("0.3.0", "^0.2.3"));
    }

    #[test]
    fn nonsense_is_unknown_not_false() {
        assert_eq!(satisfies(Version(20, 0, 0), ">= lts"), None);
        assert_eq!(satisfies(Version(20, 0, 0), ">="), None);
    }
}
