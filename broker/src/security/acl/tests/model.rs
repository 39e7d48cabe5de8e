use super::*;

// ---- enums ----

#[test]
fn enum_codes_names_and_unknown_codes() {
    for op in Operation::ALL_VALUES {
        assert_eq!(Operation::from_code(op.code()), *op);
    }
    assert_eq!(Operation::from_code(15), Op::TwoPhaseCommit);
    assert_eq!(Operation::from_code(16), Op::Unknown);
    assert_eq!(Operation::from_code(-1), Op::Unknown);
    assert_eq!(ResourceType::from_code(7), ResourceType::User);
    assert_eq!(ResourceType::from_code(8), ResourceType::Unknown);
    assert_eq!(PatternType::from_code(4), Prefixed);
    assert_eq!(PatternType::from_code(5), PatternType::Unknown);
    assert_eq!(Permission::from_code(3), A);
    assert_eq!(Permission::from_code(4), Permission::Unknown);
    assert_eq!(Op::DescribeConfigs.name(), "DESCRIBE_CONFIGS");
    assert_eq!(ResourceType::TransactionalId.code(), 5);
    assert_eq!(
        Operation::from_name("describe_configs"),
        Some(Op::DescribeConfigs)
    );
    assert_eq!(Operation::from_name("nope"), None);
}

#[test]
fn enums_serialize_as_kafka_names() {
    assert_eq!(
        serde_json::to_string(&ResourceType::Topic).unwrap(),
        "\"TOPIC\""
    );
    assert_eq!(serde_json::to_string(&Prefixed).unwrap(), "\"PREFIXED\"");
    assert_eq!(
        serde_json::to_string(&Op::DescribeConfigs).unwrap(),
        "\"DESCRIBE_CONFIGS\""
    );
    assert_eq!(serde_json::to_string(&A).unwrap(), "\"ALLOW\"");
    let op: Operation = serde_json::from_str("\"TWO_PHASE_COMMIT\"").unwrap();
    assert_eq!(op, Op::TwoPhaseCommit);
    assert!(serde_json::from_str::<Operation>("\"REDE\"").is_err());
}

// ---- CreateAcls validation ----

fn invalid(b: &AclBinding) -> InvalidAcl {
    validate_new_binding(b).unwrap_err()
}

#[test]
fn valid_bindings_pass() {
    assert_eq!(
        validate_new_binding(&topic("t", Literal, ALICE, Op::Read, A)),
        Ok(())
    );
    assert_eq!(
        validate_new_binding(&topic("t-", Prefixed, "User:*", Op::All, D)),
        Ok(())
    );
    let cluster = acl(
        ResourceType::Cluster,
        "kafka-cluster",
        Literal,
        ALICE,
        Op::Alter,
        A,
    );
    assert_eq!(validate_new_binding(&cluster), Ok(()));
    let txn = acl(
        ResourceType::TransactionalId,
        "tx",
        Literal,
        ALICE,
        Op::TwoPhaseCommit,
        A,
    );
    assert_eq!(validate_new_binding(&txn), Ok(()));
    // Only the colon is required.
    assert_eq!(
        validate_new_binding(&topic("t", Literal, "User:", Op::Read, A)),
        Ok(())
    );
    assert_eq!(
        validate_new_binding(&topic("t", Literal, ":x", Op::Read, A)),
        Ok(())
    );
}

#[test]
fn filter_only_values_fail_the_whole_request_without_a_wire_message() {
    let mut b = topic("t", Literal, ALICE, Op::Read, A);
    b.resource_type = ResourceType::Any;
    let e = invalid(&b);
    assert_eq!(
        (e.code, e.message.as_str(), e.whole_request),
        (UNKNOWN_SERVER_ERROR, "resourceType must not be ANY", true)
    );
    assert_eq!(e.wire_message(), None);

    for (pt, msg) in [
        (PatternType::Match, "patternType must not be MATCH"),
        (PatternType::Any, "patternType must not be ANY"),
    ] {
        let e = invalid(&topic("t", pt, ALICE, Op::Read, A));
        assert_eq!(
            (e.code, e.message.as_str(), e.whole_request),
            (UNKNOWN_SERVER_ERROR, msg, true)
        );
    }
    let e = invalid(&topic("t", Literal, ALICE, Op::Any, A));
    assert_eq!(e.message, "operation must not be ANY");
    let e = invalid(&topic("t", Literal, ALICE, Op::Read, Permission::Any));
    assert_eq!(e.message, "permissionType must not be ANY");
    assert!(e.whole_request);
}

#[test]
fn per_binding_refusals_carry_invalid_request_and_kafkas_text() {
    let cases = [
        (acl(ResourceType::Cluster, "c", Literal, ALICE, Op::Alter, A), "The only valid name for the CLUSTER resource is kafka-cluster"),
        // The CLUSTER check runs before the empty-name check.
        (acl(ResourceType::Cluster, "", Literal, ALICE, Op::Alter, A), "The only valid name for the CLUSTER resource is kafka-cluster"),
        (topic("", Literal, ALICE, Op::Read, A), "Invalid empty resource name"),
        (acl(ResourceType::Unknown, "t", Literal, ALICE, Op::Read, A), "Invalid resourceType UNKNOWN"),
        (topic("t", PatternType::Unknown, ALICE, Op::Read, A), "Invalid patternType UNKNOWN"),
        (topic("t", Literal, ALICE, Op::Unknown, A), "Invalid operation UNKNOWN"),
        (topic("t", Literal, ALICE, Op::Read, Permission::Unknown), "Invalid permissionType UNKNOWN"),
        (topic("t", Literal, "alice", Op::Read, A), "Could not parse principal from `alice` (no colon is present separating the principal type from the principal name)"),
    ];
    for (b, msg) in cases {
        let e = invalid(&b);
        assert_eq!(
            (e.code, e.message.as_str(), e.whole_request),
            (INVALID_REQUEST, msg, false),
            "{b:?}"
        );
        assert_eq!(e.wire_message(), Some(msg));
    }
}

#[test]
fn literal_zero_codes_are_a_request_parse_failure() {
    assert!(request_has_unknown_code(2, 3, 0, 3));
    assert!(request_has_unknown_code(0, 3, 3, 3));
    assert!(!request_has_unknown_code(2, 3, 3, 3));
    // Out-of-range codes get through parsing and are refused per binding as UNKNOWN.
    assert!(!request_has_unknown_code(99, 3, 3, 3));
}
