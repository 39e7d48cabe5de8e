"""The ACL and SCRAM administration tools users already run, against a broker with the authorizer on:
librdkafka's and the Java AdminClient's CreateAcls / DescribeAcls / DeleteAcls and SCRAM calls,
`kafka-acls.sh` (org.apache.kafka.tools.AclCommand) and `kafka-configs.sh --entity-type users`
(kafka.admin.ConfigCommand). Same broker settings as test_security_acls.py, on both targets."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from helpers import wait_until
from security_helpers import (ACL_TOOL, CONFIG_TOOL, WRONG_PASSWORD, Endpoint, acl, acl_filter, add_acls,
                              describe_acls, java_props, kafka_tool, rd_can_login, rdkafka_conf, remove_acls, run_java,
                              write_properties)
from test_security_acls import (acl_broker, admin_as, consumed_values, error_name, produce_as, root,  # noqa: F401
                                sasl, topic_for, uid)

def _keys(bindings):
    return {(x.restype.name, x.name, x.resource_pattern_type.name, x.principal, x.operation.name,
             x.permission_type.name) for x in bindings}


def test_librdkafka_acl_admin(acl_broker):
    """CreateAcls / DescribeAcls (ANY, MATCH, by principal, by pattern) / DeleteAcls with librdkafka; a user
    that is not a super user can neither create nor delete ACLs, nor see any."""
    b = acl_broker
    run = uid()
    lit = acl("TOPIC", f"rdacl-{run}-x", "User:alice", "READ")
    pfx = acl("TOPIC", f"rdacl-{run}", "User:bob", "WRITE", pattern="PREFIXED")
    grp = acl("GROUP", f"rdacl-{run}-g", "User:alice", "READ", "DENY")
    other = acl("TOPIC", f"rdacl-{run}-y", "User:bob", "DESCRIBE")
    mine = [lit, pfx, grp, other]

    bob = admin_as(b, "bob")
    res = bob.create_acls([lit], request_timeout=15)
    assert error_name(lambda: res[lit].result(15)) == "CLUSTER_AUTHORIZATION_FAILED"

    add_acls(root(b), *mine)
    assert _keys(mine) <= _keys(describe_acls(root(b)))   # ANY
    match = _keys(describe_acls(root(b), acl_filter("TOPIC", f"rdacl-{run}-x", pattern="MATCH")))
    assert _keys([lit, pfx]) <= match and not match & _keys([grp, other]), match
    literal = _keys(describe_acls(root(b), acl_filter("TOPIC", f"rdacl-{run}-x", pattern="LITERAL")))
    assert literal == _keys([lit])
    prefixed = _keys(describe_acls(root(b), acl_filter("ANY", None, pattern="PREFIXED")))
    assert _keys([pfx]) <= prefixed and not prefixed & _keys([lit, grp, other])
    by_alice = {k for k in _keys(describe_acls(root(b), acl_filter(principal="User:alice"))) if run in k[1]}
    assert by_alice == _keys([lit, grp])
    denies = {k for k in _keys(describe_acls(root(b), acl_filter(permission="DENY"))) if run in k[1]}
    assert denies == _keys([grp])

    # librdkafka turns Kafka's CLUSTER_AUTHORIZATION_FAILED for DescribeAcls into an empty result (the Java
    # client raises it: test_java_admin_security); either way bob is shown nothing
    try:
        seen = bob.describe_acls(acl_filter(), request_timeout=15).result(15)
    except KafkaException as e:
        assert e.args[0].name() == "CLUSTER_AUTHORIZATION_FAILED", e
        seen = []
    assert seen == []
    res = bob.delete_acls([acl_filter("TOPIC", f"rdacl-{run}-x", pattern="LITERAL")], request_timeout=15)
    assert [error_name(lambda: f.result(15)) for f in res.values()] == ["CLUSTER_AUTHORIZATION_FAILED"]
    assert _keys([lit]) <= _keys(describe_acls(root(b)))

    a = AdminClient({"bootstrap.servers": root(b)})
    # DeleteAcls with a filter: every binding it matches, and only those
    flt = acl_filter("TOPIC", f"rdacl-{run}-y", principal="User:bob", pattern="LITERAL")
    deleted = [x for f in a.delete_acls([flt], request_timeout=15).values() for x in f.result(15)]
    assert _keys(deleted) == _keys([other])
    remove_acls(root(b), lit, pfx, grp)
    left = {k for k in _keys(describe_acls(root(b))) if run in k[1]}
    assert left == set()


@pytest.mark.java
def test_java_admin_security(acl_broker, tmp_path):
    """tests/java/src/SecurityAdmin.java: alterUserScramCredentials / describeUserScramCredentials and
    createAcls / describeAcls (ANY, MATCH, principal) / deleteAcls, refused to bob; then the user it made logs
    in with the SCRAM-SHA-512 credential it kept, not with the SCRAM-SHA-256 one it deleted."""
    b = acl_broker
    run = uid()
    user, password = f"carol-{run}", f"carol-Pw-{run}-b7"
    admin_props = write_properties(tmp_path / "admin.properties", {
        **java_props(Endpoint(root(b), "PLAINTEXT")), "test.user": user, "test.password": password})
    bob_props = write_properties(tmp_path / "bob.properties", java_props(sasl(b, "bob", "SCRAM-SHA-512")))
    rc, out, err = run_java(tmp_path, "SecurityAdmin", str(admin_props), str(bob_props), run)
    assert rc == 0 and out.rstrip().endswith("SECURITY ADMIN OK"), \
        f"SecurityAdmin exited {rc}\nstdout:\n{out}\nstderr:\n{err[-5000:]}"
    wait_until(lambda: rd_can_login(b.address("SASL_PLAINTEXT"), "SCRAM-SHA-512", user, password, {}), 20,
               f"{user} logging in with SCRAM-SHA-512")
    assert not rd_can_login(b.address("SASL_PLAINTEXT"), "SCRAM-SHA-256", user, password, {})


def _tool(cls, *args):
    rc, out, err = kafka_tool(cls, *args)
    assert rc == 0, f"{cls} {' '.join(args)} exited {rc}\nstdout:\n{out}\nstderr:\n{err[-3000:]}"
    return out


@pytest.mark.java
def test_kafka_acls_tool(acl_broker):
    """kafka-acls.sh (org.apache.kafka.tools.AclCommand) through the ADMIN listener: --add, --list (by
    resource, by principal), --remove; the ACLs it adds let bob read the topic in his group."""
    b = acl_broker
    t = topic_for(b, "tool", records=2)
    g = f"acl-tool-{uid()}"
    bs = ["--bootstrap-server", root(b)]
    out = _tool(ACL_TOOL, *bs, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--operation",
                "Describe", "--topic", t, "--group", g)
    assert f"name={t}, patternType=LITERAL" in out and f"name={g}, patternType=LITERAL" in out, out
    want = [acl("TOPIC", t, "User:bob", "READ"), acl("TOPIC", t, "User:bob", "DESCRIBE"),
            acl("GROUP", g, "User:bob", "READ"), acl("GROUP", g, "User:bob", "DESCRIBE")]
    wait_until(lambda: _keys(want) <= _keys(describe_acls(root(b))), 20, "the tool's ACLs in DescribeAcls")

    listed = _tool(ACL_TOOL, *bs, "--list", "--topic", t)
    assert f"ResourcePattern(resourceType=TOPIC, name={t}, patternType=LITERAL)" in listed, listed
    assert "(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)" in listed, listed
    assert "(principal=User:bob, host=*, operation=DESCRIBE, permissionType=ALLOW)" in listed, listed
    assert "GROUP" not in listed, listed
    by_bob = _tool(ACL_TOOL, *bs, "--list", "--principal", "User:bob")
    assert f"name={t}," in by_bob and f"name={g}," in by_bob, by_bob

    c = Consumer({**rdkafka_conf(sasl(b, "bob", "PLAIN")), "group.id": g, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([t])
    try:
        assert consumed_values(c, 2) == [f"{t}-0".encode(), f"{t}-1".encode()]
    finally:
        c.close()

    _tool(ACL_TOOL, *bs, "--remove", "--force", "--allow-principal", "User:bob", "--operation", "Read",
          "--operation", "Describe", "--topic", t, "--group", g)
    wait_until(lambda: not _keys(want) & _keys(describe_acls(root(b))), 20, "the tool's ACLs removed")
    assert f"name={t}," not in _tool(ACL_TOOL, *bs, "--list", "--topic", t)
    assert produce_as(sasl(b, "bob"), t)[0] == "TOPIC_AUTHORIZATION_FAILED"


@pytest.mark.java
def test_kafka_configs_tool_scram_user(acl_broker):
    """kafka-configs.sh (kafka.admin.ConfigCommand) --entity-type users: --add-config SCRAM-SHA-512=[...],
    --describe, then the user logs in; --delete-config SCRAM-SHA-512 and it no longer can."""
    b = acl_broker
    user, password = f"dave-{uid()}", "dave-Pw-6e21c0d4f8"
    bs = ["--bootstrap-server", root(b), "--entity-type", "users", "--entity-name", user]
    _tool(CONFIG_TOOL, *bs, "--alter", "--add-config", f"SCRAM-SHA-512=[iterations=8192,password={password}]")
    wait_until(lambda: rd_can_login(b.address("SASL_PLAINTEXT"), "SCRAM-SHA-512", user, password, {}), 20,
               f"{user} logging in with SCRAM-SHA-512")
    assert not rd_can_login(b.address("SASL_PLAINTEXT"), "SCRAM-SHA-512", user, WRONG_PASSWORD, {})
    assert not rd_can_login(b.address("SASL_PLAINTEXT"), "SCRAM-SHA-256", user, password, {})
    out = _tool(CONFIG_TOOL, *bs, "--describe")
    assert f"SCRAM credential configs for user-principal '{user}' are SCRAM-SHA-512=iterations=8192" in out, out
    assert password not in out

    _tool(CONFIG_TOOL, *bs, "--alter", "--delete-config", "SCRAM-SHA-512")
    wait_until(lambda: not rd_can_login(b.address("SASL_PLAINTEXT"), "SCRAM-SHA-512", user, password, {}), 20,
               f"{user} refused once the credential is deleted")
    assert f"user-principal '{user}'" not in _tool(CONFIG_TOOL, *bs, "--describe")
