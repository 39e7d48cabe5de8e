// Sends numbered records (value "rec-00000042", no key) with acks=all and the default idempotent producer,
// and prints every acknowledged record as one flushed stdout line:
//   ACK <partition> <offset> <value>
// Runs until killed, or until MAX_RECORDS were sent / MAX_SECONDS passed (then flushes, prints DONE, exits).
// Failed sends go to stderr as "FAIL <value> <exception>". At most 200 records are in flight at once.
//   java -cp 'tests/java/target/lib/*' tests/java/src/CrashProducer.java HOST:PORT TOPIC [MAX_RECORDS] [MAX_SECONDS]

import java.io.PrintStream;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class CrashProducer {
    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        if (args.length < 2) {
            System.err.println("usage: CrashProducer HOST:PORT TOPIC [MAX_RECORDS] [MAX_SECONDS]");
            System.exit(64);
        }
        String topic = args[1];
        long max = args.length > 2 ? Long.parseLong(args[2]) : 1_000_000L;
        long maxSeconds = args.length > 3 ? Long.parseLong(args[3]) : 300L;
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "1");
        // small batches, so the sticky partitioner moves between partitions often
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "2048");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");

        Semaphore inFlight = new Semaphore(200);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(maxSeconds);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (long i = 0; i < max && System.nanoTime() < deadline; i++) {
                boolean permit = false;
                while (!permit && System.nanoTime() < deadline) permit = inFlight.tryAcquire(100, TimeUnit.MILLISECONDS);
                if (!permit) break;
                String value = String.format("rec-%08d", i);
                producer.send(new ProducerRecord<>(topic, value.getBytes(StandardCharsets.UTF_8)), (m, e) -> {
                    inFlight.release();
                    if (e == null) {
                        synchronized (out) {
                            out.println("ACK " + m.partition() + " " + m.offset() + " " + value);
                        }
                    } else {
                        System.err.println("FAIL " + value + " " + e);
                    }
                });
            }
            producer.flush();
        }
        out.println("DONE");
    }
}
