use super::*;

// ---- authorization ----

#[test]
fn literal_allow_and_deny_beats_allow() {
    let s = set([topic("t", Literal, ALICE, Op::Read, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "t"), Allow);
    assert_eq!(auth(&s, ALICE, Op::Write, "t"), Deny);
    assert_eq!(auth(&s, ALICE, Op::Read, "t2"), Deny);
    let s = set([
        topic("t", Literal, ALICE, Op::Read, A),
        topic("t", Literal, ALICE, Op::Read, D),
    ]);
    assert_eq!(auth(&s, ALICE, Op::Read, "t"), Deny);
    // A deny from any applicable pattern wins: wildcard principal, wildcard resource, prefix.
    for deny in [
        topic("t", Literal, "User:*", Op::Read, D),
        topic("*", Literal, ALICE, Op::Read, D),
        topic("", Prefixed, ALICE, Op::All, D),
        topic("t", Prefixed, ALICE, Op::Read, D),
    ] {
        let s = set([topic("t", Literal, ALICE, Op::All, A), deny.clone()]);
        assert_eq!(auth(&s, ALICE, Op::Read, "t"), Deny, "{deny:?}");
    }
}

#[test]
fn prefixed_acls_cover_names_that_start_with_them() {
    let s = set([topic("foo", Prefixed, ALICE, Op::Read, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "foo"), Allow);
    assert_eq!(auth(&s, ALICE, Op::Read, "foobar"), Allow);
    assert_eq!(auth(&s, ALICE, Op::Read, "fo"), Deny);
    assert_eq!(auth(&s, ALICE, Op::Read, "xfoo"), Deny);
    let s = set([topic("foo", Literal, ALICE, Op::Read, A)]);
    assert_eq!(
        auth(&s, ALICE, Op::Read, "foobar"),
        Deny,
        "a literal ACL is no prefix"
    );
    // Unrelated keys between the name and its prefixes must not hide a prefix.
    let s = set([
        topic("f", Prefixed, ALICE, Op::Read, A),
        topic("fa", Prefixed, ALICE, Op::Read, D),
        topic("fb", Prefixed, ALICE, Op::Read, D),
        topic("foob", Literal, ALICE, Op::Read, D),
        topic("foobaz", Prefixed, ALICE, Op::Read, D),
    ]);
    assert_eq!(auth(&s, ALICE, Op::Read, "foobar"), Allow);
}

#[test]
fn wildcard_resource_covers_every_name_of_its_type_only() {
    let s = set([topic("*", Literal, ALICE, Op::Read, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "anything"), Allow);
    assert_eq!(auth(&s, ALICE, Op::Read, "*"), Allow);
    let group = Authorizer::new("", false).authorize(
        &s,
        ALICE,
        CLIENT,
        Op::Read,
        ResourceType::Group,
        "anything",
    );
    assert_eq!(group, Deny);
    // A PREFIXED "*" is just the prefix "*".
    let s = set([topic("*", Prefixed, ALICE, Op::Read, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "anything"), Deny);
    assert_eq!(auth(&s, ALICE, Op::Read, "*x"), Allow);
}

#[test]
fn wildcard_principal_is_user_star_only_and_principals_are_exact() {
    let s = set([topic("t", Literal, "User:*", Op::Read, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "t"), Allow);
    assert_eq!(
        auth(&s, "Group:ops", Op::Read, "t"),
        Allow,
        "User:* matches any principal type"
    );
    let s = set([topic("t", Literal, "Group:*", Op::Read, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "t"), Deny);
    let s = set([topic("t", Literal, ALICE, Op::Read, A)]);
    assert_eq!(auth(&s, "User:Alice", Op::Read, "t"), Deny);
    assert_eq!(auth(&s, "Group:alice", Op::Read, "t"), Deny);
}

#[test]
fn host_must_equal_the_java_address_string_or_star() {
    let mut b = topic("t", Literal, ALICE, Op::Read, A);
    b.host = "10.0.0.1".into();
    let s = set([b]);
    let a = Authorizer::new("", false);
    assert_eq!(
        a.authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Allow
    );
    let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(
        a.authorize(&s, ALICE, other, Op::Read, ResourceType::Topic, "t"),
        Deny
    );
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    assert_eq!(
        a.authorize(&s, ALICE, mapped, Op::Read, ResourceType::Topic, "t"),
        Allow
    );

    let loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(java_host_address(loopback), "0:0:0:0:0:0:0:1");
    let v6: Ipv6Addr = "2001:db8::0a:ff".parse().unwrap();
    assert_eq!(java_host_address(IpAddr::V6(v6)), "2001:db8:0:0:0:0:a:ff");
    for (host, expected) in [("0:0:0:0:0:0:0:1", Allow), ("::1", Deny), ("*", Allow)] {
        let mut b = topic("t", Literal, ALICE, Op::Read, A);
        b.host = host.into();
        let got = a.authorize(
            &set([b]),
            ALICE,
            loopback,
            Op::Read,
            ResourceType::Topic,
            "t",
        );
        assert_eq!(got, expected, "{host}");
    }
}

#[test]
fn allow_acls_imply_describe_and_describe_configs() {
    for granted in [
        Op::Read,
        Op::Write,
        Op::Delete,
        Op::Alter,
        Op::Describe,
        Op::All,
    ] {
        let s = set([topic("t", Literal, ALICE, granted, A)]);
        assert_eq!(auth(&s, ALICE, Op::Describe, "t"), Allow, "{granted:?}");
    }
    for granted in [
        Op::Create,
        Op::AlterConfigs,
        Op::DescribeConfigs,
        Op::ClusterAction,
        Op::IdempotentWrite,
        Op::TwoPhaseCommit,
    ] {
        let s = set([topic("t", Literal, ALICE, granted, A)]);
        assert_eq!(auth(&s, ALICE, Op::Describe, "t"), Deny, "{granted:?}");
    }
    for granted in [Op::AlterConfigs, Op::DescribeConfigs, Op::All] {
        let s = set([topic("t", Literal, ALICE, granted, A)]);
        assert_eq!(
            auth(&s, ALICE, Op::DescribeConfigs, "t"),
            Allow,
            "{granted:?}"
        );
    }
    for granted in [Op::Alter, Op::Describe, Op::Read] {
        let s = set([topic("t", Literal, ALICE, granted, A)]);
        assert_eq!(
            auth(&s, ALICE, Op::DescribeConfigs, "t"),
            Deny,
            "{granted:?}"
        );
    }
    // Implication runs one way only.
    let s = set([topic("t", Literal, ALICE, Op::Describe, A)]);
    assert_eq!(auth(&s, ALICE, Op::Read, "t"), Deny);
    let s = set([topic("t", Literal, ALICE, Op::AlterConfigs, A)]);
    assert_eq!(auth(&s, ALICE, Op::Alter, "t"), Deny);
}

#[test]
fn deny_is_never_implied_but_deny_all_denies_everything() {
    let s = set([
        topic("t", Literal, ALICE, Op::Describe, A),
        topic("t", Literal, ALICE, Op::Read, D),
    ]);
    assert_eq!(
        auth(&s, ALICE, Op::Describe, "t"),
        Allow,
        "DENY READ does not deny DESCRIBE"
    );
    assert_eq!(auth(&s, ALICE, Op::Read, "t"), Deny);
    let s = set([
        topic("t", Literal, ALICE, Op::DescribeConfigs, A),
        topic("t", Literal, ALICE, Op::AlterConfigs, D),
    ]);
    assert_eq!(auth(&s, ALICE, Op::DescribeConfigs, "t"), Allow);
    let s = set([
        topic("t", Literal, ALICE, Op::All, A),
        topic("t", Literal, ALICE, Op::All, D),
    ]);
    for op in [
        Op::Read,
        Op::Describe,
        Op::DescribeConfigs,
        Op::TwoPhaseCommit,
    ] {
        assert_eq!(auth(&s, ALICE, op, "t"), Deny, "{op:?}");
    }
}

#[test]
fn two_phase_commit_needs_its_own_acl_or_all() {
    let txn = |op, perm| {
        acl(
            ResourceType::TransactionalId,
            "tx",
            Literal,
            ALICE,
            op,
            perm,
        )
    };
    let a = Authorizer::new("", false);
    let check =
        |s: &AclSet, op| a.authorize(s, ALICE, CLIENT, op, ResourceType::TransactionalId, "tx");
    let s = set([txn(Op::Write, A)]);
    assert_eq!(check(&s, Op::TwoPhaseCommit), Deny);
    assert_eq!(check(&s, Op::Describe), Allow);
    let s = set([txn(Op::TwoPhaseCommit, A)]);
    assert_eq!(check(&s, Op::TwoPhaseCommit), Allow);
    assert_eq!(
        check(&s, Op::Describe),
        Deny,
        "TWO_PHASE_COMMIT implies nothing"
    );
    let s = set([txn(Op::All, A)]);
    assert_eq!(check(&s, Op::TwoPhaseCommit), Allow);
}

#[test]
fn super_users_are_allowed_even_against_deny() {
    let s = set([topic("t", Literal, "User:*", Op::All, D)]);
    let a = Authorizer::new(" User:admin ;; User:ops;", false);
    assert_eq!(
        a.super_users(),
        ["User:admin".to_string(), "User:ops".to_string()]
    );
    assert_eq!(
        a.authorize(
            &s,
            "User:admin",
            CLIENT,
            Op::Alter,
            ResourceType::Topic,
            "t"
        ),
        Allow
    );
    assert_eq!(
        a.authorize(
            &s,
            "User:ops",
            CLIENT,
            Op::Read,
            ResourceType::Cluster,
            "kafka-cluster"
        ),
        Allow
    );
    assert_eq!(
        a.authorize(&s, "User:Admin", CLIENT, Op::Read, ResourceType::Topic, "t"),
        Deny
    );
    assert_eq!(
        a.authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Deny
    );
    assert_eq!(
        a.authorize_host(&s, "User:admin", "*", Op::Read, ResourceType::Topic, "t"),
        Allow
    );
}

#[test]
fn malformed_super_users_are_refused_or_dropped() {
    let e = Authorizer::try_new("User:a;admin", false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected a string in format principalType:principalName but got admin"
    );
    let a = Authorizer::new("User:a;admin", false);
    assert_eq!(a.super_users(), ["User:a".to_string()]);
    assert!(!a.is_super_user("admin"));
    assert!(Authorizer::try_new("", true)
        .unwrap()
        .super_users()
        .is_empty());
}

#[test]
fn default_applies_only_when_no_acl_covers_the_resource() {
    let open = Authorizer::new("", true);
    let closed = Authorizer::new("", false);
    let empty = AclSet::default();
    assert_eq!(
        open.authorize(&empty, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Allow
    );
    assert_eq!(
        closed.authorize(&empty, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Deny
    );
    // Any ACL covering the resource counts, whoever, wherever and whatever it is for.
    let mut other_host = topic("t", Literal, ALICE, Op::Read, A);
    other_host.host = "192.168.0.9".into();
    for covering in [
        topic("t", Literal, "User:bob", Op::Read, A),
        topic("t", Literal, ALICE, Op::Write, A),
        other_host,
        topic("*", Literal, "User:bob", Op::Read, A),
        topic("t", Prefixed, "User:bob", Op::Read, D),
    ] {
        let s = set([covering.clone()]);
        assert_eq!(
            open.authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
            Deny,
            "{covering:?}"
        );
    }
    // ACLs on other resources do not.
    let s = set([
        topic("u", Literal, ALICE, Op::Read, D),
        topic("tt", Prefixed, ALICE, Op::Read, D),
        topic("t", Literal, ALICE, Op::Read, D).clone_with_type(ResourceType::Group),
    ]);
    assert_eq!(
        open.authorize(&s, ALICE, CLIENT, Op::Read, ResourceType::Topic, "t"),
        Allow
    );
    // DENY READ alone still makes DESCRIBE fall to "resource has ACLs": denied.
    let s = set([topic("t", Literal, ALICE, Op::Read, D)]);
    assert_eq!(
        open.authorize(&s, ALICE, CLIENT, Op::Describe, ResourceType::Topic, "t"),
        Deny
    );
}

impl AclBinding {
    fn clone_with_type(mut self, rt: ResourceType) -> Self {
        self.resource_type = rt;
        self
    }
}

#[test]
fn allow_everyone_config_parses_like_java() {
    assert!(parse_allow_everyone(" TRUE "));
    assert!(parse_allow_everyone("true"));
    assert!(!parse_allow_everyone("yes"));
    assert!(!parse_allow_everyone(""));
}

/// The index walk must find exactly the ACLs a scan of every ACL finds, for names that share long
/// prefixes and multi-byte characters.
#[test]
fn indexed_lookup_equals_a_full_scan() {
    let alphabet = ["a", "b", "é", "è", "ab", "-", "*", "\u{1F600}"];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut random_name = |max: u64| -> String {
        let len = next() % (max + 1);
        (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect()
    };
    let mut s = AclSet::default();
    let mut all = Vec::new();
    for i in 0..400 {
        let pt = if i % 2 == 0 { Literal } else { Prefixed };
        let b = topic(&random_name(5), pt, &format!("User:{i}"), Op::Read, A);
        s.add(b.clone());
        all.push(b);
    }
    for _ in 0..400 {
        let name = random_name(7);
        let mut found = Vec::new();
        s.for_each_applicable_for_test(&name, &mut found);
        let mut expected: Vec<String> = all
            .iter()
            .filter(|b| match b.pattern_type {
                Literal => b.resource_name == name || b.resource_name == "*",
                _ => name.starts_with(&b.resource_name),
            })
            .map(|b| b.principal.clone())
            .collect();
        found.sort();
        expected.sort();
        expected.dedup();
        assert_eq!(found, expected, "{name:?}");
    }
}

impl AclSet {
    fn for_each_applicable_for_test(&self, name: &str, out: &mut Vec<String>) {
        self.for_each_applicable(ResourceType::Topic, name, |ace| {
            out.push(ace.principal.clone());
            ControlFlow::Continue(())
        });
    }
}
