import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Transactions benchmark, run by scripts/bench-txn against Kafka and Runnel in turn.
 *
 *   BenchTxn BOOTSTRAP produce TOPIC TOTAL PER_TXN SIZE   transactional produce: TOTAL records of SIZE bytes,
 *                                                         PER_TXN per transaction; prints "produce <records/s> <MB/s>"
 *   BenchTxn BOOTSTRAP consume TOPIC TOTAL                read_committed consume of TOTAL records from the start;
 *                                                         prints "consume <records/s> <MB/s>"
 */
public class BenchTxn {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[2];
        long total = Long.parseLong(args[3]);
        if (args[1].equals("produce")) {
            int perTxn = Integer.parseInt(args[4]);
            int size = Integer.parseInt(args[5]);
            try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            }
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("transactional.id", "bench-" + UUID.randomUUID());
            p.put("key.serializer", ByteArraySerializer.class.getName());
            p.put("value.serializer", ByteArraySerializer.class.getName());
            p.put("linger.ms", "5");
            p.put("batch.size", "65536");
            byte[] value = new byte[size];
            Arrays.fill(value, (byte) 'x');
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                producer.initTransactions();
                long start = System.nanoTime();
                long sent = 0;
                while (sent < total) {
                    producer.beginTransaction();
                    for (int i = 0; i < perTxn && sent < total; i++, sent++) {
                        producer.send(new ProducerRecord<>(topic, value));
                    }
                    producer.commitTransaction();
                }
                double s = (System.nanoTime() - start) / 1e9;
                System.out.printf("produce %.0f %.2f%n", total / s, total * (double) size / s / 1e6);
            }
        } else {
            Properties c = new Properties();
            c.put("bootstrap.servers", bootstrap);
            c.put("isolation.level", "read_committed");
            c.put("key.deserializer", ByteArrayDeserializer.class.getName());
            c.put("value.deserializer", ByteArrayDeserializer.class.getName());
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c)) {
                TopicPartition tp = new TopicPartition(topic, 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                long got = 0, bytes = 0;
                long start = System.nanoTime();
                long deadline = System.currentTimeMillis() + 300_000;
                while (got < total && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                        got++;
                        bytes += r.value().length;
                    }
                }
                double s = (System.nanoTime() - start) / 1e9;
                if (got < total) throw new IllegalStateException("consumed " + got + " of " + total);
                System.out.printf("consume %.0f %.2f%n", got / s, bytes / s / 1e6);
            }
        }
        System.exit(0);
    }
}
