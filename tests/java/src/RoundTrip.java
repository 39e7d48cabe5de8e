// End-to-end round trip with the real Java client (kafka-clients), DEFAULT producer settings (idempotent,
// acks=all). Run as a single-file program:
//   java -cp 'tests/java/target/lib/*' tests/java/src/RoundTrip.java HOST:PORT
// Prints "OK <step>" per step and finally "ROUNDTRIP OK"; on any mismatch prints "MISMATCH <what>" and exits 1
// (any exception: "ERROR ..." and exit 2).

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class RoundTrip {
    static String bootstrap;
    static final Set<Integer> nodeIds = new TreeSet<>(Set.of(0));
    static final String RUN = Long.toHexString(System.nanoTime() & 0xffffffffL);
    static final long T = 30; // seconds for any single future

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

    static byte[] b(String s) { return s == null ? null : s.getBytes(StandardCharsets.UTF_8); }

    static String s(byte[] v) { return v == null ? null : new String(v, StandardCharsets.UTF_8); }

    static KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> consumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "2000000");
        return new KafkaConsumer<>(p); // no group.id: assign() + seek only
    }

    static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int partition, int count) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            TopicPartition tp = new TopicPartition(topic, partition);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(45);
            while (out.size() < count) {
                check(System.nanoTime() < deadline,
                        "consumed " + out.size() + " of " + count + " records from " + tp + " in 45 s");
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) out.add(r);
            }
        }
        return out;
    }

    static String headersOf(Iterable<Header> hs) {
        StringBuilder sb = new StringBuilder();
        for (Header h : hs) sb.append(h.key()).append('=').append(s(h.value())).append(';');
        return sb.toString();
    }

    static void roundTrip(String codec) throws Exception {
        String topic = "java-rt-" + codec + "-" + RUN;
        long ts0 = System.currentTimeMillis() - 60_000;
        int n = 200;
        byte[] big = new byte[900 * 1024];
        new Random(7).nextBytes(big);
        List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            byte[] key = i % 10 == 3 ? null : b("key-" + i);
            byte[] value = i % 10 == 5 ? null : b("value-" + i + "-" + "x".repeat(i % 97));
            if (i == 150) value = big;
            List<Header> hs = new ArrayList<>();
            hs.add(new RecordHeader("idx", b(Integer.toString(i))));
            if (i % 2 == 0) {
                hs.add(new RecordHeader("dup", b("first")));
                hs.add(new RecordHeader("dup", b("second")));
            }
            sent.add(new ProducerRecord<>(topic, 0, ts0 + i, key, value, hs));
        }
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "2000000"))) {
            for (ProducerRecord<byte[], byte[]> r : sent) fs.add(p.send(r));
            p.flush();
            for (int i = 0; i < n; i++) {
                RecordMetadata m = fs.get(i).get(T, TimeUnit.SECONDS);
                check(m.offset() == i, codec + ": record " + i + " acknowledged at offset " + m.offset());
            }
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 0, n);
        for (int i = 0; i < n; i++) {
            ProducerRecord<byte[], byte[]> want = sent.get(i);
            ConsumerRecord<byte[], byte[]> r = got.get(i);
            check(r.offset() == i, codec + ": offset " + r.offset() + " at position " + i);
            check(Arrays.equals(r.key(), want.key()), codec + ": key of record " + i + ": " + s(r.key()));
            check(Arrays.equals(r.value(), want.value()), codec + ": value of record " + i);
            check((r.key() == null) == (want.key() == null), codec + ": null key of record " + i);
            check((r.value() == null) == (want.value() == null), codec + ": null value of record " + i);
            check(headersOf(r.headers()).equals(headersOf(want.headers())),
                    codec + ": headers of record " + i + ": " + headersOf(r.headers()));
            check(r.timestamp() == ts0 + i && r.timestampType() == org.apache.kafka.common.record.TimestampType.CREATE_TIME,
                    codec + ": timestamp of record " + i + ": " + r.timestamp() + " " + r.timestampType());
        }
        ok("roundtrip " + codec + " (" + n + " records, headers, nulls, 900 KB record)");
    }

    static void admin() throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin a = Admin.create(ap)) {
            DescribeClusterResult dc = a.describeCluster();
            Collection<Node> nodes = dc.nodes().get(T, TimeUnit.SECONDS);
            Set<Integer> ids = new TreeSet<>();
            for (Node n : nodes) ids.add(n.id());
            check(ids.equals(nodeIds), "describeCluster nodes " + nodes + ", want ids " + nodeIds);
            check(dc.clusterId().get(T, TimeUnit.SECONDS) != null, "describeCluster cluster id is null");
            ok("describeCluster");

            String topic = "java-admin-" + RUN;
            NewTopic nt = new NewTopic(topic, 1, (short) 1).configs(Map.of("retention.ms", "3600000",
                    "cleanup.policy", "delete"));
            a.createTopics(List.of(nt)).all().get(T, TimeUnit.SECONDS);
            waitPartitions(a, topic, 1);
            ok("createTopics with configs");

            ConfigResource cr = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config cfg = a.describeConfigs(List.of(cr)).all().get(T, TimeUnit.SECONDS).get(cr);
            check(cfg.entries().size() >= 10, "describeConfigs returned " + cfg.entries().size() + " entries");
            ConfigEntry ret = cfg.get("retention.ms");
            check(ret != null && "3600000".equals(ret.value()), "retention.ms " + ret);
            check(ret.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "retention.ms source " + ret.source());
            ConfigEntry mmb = cfg.get("max.message.bytes");
            check(mmb != null && "1048588".equals(mmb.value()) && mmb.isDefault(), "max.message.bytes " + mmb);
            ok("describeConfigs");

            a.incrementalAlterConfigs(Map.of(cr, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", ""), AlterConfigOp.OpType.DELETE))))
                    .all().get(T, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            while (true) {
                cfg = a.describeConfigs(List.of(cr)).all().get(T, TimeUnit.SECONDS).get(cr);
                if ("7200000".equals(cfg.get("retention.ms").value())
                        && cfg.get("cleanup.policy").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG) break;
                check(System.nanoTime() < deadline, "incrementalAlterConfigs not visible: " + cfg.get("retention.ms")
                        + " " + cfg.get("cleanup.policy"));
                Thread.sleep(100);
            }
            ok("incrementalAlterConfigs");

            a.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get(T, TimeUnit.SECONDS);
            waitPartitions(a, topic, 3);
            ok("createPartitions");

            // 10 records on partition 2 with timestamps base + i*1000, for offsetsForTimes and deleteRecords
            long base = System.currentTimeMillis() - 3_600_000;
            try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < 10; i++) {
                    fs.add(p.send(new ProducerRecord<>(topic, 2, base + i * 1000L, null, b("t" + i))));
                    if (i < 5) p.flush();
                }
                p.flush();
                for (int i = 0; i < 10; i++) {
                    RecordMetadata m = fs.get(i).get(T, TimeUnit.SECONDS);
                    check(m.partition() == 2 && m.offset() == i, "record " + i + " at " + m);
                }
            }
            TopicPartition tp2 = new TopicPartition(topic, 2);
            try (KafkaConsumer<byte[], byte[]> c = consumer()) {
                Map<Long, Long> want = new LinkedHashMap<>();
                want.put(base - 1, 0L);
                want.put(base + 2500, 3L);
                want.put(base + 7000, 7L);
                want.put(base + 7001, 8L);
                for (Map.Entry<Long, Long> e : want.entrySet()) {
                    OffsetAndTimestamp ot = c.offsetsForTimes(Map.of(tp2, e.getKey()), Duration.ofSeconds(T)).get(tp2);
                    check(ot != null && ot.offset() == e.getValue(),
                            "offsetsForTimes(base+" + (e.getKey() - base) + ") = " + ot + ", want " + e.getValue());
                }
                OffsetAndTimestamp none = c.offsetsForTimes(Map.of(tp2, base + 10_000), Duration.ofSeconds(T)).get(tp2);
                check(none == null, "offsetsForTimes past the end = " + none);
                check(c.endOffsets(List.of(tp2), Duration.ofSeconds(T)).get(tp2) == 10, "endOffsets");
            }
            ListOffsetsResult.ListOffsetsResultInfo mt = a.listOffsets(Map.of(tp2, OffsetSpec.maxTimestamp()))
                    .partitionResult(tp2).get(T, TimeUnit.SECONDS);
            check(mt.offset() == 9 && mt.timestamp() == base + 9000, "listOffsets maxTimestamp " + mt);
            ok("offsetsForTimes / listOffsets");

            DeletedRecords dr = a.deleteRecords(Map.of(tp2, RecordsToDelete.beforeOffset(4)))
                    .lowWatermarks().get(tp2).get(T, TimeUnit.SECONDS);
            check(dr.lowWatermark() == 4, "deleteRecords low watermark " + dr.lowWatermark());
            long earliest = a.listOffsets(Map.of(tp2, OffsetSpec.earliest())).partitionResult(tp2)
                    .get(T, TimeUnit.SECONDS).offset();
            check(earliest == 4, "earliest offset after deleteRecords " + earliest);
            List<ConsumerRecord<byte[], byte[]>> rest = readAll(topic, 2, 6);
            check(rest.get(0).offset() == 4 && "t4".equals(s(rest.get(0).value())), "first record after deleteRecords "
                    + rest.get(0).offset());
            ok("deleteRecords");

            a.deleteTopics(List.of(topic)).all().get(T, TimeUnit.SECONDS);
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (a.listTopics().names().get(T, TimeUnit.SECONDS).contains(topic)) {
                check(System.nanoTime() < deadline, "deleted topic still listed");
                Thread.sleep(100);
            }
            ok("deleteTopics");
        }
    }

    static void waitPartitions(Admin a, String topic, int n) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try {
                TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(T, TimeUnit.SECONDS).get(topic);
                if (d.partitions().size() == n && d.partitions().stream().allMatch(p -> p.leader() != null
                        && nodeIds.contains(p.leader().id()))) return;
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException)) throw e;
            }
            check(System.nanoTime() < deadline, topic + " did not get " + n + " led partitions");
            Thread.sleep(100);
        }
    }

    public static void main(String[] args) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        if (args.length < 1) {
            System.err.println("usage: RoundTrip HOST:PORT [--nodes=ID,ID...] [codec ...]");
            System.exit(64);
        }
        bootstrap = args[0];
        List<String> rest = new ArrayList<>(Arrays.asList(args).subList(1, args.length));
        // the node ids the cluster should report; a standalone broker is node 0
        if (!rest.isEmpty() && rest.get(0).startsWith("--nodes=")) {
            nodeIds.clear();
            for (String id : rest.remove(0).substring("--nodes=".length()).split(",")) nodeIds.add(Integer.parseInt(id));
        }
        List<String> codecs = !rest.isEmpty() ? rest : List.of("none", "gzip", "snappy", "lz4", "zstd");
        try {
            for (String codec : codecs) roundTrip(codec);
            admin();
        } catch (Mismatch m) {
            System.out.println("MISMATCH " + m.getMessage());
            System.exit(1);
        } catch (Throwable t) {
            System.out.println("ERROR " + t);
            t.printStackTrace();
            System.exit(2);
        }
        System.out.println("ROUNDTRIP OK");
        System.exit(0);
    }
}
