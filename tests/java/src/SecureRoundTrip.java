// Produce+consume round trips with the real Java client (kafka-clients) under given security settings, many
// cases in one JVM (they run in parallel). Run as a single-file program:
//   java -cp 'tests/java/target/lib/*' tests/java/src/SecureRoundTrip.java CASE.properties ...
// Each properties file holds client configs (bootstrap.servers, security.protocol, sasl.*, ssl.*) plus
//   test.name     the case's name (no spaces)
//   test.topic    an existing topic; records go to partition 0, values "<topic>-rec-NNNN"
//   test.records  how many
// The producer is the default one (idempotent, acks=all); the consumer reads back with assign() + seek.
// Prints one line per case:
//   CASE <name> <milliseconds> OK
//   CASE <name> <milliseconds> FAIL <exception class chain, outermost first, joined by " <- ">: <innermost message>
// and exits 0 once every case has reported (a failing case is an outcome, not an error); 2 on bad usage.

import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class SecureRoundTrip {
    static class Mismatch extends RuntimeException {
        Mismatch(String m) { super(m); }
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new Mismatch(what);
    }

    static String chain(Throwable t) {
        List<String> names = new ArrayList<>();
        Throwable last = t;
        for (Throwable c = t; c != null && names.size() < 12; c = c.getCause()) {
            if (!(c instanceof ExecutionException)) names.add(c.getClass().getName());
            last = c;
        }
        String msg = String.valueOf(last.getMessage()).replace('\n', ' ');
        return String.join(" <- ", names) + ": " + msg;
    }

    static Properties clientProps(Properties all) {
        Properties p = new Properties();
        for (String k : all.stringPropertyNames()) if (!k.startsWith("test.")) p.put(k, all.getProperty(k));
        return p;
    }

    static void roundTrip(Properties all) throws Exception {
        String topic = all.getProperty("test.topic");
        int n = Integer.parseInt(all.getProperty("test.records", "10"));
        Properties pp = clientProps(all);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.putIfAbsent(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        pp.putIfAbsent(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        pp.putIfAbsent(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        List<byte[]> want = new ArrayList<>();
        for (int i = 0; i < n; i++) want.add(String.format("%s-rec-%04d", topic, i).getBytes(StandardCharsets.UTF_8));
        KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp);
        try {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (byte[] v : want) {
                Future<RecordMetadata> f = p.send(new ProducerRecord<>(topic, 0, null, v));
                if (f.isDone()) f.get(); // failed already (each further send would block max.block.ms again)
                fs.add(f);
            }
            p.flush();
            for (int i = 0; i < n; i++) {
                RecordMetadata m = fs.get(i).get(60, TimeUnit.SECONDS);
                check(m.offset() == i, "record " + i + " acknowledged at offset " + m.offset());
            }
        } finally {
            // bounded: a producer that never reached the broker otherwise waits for its producer id for minutes
            p.close(Duration.ofSeconds(5));
        }
        Properties cp = clientProps(all);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.putIfAbsent(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        List<byte[]> got = new ArrayList<>();
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp);
        try {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(45);
            while (got.size() < n) {
                check(System.nanoTime() < deadline, "consumed " + got.size() + " of " + n + " in 45 s");
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) got.add(r.value());
            }
        } finally {
            c.close(CloseOptions.timeout(Duration.ofSeconds(5)));
        }
        for (int i = 0; i < n; i++) {
            check(Arrays.equals(got.get(i), want.get(i)),
                    "record " + i + " read back as " + new String(got.get(i), StandardCharsets.UTF_8));
        }
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        if (args.length == 0) {
            System.err.println("usage: SecureRoundTrip CASE.properties ...");
            System.exit(2);
        }
        List<Properties> cases = new ArrayList<>();
        for (String f : args) {
            Properties p = new Properties();
            try (FileReader r = new FileReader(f, StandardCharsets.UTF_8)) {
                p.load(r);
            }
            cases.add(p);
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(cases.size(), 8));
        Map<String, Future<String>> outcomes = new LinkedHashMap<>();
        for (Properties p : cases) {
            outcomes.put(p.getProperty("test.name"), pool.submit(() -> {
                long t0 = System.nanoTime();
                String outcome;
                try {
                    roundTrip(p);
                    outcome = "OK";
                } catch (Throwable t) {
                    outcome = "FAIL " + chain(t);
                }
                return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " " + outcome;
            }));
        }
        for (Map.Entry<String, Future<String>> e : outcomes.entrySet()) {
            System.out.println("CASE " + e.getKey() + " " + e.getValue().get());
            System.out.flush();
        }
        pool.shutdownNow();
        System.exit(0);
    }
}
