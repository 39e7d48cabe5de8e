// The Java AdminClient's security calls against a secured broker: alterUserScramCredentials /
// describeUserScramCredentials, and createAcls / describeAcls (ANY, MATCH, by principal) / deleteAcls, plus
// the refusal of those to a user that is not a super user. Run as a single-file program:
//   java -cp 'tests/java/target/lib/*' tests/java/src/SecurityAdmin.java ADMIN.properties USER.properties RUN
// ADMIN.properties: client configs of a super user (e.g. the ADMIN listener, User:ANONYMOUS) plus
//   test.user / test.password   a SCRAM user to create (it must not exist yet)
// USER.properties: client configs of a user with no ACLs (e.g. bob over SASL).
// RUN: a unique word for resource names (topics "jt-RUN", prefix "jp-RUN", group "jg-RUN").
// Prints "OK <step>" per step and finally "SECURITY ADMIN OK"; on a mismatch "MISMATCH <what>" and exit 1;
// any other exception: "ERROR ..." and exit 2. Leaves test.user with only a SCRAM-SHA-512 credential (the
// caller logs in with it) and no ACLs behind.

import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.ResourceNotFoundException;
import org.apache.kafka.common.resource.*;

public class SecurityAdmin {
    static final long T = 30;

    static class Mismatch extends RuntimeException {
        Mismatch(String m) { super(m); }
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new Mismatch(what);
    }

    static void ok(String step) {
        System.out.println("OK " + step);
        System.out.flush();
    }

    static Properties load(String f) throws Exception {
        Properties p = new Properties();
        try (FileReader r = new FileReader(f, StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return p;
    }

    static Admin admin(Properties all) {
        Properties p = new Properties();
        for (String k : all.stringPropertyNames()) if (!k.startsWith("test.")) p.put(k, all.getProperty(k));
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(p);
    }

    static <V> V get(KafkaFuture<V> f) throws Exception {
        return f.get(T, TimeUnit.SECONDS);
    }

    /** The cause of the ExecutionException the future fails with (a Mismatch if it succeeds). */
    static Throwable failure(KafkaFuture<?> f, String what) throws Exception {
        try {
            f.get(T, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new Mismatch(what + " succeeded");
    }

    interface Cond {
        boolean test() throws Exception;
    }

    static void waitFor(Cond c, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(T);
        while (!c.test()) {
            check(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(100);
        }
    }

    static Map<ScramMechanism, Integer> mechanisms(Admin a, String user) throws Exception {
        UserScramCredentialsDescription d = get(a.describeUserScramCredentials(List.of(user)).description(user));
        Map<ScramMechanism, Integer> out = new TreeMap<>();
        for (ScramCredentialInfo i : d.credentialInfos()) out.put(i.mechanism(), i.iterations());
        return out;
    }

    static void scram(Admin a, String user, String password) throws Exception {
        Throwable unknown = failure(a.describeUserScramCredentials(List.of(user)).description(user),
                "describeUserScramCredentials of a user that does not exist yet");
        check(unknown instanceof ResourceNotFoundException, "describe of an unknown user failed with " + unknown);
        ok("describeUserScramCredentials of an unknown user: ResourceNotFoundException");

        // one alteration per user and request: Kafka refuses two for one user (DUPLICATE_RESOURCE)
        get(a.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user,
                new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), password))).all());
        get(a.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user,
                new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password))).all());
        Map<ScramMechanism, Integer> want = new TreeMap<>(Map.of(ScramMechanism.SCRAM_SHA_256, 8192,
                ScramMechanism.SCRAM_SHA_512, 4096));
        waitFor(() -> {
            try {
                return mechanisms(a, user).equals(want);
            } catch (ExecutionException e) {
                return false; // not replayed into the broker's view yet
            }
        }, user + " with " + want);
        ok("alterUserScramCredentials upsert SCRAM-SHA-256 (8192) and SCRAM-SHA-512 (4096)");

        Map<String, UserScramCredentialsDescription> all = get(a.describeUserScramCredentials().all());
        check(all.containsKey(user) && all.containsKey("alice"), "describe of all users: " + all.keySet());
        ok("describeUserScramCredentials of all users");

        get(a.alterUserScramCredentials(List.of(new UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)))
                .all());
        waitFor(() -> mechanisms(a, user).equals(Map.of(ScramMechanism.SCRAM_SHA_512, 4096)),
                user + " with SCRAM-SHA-512 only");
        ok("alterUserScramCredentials deletion of SCRAM-SHA-256");
    }

    static Set<AclBinding> describe(Admin a, AclBindingFilter f) throws Exception {
        return new HashSet<>(get(a.describeAcls(f).values()));
    }

    static void acls(Admin a, Admin user, String run) throws Exception {
        AclBinding topicRead = new AclBinding(new ResourcePattern(ResourceType.TOPIC, "jt-" + run, PatternType.LITERAL),
                new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
        AclBinding prefixWrite = new AclBinding(new ResourcePattern(ResourceType.TOPIC, "jp-" + run, PatternType.PREFIXED),
                new AccessControlEntry("User:bob", "*", AclOperation.WRITE, AclPermissionType.ALLOW));
        AclBinding groupDeny = new AclBinding(new ResourcePattern(ResourceType.GROUP, "jg-" + run, PatternType.LITERAL),
                new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.DENY));
        List<AclBinding> mine = List.of(topicRead, prefixWrite, groupDeny);

        Throwable denied = failure(user.createAcls(List.of(topicRead)).all(), "createAcls by a non-super user");
        check(denied instanceof ClusterAuthorizationException, "createAcls by a non-super user: " + denied);
        denied = failure(user.describeAcls(AclBindingFilter.ANY).values(), "describeAcls by a non-super user");
        check(denied instanceof ClusterAuthorizationException, "describeAcls by a non-super user: " + denied);
        ok("createAcls / describeAcls by a user without cluster ALTER / DESCRIBE: ClusterAuthorizationException");

        get(a.createAcls(mine).all());
        waitFor(() -> describe(a, AclBindingFilter.ANY).containsAll(mine), "the new ACLs in describeAcls(ANY)");
        ok("createAcls + describeAcls(ANY)");

        // MATCH: the ACLs that apply to topic jp-RUN-x: the prefixed one, not the literal jt- one
        Set<AclBinding> match = describe(a, new AclBindingFilter(
                new ResourcePatternFilter(ResourceType.TOPIC, "jp-" + run + "-x", PatternType.MATCH),
                AccessControlEntryFilter.ANY));
        check(match.contains(prefixWrite) && !match.contains(topicRead) && !match.contains(groupDeny),
                "describeAcls MATCH jp-" + run + "-x: " + match);
        // an exact LITERAL filter does not match the prefixed binding
        Set<AclBinding> literal = describe(a, new AclBindingFilter(
                new ResourcePatternFilter(ResourceType.TOPIC, "jp-" + run + "-x", PatternType.LITERAL),
                AccessControlEntryFilter.ANY));
        check(literal.isEmpty(), "describeAcls LITERAL jp-" + run + "-x: " + literal);
        ok("describeAcls MATCH (prefixed applies, literal of the same name does not)");

        Set<AclBinding> alice = describe(a, new AclBindingFilter(ResourcePatternFilter.ANY,
                new AccessControlEntryFilter("User:alice", null, AclOperation.ANY, AclPermissionType.ANY)));
        check(alice.contains(topicRead) && alice.contains(groupDeny) && !alice.contains(prefixWrite),
                "describeAcls by principal User:alice: " + alice);
        for (AclBinding b : alice) check(b.entry().principal().equals("User:alice"), "not alice's: " + b);
        Set<AclBinding> denies = describe(a, new AclBindingFilter(ResourcePatternFilter.ANY,
                new AccessControlEntryFilter(null, null, AclOperation.ANY, AclPermissionType.DENY)));
        check(denies.contains(groupDeny) && !denies.contains(topicRead), "describeAcls DENY: " + denies);
        ok("describeAcls by principal and by permission");

        denied = failure(user.deleteAcls(List.of(topicRead.toFilter())).all(), "deleteAcls by a non-super user");
        check(denied instanceof ClusterAuthorizationException, "deleteAcls by a non-super user: " + denied);
        ok("deleteAcls by a user without cluster ALTER: ClusterAuthorizationException");

        Collection<AclBinding> deleted = get(a.deleteAcls(List.of(new AclBindingFilter(
                new ResourcePatternFilter(ResourceType.ANY, null, PatternType.ANY),
                new AccessControlEntryFilter("User:bob", null, AclOperation.WRITE, AclPermissionType.ALLOW)))).all());
        check(deleted.contains(prefixWrite) && !deleted.contains(topicRead), "deleteAcls by principal: " + deleted);
        waitFor(() -> {
            Set<AclBinding> left = describe(a, AclBindingFilter.ANY);
            return !left.contains(prefixWrite) && left.contains(topicRead) && left.contains(groupDeny);
        }, "only bob's ACL gone");
        ok("deleteAcls by principal");

        deleted = get(a.deleteAcls(List.of(topicRead.toFilter(), groupDeny.toFilter())).all());
        check(new HashSet<>(deleted).equals(Set.of(topicRead, groupDeny)), "deleteAcls exact: " + deleted);
        waitFor(() -> Collections.disjoint(describe(a, AclBindingFilter.ANY), mine), "every new ACL gone");
        ok("deleteAcls exact bindings");
    }

    public static void main(String[] args) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        if (args.length != 3) {
            System.err.println("usage: SecurityAdmin ADMIN.properties USER.properties RUN");
            System.exit(64);
        }
        try {
            Properties ap = load(args[0]);
            try (Admin a = admin(ap); Admin u = admin(load(args[1]))) {
                scram(a, ap.getProperty("test.user"), ap.getProperty("test.password"));
                acls(a, u, args[2]);
            }
        } catch (Mismatch m) {
            System.out.println("MISMATCH " + m.getMessage());
            System.exit(1);
        } catch (Throwable t) {
            System.out.println("ERROR " + t);
            t.printStackTrace();
            System.exit(2);
        }
        System.out.println("SECURITY ADMIN OK");
        System.exit(0);
    }
}
