//! `ssl.principal.mapping.rules`: Kafka's rules turning a client certificate's subject into a user name,
//! e.g. `RULE:^CN=([^,]+).*$/$1/L,DEFAULT`. Rules are tried in order; the first whose pattern matches the
//! whole subject wins; `DEFAULT` keeps the subject as it is. No rule matching is a failed login, as in Kafka.

use regex::Regex;

#[derive(Debug)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid ssl.principal.mapping.rules near '{0}': expected DEFAULT or RULE:pattern/replacement/[LU]")]
pub struct MappingError(pub String);

/// Reads up to the next `/` that is not escaped with a backslash; returns (part, rest after the slash).
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, next) = chars.next()?;
                // `\/` is a literal slash; every other escape belongs to the regex or replacement.
                if next != '/' {
                    out.push('\\');
                }
                out.push(next);
            }
            '/' => return Some((out, s.get(i + 1..)?)),
            c => out.push(c),
        }
    }
    None
}

impl PrincipalMapper {
    pub fn default_rules() -> Self {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }

    pub fn parse(rules: &str) -> Result<Self, MappingError> {
        let mut parsed = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            let err = || MappingError(rest.chars().take(40).collect());
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(err)?;
                let (replacement, after) = until_slash(after).ok_or_else(err)?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$")).map_err(|_| err())?;
                parsed.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(err());
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(MappingError(rest.chars().take(40).collect())),
            }
        }
        if parsed.is_empty() {
            parsed.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The user name for a certificate subject, or `None` when no rule applies.
    pub fn map(&self, subject: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(subject.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                let caps = pattern.captures(subject)?;
                let mut out = String::new();
                caps.expand(replacement, &mut out);
                Some(match case {
                    Case::Keep => out,
                    Case::Lower => out.to_lowercase(),
                    Case::Upper => out.to_uppercase(),
                })
            }
        })
    }
}

/// Java's `$1` group references are `${1}` for the regex crate (which would read `$1x` as a group named `1x`).
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rule_examples() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US")
                .as_deref(),
            Some("kafka-server1")
        );
        assert_eq!(
            m.map("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(m.map("OU=X,cn=Alice").as_deref(), Some("alice"));
        assert_eq!(m.map("O=none").as_deref(), Some("O=none"));
    }

    #[test]
    fn no_matching_rule_is_none_and_bad_rules_are_refused() {
        let m = PrincipalMapper::parse("RULE:^CN=([^,]+),O=runnel$/$1/U").unwrap();
        assert_eq!(m.map("CN=bob,O=runnel").as_deref(), Some("BOB"));
        assert_eq!(m.map("CN=bob,O=other"), None);
        assert!(PrincipalMapper::parse("RULE:^CN=(.*)$").is_err());
        assert!(PrincipalMapper::parse("RULES").is_err());
        assert!(PrincipalMapper::parse("RULE:(/x/").is_err());
        assert_eq!(
            PrincipalMapper::parse("").unwrap().map("CN=a").as_deref(),
            Some("CN=a")
        );
    }

    #[test]
    fn escaped_slashes_belong_to_the_pattern() {
        let m = PrincipalMapper::parse(r"RULE:^CN=a\/b$/ab/").unwrap();
        assert_eq!(m.map("CN=a/b").as_deref(), Some("ab"));
    }
}
