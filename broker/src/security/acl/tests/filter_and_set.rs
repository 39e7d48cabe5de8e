use super::*;

// ---- filters ----

fn filter(rt: ResourceType, name: Option<&str>, pt: PatternType) -> AclFilter {
    AclFilter {
        resource_type: rt,
        resource_name: name.map(str::to_string),
        pattern_type: pt,
        ..AclFilter::any()
    }
}

fn sample() -> Vec<AclBinding> {
    vec![
        topic("foo", Literal, ALICE, Op::Read, A),
        topic("*", Literal, ALICE, Op::Read, A),
        topic("fo", Prefixed, ALICE, Op::Read, A),
        topic("foo", Prefixed, ALICE, Op::Read, A),
        topic("foobar", Prefixed, ALICE, Op::Read, A),
        topic("bar", Literal, ALICE, Op::Read, A),
        acl(ResourceType::Group, "foo", Literal, ALICE, Op::Read, A),
    ]
}

fn names(f: &AclFilter) -> Vec<(ResourceType, String, PatternType)> {
    let mut v: Vec<_> = sample()
        .into_iter()
        .filter(|b| f.matches(b))
        .map(|b| (b.resource_type, b.resource_name, b.pattern_type))
        .collect();
    v.sort();
    v
}

fn t(name: &str, pt: PatternType) -> (ResourceType, String, PatternType) {
    (ResourceType::Topic, name.to_string(), pt)
}

#[test]
fn any_filter_matches_everything() {
    assert!(sample().iter().all(|b| AclFilter::any().matches(b)));
}

#[test]
fn literal_and_prefixed_filters_compare_names_exactly() {
    assert_eq!(
        names(&filter(ResourceType::Topic, Some("foo"), Literal)),
        vec![t("foo", Literal)]
    );
    assert_eq!(
        names(&filter(ResourceType::Topic, Some("foo"), Prefixed)),
        vec![t("foo", Prefixed)]
    );
    assert_eq!(names(&filter(ResourceType::Topic, None, Prefixed)).len(), 3);
    // `*` in a LITERAL filter is the wildcard ACL itself, not "every literal ACL".
    assert_eq!(
        names(&filter(ResourceType::Topic, Some("*"), Literal)),
        vec![t("*", Literal)]
    );
}

#[test]
fn any_pattern_filter_matches_both_pattern_types_by_exact_name() {
    assert_eq!(
        names(&filter(ResourceType::Topic, Some("foo"), PatternType::Any)),
        vec![t("foo", Literal), t("foo", Prefixed)]
    );
    let mut group_too = names(&filter(ResourceType::Any, Some("foo"), PatternType::Any));
    group_too.retain(|(rt, _, _)| *rt == ResourceType::Group);
    assert_eq!(group_too.len(), 1);
}

#[test]
fn match_filter_returns_every_acl_that_applies_to_the_resource() {
    assert_eq!(
        names(&filter(
            ResourceType::Topic,
            Some("foo"),
            PatternType::Match
        )),
        vec![
            t("*", Literal),
            t("fo", Prefixed),
            t("foo", Literal),
            t("foo", Prefixed)
        ]
    );
    // Nothing literal or prefixed named "foobar"-or-longer applies to "foob".
    assert_eq!(
        names(&filter(
            ResourceType::Topic,
            Some("foob"),
            PatternType::Match
        )),
        vec![t("*", Literal), t("fo", Prefixed), t("foo", Prefixed)]
    );
    assert_eq!(
        names(&filter(
            ResourceType::Topic,
            Some("baz"),
            PatternType::Match
        )),
        vec![t("*", Literal)]
    );
    // Without a name MATCH constrains nothing.
    assert_eq!(
        names(&filter(ResourceType::Topic, None, PatternType::Match)).len(),
        6
    );
}

#[test]
fn entry_filter_fields_are_exact_or_any() {
    let b = topic("t", Literal, ALICE, Op::All, D);
    let mut f = AclFilter::any();
    f.principal = Some("User:*".into());
    assert!(!f.matches(&b), "User:* is no wildcard in a filter");
    f.principal = Some(ALICE.into());
    assert!(f.matches(&b));
    f.host = Some("10.0.0.1".into());
    assert!(!f.matches(&b));
    f.host = Some("*".into());
    assert!(f.matches(&b));
    f.operation = Op::Read;
    assert!(!f.matches(&b), "a READ filter does not return ALL ACLs");
    f.operation = Op::All;
    assert!(f.matches(&b));
    f.permission = A;
    assert!(!f.matches(&b));
    assert!(AclFilter::exact(&b).matches(&b));
    assert!(!AclFilter::exact(&b).matches(&topic("t", Literal, ALICE, Op::All, A)));
}

#[test]
fn unknown_filters_match_nothing_and_are_refused_by_delete() {
    let f = filter(ResourceType::Unknown, None, PatternType::Any);
    assert!(sample().iter().all(|b| !f.matches(b)));
    assert_eq!(
        f.validate_for_delete().unwrap_err().message,
        "Unknown patternFilter."
    );
    let f = filter(ResourceType::Topic, None, PatternType::Unknown);
    assert_eq!(
        f.validate_for_delete().unwrap_err().message,
        "Unknown patternFilter."
    );
    let f = AclFilter {
        permission: Permission::Unknown,
        ..AclFilter::any()
    };
    let e = f.validate_for_delete().unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (INVALID_REQUEST, "Unknown entryFilter.")
    );
    assert!(AclFilter::any().validate_for_delete().is_ok());
}

// ---- AclSet ----

#[test]
fn add_is_idempotent_and_remove_matching_removes_only_matches() {
    let mut s = set(sample());
    assert_eq!(s.len(), 7);
    assert!(!s.add(topic("foo", Literal, ALICE, Op::Read, A)));
    assert!(s.add(topic("foo", Literal, ALICE, Op::Write, A)));
    assert_eq!(s.len(), 8);
    let removed = s.remove_matching(&filter(
        ResourceType::Topic,
        Some("foo"),
        PatternType::Match,
    ));
    assert_eq!(removed.len(), 5);
    assert!(removed.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(s.len(), 3);
    assert!(s
        .remove_matching(&filter(
            ResourceType::Topic,
            Some("foo"),
            PatternType::Match
        ))
        .is_empty());
    assert_eq!(s.remove_matching(&AclFilter::any()).len(), 3);
    assert!(s.is_empty());
}

#[test]
fn matching_agrees_with_filter_matches_on_every_filter_shape() {
    let s = set(sample());
    let types = [
        ResourceType::Any,
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Unknown,
    ];
    let pats = [
        PatternType::Any,
        PatternType::Match,
        Literal,
        Prefixed,
        PatternType::Unknown,
    ];
    for rt in types {
        for pt in pats {
            for name in [
                None,
                Some("foo"),
                Some("foob"),
                Some("*"),
                Some("fo"),
                Some(""),
            ] {
                let f = filter(rt, name, pt);
                let mut expected: Vec<_> = sample().into_iter().filter(|b| f.matches(b)).collect();
                expected.sort();
                assert_eq!(s.matching(&f), expected, "{f:?}");
            }
        }
    }
}

#[test]
fn removing_the_last_acl_of_a_resource_restores_the_default() {
    let mut s = set([topic("t", Literal, "User:bob", Op::Read, A)]);
    let open = Authorizer::new("", true);
    assert_eq!(
        open.authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Deny
    );
    s.remove_matching(&AclFilter::any());
    assert_eq!(
        open.authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Allow
    );
}

#[test]
fn json_round_trip_is_stable_and_readable() {
    let s = set(sample());
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.starts_with(r#"{"acls":[{"resource_type":"TOPIC","resource_name":"*","pattern_type":"LITERAL","principal":"User:alice","host":"*","operation":"READ","permission":"ALLOW"}"#), "{json}");
    let back: AclSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert!(serde_json::from_str::<AclSet>(r#"{"acls":[{"resource_type":"TOPIK","resource_name":"t","pattern_type":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]}"#).is_err());
    let empty: AclSet = serde_json::from_str(r#"{"acls":[]}"#).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn unindexable_bindings_survive_a_round_trip_but_grant_nothing() {
    let odd = topic("t", PatternType::Unknown, ALICE, Op::Read, A);
    let s = set([odd.clone()]);
    assert_eq!(s.len(), 1);
    let back: AclSet = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back.iter().collect::<Vec<_>>(), vec![odd]);
    assert_eq!(
        Authorizer::new("", true).authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Allow
    );
    let mut s = s;
    assert_eq!(s.remove_matching(&AclFilter::any()).len(), 1);
    assert!(s.is_empty());
}
