// Hosts any number of Java consumers (kafka-clients, classic group protocol) in one JVM, each in its own thread,
// all subscribed to one topic in one group, driven by commands on stdin and reporting on stdout as
// machine-readable lines. The Python group tests (tests/python/test_groups_java.py) run it and check what the
// members saw.
//
//   java -cp 'tests/java/target/lib/*' tests/java/src/GroupMember.java HOST:PORT TOPIC GROUP
//
// stdin, one command a line:
//   add NAME [key=value ...]   a new consumer NAME (extra consumer configs, e.g. group.instance.id=x,
//                              partition.assignment.strategy=<class>, session.timeout.ms=4000; and this
//                              program's own record.delay.ms=N: a pause after each record, so a member
//                              is still consuming when the test makes something happen)
//   close NAME                 consumer.close(): a dynamic member sends LeaveGroup
//   quit                       close every consumer, print BYE, exit 0 (so does end of input)
// stdout, one event a line, fields separated by single spaces; GEN is groupMetadata().generationId() at the
// time, PARTS a comma-separated list of partition numbers in ascending order or '-' when empty:
//   STARTED NAME
//   ASSIGNED NAME GEN MEMBER_ID ADDED_PARTS ALL_PARTS     (ALL: the whole assignment after the callback)
//   REVOKED NAME GEN PARTS
//   LOST NAME GEN PARTS
//   REC NAME GEN PARTITION OFFSET VALUE                   (VALUE must not contain spaces)
//   COMMITTED NAME GEN PARTITION=NEXT_OFFSET,...
//   COMMITFAIL NAME GEN EXCEPTION_CLASS
//   CLOSED NAME
//   ERROR NAME EXCEPTION_CLASS MESSAGE
//   BYE
// Every consumer commits synchronously (commitSync with explicit offsets) after each poll that returned records.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    static String bootstrap, topic, group;
    static final Map<String, Member> members = new ConcurrentHashMap<>();

    static synchronized void emit(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String parts(Collection<TopicPartition> tps) {
        if (tps.isEmpty()) return "-";
        return tps.stream().map(TopicPartition::partition).sorted().map(String::valueOf)
                .collect(Collectors.joining(","));
    }

    static class Member implements Runnable {
        final String name;
        final Properties props = new Properties();
        final BlockingQueue<String> commands = new LinkedBlockingQueue<>();
        final CountDownLatch done = new CountDownLatch(1);
        KafkaConsumer<byte[], byte[]> consumer;
        final long recordDelayMs;

        Member(String name, Map<String, String> extra) {
            this.name = name;
            Map<String, String> configs = new HashMap<>(extra);
            String delay = configs.remove("record.delay.ms");
            this.recordDelayMs = delay == null ? 0 : Long.parseLong(delay);
            props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
            props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "20000");
            props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
            props.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "5000");
            props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            props.putAll(configs);
        }

        int gen() {
            try {
                return consumer.groupMetadata().generationId();
            } catch (RuntimeException e) {
                return -2;
            }
        }

        public void run() {
            try {
                consumer = new KafkaConsumer<>(props);
                consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                        emit("REVOKED " + name + " " + gen() + " " + parts(ps));
                    }

                    public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                        emit("ASSIGNED " + name + " " + gen() + " " + consumer.groupMetadata().memberId() + " "
                                + parts(ps) + " " + parts(consumer.assignment()));
                    }

                    public void onPartitionsLost(Collection<TopicPartition> ps) {
                        emit("LOST " + name + " " + gen() + " " + parts(ps));
                    }
                });
                emit("STARTED " + name);
                while (true) {
                    String cmd = commands.poll();
                    if (cmd != null && cmd.equals("close")) break;
                    ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(100));
                    if (recs.isEmpty()) continue;
                    int g = gen();
                    Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                    for (ConsumerRecord<byte[], byte[]> r : recs) {
                        String v = r.value() == null ? "null" : new String(r.value(), StandardCharsets.UTF_8);
                        emit("REC " + name + " " + g + " " + r.partition() + " " + r.offset() + " " + v);
                        next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                        if (recordDelayMs > 0) Thread.sleep(recordDelayMs);
                    }
                    try {
                        consumer.commitSync(next, Duration.ofSeconds(15));
                        emit("COMMITTED " + name + " " + g + " " + next.entrySet().stream()
                                .sorted(Comparator.comparingInt(e -> e.getKey().partition()))
                                .map(e -> e.getKey().partition() + "=" + e.getValue().offset())
                                .collect(Collectors.joining(",")));
                    } catch (RuntimeException e) {
                        emit("COMMITFAIL " + name + " " + g + " " + e.getClass().getSimpleName());
                    }
                }
                consumer.close(Duration.ofSeconds(15));
                emit("CLOSED " + name);
            } catch (Throwable t) {
                emit("ERROR " + name + " " + t.getClass().getSimpleName() + " "
                        + String.valueOf(t.getMessage()).replace('\n', ' '));
                try {
                    if (consumer != null) consumer.close(Duration.ofSeconds(5));
                } catch (Throwable ignored) {
                }
            } finally {
                done.countDown();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: GroupMember HOST:PORT TOPIC GROUP");
            System.exit(2);
        }
        bootstrap = args[0];
        topic = args[1];
        group = args[2];
        java.io.BufferedReader in = new java.io.BufferedReader(
                new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split("\\s+");
            if (w.length == 0 || w[0].isEmpty()) continue;
            switch (w[0]) {
                case "add": {
                    Map<String, String> extra = new HashMap<>();
                    for (int i = 2; i < w.length; i++) {
                        int eq = w[i].indexOf('=');
                        extra.put(w[i].substring(0, eq), w[i].substring(eq + 1));
                    }
                    Member m = new Member(w[1], extra);
                    members.put(w[1], m);
                    Thread t = new Thread(m, "member-" + w[1]);
                    t.setDaemon(true);
                    t.start();
                    break;
                }
                case "close": {
                    Member m = members.remove(w[1]);
                    if (m != null) m.commands.add("close");
                    break;
                }
                case "quit":
                    shutdown();
                    return;
                default:
                    emit("ERROR - BadCommand " + line);
            }
        }
        shutdown();
    }

    static void shutdown() throws InterruptedException {
        for (Member m : members.values()) m.commands.add("close");
        for (Member m : members.values()) m.done.await(30, TimeUnit.SECONDS);
        emit("BYE");
        System.exit(0);
    }
}
